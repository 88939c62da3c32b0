/* The latest day with costs: the report's day when none is given */
select max(day) as day from fct_total_cost_daily
