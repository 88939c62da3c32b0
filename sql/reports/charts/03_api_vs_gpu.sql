/* API vs self-hosted GPUs (busy and idle), USD | stacked */
select day as x, unnest(['API', 'GPU busy', 'GPU idle']) as series,
    unnest([sum(api_cost_usd), sum(gpu_busy_cost_usd), sum(gpu_idle_cost_usd)])::double as y
from fct_total_cost_daily
where day between $first and $last
group by day
order by x, series
