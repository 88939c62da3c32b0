/* What caching saved: prompt caches and gateway cache hits, USD | stacked */
select day as x, unnest(['prompt cache', 'gateway cache hits']) as series,
    unnest([sum(prompt_cache_savings_usd), sum(gateway_cache_avoided_usd)])::double as y
from fct_cache_savings_daily
where day between $first and $last
group by day
order by x, series
