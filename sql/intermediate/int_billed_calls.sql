/* Every priced call as price_calls takes it, with what it was billed: the one place a savings model gets the calls it prices again.
materialized: view
columns:
  model_map_key: LiteLLM's own catalog key for the call (tags.model_map_key), or NULL.
  job: tags.job - the batch job the call belongs to, or NULL.
  cache_creation_5m_input_tokens: Prompt-cache writes at the 5-minute TTL (cache_creation_input_tokens minus the 1-hour share).
  context_tokens: The prompt size that picks the context tier: input_tokens, as the call was made (a savings model sets 0 to price the same tokens at the base tier).
  billed_service_tier: The tier whose prices applied (fct_requests.priced_service_tier).
  billed_price_tier: The context tier applied (fct_requests.price_tier).
  billed_pricing_basis: fct_requests.pricing_basis (catalog, override, unpriced, gpu_billing).
  billed_cost_usd: fct_requests.cost_usd, USD.
  billed_charges: fct_requests.charges: what billed_cost_usd is made of.
*/
select
    request_id,
    day,
    ts,
    feature,
    user_id,
    provider,
    model,
    json_extract_string(tags, '$.model_map_key') as model_map_key,
    json_extract_string(tags, '$.job') as job,
    stream,
    pool,
    service_tier,
    workload,
    status,
    gateway_cache_hit,
    input_tokens,
    uncached_input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens - cache_creation_1h_input_tokens as cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens,
    audio_input_tokens,
    output_tokens,
    reasoning_tokens,
    audio_output_tokens,
    web_search_requests,
    input_tokens as context_tokens,
    finish_reason,
    prompt_hash,
    prefix_hashes,
    conversation_id,
    priced_service_tier as billed_service_tier,
    price_tier as billed_price_tier,
    pricing_basis as billed_pricing_basis,
    cost_usd as billed_cost_usd,
    charges as billed_charges
from fct_requests
