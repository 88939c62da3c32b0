-- otel_genai -> the canonical fields: a projection of `gateway_objects` (raw, j = the parsed JSON
-- object or NULL), each field still JSON (numbers) or text, so validate.sql applies to every format.
-- The span is the OpenTelemetry SDK's `span.to_json()`: flat `attributes`, `context`, `start_time`.
-- Both attribute generations are read, the current name first (otel_genai.py lists them). The
-- semantic conventions say gen_ai.usage.input_tokens SHOULD include the cache reads and writes:
-- the canonical rule already. One json_extract parses the attributes once (see canonical.sql).
-- otlp_json.sql reads the same attributes from OTLP's attribute lists: keep the two alike.
with extracted as (
    select
        *,
        json_extract(
            j -> 'attributes',
            [
                '$."gen_ai.response.id"',
                '$."gen_ai.provider.name"',
                '$."gen_ai.system"',
                '$."gen_ai.response.model"',
                '$."gen_ai.request.model"',
                '$."feature"',
                '$."app.feature"',
                '$."user.id"',
                '$."enduser.id"',
                '$."gen_ai.usage.input_tokens"',
                '$."gen_ai.usage.prompt_tokens"',
                '$."gen_ai.usage.cache_read.input_tokens"',
                '$."gen_ai.usage.cache_read_input_tokens"',
                '$."gen_ai.usage.cache_write.input_tokens"',
                '$."gen_ai.usage.cache_creation.input_tokens"',
                '$."gen_ai.usage.cache_creation_input_tokens"',
                '$."gen_ai.usage.output_tokens"',
                '$."gen_ai.usage.completion_tokens"',
                '$."gen_ai.conversation.id"',
                '$."openai.response.service_tier"',
                '$."gen_ai.openai.response.service_tier"',
                '$."openai.request.service_tier"',
                '$."gen_ai.openai.request.service_tier"',
                '$."gen_ai.usage.reasoning.output_tokens"',
                '$."gen_ai.usage.reasoning_tokens"',
                '$."gen_ai.response.finish_reasons"',
                '$."gen_ai.request.max_tokens"',
                '$."gen_ai.request.stream"',
                '$."gen_ai.is_streaming"',
                '$."gen_ai.operation.name"',
                '$."error.type"'
            ]
        ) as v
    from gateway_objects
),

chosen as (
    select
        *,
        -- the tier the call was served at (the response's) before the one it asked for
        coalesce(v[20], v[21], v[22], v[23]) as service_tier_value,
        v[26] as finish_reasons
    from extracted
)

select
    source_file,
    line_no,
    record_ref,
    raw,
    read_error,
    parsed,
    j,
    coalesce(v[1] ->> '$', j -> 'context' ->> 'span_id') as request_id,
    j ->> 'start_time' as ts_text,
    to_json(
        round(epoch_ms(_timestamp(j ->> 'end_time')) - epoch_ms(_timestamp(j ->> 'start_time')))
    ) as duration_json,
    coalesce(v[2] ->> '$', v[3] ->> '$') as provider,
    coalesce(v[4] ->> '$', v[5] ->> '$') as model,
    coalesce(v[6] ->> '$', v[7] ->> '$') as feature,
    coalesce(v[8] ->> '$', v[9] ->> '$') as user_id,
    coalesce(v[10], v[11]) as input_json,
    coalesce(v[12], v[13]) as cached_json,
    coalesce(v[14], v[15], v[16]) as creation_json,
    coalesce(v[17], v[18]) as output_json,
    null::json as cache_hit_json,
    case when upper(j -> 'status' ->> 'status_code') = 'ERROR' then 'error' else 'ok' end as status,
    null::varchar as pool,
    null::varchar as replica_id,
    null::varchar as workload,
    json_object(
        'trace_id', j -> 'context' ->> 'trace_id',
        'span_name', j ->> 'name',
        'operation', v[30] ->> '$',
        'error_type', v[31] ->> '$'
    ) as tags_json,
    service_tier_value ->> '$' as service_tier_text,
    null::json as creation_1h_json,
    null::json as audio_input_json,
    null::json as audio_output_json,
    coalesce(v[24], v[25]) as reasoning_json,
    null::json as web_search_json,
    -- one reason per choice; the first choice's is the call's
    case when json_type(finish_reasons) = 'ARRAY' then finish_reasons ->> 0 else finish_reasons ->> '$' end
        as finish_reason_text,
    v[27] as max_tokens_json,
    coalesce(v[28], v[29]) as stream_json,
    v[19] ->> '$' as conversation_id,
    null::varchar as prompt_hash,
    null::json as prefix_hashes_json,
    null::json as reported_cost_json,
    -- Text fields (or numbers, as ids often are), never a JSON object or array: `->>` would
    -- otherwise turn `{"a": 1}` into the text of a request id or a model.
    case
        when json_type(v[1]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.response.id'
        when json_type(j -> 'context' -> 'span_id') in ('OBJECT', 'ARRAY') then 'bad_type:context.span_id'
        when json_type(j -> 'start_time') in ('OBJECT', 'ARRAY') then 'bad_type:start_time'
        when json_type(j -> 'end_time') in ('OBJECT', 'ARRAY') then 'bad_type:end_time'
        when json_type(v[2]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.provider.name'
        when json_type(v[3]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.system'
        when json_type(v[4]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.response.model'
        when json_type(v[5]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.request.model'
        when json_type(service_tier_value) in ('OBJECT', 'ARRAY') then 'bad_type:service_tier'
        when json_type(finish_reasons) = 'OBJECT' or json_type(finish_reasons -> 0) in ('OBJECT', 'ARRAY')
            then 'bad_type:gen_ai.response.finish_reasons'
        when json_type(v[19]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.conversation.id'
    end as text_type_error
from chosen
