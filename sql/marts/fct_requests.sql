/* Priced LLM calls; one row per request. A view over the per-day Parquet partitions in the lake.
materialized: daily_parquet
grain: request_id
lookback: 0
columns:
  price_key: The catalog key (or override) that priced the call, found once per distinct provider, model and tags.model_map_key.
  price_tier: The context tier applied, chosen by the call's whole prompt (input_tokens) as LiteLLM does - base, or above_<N>k for the catalog's _above_<N>k_tokens prices.
  off_peak: Whether the call was billed at the entry's off_peak_pricing rates - its ts (UTC) falls in one of the entry's windows; never for batch calls, as LiteLLM.
  priced_service_tier: The service tier whose prices applied; standard for a flex or priority call on a model the catalog prices no flex or priority rates for.
  cost_usd: What the provider bills for the call, USD - text, cached, 5-minute and 1-hour cache-write, audio and reasoning tokens at the tier's rates, plus per-call and web-search fees; 0 for gateway cache hits and errors, NULL when unpriced or self-hosted.
  list_cost_usd: The same call with no prompt caching (every prompt token at the input rate), USD.
  charges: What cost_usd is made of, one entry per token kind or fee billed - kind (input = uncached text input, cache_read, cache_write_5m, cache_write_1h, audio_input, output = text output, reasoning, audio_output, request, web_search, web_search_call), quantity (tokens, calls or searches) and unit_usd (USD per unit); cost_usd = sum(quantity x unit_usd). Empty for gateway cache hits and errors, NULL when unpriced or self-hosted.
  output_cost_usd: The output's share of cost_usd (text, reasoning and audio output tokens), USD.
  reported_cost_agrees: Whether cost_usd is within max($0.000001, 1 % of it) of the gateway's reported_cost_usd; NULL when either is missing.
*/
-- `requests` is read by price_calls, a table macro the linter cannot see into (ST03).
with requests as (  -- noqa: ST03
    -- With privacy.pseudonymise_user_id, user ids become `u_` + 24 hex digits of their keyed hash
    -- here, the one step every mart's user_id comes through. The key's pads are parameters, so
    -- neither this file, the warehouse nor the Parquet partition ever holds the key. 'anonymous'
    -- (no user logged) stays readable: it names no one.
    select
        * replace (
            pseudonymised(user_id, $pseudonymise_user_id, $user_key_inner_pad, $user_key_outer_pad) as user_id
        ),
        json_extract_string(tags, '$.model_map_key') as model_map_key,
        input_tokens as context_tokens
    from stg_gateway_requests
    where day between $start and $end
)

-- Priced by sql/macros/price_calls.sql, the one pricing code: savings price the same calls there again.
select
    request_id,
    ts,
    day,
    feature,
    user_id,
    provider,
    model,
    price_key,
    pricing_basis,
    pricing_basis <> 'unpriced' as priced,
    service_tier,
    priced_service_tier,
    off_peak,
    price_tier,
    pool,
    replica_id,
    workload,
    status,
    duration_ms,
    input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    cache_creation_1h_input_tokens,
    uncached_input_tokens,
    audio_input_tokens,
    output_tokens,
    reasoning_tokens,
    audio_output_tokens,
    web_search_requests,
    gateway_cache_hit,
    cost_usd,
    list_cost_usd,
    prompt_cache_savings_usd,
    gateway_cache_avoided_usd,
    output_cost_usd,
    charges,
    reported_cost_usd,
    abs(cost_usd - reported_cost_usd) <= greatest(0.000001, 0.01 * abs(cost_usd)) as reported_cost_agrees,
    finish_reason,
    max_tokens,
    stream,
    conversation_id,
    prompt_hash,
    prefix_hashes,
    tags,
    source_format
from price_calls(requests, $start, $end)
order by ts, request_id
