-- The canonical rules every gateway format goes through, whatever it was read from. Queries run
-- in order over a batch of one file's records (`gateway_raw`, see records.py):
-- objects -> the format's projection (<format>.sql, over `gateway_objects`) -> validated -> days
-- (`batch_days` per batch while streaming, `assign_days` over a whole file's table) -> spooled.

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
        end as gateway_cache_hit,
        _tokens(creation_1h_json) as cache_creation_1h_input_tokens,
        _tokens(audio_input_json) as audio_input_tokens,
        _tokens(audio_output_json) as audio_output_tokens,
        _tokens(reasoning_json) as reasoning_tokens,
        _tokens(web_search_json) as web_search_requests,
        case when max_tokens_json is null or json_type(max_tokens_json) = 'NULL' then null
            else _tokens(max_tokens_json) end as max_tokens,
        case when json_type(stream_json) = 'BOOLEAN' then stream_json::varchar = 'true' end as stream,
        _service_tier(service_tier_text) as service_tier,
        _finish_reason(finish_reason_text) as finish_reason,
        case
            when reported_cost_json is null or json_type(reported_cost_json) = 'NULL' then null
            when json_type(reported_cost_json) in ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR')
                then try_cast(trim(reported_cost_json ->> '$') as decimal(38, 12))
        end as reported_cost_usd,
        case when json_type(prefix_hashes_json) = 'ARRAY' then from_json(prefix_hashes_json, '[["json"]]') end
            as prefix_pairs
    from gateway_fields
),

checked as (
    select
        *,
        -- `[[tokens, hash], ...]`: each a pair of a whole token count and an opaque text
        coalesce(
            list_bool_and(
                list_transform(
                    prefix_pairs,
                    lambda pair: coalesce(
                        len(pair) = 2
                        and json_type(pair[1]) in ('BIGINT', 'UBIGINT')
                        and json_type(pair[2]) = 'VARCHAR',
                        false
                    )
                )
            ),
            true
        ) as prefix_pairs_ok
    from typed
),

shaped as (
    select
        *,
        case when prefix_pairs_ok then
            list_transform(
                prefix_pairs, lambda pair: {'tokens': try_cast(pair[1]::varchar as bigint), 'hash': pair[2] ->> '$'}
            )
        end as prefix_hashes
    from checked
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
    -- A tier word the canonical set does not have is priced as standard and kept in tags as it came.
    case
        when service_tier is null or service_tier_text is null
            or lower(trim(service_tier_text))
            in ('standard', 'batch', 'flex', 'priority', 'default', 'auto', 'on_demand')
            then case when tags_json is null or json_type(tags_json) = 'NULL' then null else tags_json::varchar end
        when tags_json is null or json_type(tags_json) = 'NULL'
            then json_object('service_tier_reported', service_tier_text)::varchar
        when json_type(tags_json) = 'OBJECT'
            then json_merge_patch(tags_json, json_object('service_tier_reported', service_tier_text))::varchar
        else json_object('tags', tags_json, 'service_tier_reported', service_tier_text)::varchar
    end as tags,
    service_tier,
    cache_creation_1h_input_tokens,
    audio_input_tokens,
    audio_output_tokens,
    reasoning_tokens,
    web_search_requests,
    finish_reason,
    max_tokens,
    stream,
    conversation_id,
    prompt_hash,
    prefix_hashes::struct(tokens bigint, hash varchar)[] as prefix_hashes,
    reported_cost_usd,
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
        when not _token_type_ok(creation_1h_json) then 'bad_type:cache_creation_1h_input_tokens'
        when not _token_type_ok(audio_input_json) then 'bad_type:audio_input_tokens'
        when not _token_type_ok(audio_output_json) then 'bad_type:audio_output_tokens'
        when not _token_type_ok(reasoning_json) then 'bad_type:reasoning_tokens'
        when not _token_type_ok(web_search_json) then 'bad_type:web_search_requests'
        when not _token_type_ok(max_tokens_json) then 'bad_type:max_tokens'
        when stream_json is not null and json_type(stream_json) not in ('NULL', 'BOOLEAN') then 'bad_type:stream'
        when reported_cost_json is not null and json_type(reported_cost_json) <> 'NULL' and reported_cost_usd is null
            then 'bad_type:reported_cost_usd'
        when prefix_hashes_json is not null and json_type(prefix_hashes_json) <> 'NULL'
            and (prefix_pairs is null or not prefix_pairs_ok) then 'bad_type:prefix_hashes'
        when gateway_cache_hit is null then 'bad_type:gateway_cache_hit'
        when input_tokens < 0 then 'negative:input_tokens'
        when cached_input_tokens < 0 then 'negative:cached_input_tokens'
        when cache_creation_input_tokens < 0 then 'negative:cache_creation_input_tokens'
        when output_tokens < 0 then 'negative:output_tokens'
        when duration_ms < 0 then 'negative:duration_ms'
        when cache_creation_1h_input_tokens < 0 then 'negative:cache_creation_1h_input_tokens'
        when audio_input_tokens < 0 then 'negative:audio_input_tokens'
        when audio_output_tokens < 0 then 'negative:audio_output_tokens'
        when reasoning_tokens < 0 then 'negative:reasoning_tokens'
        when web_search_requests < 0 then 'negative:web_search_requests'
        when max_tokens < 0 then 'negative:max_tokens'
        when reported_cost_usd < 0 then 'negative:reported_cost_usd'
        when list_bool_or(list_transform(prefix_hashes, lambda pair: pair['tokens'] < 0)) then 'negative:prefix_hashes'
        when cached_input_tokens > input_tokens then 'cached_exceeds_input'
        -- subtraction, not addition: counts near the BIGINT limit must not overflow
        when cache_creation_input_tokens > input_tokens - cached_input_tokens
            then 'cache_reads_and_writes_exceed_input'
        when cache_creation_1h_input_tokens > cache_creation_input_tokens then 'cache_1h_writes_exceed_cache_writes'
        when audio_input_tokens > input_tokens then 'audio_exceeds_input'
        when audio_output_tokens > output_tokens then 'audio_exceeds_output'
        when reasoning_tokens > output_tokens then 'reasoning_exceeds_output'
        when list_transform(prefix_hashes, lambda pair: pair['tokens'])
            <> list_sort(list_transform(prefix_hashes, lambda pair: pair['tokens'])) then 'prefix_hashes_not_ascending'
        when status is not null and status not in ('ok', 'error') then 'bad_status'
        when workload is not null and workload not in ('interactive', 'batch') then 'bad_workload'
    end as reason
from shaped;

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

-- name: batch_days
-- `assign_days` for one batch of a file read in batches (day.py): a record without a readable
-- timestamp takes the day of the last good record before it in the batch, else $carried_day (the
-- last good record's day in the file's earlier batches). Records before the file's first good
-- record stay NULL here; day.py gives them that record's day (or the file's modification day).
select
    *,
    coalesce(
        day,
        last_value(case when reason is null then day end ignore nulls)
            over (order by line_no rows between unbounded preceding and current row),
        $carried_day::date
    ) as assigned_day
from gateway_validated;

-- name: batch_summary
-- What a batch (`gateway_batch`) adds to its file's days: its first and last good record's day,
-- the days its records are on, and how many records wait for the file's first good day.
select
    arg_min(day, line_no) filter (where reason is null) as first_good_day,
    arg_max(day, line_no) filter (where reason is null) as last_good_day,
    coalesce(list(distinct assigned_day) filter (where assigned_day is not null), []) as days,
    count(*) filter (where assigned_day is null) as unassigned
from gateway_batch;

-- name: spooled
-- A batch as spooled to Parquet: only a quarantined record keeps its text (the quarantine
-- holds it verbatim; a kept record's fields are all in its columns).
select
    * replace (case when reason is not null then raw end as raw),
    $source_format as source_format
from gateway_batch;
