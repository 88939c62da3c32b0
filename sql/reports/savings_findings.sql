/* The savings findings of an as-of day, largest first: what `costwatch savings` prints */
select
    basis,
    kind,
    feature,
    provider,
    model,
    target,
    monthly_savings_usd,
    estimated_savings_usd,
    spend_in_scope_usd,
    requests_affected,
    requests_in_scope,
    days_observed,
    window_days,
    period_start,
    assumptions,
    finding_key,
    status
from fct_savings_opportunities
where
    day = $day
    and monthly_savings_usd >= $min_monthly_usd
    and ($kind is null or kind = $kind)
    and ($basis is null or basis = $basis)
    and ($settled or status in ('open', 'acknowledged'))
order by monthly_savings_usd desc, finding_key asc
