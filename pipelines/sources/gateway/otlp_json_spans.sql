-- otlp_json's records: one per span of every OTLP request line of the file (`otlp_lines`, the
-- file's lines as records.py reads them), `raw` the span's JSON. A line that is not an OTLP trace
-- request, and a resource or scope entry that is not what OTLP writes, is one record with its
-- `read_error`, so it is quarantined and counted like any bad record. Missing lists are empty,
-- as the protobuf JSON mapping leaves out an empty repeated field. `line_no` numbers the records
-- in file order; `record_ref` is the line and the span's path in it, as jq writes it.
-- json_transform types a whole request in one parse, and the lists unnest without re-reading
-- the text (a request of 512 spans is one line of half a megabyte).
with requests as (
    -- json_valid and json_transform: the only two parses of a request line
    select
        *,
        case
            when read_error is null and json_valid(raw)
                then json_transform(raw, '{"resourceSpans": [{"scopeSpans": [{"spans": ["JSON"]}]}]}')['resourceSpans']
        end as resource_spans
    from otlp_lines
),

resources as (
    select
        source_file,
        line_no,
        unnest(resource_spans) as resource_entry,
        generate_subscripts(resource_spans, 1) - 1 as resource_index
    from requests
    where resource_spans is not null
),

scopes as (
    select
        source_file,
        line_no,
        resource_index,
        unnest(resource_entry['scopeSpans']) as scope_entry,
        generate_subscripts(resource_entry['scopeSpans'], 1) - 1 as scope_index
    from resources
),

spans as (
    select
        source_file,
        line_no,
        resource_index,
        scope_index,
        unnest(scope_entry['spans']) as span,
        generate_subscripts(scope_entry['spans'], 1) - 1 as span_index
    from scopes
),

-- An entry whose list did not type is either without it (an empty list) or not what OTLP
-- writes: only those few entries are looked up again in their line's text.
resources_without_scopes as (
    select
        resources.source_file,
        resources.line_no,
        resources.resource_index,
        otlp_lines.raw::json -> 'resourceSpans' -> resources.resource_index as entry
    from resources
    inner join otlp_lines
        on resources.source_file = otlp_lines.source_file and resources.line_no = otlp_lines.line_no
    where resources.resource_entry['scopeSpans'] is null
),

scopes_without_spans as (
    select
        scopes.source_file,
        scopes.line_no,
        scopes.resource_index,
        scopes.scope_index,
        otlp_lines.raw::json -> 'resourceSpans' -> scopes.resource_index -> 'scopeSpans' -> scopes.scope_index
            as entry
    from scopes
    inner join otlp_lines on scopes.source_file = otlp_lines.source_file and scopes.line_no = otlp_lines.line_no
    where scopes.scope_entry['spans'] is null
),

records as (
    -- Lines that are no request: not JSON or not an object (validate.sql names those), or an
    -- object without the `resourceSpans` list (another signal's export, or not OTLP at all).
    select
        source_file,
        line_no,
        -1 as resource_index,
        -1 as scope_index,
        -1 as span_index,
        'line ' || line_no as record_ref,
        raw,
        case
            when read_error is not null then read_error
            when not json_valid(raw) or json_type(raw::json) <> 'OBJECT' then null
            when (raw::json -> 'resourceSpans') is null then 'not_otlp_traces:no resourceSpans'
            else 'bad_otlp:resourceSpans is not a list'
        end as read_error
    from requests
    where resource_spans is null
    union all
    select
        source_file,
        line_no,
        resource_index,
        -1,
        -1,
        'line ' || line_no || ' resourceSpans[' || resource_index || ']',
        entry::varchar,
        case
            when json_type(entry) <> 'OBJECT' then 'bad_otlp:not an object'
            else 'bad_otlp:scopeSpans is not a list'
        end
    from resources_without_scopes
    where json_type(entry) <> 'OBJECT' or json_type(entry -> 'scopeSpans') not in ('ARRAY', 'NULL')
    union all
    select
        source_file,
        line_no,
        resource_index,
        scope_index,
        -1,
        'line ' || line_no || ' resourceSpans[' || resource_index || '].scopeSpans[' || scope_index || ']',
        entry::varchar,
        case when json_type(entry) <> 'OBJECT' then 'bad_otlp:not an object' else 'bad_otlp:spans is not a list' end
    from scopes_without_spans
    where json_type(entry) <> 'OBJECT' or json_type(entry -> 'spans') not in ('ARRAY', 'NULL')
    union all
    select
        source_file,
        line_no,
        resource_index,
        scope_index,
        span_index,
        'line ' || line_no || ' resourceSpans[' || resource_index || '].scopeSpans[' || scope_index
        || '].spans[' || span_index || ']',
        span::varchar,
        null
    from spans
)

select
    source_file,
    row_number() over (order by line_no, resource_index, scope_index, span_index) as line_no,
    record_ref,
    raw,
    read_error
from records
order by line_no
