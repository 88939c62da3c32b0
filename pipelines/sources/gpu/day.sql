-- One UTC day of GPU billing and telemetry, in a scratch DuckDB: every file's `billing_lines`
-- and `billing_quarantine` gathered into `lines` and `quarantine`, samples into `samples`.

-- name: lines
create temp table lines (
    source_format varchar,
    source_file varchar,
    record_ref varchar,
    day date,
    provider_name varchar,
    pool varchar,
    replica_id varchar,
    resource_id varchar,
    instance_type varchar,
    gpu_type varchar,
    gpu_count integer,
    instance_hours double,
    gpu_hours double,
    billed_usd decimal(18, 10),
    effective_usd decimal(18, 10),
    list_usd decimal(18, 10)
);

-- name: gather_lines
insert into lines by name select * from billing_lines;

-- name: gather_quarantine
insert into quarantine by name select * from billing_quarantine;

-- name: gpu_billing_lines
select * exclude (day) from lines where day = $day;

-- name: gpu_billing_quarantine
-- Every file is read on every run, so the quarantine is written whole: rows without a readable
-- day have no partition to go to.
select * from quarantine order by source_file, record_ref;

-- name: by_pool
select
    pool,
    sum(gpu_hours) as gpu_hours,
    sum(billed_usd)::double as billed_usd
from lines
where day = $day
group by pool
order by pool;

-- name: samples
create temp table samples (replica_id varchar, gpu varchar, ts timestamp, utilization double);

-- name: file_days
-- The UTC days a telemetry file holds samples of, for the input manifest.
select distinct ts::date as day from file_samples where ts is not null order by day;

-- name: gather_samples
insert into samples select * from file_samples;

-- name: busy
select * from busy;

-- name: busy_totals
select sum(busy_gpu_hours), sum(sampled_gpu_hours) from busy;
