/* Reconciliation: lines off the estimate */
select
    coalesce(day::varchar, period_start || '..' || period_end) as period,
    provider,
    line_key,
    -- the tier and context share a bill line names; blank where the bill does not say
    coalesce(service_tier, '') as tier,
    case long_context when true then 'long' when false then 'base' else '' end as context,
    status,
    estimated_usd::decimal(18, 2) as estimated_usd,
    billed_usd::decimal(18, 2) as billed_usd,
    variance_usd::decimal(18, 2) as variance_usd
from fct_invoice_reconciliation
where status <> 'matched' and period_end between $first and $last
order by status, line_key, period_start, tier, context
limit 25
