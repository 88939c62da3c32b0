/* What prompt caching and the gateway response cache saved, per day x feature x model.
materialized: daily_table
columns:
  prompt_cache_savings_usd: List cost minus actual cost of provider calls, USD (negative when cache writes cost more than reads saved).
  gateway_cache_hits: Calls answered from the gateway's response cache.
  gateway_cache_avoided_usd: What those hits would have cost, USD.
  cache_hit_rate: Share (0-1) of provider-call input tokens read from the prompt cache; NULL without input tokens.
  gateway_cache_hit_rate: Share (0-1) of calls answered by the gateway cache.
*/
with requests as (
    select * from fct_requests where day = $day
)

select
    day,
    feature,
    provider,
    model,
    count(*) as requests,
    sum(prompt_cache_savings_usd)::decimal(18, 6) as prompt_cache_savings_usd,
    count(*) filter (where gateway_cache_hit) as gateway_cache_hits,
    sum(gateway_cache_avoided_usd)::decimal(18, 6) as gateway_cache_avoided_usd,
    sum(cached_input_tokens) filter (where not gateway_cache_hit)
        / nullif(sum(input_tokens) filter (where not gateway_cache_hit), 0) as cache_hit_rate,
    count(*) filter (where gateway_cache_hit) / count(*) as gateway_cache_hit_rate
from requests
group by all
order by all
