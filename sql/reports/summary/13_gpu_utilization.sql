/* Self-hosted GPUs: utilization and idle cost */
select pool, any_value(busy_method) as busy_method, sum(billed_gpu_hours)::decimal(18, 1) as billed_gpu_hours,
       sum(busy_gpu_hours)::decimal(18, 1) as busy_gpu_hours,
       round(sum(busy_gpu_hours) / nullif(sum(billed_gpu_hours), 0), 3) as utilization,
       sum(gpu_cost_usd)::decimal(18, 2) as gpu_cost_usd, sum(idle_cost_usd)::decimal(18, 2) as idle_cost_usd
from fct_gpu_utilization_daily where day between $first and $last group by pool order by pool
