/* Token reconciliation findings (gateway vs provider usage) */
select finding, provider, model_family, count(*) as days, min(day) as first_day, max(day) as last_day
from fct_token_reconciliation where day between $first and $last and finding <> 'matched'
group by all order by finding, provider, model_family
