/* Everything the LLM traffic cost per day x feature: API calls (the bill where the provider billed the day, else the catalog estimate) plus the self-hosted GPUs (busy and idle) allocated to the features they served.
materialized: daily_table
grain: day, feature
lookback: 0
columns:
  feature: Product feature; 'unallocated' for billed API money no logged call explains, and for the GPU cost of a pool that served no timed call that day.
  requests: Every logged call of the feature (API and self-hosted, errors and gateway cache hits included).
  unpriced_requests: API calls with no catalog price: their money is unknown, in no column here (see fct_price_findings).
  api_cost_usd: API money, USD = api_billed_usd + api_estimated_usd.
  api_billed_usd: The feature's share of one-day provider bills (fct_allocated_spend_daily.allocated_usd) for the providers that billed the day, USD.
  api_estimated_usd: The catalog estimate (fct_spend_daily.cost_usd) for providers with no one-day bill that day, USD.
  gpu_busy_cost_usd: Self-hosted GPU cost while serving, allocated by the feature's share of each pool's serving time, USD.
  gpu_idle_cost_usd: Self-hosted GPU cost while idle, allocated the same way, USD.
  gpu_cost_usd: gpu_busy_cost_usd + gpu_idle_cost_usd, USD.
  total_cost_usd: api_cost_usd + gpu_cost_usd, USD.
  cost_per_1k_requests_usd: total_cost_usd per 1,000 requests, USD; NULL for a feature with no logged call.
*/
with allocated as (
    -- Providers with a one-day bill: their money is the bill, allocated to features.
    select day, provider, feature, sum(allocated_usd) as billed_usd
    from fct_allocated_spend_daily
    where day between $start and $end
    group by all
),

billed_providers as (
    select distinct day, provider from allocated
),

calls as (
    select
        spend.day,
        spend.feature,
        sum(spend.requests) as requests,
        sum(spend.unpriced_requests) as unpriced_requests,
        -- The estimate counts only where no bill replaces it (a self-hosted or unpriced call has none).
        coalesce(sum(spend.cost_usd) filter (where billed_providers.provider is null), 0) as estimated_usd
    from fct_spend_daily as spend
    left join billed_providers using (day, provider)
    where spend.day between $start and $end
    group by all
),

bills as (
    select day, feature, sum(billed_usd) as billed_usd from allocated group by all
),

pools as (
    select day, pool, gpu_cost_usd, idle_cost_usd from fct_gpu_utilization_daily where day between $start and $end
),

gpu_features as (
    select day, pool, feature, gpu_cost_usd, busy_cost_usd, idle_cost_usd
    from fct_gpu_cost_by_feature_daily
    where day between $start and $end and gpu_cost_usd is not null
),

gpu as (
    select day, feature, busy_cost_usd, idle_cost_usd from gpu_features
    union all
    -- A pool with no timed call to split its cost by: the whole day's cost, unallocated.
    select day, 'unallocated', gpu_cost_usd - idle_cost_usd, idle_cost_usd
    from pools
    where gpu_cost_usd <> 0 and not exists (
        select 1 from gpu_features where gpu_features.day = pools.day and gpu_features.pool = pools.pool
    )
),

gpu_by_feature as (
    select day, feature, sum(busy_cost_usd) as busy_usd, sum(idle_cost_usd) as idle_usd from gpu group by all
),

features as (
    select day, feature from calls
    union
    select day, feature from bills
    union
    select day, feature from gpu_by_feature
),

costs as (
    select
        features.day,
        features.feature,
        coalesce(calls.requests, 0)::bigint as requests,
        coalesce(calls.unpriced_requests, 0)::bigint as unpriced_requests,
        coalesce(bills.billed_usd, 0) as api_billed_usd,
        coalesce(calls.estimated_usd, 0) as api_estimated_usd,
        coalesce(gpu_by_feature.busy_usd, 0) as gpu_busy_cost_usd,
        coalesce(gpu_by_feature.idle_usd, 0) as gpu_idle_cost_usd
    from features
    left join calls using (day, feature)
    left join bills using (day, feature)
    left join gpu_by_feature using (day, feature)
)

-- Money keeps its marts' scale (the estimate is fct_requests' exact DECIMAL): nothing is rounded here.
select
    day,
    feature,
    requests,
    unpriced_requests,
    api_billed_usd + api_estimated_usd as api_cost_usd,
    api_billed_usd,
    api_estimated_usd,
    gpu_busy_cost_usd,
    gpu_idle_cost_usd,
    gpu_busy_cost_usd + gpu_idle_cost_usd as gpu_cost_usd,
    api_billed_usd + api_estimated_usd + gpu_busy_cost_usd + gpu_idle_cost_usd as total_cost_usd,
    (api_billed_usd + api_estimated_usd + gpu_busy_cost_usd + gpu_idle_cost_usd) * 1000
    / nullif(requests, 0) as cost_per_1k_requests_usd
from costs
order by day, feature
