/* Billed spend allocated to features (one-day bills) */
select feature, sum(estimated_usd)::decimal(18, 2) as estimated_usd,
       sum(allocated_usd)::decimal(18, 2) as allocated_usd
from fct_allocated_spend_daily where day between $first and $last
group by feature order by allocated_usd desc
