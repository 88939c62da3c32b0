/* price_calls(calls, start_day, end_day): calls priced as the provider bills them - the one pricing
   code of costwatch. fct_requests prices every logged call with it; a savings model prices the
   same call again with something changed (its service tier, model or token split), so a saving is
   always the difference of two prices from this code, never a second formula.

   `calls` names a relation (a table, view or CTE) with one row per call and at least: request_id,
   day, ts, provider, model, model_map_key (LiteLLM's own catalog key, or NULL), pool (NULL for an
   API call), service_tier, status, gateway_cache_hit, input_tokens (cache included),
   uncached_input_tokens, cached_input_tokens, cache_creation_5m_input_tokens,
   cache_creation_1h_input_tokens, audio_input_tokens, output_tokens, reasoning_tokens,
   audio_output_tokens, web_search_requests, and context_tokens: the prompt size that picks the
   context tier (input_tokens for the call as made; 0 prices the same tokens at the base tier's
   rates). Its days must lie in start_day..end_day: the prices in force are resolved once per
   stretch of that range.

   Every column of `calls` comes out, with: price_key, layer, priced_service_tier, pricing_basis,
   price_tier, the rates applied (input_usd ...), charges (what cost_usd is made of; none for a
   gateway cache hit or a failed call), cost_usd, list_cost_usd, prompt_cache_savings_usd,
   gateway_cache_avoided_usd and output_cost_usd (USD, decimal(18, 12); fct_requests documents
   each). A call without a token price (self-hosted, unpriced) keeps NULL money. */
create or replace macro price_calls(calls, start_day, end_day) as table
with price_periods as (
    -- The days in the range on which a price version starts or ends: from one to the next the
    -- prices in force stay the same, so prices resolve once per stretch, not once per day.
    select cast(start_day as date) as prices_as_of
    union
    select effective_from from stg_prices where effective_from > start_day and effective_from <= end_day
    union
    select effective_to from stg_prices where effective_to > start_day and effective_to <= end_day
),

requests_as_of as (
    -- Each request with the first day of its price stretch: its prices are those in force that day.
    select requests.*, price_periods.prices_as_of
    from query_table(calls) as requests
    asof inner join price_periods on requests.day >= price_periods.prices_as_of
),

prices_in_force as (
    select price_periods.prices_as_of, stg_prices.*
    from price_periods
    inner join stg_prices
        on
            stg_prices.effective_from <= price_periods.prices_as_of
            and (stg_prices.effective_to is null or price_periods.prices_as_of < stg_prices.effective_to)
    -- The same bounds for the whole range, as constants the scan can filter by.
    where
        stg_prices.effective_from <= end_day
        and (stg_prices.effective_to is null or stg_prices.effective_to > start_day)
),

winning_layers as (
    -- An override beats the catalog: the lowest priority in force per stretch and key. (A grouped
    -- minimum joined back: a window partitioned by stretch and key costs more.)
    select prices_as_of, model_key, min(priority) as priority
    from prices_in_force
    group by prices_as_of, model_key
),

day_prices as (
    -- The one version of each key in force on the stretch's days.
    select prices_in_force.*
    from prices_in_force
    inner join winning_layers as winning
        on
            prices_in_force.prices_as_of = winning.prices_as_of
            and prices_in_force.model_key = winning.model_key
            and prices_in_force.priority = winning.priority
),

price_keys as (
    select distinct
        prices_as_of,
        model_key,
        layer,
        -- The provider family a key belongs to, to prefer a bare key of the logged provider.
        provider_family(litellm_provider) as provider_family
    from day_prices
),

provider_names (logged_provider, catalog_provider) as (
    -- Provider names gateways and OpenTelemetry (gen_ai.provider.name / gen_ai.system) log, as
    -- the catalog's key prefix and litellm_provider family call them.
    values
    ('gcp.vertex_ai', 'vertex_ai'), ('vertex', 'vertex_ai'), ('google_vertex', 'vertex_ai'),
    ('vertex_ai_beta', 'vertex_ai'),
    ('azure.ai.openai', 'azure'), ('azure_openai', 'azure'), ('az.ai.openai', 'azure'),
    ('azure.ai.inference', 'azure_ai'), ('az.ai.inference', 'azure_ai'),
    ('aws.bedrock', 'bedrock'), ('aws_bedrock', 'bedrock'), ('amazon_bedrock', 'bedrock'),
    ('gcp.gemini', 'gemini'), ('gcp.gen_ai', 'gemini'), ('google', 'gemini'), ('google_ai_studio', 'gemini'),
    ('mistral_ai', 'mistral'), ('x_ai', 'xai'), ('ibm.watsonx.ai', 'watsonx'), ('together', 'together_ai'),
    ('fireworks', 'fireworks_ai')
),

names as (
    -- Prices resolve once per distinct logged name, not per row.
    select distinct
        requests.prices_as_of,
        requests.provider,
        requests.model,
        requests.model_map_key,
        coalesce(provider_names.catalog_provider, requests.provider) as catalog_provider,
        provider_family(coalesce(provider_names.catalog_provider, requests.provider)) as catalog_family
    from requests_as_of as requests
    left join provider_names on requests.provider = provider_names.logged_provider
    where requests.provider <> 'self_hosted' and requests.pool is null
),

name_variants as (
    -- Each variant takes a further decoration off the one before it.
    select
        *,
        model as as_logged,
        case
            when starts_with(model, provider || '/') then substr(model, length(provider) + 2)
            when starts_with(model, catalog_provider || '/') then substr(model, length(catalog_provider) + 2)
            else model
        end as without_provider,
        -- Bedrock ARNs end in the model or inference profile id.
        regexp_replace(without_provider, '^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:[a-z-]+/', '') as arn_tail,
        -- Bedrock cross-region inference profiles: us./eu./apac./global.anthropic.claude-...
        regexp_replace(arn_tail, '^(?:us|eu|apac|au|jp|ca|global|us-gov)\.([a-z0-9-]+\.)', '\1') as without_region,
        -- Vertex versions: claude-sonnet-4-5@20250929, gemini-1.5-pro@002.
        regexp_replace(without_region, '@[a-z0-9-]+$', '') as without_version,
        -- Dated snapshots: gpt-4o-2024-08-06, claude-3-5-haiku-20241022.
        regexp_replace(without_version, '-(?:\d{4}-\d{2}-\d{2}|\d{8})$', '') as undated,
        regexp_replace(undated, '^[^/]+/', '') as last_resort
    from names
),

candidates as (
    select
        prices_as_of,
        provider,
        model,
        model_map_key,
        catalog_provider,
        catalog_family,
        unnest([as_logged, without_provider, arn_tail, without_region, without_version, undated, last_resort])
            as candidate,
        unnest(range(1, 8)) as variant
    from name_variants
),

keyed as (
    -- Most specific first: LiteLLM's own key for the call; then per variant the provider-qualified
    -- key (`azure/gpt-4o` before `gpt-4o`), a bare key of the same provider, a bare key of another.
    -- A name already written `<provider>/...` is prefixed again only after every other match: LiteLLM
    -- looks `perplexity/sonar` up as it is, but finds `perplexity/perplexity/kimi-k3` when that is the key.
    select prices_as_of, provider, model, model_map_key, catalog_family, model_map_key as model_key, 0 as key_rank
    from names
    where model_map_key is not null
    union all
    select
        prices_as_of,
        provider,
        model,
        model_map_key,
        catalog_family,
        catalog_provider || '/' || candidate,
        case when starts_with(candidate, catalog_provider || '/') then 100 else 0 end + variant * 4
    from candidates
    union all
    select prices_as_of, provider, model, model_map_key, catalog_family, candidate, variant * 4 + 1
    from candidates
),

ranked as (
    -- An override applies wherever its name matches, ahead of any catalog key; then the most
    -- specific match (a bare key of another provider last).
    select
        keyed.prices_as_of,
        keyed.provider,
        keyed.model,
        keyed.model_map_key,
        price_keys.model_key,
        price_keys.layer,
        case when price_keys.layer = 'override' then 0 else 1000 end
        + keyed.key_rank
        + case when keyed.key_rank % 4 = 1 and price_keys.provider_family <> keyed.catalog_family then 2 else 0 end
            as match_rank
    from keyed
    inner join price_keys using (prices_as_of, model_key)
),

resolved as (
    select
        prices_as_of,
        provider,
        model,
        model_map_key,
        arg_min(model_key, match_rank) as price_key,
        arg_min(layer, match_rank) as layer
    from ranked
    group by all
),

key_tiers as (
    select distinct prices_as_of, model_key, service_tier from day_prices
),

key_off_peak_windows as (
    -- Once per key and service tier with off-peak rates: its windows, one row each.
    select distinct
        prices_as_of,
        model_key,
        service_tier,
        unnest(off_peak_windows) as off_peak_window
    from day_prices
    where off_peak
),

off_peak_windows as (
    select
        key_off_peak_windows.prices_as_of,
        key_off_peak_windows.model_key,
        key_off_peak_windows.service_tier,
        key_off_peak_windows.off_peak_window.weekdays,
        key_off_peak_windows.off_peak_window.weekday_timezone,
        key_off_peak_windows.off_peak_window.start_minute,
        key_off_peak_windows.off_peak_window.end_minute
    from key_off_peak_windows
),

rates as (
    -- One row per key, service tier and context tier: its rates side by side.
    select
        prices_as_of,
        model_key,
        service_tier,
        off_peak is true as off_peak,  -- a price row that does not say is a peak one
        from_prompt_tokens,
        above_tokens,
        max(price_usd) filter (where component = 'input') as input_usd,
        max(price_usd) filter (where component = 'cache_read') as cache_read_usd,
        max(price_usd) filter (where component = 'cache_write') as cache_write_usd,
        max(price_usd) filter (where component = 'cache_write_1h') as cache_write_1h_usd,
        max(price_usd) filter (where component = 'audio_input') as audio_input_usd,
        max(price_usd) filter (where component = 'output') as output_usd,
        max(price_usd) filter (where component = 'reasoning') as reasoning_usd,
        max(price_usd) filter (where component = 'audio_output') as audio_output_usd,
        coalesce(max(price_usd) filter (where component = 'request'), 0) as request_usd,
        coalesce(max(price_usd) filter (where component = 'web_search'), 0) as web_search_usd,
        coalesce(max(price_usd) filter (where component = 'web_search_call'), 0) as web_search_call_usd
    from day_prices
    group by all
),

tiered_requests as (
    select
        requests.*,
        resolved.price_key,
        resolved.layer,
        -- A tier the entry does not price apart bills at its standard rates.
        coalesce(price_tiers.service_tier, 'standard') as priced_service_tier,
        -- Off-peak windows are in UTC minutes of the day.
        60 * hour(timezone('UTC', cast(requests.ts as timestamptz)))
        + minute(timezone('UTC', cast(requests.ts as timestamptz))) as utc_minute_of_day
    from requests_as_of as requests
    left join resolved
        on
            requests.prices_as_of = resolved.prices_as_of
            and requests.provider = resolved.provider
            and requests.model = resolved.model
            and requests.model_map_key is not distinct from resolved.model_map_key
    left join key_tiers as price_tiers
        on
            requests.prices_as_of = price_tiers.prices_as_of
            and resolved.price_key = price_tiers.model_key
            and requests.service_tier = price_tiers.service_tier
),

off_peak_requests as (
    -- LiteLLM's `_is_off_peak` on the call's ts: the UTC minute of the day inside a window (start
    -- inclusive, end exclusive, wrapping past midnight when it ends at or before its start) on one
    -- of its weekdays, read in the window's time zone.
    select distinct tiered_requests.day, tiered_requests.request_id
    from tiered_requests
    inner join off_peak_windows
        on
            tiered_requests.prices_as_of = off_peak_windows.prices_as_of
            and tiered_requests.price_key = off_peak_windows.model_key
            and tiered_requests.priced_service_tier = off_peak_windows.service_tier
    where
        (
            off_peak_windows.weekdays is null
            or list_contains(
                off_peak_windows.weekdays,
                isodow(timezone(off_peak_windows.weekday_timezone, cast(tiered_requests.ts as timestamptz)))
            )
        )
        and (
            case
                when off_peak_windows.start_minute < off_peak_windows.end_minute
                    then tiered_requests.utc_minute_of_day >= off_peak_windows.start_minute
                    and tiered_requests.utc_minute_of_day < off_peak_windows.end_minute
                else
                    tiered_requests.utc_minute_of_day >= off_peak_windows.start_minute
                    or tiered_requests.utc_minute_of_day < off_peak_windows.end_minute
            end
        )
),

keyed_requests as (
    select
        tiered_requests.*,
        off_peak_requests.request_id is not null as off_peak
    from tiered_requests
    left join off_peak_requests using (day, request_id)
),

priced as (
    -- The context tier is chosen by the whole prompt (context_tokens; input_tokens for a call as made):
    -- the row with the largest from_prompt_tokens at or below it.
    select
        keyed_requests.* exclude (model_map_key, utc_minute_of_day, prices_as_of),
        case
            when keyed_requests.provider = 'self_hosted' or keyed_requests.pool is not null then 'gpu_billing'
            when keyed_requests.price_key is null then 'unpriced'
            when keyed_requests.layer = 'override' then 'override'
            else 'catalog'
        end as pricing_basis,
        case
            when rates.above_tokens = 0 then 'base'
            when rates.above_tokens % 1000 = 0 then 'above_' || (rates.above_tokens // 1000) || 'k'
            else 'above_' || rates.above_tokens
        end as price_tier,
        rates.* exclude (prices_as_of, model_key, service_tier, off_peak, from_prompt_tokens, above_tokens),
        -- Audio is inside input_tokens, never more than what cache reads and writes leave.
        least(keyed_requests.audio_input_tokens, greatest(keyed_requests.uncached_input_tokens, 0))
            as billed_audio_tokens,
        least(keyed_requests.audio_input_tokens, keyed_requests.input_tokens) as list_audio_tokens
    from keyed_requests
    asof left join rates
        on
            keyed_requests.prices_as_of = rates.prices_as_of
            and keyed_requests.price_key = rates.model_key
            and keyed_requests.priced_service_tier = rates.service_tier
            and keyed_requests.off_peak = rates.off_peak
            and keyed_requests.context_tokens >= rates.from_prompt_tokens
),

charged as (
    -- What the provider bills the call for, one charge per token kind or fee: its quantity and
    -- unit price. The money below is their sum, and the FOCUS export reads them as they are.
    select
        *,
        case when pricing_basis in ('catalog', 'override') then [
            {'kind': 'input', 'quantity': cast(greatest(uncached_input_tokens - billed_audio_tokens, 0) as bigint),
                'unit_usd': input_usd},
            {'kind': 'cache_read', 'quantity': cast(cached_input_tokens as bigint), 'unit_usd': cache_read_usd},
            {'kind': 'cache_write_5m', 'quantity': cast(cache_creation_5m_input_tokens as bigint),
                'unit_usd': cache_write_usd},
            {'kind': 'cache_write_1h', 'quantity': cast(cache_creation_1h_input_tokens as bigint),
                'unit_usd': cache_write_1h_usd},
            {'kind': 'audio_input', 'quantity': cast(billed_audio_tokens as bigint), 'unit_usd': audio_input_usd},
            {'kind': 'output',
                'quantity': cast(greatest(output_tokens - reasoning_tokens - audio_output_tokens, 0) as bigint),
                'unit_usd': output_usd},
            {'kind': 'reasoning', 'quantity': cast(reasoning_tokens as bigint), 'unit_usd': reasoning_usd},
            {'kind': 'audio_output', 'quantity': cast(audio_output_tokens as bigint), 'unit_usd': audio_output_usd},
            {'kind': 'request', 'quantity': cast(1 as bigint), 'unit_usd': request_usd},
            {'kind': 'web_search', 'quantity': cast(web_search_requests as bigint), 'unit_usd': web_search_usd},
            {'kind': 'web_search_call', 'quantity': cast(web_search_requests > 0 as bigint),
                'unit_usd': web_search_call_usd}
        ] end as all_charges
    from priced
),

-- The lambdas' `c.quantity` reads to the linter as a table reference (RF03: mixed qualification).
-- noqa: disable=RF03
costed as (
    -- A token kind without a price leaves the call's money unknown (NULL), as any missing rate does.
    select
        * exclude (all_charges),
        case when not list_bool_or(list_transform(all_charges, lambda c: c.unit_usd is null)) then
            list_filter(all_charges, lambda c: c.quantity > 0)
        end as charges,
        -- (an empty list sums to NULL: no charge is $0 for a priced call)
        case when charges is not null then
            coalesce(list_sum(list_transform(charges, lambda c: c.quantity * c.unit_usd)), 0)
        end as call_cost_usd,
        case when charges is not null then coalesce(list_sum(list_transform(
            list_filter(charges, lambda c: c.kind in ('output', 'reasoning', 'audio_output')),
            lambda c: c.quantity * c.unit_usd
        )), 0) end as call_output_cost_usd,
        case when charges is not null then coalesce(list_sum(list_transform(
            list_filter(charges, lambda c: c.kind in ('request', 'web_search', 'web_search_call')),
            lambda c: c.quantity * c.unit_usd
        )), 0) end as call_fees_usd,
        (input_tokens - list_audio_tokens) * input_usd + list_audio_tokens * audio_input_usd
        + call_output_cost_usd + call_fees_usd as call_list_cost_usd
    from charged
)

select
    * exclude (charges, call_cost_usd, call_output_cost_usd, call_fees_usd, call_list_cost_usd),
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
    -- A gateway cache hit or a failed call is billed nothing: no charge.
    case when gateway_cache_hit or status = 'error' then list_filter(charges, lambda c: false) else charges end
        as charges
from costed
-- noqa: enable=RF03
