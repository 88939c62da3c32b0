-- The canonical rules every gateway format goes through, whatever it was read from. Three
-- queries, run in order over one file's records (`gateway_raw`, see records.py):
-- objects -> the format's projection (<format>.sql, over `gateway_objects`) -> validated -> days.

-- name: objects
-- Each record parsed once; `j` is the record when it is a JSON object, else NULL.
with parsed_records as (
    select
        *,
        case when read_error is null and json_valid(raw) then raw::json end as parsed
    from gateway_raw
)

select
    *,
    case when json_type(parsed) = 'OBJECT' then parsed end as j
from parsed_records;

-- name: validated
-- One row per record of `gateway_fields` (the format's projection) with canonical typed columns,
-- `day` (UTC) where the timestamp is known, and `reason` (NULL for a good record).
with typed as (
    select
        *,
        _timestamp(ts_text) as ts,
        _tokens(input_json) as input_tokens,
        _tokens(cached_json) as cached_input_tokens,
        _tokens(creation_json) as cache_creation_input_tokens,
        _tokens(output_json) as output_tokens,
        case
            when duration_json is null or json_type(duration_json) = 'NULL' then null
            else _tokens(duration_json)
        end as duration_ms,
        case
            when cache_hit_json is null or json_type(cache_hit_json) = 'NULL' then false
            when json_type(cache_hit_json) = 'BOOLEAN' then cache_hit_json::varchar = 'true'
        end as gateway_cache_hit
    from gateway_fields
)

select
    source_file,
    line_no,
    record_ref,
    raw,
    request_id,
    ts,
    (ts at time zone 'UTC')::date as day,
    duration_ms,
    provider,
    model,
    feature,
    user_id,
    input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    output_tokens,
    gateway_cache_hit,
    status,
    pool,
    replica_id,
    workload,
    case when tags_json is null or json_type(tags_json) = 'NULL' then null else tags_json::varchar end as tags,
    case
        when read_error is not null then read_error
        when parsed is null then 'bad_json'
        when j is null then 'not_an_object'
        when text_type_error is not null then text_type_error
        when coalesce(trim(request_id), '') = '' then 'missing_request_id'
        when ts_text is null then 'missing_ts'
        when ts is null then 'bad_ts'
        when coalesce(trim(model), '') = '' then 'missing_model'
        when not _token_type_ok(input_json) then 'bad_type:input_tokens'
        when not _token_type_ok(cached_json) then 'bad_type:cached_input_tokens'
        when not _token_type_ok(creation_json) then 'bad_type:cache_creation_input_tokens'
        when not _token_type_ok(output_json) then 'bad_type:output_tokens'
        when not _token_type_ok(duration_json) then 'bad_type:duration_ms'
        when gateway_cache_hit is null then 'bad_type:gateway_cache_hit'
        when input_tokens < 0 then 'negative:input_tokens'
        when cached_input_tokens < 0 then 'negative:cached_input_tokens'
        when cache_creation_input_tokens < 0 then 'negative:cache_creation_input_tokens'
        when output_tokens < 0 then 'negative:output_tokens'
        when duration_ms < 0 then 'negative:duration_ms'
        when cached_input_tokens > input_tokens then 'cached_exceeds_input'
        -- subtraction, not addition: counts near the BIGINT limit must not overflow
        when cache_creation_input_tokens > input_tokens - cached_input_tokens
            then 'cache_reads_and_writes_exceed_input'
        when status is not null and status not in ('ok', 'error') then 'bad_status'
        when workload is not null and workload not in ('interactive', 'batch') then 'bad_workload'
    end as reason
from typed;

-- name: assign_days
-- `gateway_validated` with `assigned_day` on every record. A record with a readable timestamp
-- belongs to its UTC day, good or bad. One without (bad JSON, a missing or broken `ts`) is
-- counted on the day of the nearest good record before it in the same file (after it when it is
-- the first), and on $fallback_day (the file's modification day) when its file holds no good
-- record at all. This puts every record on exactly one day, so per-day counts add up to the file.
select
    *,
    coalesce(
        day,
        last_value(case when reason is null then day end ignore nulls)
            over (
                partition by source_file order by line_no
                rows between unbounded preceding and current row
            ),
        first_value(case when reason is null then day end ignore nulls)
            over (
                partition by source_file order by line_no
                rows between current row and unbounded following
            ),
        $fallback_day::date
    ) as assigned_day
from gateway_validated;
