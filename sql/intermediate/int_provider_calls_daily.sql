/* Gateway calls a provider bills (status ok, not a gateway cache hit, not self-hosted) and their estimated cost, per day x provider x model.
materialized: daily_table
grain: day, provider, model
lookback: 0
columns:
  model_family: Model name lower-cased without a date suffix, to meet the bills' name.
  requests: Billable calls in the gateway logs.
  estimated_usd: What the logs say these calls cost at catalog prices, USD; NULL when the model is unpriced.
*/
select
    day,
    provider,
    model,
    model_family(model) as model_family,
    count(*) as requests,
    sum(input_tokens)::bigint as input_tokens,
    sum(cached_input_tokens)::bigint as cached_input_tokens,
    sum(cache_creation_input_tokens)::bigint as cache_creation_input_tokens,
    sum(output_tokens)::bigint as output_tokens,
    -- Exact: fct_requests' scale, no rounding per group (see fct_spend_daily).
    sum(cost_usd) as estimated_usd
from fct_requests
where day = $day
  and status = 'ok'
  and not gateway_cache_hit
  and pricing_basis <> 'gpu_billing'
group by all
order by all
