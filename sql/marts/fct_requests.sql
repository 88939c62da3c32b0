/* Priced LLM calls; one row per request. A view over the per-day Parquet partitions in the lake.
materialized: daily_parquet
grain: request_id
lookback: 0
*/
with requests as (
    -- With privacy.pseudonymise_user_id, user ids become `u_` + 24 hex digits of their keyed hash
    -- here, the one step every mart's user_id comes through. The key's pads are parameters, so
    -- neither this file, the warehouse nor the Parquet partition ever holds the key. 'anonymous'
    -- (no user logged) stays readable: it names no one.
    select
        * replace (
            case when $pseudonymise_user_id and user_id <> 'anonymous'
                then 'u_' || left(hmac_sha256($user_key_inner_pad, $user_key_outer_pad, user_id), 24)
                else user_id
            end as user_id
        )
    from stg_gateway_requests
    where day = $day
),

day_prices as (
    -- The one price per key in force on the day; an override beats the catalog.
    select *
    from stg_prices
    where effective_from <= $day and (effective_to is null or $day < effective_to)
    qualify row_number() over (partition by model_key order by priority) = 1
),

models as (
    select distinct provider, model from requests
),

key_candidates as (
    -- How a logged model name finds its catalog entry, most specific first.
    select provider, model, model as model_key, 1 as key_rank from models
    union all
    select provider, model, provider || '/' || model, 2 from models
    union all
    select provider, model, regexp_replace(model, '-(\d{4}-\d{2}-\d{2}|\d{8})$', ''), 3 from models
    union all
    select provider, model, regexp_replace(model, '^[a-z_]+/', ''), 4 from models
),

resolved as (
    select
        key_candidates.provider,
        key_candidates.model,
        arg_min(day_prices.model_key, key_candidates.key_rank) as price_key
    from key_candidates
    join day_prices using (model_key)
    group by all
),

priced as (
    select
        requests.*,
        resolved.price_key,
        case
            when requests.provider = 'self_hosted' or requests.pool is not null then 'gpu_billing'
            when resolved.price_key is null then 'unpriced'
            when day_prices.price_source = 'override' then 'override'
            else 'catalog'
        end as pricing_basis,
        day_prices.input_cost_per_token,
        day_prices.output_cost_per_token,
        day_prices.cache_read_input_token_cost,
        day_prices.cache_creation_input_token_cost
    from requests
    left join resolved using (provider, model)
    left join day_prices on day_prices.model_key = resolved.price_key
),

costed as (
    select
        *,
        case when pricing_basis in ('catalog', 'override') then
            uncached_input_tokens * input_cost_per_token
            + cached_input_tokens * cache_read_input_token_cost
            + cache_creation_input_tokens * cache_creation_input_token_cost
            + output_tokens * output_cost_per_token
        end as call_cost_usd,
        case when pricing_basis in ('catalog', 'override') then
            input_tokens * input_cost_per_token + output_tokens * output_cost_per_token
        end as call_list_cost_usd,
        case when pricing_basis in ('catalog', 'override') then
            output_tokens * output_cost_per_token
        end as call_output_cost_usd
    from priced
)

select
    request_id,
    ts,
    day,
    feature,
    user_id,
    provider,
    model,
    price_key,
    pricing_basis,
    pricing_basis <> 'unpriced' as priced,
    pool,
    replica_id,
    workload,
    status,
    duration_ms,
    input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    uncached_input_tokens,
    output_tokens,
    gateway_cache_hit,
    -- Nothing is billed for a gateway cache hit (no provider call) or a failed call. Calls without
    -- a token price (self-hosted, unpriced) keep NULL money: unknown here, never zero.
    cast(case when gateway_cache_hit or status = 'error' then 0 * call_cost_usd else call_cost_usd end
        as decimal(18, 12)) as cost_usd,
    cast(case when gateway_cache_hit or status = 'error' then 0 * call_list_cost_usd else call_list_cost_usd end
        as decimal(18, 12)) as list_cost_usd,
    cast(case when gateway_cache_hit or status = 'error' then 0 * call_cost_usd
              else call_list_cost_usd - call_cost_usd end as decimal(18, 12)) as prompt_cache_savings_usd,
    cast(case when gateway_cache_hit and status <> 'error' then call_cost_usd else 0 * call_cost_usd end
        as decimal(18, 12)) as gateway_cache_avoided_usd,
    cast(case when gateway_cache_hit or status = 'error' then 0 * call_output_cost_usd else call_output_cost_usd end
        as decimal(18, 12)) as output_cost_usd,
    tags,
    source_format
from costed
order by ts, request_id
