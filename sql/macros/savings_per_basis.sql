/* savings_per_basis(findings_table, overlap_table, as_of, min_monthly_usd): the findings
   (fct_savings_opportunities) of an as-of day per basis, one total each and never one across bases
   (a measured waste and an upper bound are different kinds of dollars). The tables are passed by
   name: a macro cannot name a table a new warehouse does not have yet. Findings under
   min_monthly_usd (USD a month) are left out, and so are the settled ones (dismissed or done when
   the day ran): a total is of what is left to do.

   Within a basis two levers may act on the same calls, so no call is counted twice:
   - upper_bound: the combined upper bound. Per call, the largest saving among the levers whose
     findings the window made for its feature, provider and model (fct_savings_overlap_daily's
     rankings: the first of them in each ranking), plus what those levers cost on calls where they
     cost more than they save (simulated cache writes). A finding with feature '' acts on every
     call of its model (selfhost_trigger) or on a pool (autoscale, queue_batch, split_pools): per
     provider and model, the larger of it and the model's per-call total.
   - the other bases: in each feature x provider x model, its largest finding only (a priority call
     moved to batch, or to standard): a floor of what the basis saves together. */
create or replace macro savings_per_basis(findings_table, overlap_table, as_of, min_monthly_usd) as table
    with open_findings as (
        select *
        from query_table(findings_table)
        where day = as_of and monthly_savings_usd >= min_monthly_usd and status in ('open', 'acknowledged')
    ),

    fired as (
        -- Per feature, provider and model, the levers of its upper-bound findings.
        select
            feature,
            provider,
            model,
            any_value(period_start) as period_start,
            any_value(days_observed) as days_observed,
            list(case kind when 'prompt_cache' then 'prompt_cache:' || target else kind end) as levers
        from open_findings
        where basis = 'upper_bound' and feature <> ''
        group by feature, provider, model
    ),

    overlap as (
        select
            fired.feature,
            fired.provider,
            fired.model,
            fired.levers,
            fired.days_observed,
            overlap.rankings,
            overlap.lever_costs
        from fired
        inner join query_table(overlap_table) as overlap
            on
                fired.feature = overlap.feature
                and fired.provider = overlap.provider
                and fired.model = overlap.model
                and overlap.day between fired.period_start and as_of
    ),

    per_call as (
        -- Each ranking's first fired lever: its saving over the ranking's calls.
        select
            feature,
            provider,
            model,
            any_value(days_observed) as days_observed,
            sum(coalesce(
                ranking['savings_usd'][list_position(
                    list_transform(ranking['levers'], lambda lever: list_contains(levers, lever)), true
                )],
                0
            )) as savings_usd
        from (select *, unnest(rankings) as ranking from overlap) as ranked
        group by feature, provider, model
    ),

    costs as (
        select
            feature,
            provider,
            model,
            -- (A macro's aggregate takes no FILTER clause.)
            sum(case when list_contains(levers, cost['lever']) then cost['cost_usd'] end) as cost_usd
        from (select *, unnest(lever_costs) as cost from overlap) as costed
        group by feature, provider, model
    ),

    per_model as (
        -- The combined bound of each model's features, a month's worth (as monthly_savings_usd).
        select
            provider,
            model,
            sum(
                ((coalesce(per_call.savings_usd, 0) + coalesce(costs.cost_usd, 0)) * 30.44 / per_call.days_observed)
                ::decimal(18, 6)
            ) as monthly_usd
        from per_call
        left join costs using (feature, provider, model)
        group by provider, model
    ),

    whole_model as (
        -- Findings on all of a model's calls or on a pool: alternatives to its per-call levers.
        select provider, model, max(monthly_savings_usd) as monthly_usd
        from open_findings
        where basis = 'upper_bound' and feature = ''
        group by provider, model
    ),

    upper_bound as (
        select
            'upper_bound' as basis,
            (select count(*) from open_findings where basis = 'upper_bound') as findings,
            sum(greatest(coalesce(per_model.monthly_usd, 0), coalesce(whole_model.monthly_usd, 0)))
                as monthly_savings_usd
        from per_model
        full join whole_model using (provider, model)
    ),

    other_bases as (
        select
            basis,
            count(*) as findings,
            max(monthly_savings_usd) as largest_monthly_usd
        from open_findings
        where basis <> 'upper_bound'
        group by basis, feature, provider, model
    )

    select
        basis,
        sum(findings)::bigint as findings,
        sum(largest_monthly_usd)::decimal(18, 2) as monthly_savings_usd
    from other_bases
    group by basis
    union all
    select
        basis,
        findings,
        monthly_savings_usd::decimal(18, 2)
    from upper_bound
    where findings > 0
    order by basis
