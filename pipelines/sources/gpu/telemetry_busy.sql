-- name: telemetry_busy
-- Per replica, for the day `$day`: GPU-hours sampled by telemetry and the busy share of them,
-- over `samples` (replica_id, gpu, ts, utilization 0-1). Each sample stands for the time to the
-- next sample of the same GPU, capped at twice the median interval, so a gap in the log is not
-- read as busy or idle time.
with day_samples as (
    select * from samples
    where ts is not null and utilization between 0 and 1 and ts::date = $day
),

spaced as (
    select
        *,
        epoch(lead(ts) over (partition by replica_id, gpu order by ts) - ts) as gap_s
    from day_samples
),

typical as (
    select
        replica_id,
        gpu,
        median(gap_s) as median_gap_s
    from spaced
    group by all
),

weighted as (
    select
        spaced.replica_id,
        spaced.gpu,
        spaced.utilization,
        least(coalesce(spaced.gap_s, typical.median_gap_s), 2 * typical.median_gap_s) / 3600.0 as hours
    from spaced
    inner join typical using (replica_id, gpu)
)

select
    replica_id,
    count(distinct gpu) as gpus_seen,
    count(*) as samples,
    -- Summed as DECIMAL (exact, so the same in any row order), rounded to 12 places (3.6 ns).
    sum(hours::decimal(38, 12))::double as sampled_gpu_hours,
    sum((hours * utilization)::decimal(38, 12))::double as busy_gpu_hours
from weighted
group by replica_id
