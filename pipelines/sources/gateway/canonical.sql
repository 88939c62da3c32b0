-- canonical -> the canonical fields: a projection of `gateway_objects` (raw, j = the parsed JSON
-- object or NULL), each field still JSON (numbers) or text, so validate.sql applies to every format.
-- One json_extract with a list of paths parses each record once; thirty `->>` would parse it
-- thirty times (7x slower on a million records for seventeen).
with known as (
    -- every field the canonical record names, as a JSON merge patch that deletes them
    select (
        '{"request_id": null, "ts": null, "duration_ms": null, "provider": null, "model": null,'
        || '"feature": null, "user_id": null, "input_tokens": null, "cached_input_tokens": null,'
        || '"cache_creation_input_tokens": null, "output_tokens": null, "gateway_cache_hit": null,'
        || '"status": null, "pool": null, "replica_id": null, "workload": null, "tags": null,'
        || '"service_tier": null, "cache_creation_1h_input_tokens": null, "audio_input_tokens": null,'
        || '"audio_output_tokens": null, "reasoning_tokens": null, "web_search_requests": null,'
        || '"finish_reason": null, "max_tokens": null, "stream": null, "conversation_id": null,'
        || '"prompt_hash": null, "prefix_hashes": null, "reported_cost_usd": null}'
    )::json as patch
),

known_fields as (
    select patch, json_keys(patch) as names from known
),

extracted as (
    select
        gateway_objects.*,
        json_extract(
            j,
            [
                '$.request_id', '$.ts', '$.duration_ms', '$.provider', '$.model', '$.feature', '$.user_id',
                '$.input_tokens', '$.cached_input_tokens', '$.cache_creation_input_tokens', '$.output_tokens',
                '$.gateway_cache_hit', '$.status', '$.pool', '$.replica_id', '$.workload', '$.tags',
                '$.service_tier', '$.cache_creation_1h_input_tokens', '$.audio_input_tokens',
                '$.audio_output_tokens', '$.reasoning_tokens', '$.web_search_requests', '$.finish_reason',
                '$.max_tokens', '$.stream', '$.conversation_id', '$.prompt_hash', '$.prefix_hashes',
                '$.reported_cost_usd'
            ]
        ) as v,
        -- Fields the canonical record does not name are kept in tags, never dropped: a JSON merge
        -- patch with null deletes exactly the known keys (RFC 7386).
        -- (only when it has more keys than known fields found: the lambda is the costly part)
        case
            when
                len(json_keys(j)) > list_count(v)
                and len(list_filter(json_keys(j), lambda key: not list_contains(known_fields.names, key))) > 0
                then json_merge_patch(j, known_fields.patch)
        end as unknown_fields
    from gateway_objects, known_fields
)

select
    source_file,
    line_no,
    record_ref,
    raw,
    read_error,
    parsed,
    j,
    v[1] ->> '$' as request_id,
    v[2] ->> '$' as ts_text,
    v[3] as duration_json,
    v[4] ->> '$' as provider,
    v[5] ->> '$' as model,
    v[6] ->> '$' as feature,
    v[7] ->> '$' as user_id,
    v[8] as input_json,  -- inclusive of cache reads and writes
    v[9] as cached_json,
    v[10] as creation_json,
    v[11] as output_json,
    v[12] as cache_hit_json,
    v[13] ->> '$' as status,
    v[14] ->> '$' as pool,
    v[15] ->> '$' as replica_id,
    v[16] ->> '$' as workload,
    case
        when unknown_fields is null then v[17]
        when v[17] is null or json_type(v[17]) = 'NULL' then unknown_fields
        when json_type(v[17]) = 'OBJECT' then json_merge_patch(unknown_fields, v[17])
        else json_merge_patch(unknown_fields, json_object('tags', v[17]))
    end as tags_json,
    v[18] ->> '$' as service_tier_text,
    v[19] as creation_1h_json,
    v[20] as audio_input_json,
    v[21] as audio_output_json,
    v[22] as reasoning_json,
    v[23] as web_search_json,
    v[24] ->> '$' as finish_reason_text,
    v[25] as max_tokens_json,
    v[26] as stream_json,
    v[27] ->> '$' as conversation_id,
    v[28] ->> '$' as prompt_hash,
    v[29] as prefix_hashes_json,
    v[30] as reported_cost_json,
    -- Text fields (or numbers, as ids often are), never a JSON object or array: `->>` would
    -- otherwise turn `{"a": 1}` into the text of a request id or a model. json_extract writes
    -- its values minified, so the first character is the type (cheaper than json_type).
    case
        when left(v[1]::varchar, 1) in ('{', '[') then 'bad_type:request_id'
        when left(v[2]::varchar, 1) in ('{', '[') then 'bad_type:ts'
        when left(v[4]::varchar, 1) in ('{', '[') then 'bad_type:provider'
        when left(v[5]::varchar, 1) in ('{', '[') then 'bad_type:model'
        when left(v[6]::varchar, 1) in ('{', '[') then 'bad_type:feature'
        when left(v[7]::varchar, 1) in ('{', '[') then 'bad_type:user_id'
        when left(v[13]::varchar, 1) in ('{', '[') then 'bad_type:status'
        when left(v[14]::varchar, 1) in ('{', '[') then 'bad_type:pool'
        when left(v[15]::varchar, 1) in ('{', '[') then 'bad_type:replica_id'
        when left(v[16]::varchar, 1) in ('{', '[') then 'bad_type:workload'
        when left(v[18]::varchar, 1) in ('{', '[') then 'bad_type:service_tier'
        when left(v[24]::varchar, 1) in ('{', '[') then 'bad_type:finish_reason'
        when left(v[27]::varchar, 1) in ('{', '[') then 'bad_type:conversation_id'
        when left(v[28]::varchar, 1) in ('{', '[') then 'bad_type:prompt_hash'
    end as text_type_error
from extracted
