/* Reconciliation: lines off the estimate */
select coalesce(day::varchar, period_start || '..' || period_end) as period, provider, line_key, status,
       estimated_usd::decimal(18, 2) as estimated_usd, billed_usd::decimal(18, 2) as billed_usd,
       variance_usd::decimal(18, 2) as variance_usd
from fct_invoice_reconciliation
where status <> 'matched' and period_end between $first and $last
order by status, line_key, period_start limit 25
