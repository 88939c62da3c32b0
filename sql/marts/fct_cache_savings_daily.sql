/* What prompt caching and the gateway response cache saved, per day x feature x model.
materialized: daily_table
grain: day, feature, provider, model
lookback: 0
*/
with requests as (
    select * from fct_requests where day between $start and $end
)

select
    day,
    feature,
    provider,
    model,
    count(*) as requests,
    -- Exact: fct_requests' scale, no rounding per group (see fct_spend_daily).
    sum(prompt_cache_savings_usd) as prompt_cache_savings_usd,
    count(*) filter (where gateway_cache_hit) as gateway_cache_hits,
    sum(gateway_cache_avoided_usd) as gateway_cache_avoided_usd,
    sum(cached_input_tokens) filter (where not gateway_cache_hit)
        / nullif(sum(input_tokens) filter (where not gateway_cache_hit), 0) as cache_hit_rate,
    count(*) filter (where gateway_cache_hit) / count(*) as gateway_cache_hit_rate
from requests
group by all
order by all
