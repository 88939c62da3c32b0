/* The headline: the last day's total cost and its split, the same a week before, and the period's totals */
with daily as (
    select
        day,
        sum(total_cost_usd) as total_cost_usd,
        sum(api_cost_usd) as api_cost_usd,
        sum(gpu_busy_cost_usd) as gpu_busy_cost_usd,
        sum(gpu_idle_cost_usd) as gpu_idle_cost_usd,
        sum(requests) as requests
    from fct_total_cost_daily
    where day between $first::date - 7 and $last
    group by day
)

select
    $last::date as day,
    max(total_cost_usd) filter (where day = $last)::decimal(18, 2) as total_cost_usd,
    max(api_cost_usd) filter (where day = $last)::decimal(18, 2) as api_cost_usd,
    max(gpu_busy_cost_usd) filter (where day = $last)::decimal(18, 2) as gpu_busy_cost_usd,
    max(gpu_idle_cost_usd) filter (where day = $last)::decimal(18, 2) as gpu_idle_cost_usd,
    max(requests) filter (where day = $last) as requests,
    max(total_cost_usd) filter (where day = $last::date - 7)::decimal(18, 2) as week_ago_total_cost_usd,
    sum(total_cost_usd) filter (where day >= $first)::decimal(18, 2) as period_total_cost_usd,
    sum(api_cost_usd) filter (where day >= $first)::decimal(18, 2) as period_api_cost_usd,
    sum(requests) filter (where day >= $first) as period_requests
from daily
