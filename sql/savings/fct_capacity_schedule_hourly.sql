/* What each self-hosted pool needed hour by hour against what it was billed: the savings spec's capacity schedule (a warm floor, scaling ahead of cold starts by the next hour's need), per day x hour x pool. Basis upper_bound: it assumes replicas start and stop on the hour and the busiest minute of an hour is served at the rate the pool sustains within its latency SLO.
materialized: daily_table
grain: day, hour, pool
lookback: 0
columns:
  hour: Start of the hour, UTC.
  workload: The pool's main workload that day (fct_capacity_plan.workload).
  requests: Calls the pool served in the hour (gateway cache hits apart).
  peak_minute_rps: Requests per second in the hour's busiest minute.
  per_replica_rps: The rate one replica sustains within the pool's latency SLO, from fct_capacity_plan (its load test, else the day's observed maximum).
  per_replica_rps_source: load_test or observed_max.
  needed_replicas: ceil(peak_minute_rps / per_replica_rps x (1 + headroom)); 0 in an hour without calls.
  planned_replicas: greatest(warm_floor, needed_replicas, the next hour's needed_replicas when pools.<pool>.scale_ahead): a replica started an hour ahead is warm when the load comes. The day's last hour looks at no next hour (the next day is not read).
  billed_replicas: Replicas billed in the hour: the day's billed instance hours / 24 (GPU bills are daily rows).
  usd_per_replica_hour: The day's billed GPU cost / its instance hours, USD (FOCUS EffectiveCost, amortized).
  billed_cost_usd: billed_replicas x usd_per_replica_hour, USD: what the hour cost.
  excess_replica_hours: greatest(billed_replicas - planned_replicas, 0).
  savings_usd: excess_replica_hours x usd_per_replica_hour, USD; NULL when the pool has no per-replica rate (no load test, no call within the SLO).
*/
with calls as (
    select pool, ts
    from fct_requests
    where day between $start and $end and pool is not null and not gateway_cache_hit
),

minutes as (
    select pool, date_trunc('minute', ts) as minute, count(*) as requests
    from calls
    group by all
),

busy_hours as (
    select
        pool,
        date_trunc('hour', minute) as hour,
        sum(requests) as requests,
        max(requests) / 60.0 as peak_minute_rps
    from minutes
    group by all
),

plans as (
    -- The pool-days fct_capacity_plan sized: pools with calls or bills that day.
    select
        plan.day,
        plan.pool,
        plan.workload,
        plan.per_replica_rps,
        plan.per_replica_rps_source,
        plan.warm_floor,
        pools.headroom,
        pools.scale_ahead
    from fct_capacity_plan as plan
    inner join pools using (pool)
    where plan.day between $start and $end
),

billing as (
    select
        day,
        pool,
        exact_sum(instance_hours) as instance_hours,
        sum(gpu_cost_usd) as billed_cost_usd
    from stg_gpu_billing
    where day between $start and $end
    group by day, pool
),

hours as (
    select
        plans.*,
        unnest(generate_series(plans.day::timestamptz, plans.day::timestamptz + interval 23 hour, interval 1 hour))
            as hour
    from plans
),

needs as (
    select
        hours.*,
        coalesce(busy_hours.requests, 0) as requests,
        coalesce(busy_hours.peak_minute_rps, 0) as peak_minute_rps,
        case
            when busy_hours.requests is null then 0
            else ceil(busy_hours.peak_minute_rps / hours.per_replica_rps * (1 + hours.headroom))::int
        end as needed_replicas
    from hours
    left join busy_hours on hours.pool = busy_hours.pool and hours.hour = busy_hours.hour
),

planned as (
    select
        needs.*,
        greatest(
            needs.warm_floor,
            needs.needed_replicas,
            case
                when needs.scale_ahead then coalesce(lead(needs.needed_replicas) over next_hour, 0)
                else 0
            end
        ) as planned_replicas,
        billing.instance_hours / 24 as billed_replicas,
        billing.billed_cost_usd / billing.instance_hours as usd_per_replica_hour
    from needs
    left join billing on needs.day = billing.day and needs.pool = billing.pool
    window next_hour as (partition by needs.day, needs.pool order by needs.hour)
)

select
    day,
    hour,
    pool,
    workload,
    requests,
    peak_minute_rps,
    per_replica_rps,
    per_replica_rps_source,
    needed_replicas,
    planned_replicas,
    coalesce(billed_replicas, 0) as billed_replicas,
    usd_per_replica_hour::decimal(18, 12) as usd_per_replica_hour,
    coalesce(billed_replicas * usd_per_replica_hour, 0)::decimal(18, 12) as billed_cost_usd,
    greatest(coalesce(billed_replicas, 0) - planned_replicas, 0) as excess_replica_hours,
    case
        when per_replica_rps is not null
            then coalesce(greatest(billed_replicas - planned_replicas, 0) * usd_per_replica_hour, 0)::decimal(18, 12)
    end as savings_usd
from planned
order by all
