/* Gateway requests from every log format, defaults applied; one row per request (deduplicated at ingest).
materialized: view
grain: request_id
columns:
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
    tags,
    source_format
from gateway_requests
