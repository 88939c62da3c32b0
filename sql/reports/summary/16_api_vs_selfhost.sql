/* API vs self-host */
select period_start, pool, model, selfhost_cost_usd::decimal(18, 2) as selfhost_usd,
       api_equivalent_model as api_model, api_cost_usd::decimal(18, 2) as api_usd,
       round(utilization, 3) as utilization, round(break_even_utilization, 3) as break_even,
       recommendation
from fct_api_vs_selfhost order by period_start, pool
