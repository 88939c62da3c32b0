/* Total cost by feature (API + GPUs), USD | stacked */
select day as x, feature as series, sum(total_cost_usd)::double as y
from fct_total_cost_daily
where day between $first and $last
group by all
order by x, series
