-- litellm_spend_logs -> the canonical fields: a projection of `gateway_objects` (raw, j = the
-- parsed JSON object or NULL), each field still JSON (numbers) or text, so validate.sql applies.
-- LiteLLM reports usage the OpenAI way for every provider: `prompt_tokens` includes cached
-- tokens, which `metadata.usage_object` breaks out as `cache_read_input_tokens` (Anthropic via
-- LiteLLM) or `prompt_tokens_details.cached_tokens` (OpenAI), plus `cache_creation_input_tokens`.
-- CSV exports carry every cell as text, so numbers arrive as strings of digits (`_num`).
select
    source_file,
    line_no,
    record_ref,
    raw,
    read_error,
    parsed,
    j,
    j ->> 'request_id' as request_id,
    j ->> 'startTime' as ts_text,
    coalesce(
        _num(j -> 'request_duration_ms'),
        to_json(round(epoch_ms(_timestamp(j ->> 'endTime')) - epoch_ms(_timestamp(j ->> 'startTime'))))
    ) as duration_json,
    -- The provider is `custom_llm_provider` (LiteLLM fills it on every call); without it, the
    -- model's first `/` segment. The model is the rest, kept whole however many `/` it has:
    -- LiteLLM logs `azure/eu/gpt-4o-2024-08-06` as provider `azure`, model `eu/gpt-4o-2024-08-06`
    -- and `together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo` as `together_ai`,
    -- `meta-llama/Llama-3.3-70B-Instruct-Turbo`, so `provider/model` is the price catalog's key.
    -- A model that still starts with its own provider (LiteLLM's cache hits: `openai/gpt-4o-mini`)
    -- loses that one prefix.
    coalesce(
        nullif(j ->> 'custom_llm_provider', ''),
        case when contains(j ->> 'model', '/') then split_part(j ->> 'model', '/', 1) end
    ) as provider,
    case
        when nullif(j ->> 'custom_llm_provider', '') is not null
            then
                case
                    when starts_with(j ->> 'model', (j ->> 'custom_llm_provider') || '/')
                        then substr(j ->> 'model', length(j ->> 'custom_llm_provider') + 2)
                    else j ->> 'model'
                end
        when contains(j ->> 'model', '/') then substr(j ->> 'model', strpos(j ->> 'model', '/') + 1)
        else j ->> 'model'
    end as model,
    coalesce(
        nullif(_meta(j) -> 'spend_logs_metadata' ->> 'feature', ''),
        nullif(regexp_extract(j ->> 'request_tags', '"feature:([^"]+)"', 1), '')
    ) as feature,
    coalesce(nullif(j ->> 'end_user', ''), nullif(j ->> 'user', '')) as user_id,
    _num(j -> 'prompt_tokens') as input_json,
    coalesce(
        _num(_meta(j) -> 'usage_object' -> 'cache_read_input_tokens'),
        _num(_meta(j) -> 'usage_object' -> 'prompt_tokens_details' -> 'cached_tokens')
    ) as cached_json,
    coalesce(
        _num(_meta(j) -> 'usage_object' -> 'cache_creation_input_tokens'),
        _num(_meta(j) -> 'usage_object' -> 'prompt_tokens_details' -> 'cache_creation_tokens')
    ) as creation_json,
    _num(j -> 'completion_tokens') as output_json,
    -- LiteLLM writes `str(cache_hit)`: "None" when the call did not touch its cache (most calls),
    -- "True"/"False" when it did; exports may also carry JSON booleans or null. Anything else
    -- stays as it is and is quarantined as a bad type.
    case lower(trim(coalesce(j ->> 'cache_hit', '')))
        when 'true' then 'true'::json
        when 'false' then 'false'::json
        when 'none' then 'false'::json
        when '' then null
        else j -> 'cache_hit'
    end as cache_hit_json,
    case lower(coalesce(j ->> 'status', 'success'))
        when 'success' then 'ok'
        when 'failure' then 'error'
        else j ->> 'status'
    end as status,
    null::varchar as pool,
    null::varchar as replica_id,
    null::varchar as workload,
    json_object(
        'team_id', nullif(j ->> 'team_id', ''),
        'request_tags', j ->> 'request_tags',
        'api_key_alias', _meta(j) ->> 'user_api_key_alias',
        -- the catalog entry LiteLLM priced the call with: `model_map_value.key` is the entry's full
        -- key (`azure/gpt-4o-2024-08-06`); `model_map_key` alone can be the bare model name
        'model_map_key', coalesce(
            _meta(j) -> 'model_map_information' -> 'model_map_value' ->> 'key',
            _meta(j) -> 'model_map_information' ->> 'model_map_key'
        )
    ) as tags_json,
    -- The usage details LiteLLM logs in `usage_object` (the provider's usage, OpenAI-shaped) and
    -- the request body it keeps (`proxy_server_request`, when logging it is on).
    coalesce(
        _meta(j) -> 'usage_object' ->> 'service_tier',
        _meta(j) -> 'cost_breakdown' ->> 'service_tier'
    ) as service_tier_text,
    _num(_meta(j) -> 'usage_object' -> 'prompt_tokens_details' -> 'cache_creation_token_details'
        -> 'ephemeral_1h_input_tokens') as creation_1h_json,
    _num(_meta(j) -> 'usage_object' -> 'prompt_tokens_details' -> 'audio_tokens') as audio_input_json,
    _num(_meta(j) -> 'usage_object' -> 'completion_tokens_details' -> 'audio_tokens') as audio_output_json,
    _num(_meta(j) -> 'usage_object' -> 'completion_tokens_details' -> 'reasoning_tokens') as reasoning_json,
    _num(_meta(j) -> 'usage_object' -> 'server_tool_use' -> 'web_search_requests') as web_search_json,
    _parsed(j -> 'response') -> 'choices' -> 0 ->> 'finish_reason' as finish_reason_text,
    _num(coalesce(
        _parsed(j -> 'proxy_server_request') -> 'max_completion_tokens',
        _parsed(j -> 'proxy_server_request') -> 'max_tokens'
    )) as max_tokens_json,
    _parsed(j -> 'proxy_server_request') -> 'stream' as stream_json,
    nullif(j ->> 'session_id', '') as conversation_id,
    null::varchar as prompt_hash,
    null::json as prefix_hashes_json,
    -- what LiteLLM charged, as its text (a float's shortest repr): kept exact beside ours
    j -> 'spend' as reported_cost_json,
    -- Text fields (or numbers, as ids often are), never a JSON object or array: `->>` would
    -- otherwise turn `{"a": 1}` into the text of a request id or a model.
    case
        when json_type(j -> 'request_id') in ('OBJECT', 'ARRAY') then 'bad_type:request_id'
        when json_type(j -> 'startTime') in ('OBJECT', 'ARRAY') then 'bad_type:startTime'
        when json_type(j -> 'endTime') in ('OBJECT', 'ARRAY') then 'bad_type:endTime'
        when json_type(j -> 'model') in ('OBJECT', 'ARRAY') then 'bad_type:model'
        when json_type(j -> 'custom_llm_provider') in ('OBJECT', 'ARRAY') then 'bad_type:custom_llm_provider'
        when json_type(j -> 'end_user') in ('OBJECT', 'ARRAY') then 'bad_type:end_user'
        when json_type(j -> 'user') in ('OBJECT', 'ARRAY') then 'bad_type:user'
        when json_type(j -> 'status') in ('OBJECT', 'ARRAY') then 'bad_type:status'
    end as text_type_error
from gateway_objects
