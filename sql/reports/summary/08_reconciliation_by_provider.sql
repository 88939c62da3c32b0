/* Reconciliation: estimated (logs x catalog) vs billed, one-day bills */
select provider, sum(estimated_usd)::decimal(18, 2) as estimated_usd,
       sum(billed_usd)::decimal(18, 2) as billed_usd, sum(variance_usd)::decimal(18, 2) as variance_usd,
       count(*) filter (where status = 'matched') as lines_matched,
       count(*) filter (where status <> 'matched') as lines_off
from fct_invoice_reconciliation
where granularity = 'day' and day between $first and $last group by provider order by provider
