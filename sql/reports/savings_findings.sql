/* The savings findings of an as-of day, largest first (exposure rows by their spend in scope): what `costwatch savings` prints */
select
    basis,
    kind,
    feature,
    provider,
    model,
    target,
    monthly_savings_usd,
    -- Exposure rows have no saving: they are listed by their spend in scope, a month's worth.
    (spend_in_scope_usd * 30.44 / days_observed)::decimal(18, 6) as monthly_in_scope_usd,
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
    and coalesce(monthly_savings_usd, spend_in_scope_usd * 30.44 / days_observed) >= $min_monthly_usd
    and ($kind is null or kind = $kind)
    and ($basis is null or basis = $basis)
    and ($settled or status in ('open', 'acknowledged'))
order by coalesce(monthly_savings_usd, spend_in_scope_usd * 30.44 / days_observed) desc, finding_key asc
