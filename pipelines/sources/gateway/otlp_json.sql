-- otlp_json -> the canonical fields: a projection of `gateway_objects` (raw, j = one OTLP span
-- object or NULL), each field still JSON (numbers) or text, so validate.sql applies to every format.
-- The span's attribute list (`[{"key": k, "value": {"intValue": "3000"}}]`) becomes one map of
-- plain JSON values first (the values the SDK's console exporter writes), and `v` lists the same
-- attributes in the same order as otel_genai.sql's json_extract, so the rest of the two
-- projections is alike (keep it so; the tests read the same spans both ways). OTLP writes 64-bit
-- integers as decimal strings: they become JSON numbers.
with listed as (
    select
        *,
        -- one parse types the whole list; a value is one of these members (the others NULL)
        json_transform(
            j -> 'attributes',
            '[{"key": "VARCHAR", "value": {"stringValue": "VARCHAR", "intValue": "VARCHAR", '
            || '"doubleValue": "JSON", "boolValue": "JSON", "arrayValue": "JSON"}}]'
        ) as attribute_list
    from gateway_objects
),

plain as (
    select
        *,
        list_transform(
            attribute_list,
            lambda a: {
                'key': a['key'],
                'value': case
                    when a['value']['stringValue'] is not null then to_json(a['value']['stringValue'])
                    -- a decimal string, as OTLP writes 64-bit integers; anything else stays text
                    when a['value']['intValue'] is not null
                        then coalesce(
                            to_json(try_cast(a['value']['intValue'] as hugeint)), to_json(a['value']['intValue'])
                        )
                    when a['value']['arrayValue'] is not null
                        then to_json(
                            list_transform(
                                coalesce(json_extract(a['value']['arrayValue'], '$.values[*]'), []),
                                lambda item: coalesce(
                                    json_extract(item, '$.stringValue'),
                                    _num(json_extract(item, '$.intValue')),
                                    json_extract(item, '$.doubleValue'),
                                    json_extract(item, '$.boolValue'),
                                    item
                                )
                            )
                        )
                    else coalesce(a['value']['doubleValue'], a['value']['boolValue'])
                end
            }
        ) as attribute_pairs
    from listed
),

attributed as (
    select
        *,
        -- OTLP requires unique keys; a list that repeats one (or lacks one) is quarantined below
        len(list_distinct(list_transform(attribute_pairs, lambda pair: pair['key']))) = len(attribute_pairs)
            as attribute_keys_ok
    from plain
),

flattened as (
    select
        *,
        case when attribute_keys_ok then map_from_entries(attribute_pairs) end as attributes,
        -- nanoseconds since the epoch -> the microsecond (rounded half up), as RFC 3339 text
        coalesce(
            strftime(
                try(make_timestamp(((try_cast(j ->> 'startTimeUnixNano' as hugeint) + 500) // 1000)::bigint)),
                '%Y-%m-%dT%H:%M:%S.%fZ'
            ),
            j ->> 'startTimeUnixNano'
        ) as start_text,
        strftime(
            try(make_timestamp(((try_cast(j ->> 'endTimeUnixNano' as hugeint) + 500) // 1000)::bigint)),
            '%Y-%m-%dT%H:%M:%S.%fZ'
        ) as end_text
    from attributed
),

extracted as (
    select
        *,
        [
            attributes['gen_ai.response.id'],
            attributes['gen_ai.provider.name'],
            attributes['gen_ai.system'],
            attributes['gen_ai.response.model'],
            attributes['gen_ai.request.model'],
            attributes['feature'],
            attributes['app.feature'],
            attributes['user.id'],
            attributes['enduser.id'],
            attributes['gen_ai.usage.input_tokens'],
            attributes['gen_ai.usage.prompt_tokens'],
            attributes['gen_ai.usage.cache_read.input_tokens'],
            attributes['gen_ai.usage.cache_read_input_tokens'],
            attributes['gen_ai.usage.cache_write.input_tokens'],
            attributes['gen_ai.usage.cache_creation.input_tokens'],
            attributes['gen_ai.usage.cache_creation_input_tokens'],
            attributes['gen_ai.usage.output_tokens'],
            attributes['gen_ai.usage.completion_tokens'],
            attributes['gen_ai.conversation.id'],
            attributes['openai.response.service_tier'],
            attributes['gen_ai.openai.response.service_tier'],
            attributes['openai.request.service_tier'],
            attributes['gen_ai.openai.request.service_tier'],
            attributes['gen_ai.usage.reasoning.output_tokens'],
            attributes['gen_ai.usage.reasoning_tokens'],
            attributes['gen_ai.response.finish_reasons'],
            attributes['gen_ai.request.max_tokens'],
            attributes['gen_ai.request.stream'],
            attributes['gen_ai.is_streaming'],
            attributes['gen_ai.operation.name'],
            attributes['error.type']
        ] as v
    from flattened
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
    coalesce(v[1] ->> '$', j ->> 'spanId') as request_id,
    start_text as ts_text,
    to_json(round(epoch_ms(_timestamp(end_text)) - epoch_ms(_timestamp(start_text)))) as duration_json,
    coalesce(v[2] ->> '$', v[3] ->> '$') as provider,
    coalesce(v[4] ->> '$', v[5] ->> '$') as model,
    coalesce(v[6] ->> '$', v[7] ->> '$') as feature,
    coalesce(v[8] ->> '$', v[9] ->> '$') as user_id,
    coalesce(v[10], v[11]) as input_json,
    coalesce(v[12], v[13]) as cached_json,
    coalesce(v[14], v[15], v[16]) as creation_json,
    coalesce(v[17], v[18]) as output_json,
    null::json as cache_hit_json,
    -- STATUS_CODE_ERROR is 2; the plain protobuf mapping writes the enum's name
    case when j -> 'status' ->> 'code' in ('2', 'STATUS_CODE_ERROR') then 'error' else 'ok' end as status,
    null::varchar as pool,
    null::varchar as replica_id,
    null::varchar as workload,
    json_object(
        'trace_id', j ->> 'traceId',
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
        when (j -> 'attributes') is not null and json_type(j -> 'attributes') not in ('ARRAY', 'NULL')
            then 'bad_type:attributes'
        when not attribute_keys_ok then 'bad_otlp:attribute keys missing or repeated'
        when json_type(v[1]) in ('OBJECT', 'ARRAY') then 'bad_type:gen_ai.response.id'
        when json_type(j -> 'spanId') in ('OBJECT', 'ARRAY') then 'bad_type:spanId'
        when json_type(j -> 'startTimeUnixNano') in ('OBJECT', 'ARRAY') then 'bad_type:startTimeUnixNano'
        when json_type(j -> 'endTimeUnixNano') in ('OBJECT', 'ARRAY') then 'bad_type:endTimeUnixNano'
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
