/* Gateway calls a provider bills (status ok, not a gateway cache hit, not self-hosted) and their estimated cost, per day x provider x model x service tier x long context.
materialized: daily_table
grain: day, provider, model, service_tier, long_context
lookback: 0
columns:
  model_family: Model name lower-cased without a date suffix, to meet the bills' name.
  service_tier: The tier the calls ran at (standard, batch, flex, priority), as fct_requests priced them.
  long_context: True for calls priced at a context tier above the base rate (fct_requests.price_tier other than 'base'): what a bill's long-context lines cover.
  requests: Billable calls in the gateway logs.
  estimated_usd: What the logs say these calls cost at catalog prices, USD; NULL when the model is unpriced.
*/
select
    day,
    provider,
    model,
    model_family(model) as model_family,
    coalesce(service_tier, 'standard') as service_tier,
    coalesce(price_tier, 'base') <> 'base' as long_context,
    count(*) as requests,
    sum(input_tokens)::bigint as input_tokens,
    sum(cached_input_tokens)::bigint as cached_input_tokens,
    sum(cache_creation_input_tokens)::bigint as cache_creation_input_tokens,
    sum(output_tokens)::bigint as output_tokens,
    -- Exact: fct_requests' scale, no rounding per group (see fct_spend_daily).
    sum(cost_usd) as estimated_usd
from fct_requests
where day between $start and $end
  and status = 'ok'
  and not gateway_cache_hit
  and pricing_basis <> 'gpu_billing'
group by all
order by all
