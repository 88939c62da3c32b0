/* Offline work billed at interactive prices, call by call: each call its caller declared batch work (workload = batch), or that looks latency-tolerant (not streamed, and from a service account, carrying a job tag or in an off-hours burst), that ran at the standard or priority tier, priced again at a cheaper tier by price_calls (the pricing code of fct_requests), once per tier move open to it. fct_batch_opportunity_daily adds them up; the combined upper bound of the savings findings takes them call by call.
materialized: daily_parquet
grain: request_id, target_tier
lookback: 0
columns:
  current_tier: The service tier the call was billed at (standard or priority; priced_service_tier in fct_requests).
  target_tier: The tier it is priced at here - batch (the provider's Batch API), or standard for a priority call.
  reason: Why the move is suggested - declared_batch (the caller logged workload = batch: it waits for results), priority_on_batch (priority, the dearest tier, paid for work its caller says is offline); inferred, for calls not declared batch that did not stream: service_account (user_id in savings.service_accounts), job_tag (tags.job is set) or offhours_burst (one user of the feature sent at least 30 calls in a minute, in an hour when the feature's other calls were under a quarter of its busiest hour's). One reason per call, in that order.
  input_tokens: Its prompt tokens, cache reads and writes included.
  output_tokens: Its output tokens, reasoning included.
  billed_cost_usd: What it cost as billed (fct_requests.cost_usd), USD.
  target_cost_usd: The same call, same tokens and the same cache reads and writes, at the target tier's prices, USD.
  savings_usd: billed_cost_usd - target_cost_usd, USD.
  target_cache_read_usd: The target tier's price of a cache-read token, USD (NULL when the model has none).
  current_cache_read_usd: The cache-read price the call was billed, USD per token; NULL when it read no cache.
*/
with calls as (
    select *
    from int_billed_calls
    where
        day between $start and $end
        and status <> 'error'
        and not gateway_cache_hit
        and billed_pricing_basis in ('catalog', 'override')
),

bursts as (
    -- Minutes in which one user of a feature sent at least 30 calls not declared batch.
    select day, feature, user_id, date_trunc('minute', ts) as minute
    from calls
    where workload is distinct from 'batch'
    group by all
    having count(*) >= 30
),

tagged as (
    select
        calls.*,
        bursts.minute is not null as in_burst
    from calls
    left join bursts
        on
            calls.day = bursts.day
            and calls.feature is not distinct from bursts.feature
            and calls.user_id is not distinct from bursts.user_id
            and date_trunc('minute', calls.ts) = bursts.minute
),

quiet_hours as (
    -- Hours in which a feature's calls outside bursts were under a quarter of its busiest hour's.
    select day, feature, hour
    from (
        select day, feature, date_trunc('hour', ts) as hour, count(*) filter (where not in_burst) as steady_calls
        from tagged
        where workload is distinct from 'batch'
        group by all
    ) as hours
    qualify steady_calls < 0.25 * max(steady_calls) over (partition by day, feature)
),

accounts as (
    -- savings.service_accounts as fct_requests shows user ids (pseudonymised when it does).
    select pseudonymised(account, $pseudonymise_user_id, $user_key_inner_pad, $user_key_outer_pad) as user_id
    from (select unnest($service_accounts::varchar[]) as account) as configured
),

billed as (
    -- Each call in scope with why: declared, or the first inferred reason that holds.
    select
        tagged.*,
        case
            when tagged.workload = 'batch' then 'declared'
            when coalesce(tagged.stream, false) then null
            when tagged.user_id in (select accounts.user_id from accounts) then 'service_account'
            when tagged.job is not null then 'job_tag'
            when tagged.in_burst and quiet_hours.hour is not null then 'offhours_burst'
        end as scope
    from tagged
    left join quiet_hours
        on
            tagged.day = quiet_hours.day
            and tagged.feature is not distinct from quiet_hours.feature
            and date_trunc('hour', tagged.ts) = quiet_hours.hour
),

moves (scope, current_tier, target_tier, reason) as (
    values
    ('declared', 'standard', 'batch', 'declared_batch'),
    ('declared', 'priority', 'batch', 'declared_batch'),
    ('declared', 'priority', 'standard', 'priority_on_batch'),
    ('service_account', 'standard', 'batch', 'service_account'),
    ('service_account', 'priority', 'batch', 'service_account'),
    ('job_tag', 'standard', 'batch', 'job_tag'),
    ('job_tag', 'priority', 'batch', 'job_tag'),
    ('offhours_burst', 'standard', 'batch', 'offhours_burst'),
    ('offhours_burst', 'priority', 'batch', 'offhours_burst')
),

-- The lambda's `c.kind` reads to the linter as a table reference (RF01, RF03); price_calls reads
-- moved_calls, which the linter cannot see (ST03).
-- noqa: disable=RF01,RF03
moved_calls as (  -- noqa: ST03
    -- Each call in scope once per move open to it: the same call, only its service tier changed.
    -- The move starts from the tier billed, so a priority call on a model without priority prices
    -- (billed as standard) is not priced as if it had paid priority.
    select
        billed.* replace (moves.target_tier as service_tier),
        moves.current_tier,
        moves.reason,
        list_filter(billed.billed_charges, lambda c: c.kind = 'cache_read')[1].unit_usd as current_cache_read_usd
    from billed
    inner join moves on billed.scope = moves.scope and billed.billed_service_tier = moves.current_tier
),
-- noqa: enable=RF01,RF03

at_target as (
    select * from price_calls(moved_calls, $start, $end)
)

select
    day,
    request_id,
    feature,
    provider,
    model,
    current_tier,
    service_tier as target_tier,
    reason,
    input_tokens,
    output_tokens,
    billed_cost_usd,
    cost_usd as target_cost_usd,
    billed_cost_usd - cost_usd as savings_usd,
    cache_read_usd as target_cache_read_usd,
    current_cache_read_usd
from at_target
-- A model the catalog has no prices for at the target tier bills it as standard: no move to offer.
where priced_service_tier = service_tier
order by all
