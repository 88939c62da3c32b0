/* Self-hosting against the pool's API equivalent, per month x pool x self-hosted model: what the same tokens would cost on the API, and the utilization at which both cost the same.
materialized: table
grain: period_start, pool, model
columns:
  period_start: First day of the month.
  period_end: Last day of the month with data.
  tokens: Input plus output tokens served.
  selfhost_cost_usd: The GPU bill attributed to the model, idle time included, USD.
  api_equivalent_model: The hosted model the pool's work would move to (pools.api_equivalent).
  api_cost_usd: The same input and output tokens at the API model's current catalog price, USD (no prompt caching assumed).
  utilization: The pool's busy share of its billed GPU-hours over the period (0-1).
  full_load_tokens_per_gpu_hour: Tokens one GPU serves in an hour when busy: from the load test (requests_per_s at the SLO x tokens per request / GPUs per replica) when configured, else measured (tokens / busy GPU-hours).
  break_even_utilization: The utilization at which self-hosting costs what the API would = USD per GPU-hour / (full-load tokens per GPU-hour x API USD per token). Above 1: the API is cheaper even with the GPUs always busy.
  recommendation: keep, consolidate replicas, or move to API, in plain words.
*/
with usage as (
    select
        date_trunc('month', day)::date as period_start,
        max(day) as period_end,
        pool,
        model,
        sum(requests) as requests,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(gpu_cost_usd) as selfhost_cost_usd
    from fct_selfhost_unit_cost_daily
    group by all
),

utilization as (
    select
        date_trunc('month', day)::date as period_start,
        pool,
        -- GPU-hours are doubles: exact_sum, the same total whatever order the days' rows are stored in.
        exact_sum(busy_gpu_hours) / nullif(exact_sum(billed_gpu_hours), 0) as utilization,
        exact_sum(busy_gpu_hours) as busy_gpu_hours,
        sum(gpu_cost_usd) / nullif(exact_sum(billed_gpu_hours), 0) as usd_per_gpu_hour
    from fct_gpu_utilization_daily
    group by all
),

capacity as (
    select date_trunc('month', day)::date as period_start, pool,
        max(planned_replicas) as planned_replicas, max(billed_replicas) as billed_replicas
    from fct_capacity_plan
    group by all
),

gpus_per_replica as (
    select pool, max(gpu_count) as gpu_count from stg_gpu_billing group by pool
),

load_tested as (
    select pool_load_tests.pool,
        -- The fastest rate within the SLO; among tests at that rate, the most tokens (a tie-break,
        -- so re-runs agree).
        arg_max(pool_load_tests.requests_per_s * (pool_load_tests.prompt_tokens + pool_load_tests.output_tokens),
                (pool_load_tests.requests_per_s,
                 pool_load_tests.requests_per_s * (pool_load_tests.prompt_tokens + pool_load_tests.output_tokens)))
        * 3600 as tokens_per_replica_hour
    from pool_load_tests
    join pools using (pool)
    where pool_load_tests.request_latency_s <= pools.latency_slo_s
    group by pool_load_tests.pool
),

current_prices as (
    -- The version in force today for each model key (an override beats the catalog).
    select *
    from stg_prices
    where effective_to is null
    qualify rank() over (partition by model_key order by priority asc, effective_from desc) = 1
),

api_prices as (
    -- Its standard (not batch) prices at the base context tier, USD per token.
    select
        model_key,
        max(price_usd) filter (where component = 'input') as input_cost_per_token,
        max(price_usd) filter (where component = 'output') as output_cost_per_token
    from current_prices
    where service_tier = 'standard' and from_prompt_tokens = 0
    group by model_key
),

compared as (
    select
        usage.*,
        pools.api_equivalent as api_equivalent_model,
        usage.input_tokens * api_prices.input_cost_per_token
            + usage.output_tokens * api_prices.output_cost_per_token as api_cost_usd,
        utilization.utilization,
        utilization.usd_per_gpu_hour,
        coalesce(
            load_tested.tokens_per_replica_hour / nullif(gpus_per_replica.gpu_count, 0),
            (usage.input_tokens + usage.output_tokens) / nullif(utilization.busy_gpu_hours, 0)
        ) as full_load_tokens_per_gpu_hour,
        capacity.planned_replicas,
        capacity.billed_replicas
    from usage
    left join pools using (pool)
    left join api_prices on api_prices.model_key = pools.api_equivalent
    left join utilization using (period_start, pool)
    left join gpus_per_replica using (pool)
    left join load_tested using (pool)
    left join capacity using (period_start, pool)
),

break_even as (
    select
        *,
        usd_per_gpu_hour
            / nullif(full_load_tokens_per_gpu_hour * api_cost_usd / nullif(input_tokens + output_tokens, 0), 0)
            as break_even_utilization
    from compared
)

select
    period_start,
    period_end,
    pool,
    model,
    requests,
    input_tokens::bigint as input_tokens,
    output_tokens::bigint as output_tokens,
    (input_tokens + output_tokens)::bigint as tokens,
    selfhost_cost_usd::decimal(18, 6) as selfhost_cost_usd,
    api_equivalent_model,
    api_cost_usd::decimal(18, 6) as api_cost_usd,
    utilization,
    full_load_tokens_per_gpu_hour,
    break_even_utilization,
    case
        when api_cost_usd is null then 'set pools.' || pool || '.api_equivalent to a priced model to compare'
        when break_even_utilization > 1 then format(
            'move to API: even with its GPUs always busy, {} costs more than {} would', pool, api_equivalent_model)
        when utilization >= break_even_utilization then format(
            'keep: at {:.0f}% utilization self-hosting beats {} (break-even {:.0f}%)',
            utilization * 100, api_equivalent_model, break_even_utilization * 100)
        when planned_replicas < billed_replicas then format(
            'consolidate replicas: {} to {} would lift utilization toward the {:.0f}% break-even',
            billed_replicas, planned_replicas, break_even_utilization * 100)
        else format('move to API: at {:.0f}% utilization {} is cheaper than self-hosting (break-even {:.0f}%)',
            utilization * 100, api_equivalent_model, break_even_utilization * 100)
    end as recommendation
from break_even
order by period_start, pool, model
