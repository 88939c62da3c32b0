/* How busy the GPUs we paid for were, per day x pool, and what the idle time cost.
materialized: daily_table
grain: day, pool
lookback: 0
columns:
  billed_replicas: Replicas (instances) billed that day.
  billed_gpu_hours: GPU-hours billed = instance hours x GPUs per instance.
  busy_gpu_hours: GPU-hours spent serving: from telemetry (utilization x time) when it covers at least 90% of the billed GPU-hours, else from request activity (hours with a request in flight x GPUs per replica).
  busy_method: telemetry or request_activity: where busy_gpu_hours came from.
  telemetry_coverage: Share (0-1) of billed GPU-hours that telemetry samples cover.
  utilization: busy_gpu_hours / billed_gpu_hours (0-1).
  gpu_cost_usd: What the pool's GPUs cost that day, amortized (FOCUS EffectiveCost: commitment-covered hours at their share of the commitment), USD.
  idle_cost_usd: gpu_cost_usd x (1 - utilization): money paid for GPUs that were not serving, USD.
*/
with billing as (
    select day, pool, replica_id, max(gpu_count) as gpu_count, exact_sum(gpu_hours) as billed_gpu_hours,
        sum(gpu_cost_usd) as gpu_cost_usd
    from stg_gpu_billing
    where day between $start and $end
    group by all
),

activity as (
    select day, pool, replica_id, busy_hours from int_replica_activity_daily where day between $start and $end
),

telemetry as (
    select day, replica_id, busy_gpu_hours, sampled_gpu_hours from gpu_busy_telemetry
    where day between $start and $end
),

replicas as (
    select
        coalesce(billing.day, activity.day) as day,
        coalesce(billing.pool, activity.pool) as pool,
        billing.billed_gpu_hours,
        billing.gpu_cost_usd,
        activity.busy_hours * coalesce(billing.gpu_count, 1) as activity_busy_gpu_hours,
        telemetry.busy_gpu_hours as telemetry_busy_gpu_hours,
        telemetry.sampled_gpu_hours
    from billing
    full outer join activity
        on activity.day = billing.day and activity.pool = billing.pool and activity.replica_id = billing.replica_id
    left join telemetry
        on
            telemetry.day = coalesce(billing.day, activity.day)
            and telemetry.replica_id = coalesce(billing.replica_id, activity.replica_id)
),

pools_day as (
    select
        day,
        pool,
        count(*) filter (where billed_gpu_hours > 0) as billed_replicas,
        coalesce(exact_sum(billed_gpu_hours), 0) as billed_gpu_hours,
        coalesce(sum(gpu_cost_usd), 0) as gpu_cost_usd,
        exact_sum(telemetry_busy_gpu_hours) as telemetry_busy_gpu_hours,
        coalesce(exact_sum(sampled_gpu_hours), 0) as sampled_gpu_hours,
        coalesce(exact_sum(activity_busy_gpu_hours), 0) as activity_busy_gpu_hours
    from replicas
    group by day, pool
),

measured as (
    select
        *,
        sampled_gpu_hours / nullif(billed_gpu_hours, 0) as telemetry_coverage,
        case when sampled_gpu_hours >= 0.9 * billed_gpu_hours and billed_gpu_hours > 0
            then 'telemetry' else 'request_activity' end as busy_method
    from pools_day
),

utilization as (
    select
        *,
        case when busy_method = 'telemetry' then telemetry_busy_gpu_hours else activity_busy_gpu_hours end
            as busy_gpu_hours
    from measured
)

select
    day,
    pool,
    billed_replicas,
    billed_gpu_hours,
    busy_gpu_hours,
    busy_method,
    least(telemetry_coverage, 1) as telemetry_coverage,
    least(busy_gpu_hours / nullif(billed_gpu_hours, 0), 1) as utilization,
    gpu_cost_usd::decimal(18, 6) as gpu_cost_usd,
    (gpu_cost_usd * (1 - least(busy_gpu_hours / nullif(billed_gpu_hours, 0), 1)))::decimal(18, 6) as idle_cost_usd
from utilization
order by day, pool
