/* What to change: one row per savings finding as of each day, over the savings.window_days days ending on it (default 28), from the lever marts - per as-of day x kind x feature x provider x model x target. Every row says how its dollars are known (basis) and carries its evidence; rows of different bases are never added up. Only positive savings are findings: a lever mart's negative simulated saving (caching that would not pay) stays there.
materialized: daily_table
grain: day, kind, feature, provider, model, target
lookback: 27
additive: false
columns:
  day: The as-of day: the window's last day.
  period_start: The window's first day (day - savings.window_days + 1).
  period_end: The window's last day (= day).
  window_days: savings.window_days, the window's length in days.
  days_observed: Days of the window with any billed API call or billed self-hosted pool in the warehouse: what monthly_savings_usd scales from, so a young warehouse is not read as a quiet month.
  kind: duplicate_calls, truncation_retries, cache_write_waste, trim_input with target growth (basis measured), batch, service_tier, long_context_tier (basis price_rule; batch with target batch_if_tolerant is basis upper_bound), prompt_cache, gateway_cache, trim_input with target p90, cap_output, route_by_difficulty or right_size_model (basis upper_bound; validated when savings.evals backs the move), autoscale, queue_batch (a pool serving batch calls only, queued per batch window), split_pools (a pool serving batch and other calls, split into an interactive and a queued batch pool) (each a self-hosted pool: feature '', provider self_hosted, model the pool's name; basis upper_bound; alternatives for the same pool, so a basis's total takes the largest), selfhost_trigger (an API model's calls on its self-host candidate: feature ''; basis upper_bound); exposure rows: prompt_cache with target log_prefix_hashes, cap_output with target reasoning_effort or finish_length, trim_input with target compact_conversations.
  target: What the change moves to - batch or standard (the service tier), batch_if_tolerant (the Batch API for work that looks offline but was not declared so), hourly_schedule (autoscale), queued (queue_batch), interactive_and_batch (split_pools), the candidate open model (selfhost_trigger), ttl_short or ttl_long (the cache lifetime that saves more), base_tier (prompts kept under the long-context threshold), gateway_ttl (a gateway response cache), p90 (prompts trimmed to the day's 90th percentile), p95 (answers capped at the day's 95th percentile), growth (prompts back to their size before they grew), the cheaper sibling model (route_by_difficulty, right_size_model), for exposure rows what to do first (log_prefix_hashes, reasoning_effort, finish_length, compact_conversations); '' when the change is to stop the waste.
  finding_key: kind:feature:provider/model:target - the same finding on every day, the key `costwatch findings` takes.
  basis: measured (money spent on waste, counted), price_rule (the same tokens at a documented cheaper tier, exact), upper_bound (assumes a change of behaviour that may not fully happen), validated (an upper bound backed by the team's own eval), exposure (spend a lever could act on, not estimated: a signal is missing or only an experiment can tell; estimated and monthly savings NULL).
  confidence: high for measured and price_rule, medium for validated, low for upper_bound and exposure.
  evidence_level: For route_by_difficulty and right_size_model: eval_validated (savings.evals records the team's eval of the target on the feature: basis validated), hypothesis (price and answer size only) or proxy_supported (the feature already sends at least 5 % and 200 calls to the target, and its errors, cut answers and retries are no worse within 95 % intervals, its answers at least 3/4 as long); NULL for the other kinds.
  requests_in_scope: Billed calls of the feature, provider and model in the window that the lever looks at.
  requests_affected: Of those, the calls the saving comes from (the duplicates, the re-sent cut calls, the calls moved to the target tier, the long-context calls, the calls that would read the cache).
  spend_in_scope_usd: What the calls in scope cost as billed, USD.
  estimated_savings_usd: The saving over the window, USD: more than 0 and never above spend_in_scope_usd; NULL for basis exposure (no estimate possible).
  monthly_savings_usd: estimated_savings_usd x 30.44 / days_observed, USD per month; NULL for exposure.
  assumptions: In plain words, what the estimate assumes and what it leaves out.
  evidence: JSON - the window, the thresholds and settings used, the figures behind the estimate (per kind), and the lever mart it came from. Where the lever acts on calls one by one, sample_request_ids (the 5 calls that cost or save most) and random_request_ids (5 drawn at random with a fixed seed, the same on every run: the typical call); route_by_difficulty and right_size_model add eval_kit_request_ids, up to 200 calls stratified by prompt and answer decile to replay against the target before moving. An upper bound acting call by call adds shared_requests: its window's calls on which another upper-bound lever would save too (fct_savings_overlap_daily), which the basis's combined total counts once.
  status: open, or what a person decided when the day ran (savings_findings_state, set by costwatch findings ack|dismiss|done): acknowledged, dismissed or done.
*/
with as_of as (
    select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day
),

windows as (
    select
        day,
        day - ($window_days - 1) as period_start
    from as_of
),

billed_days as (
    select day from fct_token_efficiency_daily
    union
    select day from fct_capacity_schedule_hourly where billed_replicas > 0
),

observed as (
    -- Days of each window with billed calls or a billed pool: the span the monthly figure scales from.
    select
        windows.day,
        count(distinct billed_days.day) as days_observed
    from windows
    inner join billed_days
        on billed_days.day between windows.period_start and windows.day
    group by windows.day
),

efficiency as (
    select
        windows.day,
        windows.period_start,
        efficiency.feature,
        efficiency.provider,
        efficiency.model,
        sum(efficiency.requests) as requests,
        sum(efficiency.cost_usd) as cost_usd,
        sum(efficiency.duplicate_requests) as duplicate_requests,
        sum(efficiency.duplicate_usd) as duplicate_usd,
        sum(efficiency.finish_length_requests) as finish_length_requests,
        sum(efficiency.finish_length_usd) as finish_length_usd,
        sum(efficiency.reasoning_tokens) as reasoning_tokens,
        sum(efficiency.reasoning_usd) as reasoning_usd,
        sum(efficiency.conversation_turn_requests) as conversation_turn_requests,
        sum(efficiency.conversation_turn_usd) as conversation_turn_usd,
        sum(efficiency.conversation_input_tokens) as conversation_input_tokens,
        sum(efficiency.conversation_history_tokens) as conversation_history_tokens,
        sum(efficiency.truncated_retry_requests) as truncated_retry_requests,
        sum(efficiency.truncated_retry_usd) as truncated_retry_usd,
        -- Cut calls of the day before the window, re-sent on its first day: spend in scope too.
        sum(efficiency.truncated_retry_day_before_usd) filter (where efficiency.day = windows.period_start)
            as truncated_retry_before_window_usd,
        sum(efficiency.long_context_requests) as long_context_requests,
        sum(efficiency.long_context_premium_usd) as long_context_premium_usd,
        sum(efficiency.gateway_repeat_requests) as gateway_repeat_requests,
        sum(efficiency.gateway_repeat_usd) as gateway_repeat_usd,
        sum(efficiency.tail_requests) as tail_requests,
        sum(efficiency.tail_excess_input_tokens) as tail_excess_input_tokens,
        sum(efficiency.tail_trim_usd) as tail_trim_usd,
        min(efficiency.input_p90) as input_p90_min,
        max(efficiency.input_p90) as input_p90_max,
        sum(efficiency.verbose_requests) as verbose_requests,
        sum(efficiency.verbose_excess_output_tokens) as verbose_excess_output_tokens,
        sum(efficiency.output_cap_usd) as output_cap_usd,
        min(efficiency.output_p95) as output_p95_min,
        max(efficiency.output_p95) as output_p95_max,
        top_samples(list(efficiency.duplicate_samples)) as duplicate_samples,
        top_samples(list(efficiency.truncated_retry_samples)) as truncated_retry_samples,
        top_samples(list(efficiency.gateway_repeat_samples)) as gateway_repeat_samples,
        top_samples(list(efficiency.tail_samples)) as tail_samples,
        top_samples(list(efficiency.verbose_samples)) as verbose_samples,
        top_samples(list(efficiency.long_context_samples)) as long_context_samples,
        random_samples(list(efficiency.duplicate_draws)) as duplicate_draws,
        random_samples(list(efficiency.truncated_retry_draws)) as truncated_retry_draws,
        random_samples(list(efficiency.gateway_repeat_draws)) as gateway_repeat_draws,
        random_samples(list(efficiency.tail_draws)) as tail_draws,
        random_samples(list(efficiency.verbose_draws)) as verbose_draws,
        random_samples(list(efficiency.long_context_draws)) as long_context_draws
    from windows
    inner join fct_token_efficiency_daily as efficiency
        on efficiency.day between windows.period_start and windows.day
    group by all
),

daily_prompts as (
    -- Each window day by day: the prompt tokens per billed call of each feature and model, and the
    -- median of the window's days before it (at least 7 of them) as its baseline.
    select
        windows.day,
        efficiency.day as call_day,
        efficiency.feature,
        efficiency.provider,
        efficiency.model,
        efficiency.requests,
        efficiency.uncached_input_tokens,
        efficiency.uncached_input_usd,
        efficiency.input_tokens / efficiency.requests as input_per_request,
        median(efficiency.input_tokens / efficiency.requests) over earlier as baseline_per_request,
        count(*) over earlier as baseline_days
    from windows
    inner join fct_token_efficiency_daily as efficiency
        on efficiency.day between windows.period_start and windows.day
    where efficiency.requests > 0
    window earlier as (
        partition by windows.day, efficiency.feature, efficiency.provider, efficiency.model
        order by efficiency.day rows between unbounded preceding and 1 preceding
    )
),

grown_days as (
    -- A day whose prompts are at least 10 % above the baseline; `stretch` numbers its run of
    -- consecutive grown days (gaps and islands over the days the feature and model were called).
    select
        *,
        baseline_days >= 7 and input_per_request >= 1.1 * baseline_per_request as grown,
        row_number() over per_model - row_number() over (
            partition by day, feature, provider, model, baseline_days >= 7
            and input_per_request >= 1.1 * baseline_per_request
            order by call_day
        ) as stretch
    from daily_prompts
    window per_model as (partition by day, feature, provider, model order by call_day)
),

sustained as (
    -- Grown days in runs of at least 3.
    select *
    from grown_days
    where grown
    qualify count(*) over (partition by day, feature, provider, model, stretch) >= 3
),

growth as (
    -- The extra plain prompt tokens of the sustained days at each day's plain price.
    select
        day,
        feature,
        provider,
        model,
        sum(requests) as grown_requests,
        count(*) as grown_days,
        min(call_day) as first_grown_day,
        min(baseline_per_request) as baseline_per_request,
        max(input_per_request) as peak_per_request,
        sum(least(
            (
                requests * (input_per_request - baseline_per_request)
                * uncached_input_usd::double / nullif(uncached_input_tokens, 0)
            )::decimal(18, 6),
            uncached_input_usd
        )) as growth_usd
    from sustained
    group by all
),

model_fit as (
    select
        windows.day,
        windows.period_start,
        fit.feature,
        fit.provider,
        fit.model,
        fit.target_model,
        sum(fit.requests) as requests,
        sum(fit.current_cost_usd) as current_cost_usd,
        -- A day without a price at the target leaves the window's savings unknown, not smaller.
        case when count(fit.target_cost_usd) = count(*) then sum(fit.rightsize_savings_usd) end
            as rightsize_savings_usd,
        sum(fit.easy_requests) as easy_requests,
        sum(fit.easy_cost_usd) as easy_cost_usd,
        case when count(fit.target_cost_usd) = count(*) then sum(fit.route_savings_usd) end as route_savings_usd,
        sum(fit.easy_requests_half) as easy_requests_half,
        sum(fit.route_savings_half_usd) as route_savings_half_usd,
        sum(fit.easy_requests_double) as easy_requests_double,
        sum(fit.route_savings_double_usd) as route_savings_double_usd,
        max(fit.output_p90) as output_p90_max,
        sum(fit.calls) as calls,
        sum(fit.error_calls) as error_calls,
        sum(fit.length_calls) as length_calls,
        sum(fit.retry_calls) as retry_calls,
        sum(fit.ok_calls) as ok_calls,
        sum(fit.ok_output_tokens) as ok_output_tokens,
        sum(fit.target_calls) as target_calls,
        sum(fit.target_error_calls) as target_error_calls,
        sum(fit.target_length_calls) as target_length_calls,
        sum(fit.target_retry_calls) as target_retry_calls,
        sum(fit.target_ok_calls) as target_ok_calls,
        sum(fit.target_ok_output_tokens) as target_ok_output_tokens,
        top_samples(list(fit.route_samples)) as route_samples,
        random_samples(list(fit.route_draws)) as route_draws,
        top_samples(list(fit.rightsize_samples)) as rightsize_samples,
        random_samples(list(fit.rightsize_draws)) as rightsize_draws,
        eval_kit(list(fit.eval_kit)) as eval_kit
    from windows
    inner join fct_model_fit_daily as fit
        on fit.day between windows.period_start and windows.day
    group by all
),

natural_experiments as (
    -- The feature already sends some calls to the target: a natural experiment when it is at least
    -- 5 % of the two models' calls and 200 calls. The target is "no worse on observable proxies" when
    -- for errors, cut answers and retries its 95 % interval does not lie wholly above the model's,
    -- and its mean answer is at least 3/4 of the model's (a far shorter answer may be a worse one).
    select
        *,
        target_calls >= 200 and target_calls >= 0.05 * (calls + target_calls) as natural_experiment,
        wilson_interval(error_calls, calls) as error_rate,
        wilson_interval(target_error_calls, target_calls) as target_error_rate,
        wilson_interval(length_calls, calls) as length_rate,
        wilson_interval(target_length_calls, target_calls) as target_length_rate,
        wilson_interval(retry_calls, calls) as retry_rate,
        wilson_interval(target_retry_calls, target_calls) as target_retry_rate,
        ok_output_tokens / nullif(ok_calls, 0) as mean_output_tokens,
        target_ok_output_tokens / nullif(target_ok_calls, 0) as target_mean_output_tokens
    from model_fit
),

evals as (
    -- savings.evals: a team's own eval of the target on a feature's cases (n >= 100, dated).
    select
        features.key as feature,
        targets.key as target_family,
        (targets.value ->> '$.n')::bigint as eval_n,
        (targets.value ->> '$.pass_rate')::double as eval_pass_rate,
        (targets.value ->> '$.baseline_pass_rate')::double as eval_baseline_pass_rate,
        (targets.value ->> '$.date')::date as eval_date
    from json_each($evals) as features
    cross join json_each(features.value) as targets
),

fit_evidence as (
    select
        natural_experiments.*,
        evals.eval_n,
        evals.eval_pass_rate,
        evals.eval_baseline_pass_rate,
        evals.eval_date,
        case when evals.eval_n is not null then 'validated' else 'upper_bound' end as fit_basis,
        case
            when evals.eval_n is not null then 'eval_validated'
            when
                natural_experiment
                and target_error_rate['low'] <= error_rate['high']
                and target_length_rate['low'] <= length_rate['high']
                and target_retry_rate['low'] <= retry_rate['high']
                and target_mean_output_tokens >= 0.75 * mean_output_tokens
                then 'proxy_supported'
            else 'hypothesis'
        end as evidence_level,
        json_object(
            'target_calls', target_calls,
            'target_share', target_calls / (calls + target_calls),
            'error_rate', json_object('model', error_calls / calls, 'model_95', error_rate,
                'target', target_error_calls / nullif(target_calls, 0), 'target_95', target_error_rate),
            'length_rate', json_object('model', length_calls / calls, 'model_95', length_rate,
                'target', target_length_calls / nullif(target_calls, 0), 'target_95', target_length_rate),
            'retry_rate', json_object('model', retry_calls / calls, 'model_95', retry_rate,
                'target', target_retry_calls / nullif(target_calls, 0), 'target_95', target_retry_rate),
            'mean_output_tokens', json_object('model', mean_output_tokens, 'target', target_mean_output_tokens)
        ) as experiment,
        case
            when evals.eval_n is not null then printf(
                'an eval of %d cases on %s: %s passed %.1f%%, %s %.1f%%', evals.eval_n, evals.eval_date,
                natural_experiments.target_model, 100 * evals.eval_pass_rate, natural_experiments.model,
                100 * evals.eval_baseline_pass_rate
            )
            when evidence_level = 'proxy_supported'
                then 'no worse on observable proxies where the feature already calls it'
            when natural_experiment then 'the feature already calls it, but a proxy is worse there'
            else 'a hypothesis (price and answer size only)'
        end as evidence_words,
        case
            when evals.eval_n is not null then json_object(
                'n', evals.eval_n, 'date', evals.eval_date, 'pass_rate', evals.eval_pass_rate,
                'baseline_pass_rate', evals.eval_baseline_pass_rate
            )
        end as eval
    from natural_experiments
    left join evals
        on
            natural_experiments.feature = evals.feature
            and model_family(natural_experiments.target_model) = evals.target_family
),

batch as (
    select
        windows.day,
        windows.period_start,
        batch.feature,
        batch.provider,
        batch.model,
        batch.target_tier,
        -- The declared moves apart; the inferred reasons (service account, job tag, off-hours burst)
        -- are one finding: each call has one reason.
        case when batch.reason in ('declared_batch', 'priority_on_batch') then batch.reason else 'inferred' end
            as move,
        list(distinct batch.reason order by batch.reason) as reasons,
        sum(batch.requests) as requests,
        sum(batch.current_cost_usd) as current_cost_usd,
        sum(batch.target_cost_usd) as target_cost_usd,
        sum(batch.savings_usd) as savings_usd,
        list(distinct batch.current_tier order by batch.current_tier) as current_tiers,
        bool_and(batch.stacks_with_cache) as stacks_with_cache,
        top_samples(list(batch.samples)) as samples,
        random_samples(list(batch.draws)) as draws
    from windows
    inner join fct_batch_opportunity_daily as batch
        on batch.day between windows.period_start and windows.day
    group by all
),

prompt_cache as (
    select
        windows.day,
        windows.period_start,
        cache.feature,
        cache.provider,
        cache.model,
        sum(cache.requests) as requests,
        sum(cache.requests_with_prefix_hashes) as requests_with_prefix_hashes,
        sum(cache.input_tokens) as input_tokens,
        sum(cache.reusable_tokens_ttl_short) as reusable_tokens_ttl_short,
        sum(cache.reusable_tokens_ttl_long) as reusable_tokens_ttl_long,
        sum(cache.actual_cost_usd) as actual_cost_usd,
        sum(cache.billed_cache_read_tokens) as billed_cache_read_tokens,
        sum(cache.billed_cache_write_tokens) as billed_cache_write_tokens,
        sum(cache.unhashed_requests) as unhashed_requests,
        sum(cache.unhashed_uncached_input_usd) as unhashed_uncached_input_usd,
        sum(cache.requests) as billed_requests,
        sum(cache.cache_writing_requests) as cache_writing_requests,
        sum(cache.cache_writing_cost_usd) as cache_writing_cost_usd,
        sum(cache.cache_write_premium_usd) as cache_write_premium_usd,
        sum(cache.unread_write_requests) as unread_write_requests,
        sum(cache.cache_write_waste_usd) as cache_write_waste_usd,
        sum(cache.savings_usd_ttl_short) as savings_usd_ttl_short,
        sum(cache.savings_usd_ttl_long) as savings_usd_ttl_long,
        max(cache.ttl_short_s) as ttl_short_s,
        max(cache.ttl_long_s) as ttl_long_s,
        -- Weighted by input tokens over the window, as each day's coverage is.
        sum(cache.prefix_hash_coverage * cache.input_tokens) / nullif(sum(cache.input_tokens), 0)
            as prefix_hash_coverage,
        top_samples(list(cache.ttl_short_samples)) as ttl_short_samples,
        random_samples(list(cache.ttl_short_draws)) as ttl_short_draws,
        top_samples(list(cache.ttl_long_samples)) as ttl_long_samples,
        random_samples(list(cache.ttl_long_draws)) as ttl_long_draws,
        top_samples(list(cache.cache_write_waste_samples)) as cache_write_waste_samples,
        random_samples(list(cache.cache_write_waste_draws)) as cache_write_waste_draws
    from windows
    inner join fct_prompt_cache_opportunity_daily as cache
        on cache.day between windows.period_start and windows.day
    group by all
),

capacity as (
    -- The pool's hours over the whole window (autoscale), and over the window's days on which it
    -- served batch calls only (queue_batch) or batch and other calls (split_pools): each lever on the
    -- days it applies to. One pass over the schedule (grouping sets).
    select
        windows.day,
        windows.period_start,
        schedule.pool,
        grouping(schedule.day_workloads) = 1 as whole_window,
        schedule.day_workloads,
        count(distinct schedule.day) as days,
        sum(schedule.requests) as requests,
        sum(schedule.batch_requests) as batch_requests,
        sum(schedule.billed_cost_usd) as billed_cost_usd,
        -- An hour without a per-replica rate leaves the window's savings unknown, not smaller.
        case when count(schedule.savings_usd) = count(*) then sum(schedule.savings_usd) end as savings_usd,
        case when count(schedule.queue_savings_usd) = count(*) then sum(schedule.queue_savings_usd) end
            as queue_savings_usd,
        case when count(schedule.split_savings_usd) = count(*) then sum(schedule.split_savings_usd) end
            as split_savings_usd,
        sum(schedule.billed_replicas) as billed_replica_hours,
        sum(schedule.planned_replicas) as planned_replica_hours,
        sum(schedule.excess_replica_hours) as excess_replica_hours,
        max(schedule.needed_replicas) as peak_needed_replicas,
        sum(schedule.queued_replicas) as queued_replica_hours,
        sum(schedule.interactive_planned_replicas) as interactive_replica_hours,
        sum(schedule.queued_batch_replicas) as queued_batch_replica_hours,
        sum(schedule.split_replicas) as split_replica_hours,
        sum(schedule.batch_busy_replica_s) as batch_busy_replica_s,
        max(schedule.batch_window_s) as batch_window_s,
        max(schedule.target_utilization) as target_utilization,
        min(schedule.per_replica_rps) as per_replica_rps_min,
        max(schedule.per_replica_rps) as per_replica_rps_max,
        list(distinct schedule.per_replica_rps_source order by schedule.per_replica_rps_source)
            as per_replica_rps_sources
    from windows
    inner join fct_capacity_schedule_hourly as schedule
        on schedule.day between windows.period_start and windows.day
    group by grouping sets (
        (windows.day, windows.period_start, schedule.pool),
        (windows.day, windows.period_start, schedule.pool, schedule.day_workloads)
    )
),

findings as (
    select
        day, period_start, 'duplicate_calls' as kind, feature, provider, model, '' as target, 'measured' as basis,
        requests as requests_in_scope,
        duplicate_requests as requests_affected,
        cost_usd as spend_in_scope_usd,
        duplicate_usd as estimated_savings_usd,
        printf(
            '%d calls repeated an earlier call of the same prompt, user and feature within %g s. '
            || 'Assumes the repeats were not asked for (a retry storm or a client loop, not a user regenerating).',
            duplicate_requests, $duplicate_window_s
        ) as assumptions,
        json_object(
            'source', 'fct_token_efficiency_daily', 'duplicate_window_s', $duplicate_window_s,
            'duplicate_requests', duplicate_requests,
            'sample_request_ids', duplicate_samples, 'random_request_ids', duplicate_draws
        ) as details
    from efficiency
    where duplicate_usd > 0
    union all
    select
        day, period_start, 'truncation_retries', feature, provider, model, '', 'measured',
        requests, truncated_retry_requests,
        cost_usd + coalesce(truncated_retry_before_window_usd, 0),
        truncated_retry_usd,
        printf(
            '%d calls were cut by their output cap (finish_reason = length) and sent again within %g s: '
            || 'their cost bought an answer thrown away. Assumes a cap that fits the answer avoids the first attempt.',
            truncated_retry_requests, $truncation_retry_window_s
        ),
        json_object(
            'source', 'fct_token_efficiency_daily', 'truncation_retry_window_s', $truncation_retry_window_s,
            'finish_length_requests', finish_length_requests, 'truncated_retry_requests', truncated_retry_requests,
            'sample_request_ids', truncated_retry_samples, 'random_request_ids', truncated_retry_draws
        )
    from efficiency
    where truncated_retry_usd > 0
    union all
    select
        day, period_start, 'long_context_tier', feature, provider, model, 'base_tier', 'price_rule',
        requests, long_context_requests, cost_usd, long_context_premium_usd,
        printf(
            '%d calls were priced above the base context tier. The saving is the same tokens at the base '
            || 'tier''s rates; realizable only if those prompts can be kept under the threshold.',
            long_context_requests
        ),
        json_object(
            'source', 'fct_token_efficiency_daily', 'long_context_requests', long_context_requests,
            'sample_request_ids', long_context_samples, 'random_request_ids', long_context_draws
        )
    from efficiency
    where long_context_premium_usd > 0
    union all
    select
        day, period_start,
        case move when 'priority_on_batch' then 'service_tier' else 'batch' end,
        feature, provider, model,
        case move when 'inferred' then 'batch_if_tolerant' else target_tier end,
        case move when 'inferred' then 'upper_bound' else 'price_rule' end,
        requests as requests_in_scope, requests as requests_affected, current_cost_usd, savings_usd,
        case
            when move = 'inferred' then printf(
                'At most: %d calls look like offline work (%s) and did not stream, yet were billed at the %s '
                || 'tier. At Batch API prices, same tokens and cache reads, they would cost this much less, if '
                || 'their callers can wait up to 24 h for the results; nobody declared they can.',
                requests,
                array_to_string(list_transform(reasons, lambda r: case r
                    when 'service_account' then 'from a service account'
                    when 'job_tag' then 'tagged with a job'
                    else 'bursts of 30 or more a minute at a quiet hour'
                end), ', '),
                array_to_string(current_tiers, ' or ')
            )
            else printf(
                '%d calls logged workload = batch were billed at the %s tier. Priced again at the %s tier, same '
                || 'tokens and cache reads; realizable if the caller can wait for the %s results.',
                requests, array_to_string(current_tiers, ' or '), target_tier,
                case target_tier when 'batch' then 'Batch API''s (up to 24 h)' else 'standard tier''s' end
            )
        end,
        json_object(
            'source', 'fct_batch_opportunity_daily', 'reasons', reasons,
            'current_tiers', current_tiers, 'target_tier', target_tier, 'current_cost_usd', current_cost_usd,
            'target_cost_usd', target_cost_usd, 'stacks_with_cache', stacks_with_cache,
            'sample_request_ids', samples, 'random_request_ids', draws
        )
    from batch
    where savings_usd > 0
    union all
    select
        day, period_start, 'cache_write_waste', feature, provider, model, '', 'measured',
        cache_writing_requests as requests_in_scope,
        case when never_read then cache_writing_requests else unread_write_requests end as requests_affected,
        cache_writing_cost_usd,
        case when never_read then cache_write_premium_usd else cache_write_waste_usd end,
        case
            when never_read then printf(
                '%d calls wrote the prompt cache and no call of the window read it: the write premium bought '
                || 'nothing (often a prefix that changes every call, such as a timestamp in the system prompt). '
                || 'Assumes the writes stop, or the prefix is made stable so they are read.',
                cache_writing_requests
            )
            else printf(
                '%d of %d calls that wrote the prompt cache wrote a prefix (by prefix_hashes) that no call '
                || 'carried again within the write''s lifetime: their write premium bought nothing (often a '
                || 'prefix that changes every call, such as a timestamp in the system prompt). Assumes those '
                || 'writes stop, or their prefix is made stable so they are read.',
                unread_write_requests, cache_writing_requests
            )
        end,
        json_object(
            'source', 'fct_prompt_cache_opportunity_daily',
            'method', case when never_read then 'no_reads_in_window' else 'prefix_hashes' end,
            'cache_writing_requests', cache_writing_requests, 'unread_write_requests', unread_write_requests,
            'cache_read_tokens', billed_cache_read_tokens,
            'sample_request_ids', cache_write_waste_samples, 'random_request_ids', cache_write_waste_draws
        )
    from (select *, billed_cache_read_tokens = 0 as never_read from prompt_cache) as writes
    where case when never_read then cache_write_premium_usd else cache_write_waste_usd end > 0
    union all
    select
        day, period_start, 'prompt_cache', feature, provider, model,
        case when savings_usd_ttl_long > savings_usd_ttl_short then 'ttl_long' else 'ttl_short' end,
        'upper_bound',
        requests_with_prefix_hashes as requests_in_scope,
        requests_with_prefix_hashes as requests_affected,
        actual_cost_usd,
        greatest(savings_usd_ttl_short, savings_usd_ttl_long),
        printf(
            'At most: every call carrying prefix_hashes caches its longest reusable prefix at the best '
            || 'breakpoints, with no early eviction, at the %s lifetime (%d s). %.0f%% of the input tokens '
            || 'carry prefix_hashes; the rest are not estimated.',
            case when savings_usd_ttl_long > savings_usd_ttl_short then 'long' else 'short' end,
            case when savings_usd_ttl_long > savings_usd_ttl_short then ttl_long_s else ttl_short_s end,
            100 * coalesce(prefix_hash_coverage, 0)
        ),
        json_object(
            'source', 'fct_prompt_cache_opportunity_daily',
            'sensitivity', json_object(
                'ttl_short_s', ttl_short_s, 'savings_usd_ttl_short', savings_usd_ttl_short,
                'ttl_long_s', ttl_long_s, 'savings_usd_ttl_long', savings_usd_ttl_long
            ),
            'input_tokens', input_tokens, 'reusable_tokens_ttl_short', reusable_tokens_ttl_short,
            'reusable_tokens_ttl_long', reusable_tokens_ttl_long, 'signal_coverage', prefix_hash_coverage,
            'sample_request_ids',
            case when savings_usd_ttl_long > savings_usd_ttl_short then ttl_long_samples else ttl_short_samples end,
            'random_request_ids',
            case when savings_usd_ttl_long > savings_usd_ttl_short then ttl_long_draws else ttl_short_draws end
        )
    from prompt_cache
    where greatest(savings_usd_ttl_short, savings_usd_ttl_long) > 0
    union all
    select
        day, period_start, 'gateway_cache', feature, provider, model, 'gateway_ttl', 'upper_bound',
        requests, gateway_repeat_requests, cost_usd, gateway_repeat_usd,
        printf(
            'At most: %d calls repeated a prompt (same prompt_hash) that some call sent within %g s, and a '
            || 'gateway response cache with that lifetime would have answered them. Safe only where the '
            || 'answer does not depend on the user and need not vary; duplicates of one user are counted apart.',
            gateway_repeat_requests, $gateway_cache_ttl_s
        ),
        json_object(
            'source', 'fct_token_efficiency_daily', 'gateway_cache_ttl_s', $gateway_cache_ttl_s,
            'gateway_repeat_requests', gateway_repeat_requests,
            'sample_request_ids', gateway_repeat_samples, 'random_request_ids', gateway_repeat_draws
        )
    from efficiency
    where gateway_repeat_usd > 0
    union all
    select
        day, period_start, 'trim_input', feature, provider, model, 'p90', 'upper_bound',
        requests, tail_requests, cost_usd, tail_trim_usd,
        printf(
            'At most: %d calls sent prompts longer than their day''s 90th percentile (%d to %d tokens); '
            || 'trimmed to it (%d plain tokens less; cached tokens kept), they would cost this much less. '
            || 'Assumes the removed context was not needed for the answer.',
            tail_requests, input_p90_min, input_p90_max, tail_excess_input_tokens
        ),
        json_object(
            'source', 'fct_token_efficiency_daily', 'threshold', 'input_p90 of each day',
            'input_p90_min', input_p90_min, 'input_p90_max', input_p90_max,
            'tail_excess_input_tokens', tail_excess_input_tokens,
            'sample_request_ids', tail_samples, 'random_request_ids', tail_draws
        )
    from efficiency
    where tail_trim_usd > 0
    union all
    select
        day, period_start, 'cap_output', feature, provider, model, 'p95', 'upper_bound',
        requests, verbose_requests, cost_usd, output_cap_usd,
        printf(
            'At most: %d answers ran past their day''s 95th percentile (%d to %d output tokens); capped '
            || 'there (%d visible tokens less), they would cost this much less. A cap cuts answers: %d of %d '
            || 'calls (under 1 %%) were cut by their cap already.',
            verbose_requests, output_p95_min, output_p95_max, verbose_excess_output_tokens,
            finish_length_requests, requests
        ),
        json_object(
            'source', 'fct_token_efficiency_daily', 'threshold', 'output_p95 of each day',
            'output_p95_min', output_p95_min, 'output_p95_max', output_p95_max,
            'verbose_excess_output_tokens', verbose_excess_output_tokens,
            'finish_length_requests', finish_length_requests,
            'sample_request_ids', verbose_samples, 'random_request_ids', verbose_draws
        )
    from efficiency
    -- Only where caps rarely bite already: under 1 % of the calls cut.
    where output_cap_usd > 0 and finish_length_requests < 0.01 * requests
    union all
    select
        efficiency.day, efficiency.period_start, 'trim_input', efficiency.feature, efficiency.provider,
        efficiency.model, 'growth', 'measured',
        efficiency.requests, growth.grown_requests, efficiency.cost_usd, growth.growth_usd,
        printf(
            'Prompts grew: on %d days from %s, %.0f prompt tokens per call against a median of %.0f on the '
            || 'window''s days before; the extra tokens at the plain input price cost this much. Measured '
            || 'spend; whether the longer prompts are needed is for the feature''s owners to say.',
            growth.grown_days, growth.first_grown_day, growth.peak_per_request, growth.baseline_per_request
        ),
        json_object(
            'source', 'fct_token_efficiency_daily',
            'threshold', '10 % above the median of at least 7 earlier days, 3 days running',
            'grown_days', growth.grown_days, 'first_grown_day', growth.first_grown_day,
            'baseline_tokens_per_request', growth.baseline_per_request,
            'peak_tokens_per_request', growth.peak_per_request
        )
    from efficiency
    inner join growth using (day, feature, provider, model)
    where growth.growth_usd > 0
    union all
    select
        day, period_start, 'route_by_difficulty', feature, provider, model, target_model, fit_basis,
        requests, easy_requests, current_cost_usd, route_savings_usd,
        printf(
            '%s: %.0f%% of the calls (%.0f%% of their cost) are easy (at most %d prompt and %d answer '
            || 'tokens, not cut); on %s at its prices, same tokens, they would cost this much less. Evidence: %s. '
            || 'Assumes a router sends exactly those calls%s.',
            case fit_basis when 'validated' then 'About' else 'At most' end,
            100 * easy_requests / requests, 100 * easy_cost_usd / nullif(current_cost_usd, 0),
            $easy_max_input_tokens, $easy_max_output_tokens, target_model, evidence_words,
            case
                when eval is null then printf(' and %s answers them as well: no eval says so yet', target_model)
                else ''
            end
        ),
        json_object(
            'source', 'fct_model_fit_daily', 'evidence_level', evidence_level,
            'easy', json_object(
                'max_input_tokens', $easy_max_input_tokens, 'max_output_tokens', $easy_max_output_tokens
            ),
            'easy_request_share', easy_requests / requests,
            'easy_cost_share', easy_cost_usd / nullif(current_cost_usd, 0),
            'sensitivity', json_object(
                'half', json_object('easy_requests', easy_requests_half, 'savings_usd', route_savings_half_usd),
                'double', json_object('easy_requests', easy_requests_double, 'savings_usd', route_savings_double_usd)
            ),
            'natural_experiment', experiment, 'eval', eval,
            'sample_request_ids', route_samples, 'random_request_ids', route_draws,
            'eval_kit_request_ids', eval_kit
        )
    from fit_evidence
    where route_savings_usd > 0
    union all
    select
        day, period_start, 'right_size_model', feature, provider, model, target_model, fit_basis,
        requests as requests_in_scope, requests as requests_affected, current_cost_usd, rightsize_savings_usd,
        printf(
            '%s: every call of the feature on %s instead, same tokens at its prices. Evidence: %s.%s',
            case fit_basis when 'validated' then 'About' else 'At most' end,
            target_model,
            case
                when evidence_level = 'hypothesis' and not natural_experiment
                    then printf('answers are short (90th percentile at most %d tokens every day)', output_p90_max)
                else evidence_words
            end,
            case
                when eval is null then printf(
                    ' Assumes %s answers the feature as well: check it on an eval before moving.', target_model
                )
                else ''
            end
        ),
        json_object(
            'source', 'fct_model_fit_daily', 'evidence_level', evidence_level,
            'output_p90_max', output_p90_max, 'natural_experiment', experiment, 'eval', eval,
            'sample_request_ids', rightsize_samples, 'random_request_ids', rightsize_draws,
            'eval_kit_request_ids', eval_kit
        )
    from fit_evidence
    -- Emitted only where short answers suggest a smaller model suffices, a natural experiment
    -- exists, or the team's own eval backs the move.
    where rightsize_savings_usd > 0 and (output_p90_max <= 300 or natural_experiment or eval is not null)
    union all
    select
        day, period_start, 'autoscale', '', 'self_hosted', pool, 'hourly_schedule', 'upper_bound',
        requests, requests as served_requests, billed_cost_usd, savings_usd,
        printf(
            'At most: the pool was billed %.1f replica-hours and an hourly schedule needed %d: each hour '
            || 'its busiest minute at %s requests/s per replica (%s) with the configured headroom, never under '
            || 'the warm floor, started an hour ahead of the load. Assumes replicas start and stop on the hour.',
            billed_replica_hours, planned_replica_hours,
            figure_range(per_replica_rps_min, per_replica_rps_max),
            array_to_string(per_replica_rps_sources, ', ')
        ),
        json_object(
            'source', 'fct_capacity_schedule_hourly', 'billed_replica_hours', billed_replica_hours,
            'planned_replica_hours', planned_replica_hours, 'excess_replica_hours', excess_replica_hours,
            'peak_needed_replicas', peak_needed_replicas, 'per_replica_rps_min', per_replica_rps_min,
            'per_replica_rps_max', per_replica_rps_max, 'per_replica_rps_sources', per_replica_rps_sources
        )
    from capacity
    where whole_window and savings_usd > 0
    union all
    select
        day, period_start, 'queue_batch', '', 'self_hosted', pool, 'queued', 'upper_bound',
        requests, batch_requests, billed_cost_usd, queue_savings_usd,
        printf(
            'At most: on %d days the pool served batch calls only (%d) and was billed %.1f replica-hours; '
            || 'queued, they needed %d: each %g-hour window''s calls take %.0f replica-seconds in all at %s '
            || 'requests/s per replica (%s), spread over the window at %.0f%% utilization, never under the '
            || 'warm floor. Assumes the batch work tolerates waiting up to %g hours, not served at its '
            || 'busiest minute, and replicas start and stop on the hour.',
            days, batch_requests, billed_replica_hours, queued_replica_hours, batch_window_s / 3600,
            batch_busy_replica_s,
            figure_range(per_replica_rps_min, per_replica_rps_max),
            array_to_string(per_replica_rps_sources, ', '), 100 * target_utilization, batch_window_s / 3600
        ),
        json_object(
            'source', 'fct_capacity_schedule_hourly', 'days', days, 'batch_requests', batch_requests,
            'billed_replica_hours', billed_replica_hours, 'queued_replica_hours', queued_replica_hours,
            'batch_busy_replica_s', batch_busy_replica_s, 'batch_window_s', batch_window_s,
            'target_utilization', target_utilization, 'per_replica_rps_min', per_replica_rps_min,
            'per_replica_rps_max', per_replica_rps_max, 'per_replica_rps_sources', per_replica_rps_sources
        )
    from capacity
    where day_workloads = 'batch' and queue_savings_usd > 0
    union all
    select
        day, period_start, 'split_pools', '', 'self_hosted', pool, 'interactive_and_batch', 'upper_bound',
        requests, batch_requests, billed_cost_usd, split_savings_usd,
        printf(
            'At most, beyond the hourly schedule (autoscale): on %d days the pool served %d batch calls among %d. '
            || 'One pool sized for both planned %d replica-hours; an interactive pool sized each hour on the '
            || 'other calls'' busiest minute alone (headroom, warm floor, an hour ahead) needs %d, and a batch '
            || 'pool working through the batch calls queued per %g-hour window at %.0f%% utilization %d more, '
            || 'at %s requests/s per replica (%s). Assumes the batch work tolerates waiting up to %g hours, '
            || 'that a batch call takes a replica as long as another call does, and replicas start and stop on '
            || 'the hour; never more than the hours were billed.',
            days, batch_requests, requests, planned_replica_hours, interactive_replica_hours,
            batch_window_s / 3600, 100 * target_utilization, queued_batch_replica_hours,
            figure_range(per_replica_rps_min, per_replica_rps_max),
            array_to_string(per_replica_rps_sources, ', '), batch_window_s / 3600
        ),
        json_object(
            'source', 'fct_capacity_schedule_hourly', 'days', days, 'batch_requests', batch_requests,
            'billed_replica_hours', billed_replica_hours, 'planned_replica_hours', planned_replica_hours,
            'interactive_replica_hours', interactive_replica_hours,
            'queued_batch_replica_hours', queued_batch_replica_hours, 'split_replica_hours', split_replica_hours,
            'batch_busy_replica_s', batch_busy_replica_s, 'batch_window_s', batch_window_s,
            'target_utilization', target_utilization, 'per_replica_rps_min', per_replica_rps_min,
            'per_replica_rps_max', per_replica_rps_max, 'per_replica_rps_sources', per_replica_rps_sources
        )
    from capacity
    where day_workloads = 'mixed' and split_savings_usd > 0
    union all
    select
        day, period_start, 'selfhost_trigger', '', provider, model, candidate, 'upper_bound',
        requests, requests as moved_requests, api_cost_usd, api_cost_usd - selfhost_cost_high_usd,
        printf(
            'At most: %s served on %s (%d to %d replicas at the busiest hour, low and high band, with %s and the '
            || 'warm floor) would have cost $%.2f to $%.2f instead of the API''s $%.2f, ops included; the API cost at '
            || 'least %.0f%% more in each of the last 4 weeks and the load is steady (hourly CV %.2f). Quality: %s. '
            || 'Assumes the load test''s shape holds for these calls.',
            model, candidate, replicas_low, replicas_high, gpu_type,
            selfhost_cost_low_usd, selfhost_cost_high_usd, api_cost_usd, 100 * margin, hourly_cv, quality_note
        ),
        json_object(
            'source', 'fct_selfhost_trigger', 'candidate', candidate, 'gpu_type', gpu_type,
            'replicas_low', replicas_low, 'replicas_high', replicas_high,
            'selfhost_cost_low_usd', selfhost_cost_low_usd, 'selfhost_cost_high_usd', selfhost_cost_high_usd,
            'ops_usd', ops_usd, 'margin', margin, 'hourly_cv', hourly_cv, 'weeks_above_trigger', weeks_above_trigger,
            'peak_input_tps', peak_input_tps, 'peak_output_tps', peak_output_tps,
            'per_replica_input_tps', per_replica_input_tps, 'per_replica_output_tps', per_replica_output_tps,
            'break_even_tokens_per_month', break_even_tokens_per_month, 'quality_note', quality_note
        )
    from fct_selfhost_trigger
    where day between $start and $end and verdict = 'consider_selfhost' and api_cost_usd > selfhost_cost_high_usd
    -- Exposure: spend a lever could act on, with no estimate (a signal is missing); NULL dollars.
    union all
    select
        day, period_start, 'prompt_cache', feature, provider, model, 'log_prefix_hashes', 'exposure',
        billed_requests, unhashed_requests, unhashed_uncached_input_usd, null,
        printf(
            '%d calls sent prompts long enough to cache without prefix_hashes: their plain prompt tokens cost '
            || 'this much, and caching could read part of them at a tenth to a half of the price. How much '
            || 'cannot be told without the prompts'' prefix hashes: log prefix_hashes at the gateway.%s',
            unhashed_requests,
            case
                when billed_cache_read_tokens + billed_cache_write_tokens = 0
                    then ' No call of the window read or wrote the prompt cache: caching is not enabled.'
                else ''
            end
        ),
        json_object(
            'source', 'fct_prompt_cache_opportunity_daily', 'missing_signal', 'prefix_hashes',
            'unhashed_requests', unhashed_requests, 'cache_read_tokens', billed_cache_read_tokens,
            'cache_write_tokens', billed_cache_write_tokens,
            'caching_enabled', (billed_cache_read_tokens + billed_cache_write_tokens > 0)
        )
    from prompt_cache
    where unhashed_uncached_input_usd > 0
    union all
    select
        day, period_start, 'cap_output', feature, provider, model, 'reasoning_effort', 'exposure',
        requests, requests as reasoning_requests, reasoning_usd, null,
        printf(
            '%d reasoning tokens cost this much. A lower reasoning effort spends fewer; how many fewer, and '
            || 'at what cost to the answers, the logs cannot tell: try the lower setting on an eval.',
            reasoning_tokens
        ),
        json_object('source', 'fct_token_efficiency_daily', 'reasoning_tokens', reasoning_tokens)
    from efficiency
    where reasoning_usd > 0
    union all
    select
        day, period_start, 'cap_output', feature, provider, model, 'finish_length', 'exposure',
        requests, finish_length_requests, finish_length_usd, null,
        printf(
            '%d of %d calls (%.1f%%) were cut by their output cap (finish_reason = length) and cost this '
            || 'much; a cut answer may be thrown away or re-asked. The re-sent ones are measured apart '
            || '(truncation_retries); for the rest, check whether the caps fit the answers.',
            finish_length_requests, requests, 100 * finish_length_requests / requests
        ),
        json_object('source', 'fct_token_efficiency_daily', 'finish_length_requests', finish_length_requests)
    from efficiency
    where finish_length_usd > 0
    union all
    select
        day, period_start, 'trim_input', feature, provider, model, 'compact_conversations', 'exposure',
        requests, conversation_turn_requests, conversation_turn_usd, null,
        printf(
            '%d calls were later turns of a conversation (by conversation_id) and cost this much. About %.0f%% '
            || 'of their prompt tokens carried earlier turns (estimated: the previous turn''s prompt and answer). '
            || 'Compacting the history - summarising or dropping old turns - could cut part of it; how much, and '
            || 'at what cost to the answers, the logs cannot tell: try it on an eval.',
            conversation_turn_requests, 100 * conversation_history_tokens / conversation_input_tokens
        ),
        json_object(
            'source', 'fct_token_efficiency_daily', 'conversation_turn_requests', conversation_turn_requests,
            'conversation_input_tokens', conversation_input_tokens,
            'conversation_history_tokens', conversation_history_tokens,
            'history_share', conversation_history_tokens / conversation_input_tokens
        )
    from efficiency
    where conversation_turn_usd > 0 and conversation_input_tokens > 0
),

keyed as (
    select
        *,
        printf('%s:%s:%s/%s:%s', kind, feature, provider, model, target) as finding_key,
        -- The lever's name in fct_savings_overlap_daily (upper bounds acting call by call).
        case when basis = 'upper_bound' then case kind when 'prompt_cache' then 'prompt_cache:' || target else kind end
        end as lever
    from findings
),

shared as (
    -- Per lever, the window's calls on which another upper-bound lever would save too: the calls
    -- the combined upper bound (savings_per_basis) counts once.
    select
        day,
        feature,
        provider,
        model,
        lever,
        sum(requests) as shared_requests
    from (
        select
            windows.day,
            overlap.feature,
            overlap.provider,
            overlap.model,
            ranking['requests'] as requests,
            unnest(ranking['levers']) as lever
        from windows
        inner join (select *, unnest(rankings) as ranking from fct_savings_overlap_daily) as overlap
            on overlap.day between windows.period_start and windows.day
        where len(overlap.ranking['levers']) > 1
    ) as per_lever
    group by all
)

select
    findings.day,
    findings.period_start,
    findings.day as period_end,
    $window_days as window_days,
    observed.days_observed,
    findings.kind,
    findings.feature,
    findings.provider,
    findings.model,
    findings.target,
    findings.finding_key,
    findings.basis,
    case when findings.basis in ('measured', 'price_rule') then 'high' when findings.basis = 'validated' then 'medium'
        else 'low' end as confidence,
    findings.details ->> '$.evidence_level' as evidence_level,
    findings.requests_in_scope,
    findings.requests_affected,
    findings.spend_in_scope_usd,
    findings.estimated_savings_usd,
    (findings.estimated_savings_usd * 30.44 / observed.days_observed)::decimal(18, 6) as monthly_savings_usd,
    findings.assumptions,
    json_merge_patch(
        json_object(
            'window', json_object(
                'start', findings.period_start, 'end', findings.day,
                'days', $window_days, 'days_observed', observed.days_observed
            )
        ),
        case
            when findings.lever is not null
                then json_merge_patch(
                    findings.details, json_object('shared_requests', coalesce(shared.shared_requests, 0))
                )
            else findings.details
        end
    ) as evidence,
    coalesce(state.status, 'open') as status
from keyed as findings
inner join observed using (day)
left join shared using (day, feature, provider, model, lever)
left join savings_findings_state as state using (finding_key)
order by all
