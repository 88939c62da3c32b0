/* API spend per day x feature x user x provider x model.
materialized: daily_table
columns:
  requests: Calls, gateway cache hits and errors included.
  error_requests: Calls with status error.
  gateway_cache_hits: Calls answered from the gateway's response cache.
  unpriced_requests: Calls whose model has no price (cost unknown, not zero).
  input_tokens: All prompt tokens, cache reads and writes included.
  cached_input_tokens: Prompt-cache reads.
  cache_creation_input_tokens: Prompt-cache writes.
  output_tokens: Generated tokens.
  cost_usd: Provider charges, USD (NULL when no call in the group has a token price, e.g. self-hosted or unpriced models).
  list_cost_usd: The same calls with every input token at the input price, USD.
  prompt_cache_savings_usd: What prompt caching saved, USD (negative when cache writes cost more).
  gateway_cache_avoided_usd: What gateway cache hits avoided, USD.
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
    sum(gateway_cache_avoided_usd)::decimal(18, 6) as gateway_cache_avoided_usd
from fct_requests
where day = $day
group by all
order by all
