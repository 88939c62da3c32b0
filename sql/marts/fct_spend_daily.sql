/* API spend per day x feature x user x provider x model.
materialized: daily_table
grain: day, feature, user_id, provider, model
lookback: 0
columns:
  cost_usd: Provider charges, USD; NULL when no call in the group has a token price (self-hosted or unpriced models).
*/
select
    day,
    feature,
    user_id,
    provider,
    model,
    count(*) as requests,
    count(*) filter (where status = 'error') as error_requests,
    count(*) filter (where gateway_cache_hit) as gateway_cache_hits,
    count(*) filter (where not priced) as unpriced_requests,
    sum(input_tokens)::bigint as input_tokens,
    sum(cached_input_tokens)::bigint as cached_input_tokens,
    sum(cache_creation_input_tokens)::bigint as cache_creation_input_tokens,
    sum(output_tokens)::bigint as output_tokens,
    sum(cost_usd)::decimal(18, 6) as cost_usd,
    sum(list_cost_usd)::decimal(18, 6) as list_cost_usd,
    sum(prompt_cache_savings_usd)::decimal(18, 6) as prompt_cache_savings_usd,
    sum(gateway_cache_avoided_usd)::decimal(18, 6) as gateway_cache_avoided_usd,
    sum(output_cost_usd)::decimal(18, 6) as output_cost_usd
from fct_requests
where day = $day
group by all
order by all
