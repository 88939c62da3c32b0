/* Top 10 users by spend */
select user_id, sum(requests) as requests, sum(cost_usd)::decimal(18, 2) as cost_usd,
       max(features) as features
from fct_spend_by_user_daily where day between $first and $last
group by user_id order by cost_usd desc nulls last, user_id asc limit 10
