/* Budget burn-up this month: spend to date against each budget, USD | lines */
select day as x, feature || ' spent' as series, spend_to_date_usd::double as y, false as marked, null as note
from fct_budget_forecast
where day between date_trunc('month', $last::date) and $last
union all
select day, feature || ' budget', budget_usd::double, false, null
from fct_budget_forecast
where day between date_trunc('month', $last::date) and $last
order by x, series
