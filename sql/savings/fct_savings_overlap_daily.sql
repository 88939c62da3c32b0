/* Where the upper-bound levers act on the same calls, per day x feature x provider x model: what the combined upper bound of the savings findings is made of (savings_per_basis). Per call, the levers that would save on it ranked by their saving on it (largest first, ties by name); calls with the same ranking summed rank by rank. A window's combined bound takes, per ranking, the first lever whose finding the window made: the largest single lever's saving per call, never a sum across levers (batching and caching interact, and so do routing and trimming).
materialized: daily_table
grain: day, feature, provider, model
lookback: 0
memory: per_request
columns:
  requests: Billed API calls on which at least one upper-bound lever saves or costs something.
  rankings: [{levers, requests, savings_usd}], one per ranking: levers - the levers that save on a call, largest saving first (ties by name), named as the findings' kind (prompt_cache:ttl_short and prompt_cache:ttl_long apart; batch is the Batch API for work not declared offline); requests - the calls ranked so; savings_usd - per rank, that lever's saving summed over them, USD. Per call, from int_token_efficiency_calls (gateway_cache: the whole cost of a repeat; trim_input; cap_output), int_model_fit_calls (route_by_difficulty, right_size_model), int_prompt_cache_calls and int_batch_calls.
  lever_costs: [{lever, cost_usd}]: per lever, what it adds on the calls where it costs more than it saves (a simulated cache write: the reads it pays for are other calls' savings), summed, USD (negative); a combined bound that takes the lever keeps them. NULL when none.
*/
with levers as (
    -- One row per call and lever that moves its cost: the saving (negative when it costs more).
    select day, request_id, feature, provider, model, 'gateway_cache' as lever, billed_cost_usd as saving_usd
    from int_token_efficiency_calls
    where day between $start and $end and is_gateway_repeat
    union all
    select day, request_id, feature, provider, model, 'trim_input', trim_savings_usd
    from int_token_efficiency_calls
    where day between $start and $end and trim_savings_usd is not null
    union all
    select day, request_id, feature, provider, model, 'cap_output', cap_savings_usd
    from int_token_efficiency_calls
    where day between $start and $end and cap_savings_usd is not null
    union all
    select day, request_id, feature, provider, model, 'route_by_difficulty', route_savings_usd
    from int_model_fit_calls
    where day between $start and $end and route_savings_usd is not null
    union all
    select day, request_id, feature, provider, model, 'right_size_model', rightsize_savings_usd
    from int_model_fit_calls
    where day between $start and $end and rightsize_savings_usd is not null
    union all
    select day, request_id, feature, provider, model, 'prompt_cache:ttl_short', savings_usd_ttl_short
    from int_prompt_cache_calls
    where day between $start and $end
    union all
    select day, request_id, feature, provider, model, 'prompt_cache:ttl_long', savings_usd_ttl_long
    from int_prompt_cache_calls
    where day between $start and $end
    union all
    -- The Batch API for work nobody declared offline (declared moves are price rules, not bounds).
    select day, request_id, feature, provider, model, 'batch', savings_usd
    from int_batch_calls
    where day between $start and $end and reason not in ('declared_batch', 'priority_on_batch')
),

per_request as (
    select
        day,
        feature,
        provider,
        model,
        request_id,
        list(lever order by saving_usd desc, lever asc) filter (where saving_usd > 0) as ranking,
        list(saving_usd order by saving_usd desc, lever asc) filter (where saving_usd > 0) as savings_usd,
        list({'lever': lever, 'cost_usd': saving_usd}) filter (where saving_usd < 0) as costs
    from levers
    where saving_usd <> 0
    group by all
),

ranks as (
    select
        day,
        feature,
        provider,
        model,
        ranking,
        generate_subscripts(savings_usd, 1) as rank,
        unnest(savings_usd) as saving_usd
    from per_request
    where ranking is not null
),

rankings as (
    select
        day,
        feature,
        provider,
        model,
        list({'levers': ranking, 'requests': requests, 'savings_usd': savings_usd} order by ranking) as rankings
    from (
        select
            day,
            feature,
            provider,
            model,
            ranking,
            -- Every call of a ranking has each of its ranks: any rank counts them.
            max(requests) as requests,
            list(savings_usd order by rank) as savings_usd
        from (
            select day, feature, provider, model, ranking, rank, count(*) as requests, sum(saving_usd) as savings_usd
            from ranks
            group by all
        ) as per_rank
        group by all
    ) as per_ranking
    group by all
),

costs as (
    select
        day,
        feature,
        provider,
        model,
        list({'lever': lever, 'cost_usd': cost_usd} order by lever) as lever_costs
    from (
        select day, feature, provider, model, cost['lever'] as lever, sum(cost['cost_usd']) as cost_usd
        from (select day, feature, provider, model, unnest(costs) as cost from per_request) as unnested
        group by all
    ) as per_lever
    group by all
),

requests as (
    select day, feature, provider, model, count(*) as requests
    from per_request
    group by all
)

select
    requests.day,
    requests.feature,
    requests.provider,
    requests.model,
    requests.requests,
    rankings.rankings,
    costs.lever_costs
from requests
left join rankings using (day, feature, provider, model)
left join costs using (day, feature, provider, model)
order by all
