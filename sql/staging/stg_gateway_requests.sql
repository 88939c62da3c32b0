/* Gateway requests from every log format, defaults applied; one row per request (deduplicated at ingest).
materialized: view
grain: request_id
columns:
  service_tier: The price tier the provider applied (standard, batch, flex, priority); standard when the log says nothing.
  cache_creation_5m_input_tokens: Prompt-cache writes at the 5-minute TTL (cache_creation_input_tokens minus the 1-hour share).
  user_id: End user as logged ('anonymous' when the log has none); never pseudonymised here (a view takes no key), fct_requests and the marts after it are.
*/
select
    request_id,
    ts,
    day,
    duration_ms,
    coalesce(
        lower(nullif(trim(provider), '')),
        case
            when pool is not null then 'self_hosted'
            when regexp_matches(lower(model), '^(gpt-|o[1-9]|chatgpt|text-embedding|davinci|babbage)') then 'openai'
            when starts_with(lower(model), 'claude') then 'anthropic'
            when starts_with(lower(model), 'gemini') then 'google'
            else 'unknown'
        end
    ) as provider,
    trim(model) as model,
    coalesce(nullif(trim(feature), ''), 'unattributed') as feature,
    coalesce(nullif(trim(user_id), ''), 'anonymous') as user_id,
    input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    input_tokens - cached_input_tokens - cache_creation_input_tokens as uncached_input_tokens,
    output_tokens,
    gateway_cache_hit,
    coalesce(status, 'ok') as status,
    nullif(trim(pool), '') as pool,
    nullif(trim(replica_id), '') as replica_id,
    coalesce(workload, 'interactive') as workload,
    coalesce(service_tier, 'standard') as service_tier,
    cache_creation_input_tokens - cache_creation_1h_input_tokens as cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens,
    audio_input_tokens,
    audio_output_tokens,
    reasoning_tokens,
    web_search_requests,
    finish_reason,
    max_tokens,
    stream,
    conversation_id,
    prompt_hash,
    prefix_hashes,
    reported_cost_usd,
    tags,
    source_format
from gateway_requests
