/* Capacity plan (busiest day per pool) */
select pool, workload, day, peak_hour, round(peak_rps, 2) as peak_rps, round(per_replica_rps, 2) as per_replica_rps,
       per_replica_rps_source as rate_from, replicas_needed, planned_replicas, billed_replicas,
       planned_cost_usd::decimal(18, 2) as planned_usd, billed_cost_usd::decimal(18, 2) as billed_usd
from fct_capacity_plan where day between $first and $last
qualify row_number() over (partition by pool order by peak_rps desc nulls last, day desc) = 1
order by workload, pool
