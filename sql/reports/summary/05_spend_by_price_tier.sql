/* Spend by price tier (service tier, context tier, off-peak hours) */
select
    service_tier,
    price_tier as context_tier,
    off_peak,
    count(*) as requests,
    sum(input_tokens) as input_tokens,
    sum(cache_creation_1h_input_tokens) as cache_writes_1h,
    sum(audio_input_tokens + audio_output_tokens) as audio_tokens,
    sum(cost_usd)::decimal(18, 2) as cost_usd
from fct_requests
where day between $first and $last and priced and pricing_basis <> 'gpu_billing'
group by all
order by cost_usd desc nulls last, requests desc, service_tier asc, context_tier asc, off_peak asc
