/* Canonical records as rows of LiteLLM's LiteLLM_SpendLogs table, exported as psql's `\copy ... csv`
   writes them (fixtures/gateway/README.md): the scalar columns as text, in the table's column order,
   plus the values the metadata JSON needs (bench/convert.py renders it). One row per request id
   (the table's primary key: a re-delivered line is one row), ordered by startTime as the export is.
   LiteLLM's spend is priced here at the catalog's base per-token prices; timestamps are
   timestamp(3) without zone (UTC), printed without trailing zeros as PostgreSQL prints them. */
with records as (
    select * from canonical_records($files)
    qualify row_number() over (partition by request_id order by ts) = 1
),

priced as (
    select
        records.*,
        coalesce(qualified.price_key, bare.price_key) as price_key,
        (input_tokens - cached_input_tokens)
        * coalesce(qualified.input_usd_per_token, bare.input_usd_per_token, 0) as uncached_input_usd,
        cached_input_tokens
        * coalesce(qualified.cache_read_usd_per_token, bare.cache_read_usd_per_token, 0) as cache_read_usd,
        output_tokens * coalesce(qualified.output_usd_per_token, bare.output_usd_per_token, 0) as output_usd
    from records
    left join catalog_prices($catalog) as qualified on records.provider || '/' || records.model = qualified.price_key
    left join catalog_prices($catalog) as bare on records.model = bare.price_key
)

select
    request_id,
    'completion' as call_type,
    sha256('sk-' || coalesce(team_name, 'none')) as api_key,
    case when gateway_cache_hit then 0 else uncached_input_usd + cache_read_usd + output_usd end as spend,
    input_tokens + output_tokens as total_tokens,
    input_tokens as prompt_tokens,
    output_tokens as completion_tokens,
    pg_timestamp(ts) as starttime,
    pg_timestamp(end_ts) as endtime,
    duration_ms as request_duration_ms,
    pg_timestamp(ts + to_milliseconds(least(duration_ms, 400))) as completionstarttime,
    -- LiteLLM's cache hits log the model with its provider prefix
    case when gateway_cache_hit then provider || '/' || model else model end as model,
    '' as model_id,
    '' as model_group,
    provider as custom_llm_provider,
    case provider
        when 'openai' then 'https://api.openai.com/v1/'
        when 'anthropic' then 'https://api.anthropic.com/v1/messages'
        when 'azure' then 'https://costwatch-eu.openai.azure.com/'
        else 'http://vllm.internal:8000/v1'
    end as api_base,
    'svc-' || coalesce(team_name, 'none') as user,
    case when gateway_cache_hit then 'True' else 'None' end as cache_hit,
    sha256('cache:' || request_id) as cache_key,
    '["feature:' || coalesce(feature, 'unattributed') || '"]' as request_tags,
    'team-' || coalesce(team_name, 'none') as team_id,
    '' as organization_id,
    coalesce(user_id, '') as end_user,
    '' as requester_ip_address,
    '{}' as messages,
    '{}' as response,
    uuid_text('session:' || request_id) as session_id,
    case when status = 'error' then 'failure' else 'success' end as status,
    '' as mcp_namespaced_tool_name,
    '' as billing_agent_id,
    '' as agent_id,
    '{}' as proxy_server_request,
    uuid_text('call:' || request_id) as litellm_call_id,
    pg_timestamp(end_ts) as created_at,
    pg_timestamp(end_ts) as updated_at,
    -- for the metadata JSON
    provider,
    feature,
    team_name,
    service_tier,
    price_key,
    cached_input_tokens,
    cache_creation_input_tokens,
    cache_creation_1h_input_tokens,
    audio_input_tokens,
    audio_output_tokens,
    reasoning_tokens,
    case when gateway_cache_hit then 0 else uncached_input_usd + cache_read_usd end as input_usd,
    case when gateway_cache_hit then 0 else cache_read_usd end as cache_read_usd,
    case when gateway_cache_hit then 0 else output_usd end as output_usd
from priced
order by ts, request_id
