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
    -- Money keeps fct_requests' scale: the sum of its DECIMAL(18, 12) is DECIMAL(38, 12) (38 digits, the
    -- widest DuckDB has), never rounded per group, so the groups add up to the requests exactly (DESIGN.md
    -- §3). A cast here would round every group; reports round when they present (sql/reports).
    sum(cost_usd) as cost_usd,
    sum(list_cost_usd) as list_cost_usd,
    sum(prompt_cache_savings_usd) as prompt_cache_savings_usd,
    sum(gateway_cache_avoided_usd) as gateway_cache_avoided_usd,
    sum(output_cost_usd) as output_cost_usd
from fct_requests
where day between $start and $end
group by all
order by all
