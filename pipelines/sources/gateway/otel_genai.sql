-- otel_genai -> the canonical fields: a projection of `gateway_objects` (raw, j = the parsed JSON
-- object or NULL), each field still JSON (numbers) or text, so validate.sql applies to every format.
-- The semantic conventions say gen_ai.usage.input_tokens SHOULD include
-- gen_ai.usage.cache_read.input_tokens and gen_ai.usage.cache_creation.input_tokens: the
-- canonical rule already. One json_extract parses the attributes once (see canonical.sql).
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
                '$."gen_ai.usage.cache_read.input_tokens"',
                '$."gen_ai.usage.cache_creation.input_tokens"',
                '$."gen_ai.usage.output_tokens"',
                '$."gen_ai.conversation.id"'
            ]
        ) as v
    from gateway_objects
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
    v[10] as input_json,
    v[11] as cached_json,
    v[12] as creation_json,
    v[13] as output_json,
    null::json as cache_hit_json,
    case when upper(j -> 'status' ->> 'status_code') = 'ERROR' then 'error' else 'ok' end as status,
    null::varchar as pool,
    null::varchar as replica_id,
    null::varchar as workload,
    json_object(
        'trace_id', j -> 'context' ->> 'trace_id',
        'span_name', j ->> 'name',
        'conversation_id', v[14] ->> '$'
    ) as tags_json,
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
    end as text_type_error
from extracted
