/* Top models */
select provider, model, sum(requests) as requests, sum(input_tokens) as input_tokens,
       sum(output_tokens) as output_tokens, sum(cost_usd)::decimal(18, 2) as cost_usd,
       sum(unpriced_requests) as unpriced_requests
from fct_spend_daily where day between $first and $last
group by all order by cost_usd desc nulls last, requests desc, provider asc, model asc limit 10
