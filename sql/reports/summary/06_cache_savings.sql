/* Cache savings */
select feature, sum(prompt_cache_savings_usd)::decimal(18, 2) as prompt_cache_savings_usd,
       sum(gateway_cache_hits) as gateway_cache_hits,
       sum(gateway_cache_avoided_usd)::decimal(18, 2) as gateway_cache_avoided_usd
from fct_cache_savings_daily where day between $first and $last
group by feature order by prompt_cache_savings_usd desc, feature asc
