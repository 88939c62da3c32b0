/* Gateway requests from every log format, defaults applied; one row per request (deduplicated at ingest).
materialized: view
columns:
  request_id: Unique id of the LLM call; repeated deliveries were dropped at ingest.
  ts: Request start, UTC.
  day: UTC day of ts; the lake partition the request lives in.
  provider: Who served the call (openai, anthropic, self_hosted, ...); inferred from pool or model name when the log omits it.
  model: Model name exactly as logged (dated snapshots kept).
  feature: Product feature that made the call; 'unattributed' when the log has none.
  user_id: End user; 'anonymous' when the log has none.
  input_tokens: All prompt tokens, cache reads and cache writes included.
  cached_input_tokens: Prompt tokens read from the provider's prompt cache (part of input_tokens).
  cache_creation_input_tokens: Prompt tokens written to the provider's prompt cache (part of input_tokens).
  uncached_input_tokens: input_tokens minus cache reads and cache writes.
  output_tokens: Generated tokens.
  gateway_cache_hit: Answered from the gateway's response cache; no provider call was made.
  status: ok or error.
  workload: interactive or batch ('interactive' when the log has none).
  source_format: Log format the record came from (canonical, litellm_spend_logs).
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
