/* Month-to-date spend and the month-end forecast against each budget, per as-of day x feature (and the total).
materialized: daily_table
grain: day, feature
lookback: month, 6
renamed: spend_to_budget_ratio <- pct_of_budget, forecast_to_budget_ratio <- forecast_pct_of_budget
columns:
  day: The as-of day: spend counted through it.
  month: First day of the budget month.
  feature: The budgeted feature, or 'total' (the sum of all budgets against all spend).
  budget_usd: The monthly budget from the config, USD.
  spend_to_date_usd: API spend from the first of the month through day, USD.
  daily_run_rate_usd: Average daily spend over the 7 days through day, USD.
  forecast_month_end_usd: spend_to_date_usd + daily_run_rate_usd x the days left in the month, USD.
  spend_to_budget_ratio: spend_to_date_usd / budget_usd (ratio).
  forecast_to_budget_ratio: forecast_month_end_usd / budget_usd (ratio).
  threshold_crossed: The highest of 0.8 and 1.0 that actual or forecast spend has reached (ratio); NULL below 0.8.
*/
with as_of as (
    -- Each day computed, with its budget month.
    select
        day,
        date_trunc('month', day)::date as month_start,
        (date_trunc('month', day) + interval 1 month - interval 1 day)::date as month_end
    from (select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day) as range_days
),

feature_spend as (
    -- Every day some as-of day reads: from the first of $start's month, or the 7 days through
    -- $start when they begin in the month before, through $end.
    select feature, day, cost_usd from fct_spend_by_feature_daily
    where
        day between least(date_trunc('month', $start::date)::date, $start::date - $lookback_days) and $end
        and cost_usd is not null
),

spend as (
    select feature, day, cost_usd from feature_spend
    union all
    select 'total', day, sum(cost_usd) from feature_spend
    group by day
),

to_date as (
    select as_of.day, spend.feature, sum(spend.cost_usd) as spend_to_date_usd
    from as_of
    inner join spend on spend.day between as_of.month_start and as_of.day
    group by as_of.day, spend.feature
),

recent as (
    select as_of.day, spend.feature, sum(spend.cost_usd) as last_7_days_usd
    from as_of
    inner join spend on spend.day between as_of.day - $lookback_days and as_of.day
    group by as_of.day, spend.feature
),

budget_lines as (
    select feature, budget_usd from budgets
    union all
    select 'total', sum(budget_usd) from budgets having count(*) > 0
),

forecast as (
    select
        as_of.day,
        as_of.month_start,
        as_of.month_end,
        budget_lines.feature,
        budget_lines.budget_usd,
        coalesce(to_date.spend_to_date_usd, 0) as spend_to_date_usd,
        coalesce(recent.last_7_days_usd, 0) as last_7_days_usd
    from as_of
    cross join budget_lines
    left join to_date on to_date.day = as_of.day and to_date.feature = budget_lines.feature
    left join recent on recent.day = as_of.day and recent.feature = budget_lines.feature
),

projected as (
    -- Month-end forecast: spend to date plus the 7-day run rate for the days left in the month.
    -- DuckDB divides a DECIMAL in double precision (15-16 significant digits), so each quotient is
    -- taken once, of exact sums, and brought back to the money scale: a forecast of whole dollars
    -- stays whole instead of carrying days_left x the run rate's last-digit rounding.
    select
        *,
        (last_7_days_usd / 7)::decimal(38, 12) as daily_run_rate_usd,
        spend_to_date_usd
        + (last_7_days_usd * (month_end - day) / 7)::decimal(38, 12) as month_end_usd
    from forecast
)

select
    day,
    month_start as month,
    feature,
    budget_usd::decimal(18, 2) as budget_usd,
    -- Money at fct_requests' scale (DECIMAL(38, 12)), never rounded here: alerts and reports round
    -- when they present, so spend to date is exactly the month's fct_requests cost.
    spend_to_date_usd,
    daily_run_rate_usd,
    month_end_usd as forecast_month_end_usd,
    (spend_to_date_usd / nullif(budget_usd, 0))::double as spend_to_budget_ratio,
    (month_end_usd / nullif(budget_usd, 0))::double as forecast_to_budget_ratio,
    case
        when greatest(spend_to_date_usd, month_end_usd) >= budget_usd then 1.0
        when greatest(spend_to_date_usd, month_end_usd) >= 0.8 * budget_usd then 0.8
    end as threshold_crossed
from projected
order by day, feature = 'total', feature
