/* savings_per_basis(findings_table, as_of, min_monthly_usd): the findings (fct_savings_opportunities,
   passed by name: a macro cannot name a table a new warehouse does not have yet) of an as-of day per basis, one
   total each and never one across bases (a measured waste and an upper bound are different
   kinds of dollars). Within a basis two levers may act on the same calls (a priority call moved
   to batch, or to standard), so a basis's total takes, in each feature x provider x model, its
   largest finding only: a floor of what the basis saves together, no call counted twice.
   Findings under min_monthly_usd (USD a month) are left out, and so are the settled ones
   (dismissed or done when the day ran): a total is of what is left to do. */
create or replace macro savings_per_basis(findings_table, as_of, min_monthly_usd) as table
    select
        basis,
        sum(findings)::bigint as findings,
        sum(largest_monthly_usd)::decimal(18, 2) as monthly_savings_usd
    from (
        select
            basis,
            count(*) as findings,
            max(monthly_savings_usd) as largest_monthly_usd
        from query_table(findings_table)
        where day = as_of and monthly_savings_usd >= min_monthly_usd and status in ('open', 'acknowledged')
        group by basis, feature, provider, model
    ) as per_group
    group by basis
    order by basis
