/* Total cost per feature (API bill or estimate + self-hosted GPUs, busy and idle) */
select feature, sum(requests) as requests,
       sum(total_cost_usd)::decimal(18, 2) as total_cost_usd,
       sum(api_cost_usd)::decimal(18, 2) as api_cost_usd,
       sum(gpu_busy_cost_usd)::decimal(18, 2) as gpu_busy_cost_usd,
       sum(gpu_idle_cost_usd)::decimal(18, 2) as gpu_idle_cost_usd,
       (sum(total_cost_usd) * 1000 / nullif(sum(requests), 0))::decimal(18, 4) as cost_per_1k_requests_usd
from fct_total_cost_daily where day between $first and $last
group by feature order by total_cost_usd desc, feature asc
