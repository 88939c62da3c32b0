/* Self-hosted GPUs: least-utilized days */
select day, dayname(day) as weekday, pool, round(utilization, 3) as utilization,
       idle_cost_usd::decimal(18, 2) as idle_cost_usd
from fct_gpu_utilization_daily where day between $first and $last
order by utilization, day, pool limit 5
