-- SQL the GPU billing readers share. Every reader works on one file at a time in a scratch
-- DuckDB: `export_raw` / `export_rejects` (the CSV), `billing_typed` (the reader's typed rows),
-- `billing_lines` and `billing_quarantine` (what the file gives the lake).

-- name: instance_types
-- GPUs per instance type, the shipped table and the config's extra one, matched case-blind.
create or replace temp table instance_types as
select
    lower(instance_type) as instance_key,
    any_value(gpu_type) as gpu_type,
    any_value(gpu_count)::int as gpu_count
from read_csv($paths, header = true, union_by_name = true)
group by 1;

-- name: export_raw
-- Told the header's columns and the dialect: DuckDB's sniffer, left to guess, can take a ragged
-- last row for the header and return no rows at all. The header is row 1.
create or replace temp table export_raw as
select
    *,
    'row ' || (row_number() over () + 1) as record_ref
from read_csv(
    $path, header = true, auto_detect = false, skip = 0, columns = $columns, nullstr = 'NULL',
    delim = ',', quote = '"', escape = '"', strict_mode = true
);

-- name: export_rejects
create or replace temp table export_rejects (record_ref varchar, reason varchar, raw varchar);

-- name: insert_reject
insert into export_rejects values (?, ?, ?);

-- name: billing_quarantine
-- A typed row with a reason, as its cells in JSON, and the rows that could not be split into cells.
create or replace temp table billing_quarantine as
select
    $source_format as source_format,
    $source_file as source_file,
    record_ref,
    typed.day,
    typed.reason,
    to_json(raw)::varchar as raw
from billing_typed as typed
-- `raw` is read whole, as a struct, by to_json(raw) above.
inner join export_raw as raw using (record_ref)  -- noqa: AL05
where typed.reason is not null
union all
select
    $source_format,
    $source_file,
    record_ref,
    null::date,
    reason,
    raw
from export_rejects;

-- name: records_read
select (select count(*) from export_raw) + (select count(*) from export_rejects);

-- name: skipped_by_reason
select skip_reason, count(*)
from billing_typed
where reason is null and skip_reason is not null
group by 1
order by 1;
