/* What to change: savings findings as of the last day (28-day window; each basis its own kind of dollars, never added across) */
select basis, kind, feature, model, target,
       monthly_savings_usd::decimal(18, 2) as monthly_usd,
       estimated_savings_usd::decimal(18, 2) as window_usd,
       requests_affected as calls
from fct_savings_opportunities
where day = $last and monthly_savings_usd is not null  -- exposure rows estimate nothing
order by monthly_savings_usd desc, finding_key asc
limit 10
