/* API spend per day x user.
materialized: daily_table
grain: day, user_id
lookback: 0
*/
with spend as (
    select * from fct_spend_daily where day between $start and $end
)

select
    day,
    user_id,
    count(distinct feature) as features,
    sum(requests)::bigint as requests,
    sum(unpriced_requests)::bigint as unpriced_requests,
    sum(input_tokens)::bigint as input_tokens,
    sum(cached_input_tokens)::bigint as cached_input_tokens,
    sum(output_tokens)::bigint as output_tokens,
    -- Exact: fct_spend_daily's scale, no rounding per group (see fct_spend_daily).
    sum(cost_usd) as cost_usd,
    sum(prompt_cache_savings_usd) as prompt_cache_savings_usd,
    sum(gateway_cache_avoided_usd) as gateway_cache_avoided_usd
from spend
group by all
order by all
