/* What self-hosted serving really cost per token and per request, idle time included, per day x pool x model.
materialized: daily_table
grain: day, pool, model
lookback: 0
columns:
  requests: Calls the pool served for the model (gateway cache hits excluded).
  tokens: Input plus output tokens of those calls.
  gpu_cost_usd: The pool's GPU bill for the day, split across its models by request time, USD (idle time included).
  usd_per_1m_tokens: gpu_cost_usd per million tokens, USD.
  usd_per_request: gpu_cost_usd per request, USD.
*/
with usage as (
    select day, pool, model, sum(requests) as requests, sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens, sum(request_ms) as request_ms
    from int_selfhost_usage_daily
    where day between $start and $end
    group by all
),

shares as (
    select *, request_ms / nullif(sum(request_ms) over (partition by day, pool), 0) as usage_share
    from usage
),

pool_cost as (
    select day, pool, gpu_cost_usd from fct_gpu_utilization_daily where day between $start and $end
),

costed as (
    select shares.*, pool_cost.gpu_cost_usd * shares.usage_share as gpu_cost_usd
    from shares
    join pool_cost using (day, pool)
)

select
    day,
    pool,
    model,
    requests,
    input_tokens::bigint as input_tokens,
    output_tokens::bigint as output_tokens,
    (input_tokens + output_tokens)::bigint as tokens,
    gpu_cost_usd::decimal(18, 6) as gpu_cost_usd,
    (gpu_cost_usd / nullif(input_tokens + output_tokens, 0) * 1e6)::decimal(18, 6) as usd_per_1m_tokens,
    (gpu_cost_usd / nullif(requests, 0))::decimal(18, 8) as usd_per_request
from costed
order by day, pool, model
