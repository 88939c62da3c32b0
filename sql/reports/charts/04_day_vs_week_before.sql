/* The last day vs the same day a week before, total cost by feature, USD | grouped */
select feature as x, day::varchar as series, sum(total_cost_usd)::double as y
from fct_total_cost_daily
where day = $last or day = $last::date - 7
group by all
order by x, series
