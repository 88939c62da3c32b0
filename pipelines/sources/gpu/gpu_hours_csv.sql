-- A GPU-hours CSV, one file at a time: `gpu_hours_input` (record_ref and the columns below, NULL
-- where the file lacks one) -> `billing_typed` -> `billing_lines`. Every row is GPU spend, in USD.

-- name: billing_typed
create or replace temp table billing_typed as
select
    record_ref,
    try_cast(day as date) as day,
    nullif(trim(pool), '') as pool,
    nullif(trim(replica_id), '') as replica_id,
    gpu_type,
    try_cast(gpu_count as int) as gpu_count,
    try_cast(hours as double) as hours,
    try_cast(usd as decimal(18, 10)) as usd,
    case
        when
            try_cast(day as date) is null
            or not isfinite(try_cast(day as date))
            or year(try_cast(day as date)) not between 1 and 9999
            then 'bad_date:day'
        when nullif(trim(pool), '') is null then 'missing:pool'
        when try_cast(gpu_count as int) is null or try_cast(gpu_count as int) <= 0 then 'bad_number:gpu_count'
        when
            try_cast(hours as double) is null or try_cast(hours as double) < 0
            or not isfinite(try_cast(hours as double))
            then 'bad_number:hours'
        when try_cast(usd as decimal(18, 10)) is null then 'bad_number:usd'
    end as reason,
    null::varchar as skip_reason  -- every row of this file is GPU spend
from gpu_hours_input;

-- name: billing_lines
create or replace temp table billing_lines as
select
    'gpu_hours_csv' as source_format,
    $source_file as source_file,
    record_ref,
    day,
    null::varchar as provider_name,
    pool,
    coalesce(replica_id, pool) as replica_id,
    null::varchar as resource_id,
    null::varchar as instance_type,
    gpu_type,
    gpu_count,
    hours as instance_hours,
    hours * gpu_count as gpu_hours,
    usd as billed_usd,
    usd as effective_usd,
    usd as list_usd
from billing_typed
where reason is null;
