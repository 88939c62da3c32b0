/* The headline: API spend and requests over the days summarised */
select sum(cost_usd)::decimal(18, 2) as cost_usd, sum(requests) as requests
from fct_spend_by_feature_daily
where day between $first and $last
