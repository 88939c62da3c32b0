/* Budgets (latest day) */
select feature, month, budget_usd, spend_to_date_usd::decimal(18, 2) as spend_to_date_usd,
       forecast_month_end_usd::decimal(18, 2) as forecast_usd, round(100 * forecast_to_budget_ratio, 1) as forecast_pct
from fct_budget_forecast where day = $last order by feature = 'total', feature
