/* What the findings marked done saved since: `costwatch savings` prints it */
select
    finding_key,
    min(month) as first_month,
    sum(days) as days,
    sum(volume_after) as volume_after,
    sum(realized_savings_usd) as realized_savings_usd
from fct_savings_realized
group by finding_key
order by realized_savings_usd desc, finding_key asc
