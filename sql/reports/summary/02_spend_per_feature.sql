/* API spend per feature (catalog estimate) */
select feature, sum(requests) as requests, sum(cost_usd)::decimal(18, 2) as cost_usd,
       sum(prompt_cache_savings_usd)::decimal(18, 2) as prompt_cache_savings_usd,
       sum(unpriced_requests) as unpriced_requests
from fct_spend_by_feature_daily where day between $first and $last
group by feature order by cost_usd desc nulls last, feature asc
