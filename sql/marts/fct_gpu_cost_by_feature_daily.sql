/* Self-hosted GPU cost, busy and idle, allocated to features by their share of the pool's serving time, per day x pool x feature.
materialized: daily_table
grain: day, pool, feature
lookback: 0
columns:
  requests: Calls of the feature the pool served (gateway cache hits excluded).
  tokens: Input plus output tokens of those calls.
  usage_share: The feature's share (0-1) of the pool's request time (sum of durations) that day.
  gpu_cost_usd: The pool's GPU bill for the day x usage_share, USD.
  busy_cost_usd: The busy part of that cost, USD.
  idle_cost_usd: The idle part of that cost: idle GPUs are paid for by the features that keep the pool running, in proportion to their use, USD.
*/
with usage as (
    select day, pool, feature, sum(requests) as requests, sum(input_tokens + output_tokens) as tokens,
        sum(request_ms) as request_ms
    from int_selfhost_usage_daily
    where day between $start and $end
    group by all
),

shares as (
    select *, request_ms / nullif(sum(request_ms) over (partition by day, pool), 0) as usage_share
    from usage
),

pool_cost as (
    select day, pool, gpu_cost_usd, idle_cost_usd from fct_gpu_utilization_daily
    where day between $start and $end
)

select
    shares.day,
    shares.pool,
    shares.feature,
    shares.requests,
    shares.tokens::bigint as tokens,
    shares.usage_share,
    (pool_cost.gpu_cost_usd * shares.usage_share)::decimal(18, 6) as gpu_cost_usd,
    ((pool_cost.gpu_cost_usd - pool_cost.idle_cost_usd) * shares.usage_share)::decimal(18, 6) as busy_cost_usd,
    (pool_cost.idle_cost_usd * shares.usage_share)::decimal(18, 6) as idle_cost_usd
from shares
join pool_cost using (day, pool)
order by shares.day, shares.pool, shares.feature
