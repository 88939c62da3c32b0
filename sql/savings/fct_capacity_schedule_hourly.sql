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
  day_workloads: What the pool served that day: batch (every call logged workload = batch), mixed (batch and other calls), interactive (no batch call; any other workload, or none logged, counts as someone waiting), NULL (no call). queue_savings_usd applies to batch days, split_savings_usd to mixed ones.
  batch_requests: The hour's batch calls (workload = batch).
  batch_busy_replica_s: batch_requests / per_replica_rps, seconds: how long one replica works to serve the hour's batch calls at its SLO rate.
  batch_window_s: pools.<pool>.batch_window_s (default 86400, a day): how long a batch call may wait. The day is cut into windows of that length from midnight (whole hours dividing a day), each sized on its own batch work.
  target_utilization: pools.<pool>.target_utilization (default 0.8): how busy a replica working through the queue is planned to be.
  queued_batch_replicas: ceil(the window's batch_busy_replica_s / (batch_window_s x target_utilization)), the same in every hour of the window: replicas that serve the window's batch calls queued instead of at their peak minute. 0 in a window without batch calls; NULL without a per-replica rate.
  queued_replicas: greatest(warm_floor, queued_batch_replicas): the plan of a pool that queues its batch work (queue_batch). No scale-ahead: queued work waits out a cold start.
  queue_savings_usd: On batch days only (else NULL): greatest(billed_replicas - queued_replicas, 0) x usd_per_replica_hour, USD; NULL without a per-replica rate. An alternative to savings_usd (both start from the bill), never to be added to it.
  interactive_peak_minute_rps: Requests per second of the non-batch calls in the hour's busiest minute for them.
  interactive_needed_replicas: ceil(interactive_peak_minute_rps / per_replica_rps x (1 + headroom)); 0 in an hour without non-batch calls.
  interactive_planned_replicas: greatest(warm_floor, interactive_needed_replicas, the next hour's when scale_ahead): planned_replicas for the non-batch calls alone.
  split_replicas: interactive_planned_replicas + queued_batch_replicas: an interactive pool sized on its own peak beside a batch pool working through the queue (split_pools). The batch pool has no warm floor of its own: its work waits out a cold start.
  split_savings_usd: On mixed days only (else NULL): greatest(least(planned_replicas, billed_replicas) - split_replicas, 0) x usd_per_replica_hour, USD: what splitting saves beyond the combined hourly plan (on top of savings_usd), never more than the hour was billed; NULL without a per-replica rate.
*/
with calls as (
    select pool, ts, workload = 'batch' as is_batch
    from fct_requests
    where day between $start and $end and pool is not null and not gateway_cache_hit
),

minutes as (
    select
        pool,
        date_trunc('minute', ts) as minute,
        count(*) as requests,
        count(*) filter (where is_batch) as batch_requests
    from calls
    group by all
),

busy_hours as (
    select
        pool,
        date_trunc('hour', minute) as hour,
        sum(requests) as requests,
        max(requests) / 60.0 as peak_minute_rps,
        sum(batch_requests) as batch_requests,
        max(requests - batch_requests) / 60.0 as interactive_peak_minute_rps
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
        pools.scale_ahead,
        pools.batch_window_s,
        pools.target_utilization
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
        end as needed_replicas,
        coalesce(busy_hours.batch_requests, 0) as batch_requests,
        coalesce(busy_hours.interactive_peak_minute_rps, 0) as interactive_peak_minute_rps,
        case
            when coalesce(busy_hours.requests - busy_hours.batch_requests, 0) = 0 then 0
            else ceil(busy_hours.interactive_peak_minute_rps / hours.per_replica_rps * (1 + hours.headroom))::int
        end as interactive_needed_replicas,
        -- The batch window the hour falls in: windows of batch_window_s from midnight.
        datediff('hour', hours.day::timestamptz, hours.hour) * 3600 // hours.batch_window_s as batch_window
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
        greatest(
            needs.warm_floor,
            needs.interactive_needed_replicas,
            case
                when needs.scale_ahead then coalesce(lead(needs.interactive_needed_replicas) over next_hour, 0)
                else 0
            end
        ) as interactive_planned_replicas,
        case
            when sum(needs.batch_requests) over whole_day = 0 and sum(needs.requests) over whole_day = 0 then null
            when sum(needs.batch_requests) over whole_day = 0 then 'interactive'
            when sum(needs.batch_requests) over whole_day = sum(needs.requests) over whole_day then 'batch'
            else 'mixed'
        end as day_workloads,
        ceil(
            sum(needs.batch_requests) over batch_window / needs.per_replica_rps
            / (needs.batch_window_s * needs.target_utilization)
        )::int as queued_batch_replicas,
        billing.instance_hours / 24 as billed_replicas,
        billing.billed_cost_usd / billing.instance_hours as usd_per_replica_hour
    from needs
    left join billing on needs.day = billing.day and needs.pool = billing.pool
    window
        next_hour as (partition by needs.day, needs.pool order by needs.hour),
        whole_day as (partition by needs.day, needs.pool),
        batch_window as (partition by needs.day, needs.pool, needs.batch_window)
),

alternatives as (
    select
        *,
        greatest(warm_floor, queued_batch_replicas) as queued_replicas,
        interactive_planned_replicas + queued_batch_replicas as split_replicas
    from planned
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
    end as savings_usd,
    day_workloads,
    batch_requests,
    batch_requests / per_replica_rps as batch_busy_replica_s,
    batch_window_s,
    target_utilization,
    queued_batch_replicas,
    queued_replicas,
    case
        when day_workloads = 'batch' and per_replica_rps is not null
            then coalesce(greatest(billed_replicas - queued_replicas, 0) * usd_per_replica_hour, 0)::decimal(18, 12)
    end as queue_savings_usd,
    interactive_peak_minute_rps,
    interactive_needed_replicas,
    interactive_planned_replicas,
    split_replicas,
    case
        when day_workloads = 'mixed' and per_replica_rps is not null
            then coalesce(
                greatest(least(planned_replicas, billed_replicas) - split_replicas, 0) * usd_per_replica_hour, 0
            )::decimal(18, 12)
    end as split_savings_usd
from alternatives
order by all
