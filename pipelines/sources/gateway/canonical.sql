-- canonical -> the canonical fields: a projection of `gateway_objects` (raw, j = the parsed JSON
-- object or NULL), each field still JSON (numbers) or text, so validate.sql applies to every format.
-- One json_extract with a list of paths parses each record once; seventeen `->>` would parse it
-- seventeen times (7x slower on a million records).
with extracted as (
    select
        *,
        json_extract(
            j,
            [
                '$.request_id', '$.ts', '$.duration_ms', '$.provider', '$.model', '$.feature', '$.user_id',
                '$.input_tokens', '$.cached_input_tokens', '$.cache_creation_input_tokens', '$.output_tokens',
                '$.gateway_cache_hit', '$.status', '$.pool', '$.replica_id', '$.workload', '$.tags'
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
    v[17] as tags_json,
    -- Text fields (or numbers, as ids often are), never a JSON object or array: `->>` would
    -- otherwise turn `{"a": 1}` into the text of a request id or a model.
    case
        when json_type(v[1]) in ('OBJECT', 'ARRAY') then 'bad_type:request_id'
        when json_type(v[2]) in ('OBJECT', 'ARRAY') then 'bad_type:ts'
        when json_type(v[4]) in ('OBJECT', 'ARRAY') then 'bad_type:provider'
        when json_type(v[5]) in ('OBJECT', 'ARRAY') then 'bad_type:model'
        when json_type(v[6]) in ('OBJECT', 'ARRAY') then 'bad_type:feature'
        when json_type(v[7]) in ('OBJECT', 'ARRAY') then 'bad_type:user_id'
        when json_type(v[13]) in ('OBJECT', 'ARRAY') then 'bad_type:status'
        when json_type(v[14]) in ('OBJECT', 'ARRAY') then 'bad_type:pool'
        when json_type(v[15]) in ('OBJECT', 'ARRAY') then 'bad_type:replica_id'
        when json_type(v[16]) in ('OBJECT', 'ARRAY') then 'bad_type:workload'
    end as text_type_error
from extracted
