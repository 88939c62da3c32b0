/* Replicas each configured pool needs for its measured busy-hour peak, against what was billed, per day x pool.
materialized: daily_table
grain: day, pool
lookback: 0
columns:
  workload: interactive or batch: the pool's main workload that day (most calls; of equally many, the first by name).
  peak_hour: Start of the busiest hour (most requests; the earliest of equally busy hours), UTC.
  peak_rps: Requests per second in the busiest hour.
  per_replica_rps: The highest rate one replica sustains within the pool's latency SLO: from the pool's load test (largest requests_per_s whose request_latency_s is within latency_slo_s) when configured, else the highest per-minute rate one replica served with p95 latency within the SLO that day.
  per_replica_rps_source: load_test or observed_max.
  replicas_needed: ceil(peak_rps / per_replica_rps x (1 + headroom)).
  planned_replicas: greatest(replicas_needed, warm_floor).
  billed_replicas: Replicas (instances) billed that day.
  planned_cost_usd: planned_replicas for the whole day at the billed cost per replica-day, USD.
  billed_cost_usd: What the pool's billed GPU hours cost that day, amortized (FOCUS EffectiveCost), USD.
*/
with days as (
    select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day
),

calls as (
    select day, pool, replica_id, ts, duration_ms, workload
    from fct_requests
    where day between $start and $end and pool is not null and not gateway_cache_hit
),

hourly as (
    select day, pool, date_trunc('hour', ts) as hour, count(*) as requests
    from calls
    group by all
),

peaks as (
    -- Of equally busy hours, the earliest.
    select day, pool, first(hour order by requests desc, hour asc) as peak_hour, max(requests) / 3600.0 as peak_rps
    from hourly
    group by day, pool
),

workloads as (
    -- The workload with most calls; of equally many, the first by name (mode() would take the one
    -- it met first, which depends on the order rows arrive in).
    select day, pool, first(workload order by calls desc, workload asc) as workload
    from (
        select day, pool, workload, count(*) as calls from calls where workload is not null group by all
    ) as pool_workloads
    group by day, pool
),

observed as (
    -- The busiest minute any one replica served within the SLO.
    select minutes.day, minutes.pool, max(minutes.requests / 60.0) as observed_rps
    from (
        select day, pool, replica_id, date_trunc('minute', ts) as minute, count(*) as requests,
            quantile_cont(duration_ms, 0.95) as p95_ms
        from calls
        where replica_id is not null
        group by all
    ) as minutes
    join pools using (pool)
    where minutes.p95_ms <= pools.latency_slo_s * 1000
    group by minutes.day, minutes.pool
),

load_tested as (
    select pool_load_tests.pool, max(pool_load_tests.requests_per_s) as load_test_rps
    from pool_load_tests
    join pools using (pool)
    where pool_load_tests.request_latency_s <= pools.latency_slo_s
    group by pool_load_tests.pool
),

billing as (
    select day, pool, count(distinct replica_id) as billed_replicas, exact_sum(instance_hours) as instance_hours,
        sum(gpu_cost_usd) as billed_cost_usd
    from stg_gpu_billing
    where day between $start and $end
    group by day, pool
),

planned as (
    select
        days.day,
        pools.pool,
        workloads.workload,
        peaks.peak_hour,
        peaks.peak_rps,
        coalesce(load_tested.load_test_rps, observed.observed_rps) as per_replica_rps,
        case when load_tested.load_test_rps is not null then 'load_test' else 'observed_max' end
            as per_replica_rps_source,
        pools.headroom,
        pools.warm_floor,
        billing.billed_replicas,
        billing.instance_hours,
        billing.billed_cost_usd
    from pools
    cross join days
    left join peaks on peaks.day = days.day and peaks.pool = pools.pool
    left join workloads on workloads.day = days.day and workloads.pool = pools.pool
    left join observed on observed.day = days.day and observed.pool = pools.pool
    left join load_tested on load_tested.pool = pools.pool
    left join billing on billing.day = days.day and billing.pool = pools.pool
    where peaks.pool is not null or billing.pool is not null
),

sized as (
    select
        *,
        coalesce(ceil(peak_rps / per_replica_rps * (1 + headroom)), 0)::int as replicas_needed
    from planned
)

select
    day,
    pool,
    workload,
    peak_hour,
    peak_rps,
    per_replica_rps,
    per_replica_rps_source,
    replicas_needed,
    warm_floor,
    greatest(replicas_needed, warm_floor) as planned_replicas,
    coalesce(billed_replicas, 0) as billed_replicas,
    (greatest(replicas_needed, warm_floor) * billed_cost_usd / nullif(instance_hours / 24, 0))::decimal(18, 6)
        as planned_cost_usd,
    billed_cost_usd::decimal(18, 6) as billed_cost_usd
from sized
order by day, workload, pool
