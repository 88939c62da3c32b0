-- An `nvidia-smi --query-gpu=... --format=csv[,nounits][,noheader]` log -> `file_samples`
-- (replica_id, gpu, ts in UTC, utilization 0-1), in two steps: the log's lines as written
-- (`logged_samples`, host-local time), then each local time as its UTC instant in the source's
-- time zone. Columns are read positionally as c0, c1, ... and found by field name in Python (from
-- the header, or the documented order when `$header` is false), which passes the position of each
-- as its own column name: `ts_text`, `utilization_text` and, when the log tells GPUs apart
-- (`pci.bus_id`, `uuid` or `index`), `gpu_text`. A utilization reads the same with units (`37 %`)
-- and without (`37`). Rows that do not parse (`[N/A]`, a repeated header) have a NULL ts or
-- utilization.

-- name: samples_by_gpu
create or replace temp table logged_samples as
select
    $replica as replica_id,
    trim(gpu_text) as gpu,
    try_strptime(trim(ts_text), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as local_ts,
    try_cast(trim(replace(utilization_text, '%', '')) as double) / 100 as utilization,
    -- The line's place in the log (DuckDB reads a file's rows in order): it tells the two passes
    -- of a repeated local hour apart.
    row_number() over () as line
from read_csv($path, header = $header, names = $names, all_varchar = true, strict_mode = false, null_padding = true);

-- name: samples_of_one_gpu
create or replace temp table logged_samples as
select
    $replica as replica_id,
    '0' as gpu,
    try_strptime(trim(ts_text), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as local_ts,
    try_cast(trim(replace(utilization_text, '%', '')) as double) / 100 as utilization,
    row_number() over () as line
from read_csv($path, header = $header, names = $names, all_varchar = true, strict_mode = false, null_padding = true);

-- name: samples_in_utc
-- nvidia-smi writes the host's wall clock with no offset; `$timezone` (an IANA name) is the host's
-- zone. Each local time has the offset in force a day before it or the one a day after (a zone
-- changes offset at most a few times a year): the one whose instant reads back as that local time.
-- Both do in the hour a clock repeats when it falls back; there the log's order decides, since a
-- GPU's clock jumps back where the second pass begins. Neither does in the hour a clock skips
-- (nvidia-smi cannot write those times): the earlier offset, as Python's zoneinfo does. Offsets are
-- worked out once per local minute (zones change offset on whole minutes).
create or replace temp table file_samples as
with local_minutes as (
    select distinct date_trunc('minute', local_ts) as local_minute
    from logged_samples
    where local_ts is not null
),

offsets as (
    select
        local_minute,
        timezone($timezone, timezone('UTC', local_minute - interval 1 day))
        - (local_minute - interval 1 day) as offset_before,
        timezone($timezone, timezone('UTC', local_minute + interval 1 day))
        - (local_minute + interval 1 day) as offset_after
    from local_minutes
),

readings as (
    select
        *,
        timezone($timezone, timezone('UTC', local_minute - offset_before)) = local_minute as before_reads_back,
        timezone($timezone, timezone('UTC', local_minute - offset_after)) = local_minute as after_reads_back
    from offsets
),

minutes as (
    select
        local_minute,
        offset_before,
        offset_after,
        before_reads_back and after_reads_back and offset_before <> offset_after as repeated,
        case when after_reads_back and not before_reads_back then offset_after else offset_before end as offset_once
    from readings
),

samples as (
    select
        logged.*,
        minutes.repeated,
        minutes.offset_before,
        minutes.offset_after,
        minutes.offset_once
    from logged_samples as logged
    left join minutes on date_trunc('minute', logged.local_ts) = minutes.local_minute
),

clock as (
    -- Back by more than half the shift: a new pass, not one GPU's jitter within a tick.
    select
        *,
        coalesce(
            repeated and local_ts < max(local_ts) over (
                partition by gpu order by line rows between unbounded preceding and 1 preceding
            ) - (offset_before - offset_after) / 2,
            false
        ) as went_back
    from samples
),

passes as (
    select
        *,
        repeated and bool_or(went_back) over (
            partition by gpu, local_ts::date order by line rows between unbounded preceding and current row
        ) as second_pass
    from clock
)

select
    replica_id,
    gpu,
    local_ts - case when second_pass then offset_after else offset_once end as ts,
    utilization
from passes
order by line;

-- name: no_samples
create or replace temp table file_samples (replica_id varchar, gpu varchar, ts timestamp, utilization double);
