-- One day's ingest over `gateway_day_input`: the day's spooled records of every file that holds
-- the day (validate.sql's `spooled` rows whose day is the day, with `source_format`). The day can
-- hold ten million records: every statement here streams, aggregates or sorts, all of which
-- DuckDB spills to disk past its memory limit; none holds the day in a window.

-- name: repeated
-- Good records whose request_id arrives more than once (few), and which one is the first
-- delivery: files in name order, then by position.
with good as (
    select
        request_id,
        source_file,
        line_no
    from gateway_day_input
    where reason is null
),

firsts as (
    select
        request_id,
        min({'source_file': source_file, 'line_no': line_no}) as first_delivery
    from good
    group by request_id
    having count(*) > 1
)

select
    good.source_file,
    good.line_no,
    good.request_id,
    good.source_file = firsts.first_delivery.source_file
    and good.line_no = firsts.first_delivery.line_no as is_first
from good
inner join firsts on good.request_id = firsts.request_id;

-- name: day_records
-- `delivery`: 1 for the first delivery of a good record's request_id, 2 for a repeat; NULL for
-- a quarantined record.
select
    gateway_day_input.*,
    case
        when gateway_day_input.reason is null
            then case when gateway_day_repeated.is_first = false then 2 else 1 end
    end as delivery
from gateway_day_input
left join gateway_day_repeated
    on
        gateway_day_input.reason is null
        and gateway_day_input.source_file = gateway_day_repeated.source_file
        and gateway_day_input.line_no = gateway_day_repeated.line_no;

-- name: requests
-- The day's partition of gateway_requests: each request_id once, as read (files by name, lines
-- in order). Not sorted by time: at ten million records the sort cost 30 of 38 s and most of the
-- write's memory; readers filter and order by `ts` themselves.
select
    request_id,
    ts,
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
    tags,
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
    prefix_hashes,
    reported_cost_usd,
    source_format,
    source_file,
    line_no
from gateway_day_records
where reason is null and delivery = 1;

-- name: quarantine
-- The day's partition of gateway_quarantine: pipelines.sources.quarantine's schema (`day` is
-- the partition's folder), in file order.
select
    source_format,
    source_file,
    record_ref,
    reason,
    raw
from gateway_day_records
where reason is not null
order by source_file, line_no;

-- name: audit
-- The day's partition of gateway_ingest_audit: where every record of each file went.
select
    source_file,
    source_format,
    count(*) as lines,
    count(*) filter (where reason is null and delivery = 1) as kept,
    count(*) filter (where reason is not null) as quarantined,
    count(*) filter (where delivery > 1) as duplicates
from gateway_day_records
group by all
order by source_file;

-- name: counts
-- Records read, repeats, and repeats whose fields differ from the kept copy (both sides only
-- the few request_ids delivered more than once).
with firsts as (
    select * from gateway_day_records
    where delivery = 1 and request_id in (select request_id from gateway_day_repeated)
),

repeats as (select * from gateway_day_records where delivery > 1)

select
    (select count(*) from gateway_day_records) as lines,
    (select count(*) from repeats) as duplicates,
    (
        select count(*)
        from repeats as r
        inner join firsts as f using (request_id)
        where
            (
                r.ts, r.model, r.input_tokens, r.cached_input_tokens, r.cache_creation_input_tokens,
                r.output_tokens, r.gateway_cache_hit, r.service_tier, r.cache_creation_1h_input_tokens,
                r.audio_input_tokens, r.audio_output_tokens, r.reasoning_tokens, r.web_search_requests
            )
            is distinct from
            (
                f.ts, f.model, f.input_tokens, f.cached_input_tokens, f.cache_creation_input_tokens,
                f.output_tokens, f.gateway_cache_hit, f.service_tier, f.cache_creation_1h_input_tokens,
                f.audio_input_tokens, f.audio_output_tokens, f.reasoning_tokens, f.web_search_requests
            )
    ) as conflicting_duplicates;

-- name: reasons
select
    reason,
    count(*) as records
from gateway_day_records
where reason is not null
group by reason
order by records desc, reason asc;

-- name: per_file
select
    source_file,
    sum(lines) as lines,
    sum(kept) as kept,
    sum(quarantined) as quarantined,
    sum(duplicates) as duplicates
from gateway_day_audit
group by source_file
order by source_file;
