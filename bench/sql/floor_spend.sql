/* The floor: spend by day x feature x user x provider x model of the requests floor_requests reads
   ($files, $start_day..$end_day), priced with the catalog's per-token prices ($catalog, LiteLLM
   format, USD per token): uncached input, cache reads (at the input price where the entry has no
   cache-read price) and output. A provider-qualified key (`azure/eu/gpt-4o-2024-08-06`) beats the
   bare model name; a model the catalog lacks costs 0; a gateway cache hit costs 0. */
with prices as (
    select * from catalog_prices($catalog)
),

requests as (
    select * from floor_requests($files, cast($start_day as date), cast($end_day as date))
),

priced as (
    select
        requests.*,
        coalesce(qualified.input_usd_per_token, bare.input_usd_per_token, 0) as input_usd_per_token,
        coalesce(qualified.cache_read_usd_per_token, bare.cache_read_usd_per_token, 0) as cache_read_usd_per_token,
        coalesce(qualified.output_usd_per_token, bare.output_usd_per_token, 0) as output_usd_per_token
    from requests
    left join prices as qualified on requests.provider || '/' || requests.model = qualified.price_key
    left join prices as bare on requests.model = bare.price_key
)

select
    day,
    feature,
    user_id,
    provider,
    model,
    count(*) as requests,
    sum(input_tokens) as input_tokens,
    sum(cached_input_tokens) as cached_input_tokens,
    sum(output_tokens) as output_tokens,
    sum(
        case
            when gateway_cache_hit then 0
            else (input_tokens - cached_input_tokens) * input_usd_per_token
                + cached_input_tokens * cache_read_usd_per_token
                + output_tokens * output_usd_per_token
        end
    ) as cost_usd
from priced
group by day, feature, user_id, provider, model
