/* FOCUS 1.2 rows of the LLM spend from $first to $last: API calls and self-hosted GPUs per day x feature x user x provider x model */
-- One Usage row per token kind (or fee) and unit price, laid out like the FOCUS spec's AI token
-- examples (specification/data/ai_model_billing): PricingUnit '1000000 Tokens', SkuMeter and
-- SkuPriceDetails (ModelId, TokenDirection, TokenCacheAction) per kind. Columns are FOCUS 1.2's,
-- then costwatch's own, prefixed x_ as the spec requires.
--
-- The money adds up to fct_total_cost_daily:
-- - every priced call at the catalog price it was billed at (fct_requests.charges), as Usage;
-- - where the provider sent a one-day bill, one Adjustment row per day x feature x user x model
--   for the allocated bill minus that estimate (and the bill money no logged call explains);
-- - self-hosted GPUs, busy and idle, as Usage in GPU-Hours at the pool's day price per GPU-hour.
with billed_provider_days as (
    select distinct day, provider from fct_allocated_spend_daily where day between $first and $last
),

charges as (
    select
        day, feature, user_id, provider, model, price_key, priced_service_tier, price_tier, off_peak,
        unnest(charges, recursive := true)
    from fct_requests
    where day between $first and $last and charges is not null
),

token_usage as (
    select
        day, feature, user_id, provider, model, price_key, priced_service_tier, price_tier, off_peak,
        kind, unit_usd,
        sum(quantity) as quantity,
        count(*) as charged_requests
    from charges
    group by all
),

estimates as (
    select day, feature, user_id, provider, model, sum(quantity * unit_usd) as estimated_usd
    from token_usage
    group by all
),

bill_adjustments as (
    -- The bill a provider sent for the day, allocated, minus the estimate of the same calls.
    select
        coalesce(allocated.day, estimates.day) as day,
        coalesce(allocated.feature, estimates.feature) as feature,
        coalesce(allocated.user_id, estimates.user_id) as user_id,
        coalesce(allocated.provider, estimates.provider) as provider,
        coalesce(allocated.model, estimates.model) as model,
        allocated.allocation_basis,
        coalesce(allocated.allocated_usd, 0) - coalesce(estimates.estimated_usd, 0) as adjustment_usd
    from (
        select day, feature, user_id, provider, model, sum(allocated_usd) as allocated_usd,
            string_agg(distinct allocation_basis, ', ' order by allocation_basis) as allocation_basis
        from fct_allocated_spend_daily
        where day between $first and $last
        group by all
    ) as allocated
    full join (
        select estimates.*
        from estimates
        inner join billed_provider_days using (day, provider)
    ) as estimates using (day, feature, user_id, provider, model)
),

kinds (kind, meter, direction, cache_action, unit, per) as (
    values
    ('input', 'Input Tokens', 'Input', 'Uncached', 'Tokens', 1000000),
    ('cache_read', 'Cache Read Input Tokens', 'Input', 'Read', 'Tokens', 1000000),
    ('cache_write_5m', 'Cache Write Input Tokens', 'Input', 'Write', 'Tokens', 1000000),
    ('cache_write_1h', 'Cache Write Input Tokens (1 Hour)', 'Input', 'Write', 'Tokens', 1000000),
    ('audio_input', 'Audio Input Tokens', 'Input', 'Uncached', 'Tokens', 1000000),
    ('output', 'Output Tokens', 'Output', null, 'Tokens', 1000000),
    ('reasoning', 'Reasoning Output Tokens', 'Output', null, 'Tokens', 1000000),
    ('audio_output', 'Audio Output Tokens', 'Output', null, 'Tokens', 1000000),
    ('request', 'Requests', null, null, 'Requests', 1),
    ('web_search', 'Web Search Requests', null, null, 'Requests', 1),
    ('web_search_call', 'Requests With Web Search', null, null, 'Requests', 1)
),

api_rows as (
    select
        token_usage.day,
        token_usage.feature,
        token_usage.user_id,
        token_usage.provider,
        token_usage.model,
        'Usage' as charge_category,
        kinds.meter || ' of ' || token_usage.model
        || case
            when token_usage.priced_service_tier <> 'standard' then ', ' || token_usage.priced_service_tier || ' tier'
            else ''
        end
        || case when token_usage.price_tier <> 'base' then ', ' || token_usage.price_tier || ' context' else '' end
        || case when token_usage.off_peak then ', off-peak' else '' end as charge_description,
        cast(token_usage.quantity * token_usage.unit_usd as decimal(38, 24)) as cost_usd,
        cast(token_usage.quantity as decimal(38, 12)) as consumed_quantity,
        kinds.unit as consumed_unit,
        -- (times 1/per as a DECIMAL: dividing would go through a DOUBLE and lose digits)
        cast(token_usage.quantity * cast(1 / kinds.per as decimal(38, 12)) as decimal(38, 12)) as pricing_quantity,
        case when kinds.per = 1 then kinds.unit else kinds.per || ' ' || kinds.unit end as pricing_unit,
        cast(token_usage.unit_usd * kinds.per as decimal(38, 24)) as unit_price_usd,
        token_usage.price_key || '-' || replace(token_usage.kind, '_', '-') as sku_id,
        kinds.meter as sku_meter,
        concat_ws('-', token_usage.price_key, replace(token_usage.kind, '_', '-'), token_usage.priced_service_tier,
            token_usage.price_tier, case when token_usage.off_peak then 'off-peak' end) as sku_price_id,
        -- (merged into {} to leave out the keys a kind has no value for, as the spec's examples do)
        json_merge_patch('{}', json_object(
            'ModelId', token_usage.price_key,
            'TokenDirection', kinds.direction,
            'TokenCacheAction', kinds.cache_action,
            'x_ServiceTier', token_usage.priced_service_tier,
            'x_ContextTier', token_usage.price_tier,
            'x_OffPeak', token_usage.off_peak
        )) as sku_price_details,
        token_usage.provider || ' API' as service_name,
        null as resource_id,
        'catalog_estimate' as cost_basis,
        token_usage.charged_requests as requests
    from token_usage
    inner join kinds using (kind)
    where token_usage.quantity > 0
),

adjustment_rows as (
    select
        day,
        feature,
        user_id,
        provider,
        model,
        'Adjustment' as charge_category,
        case
            when allocation_basis = 'estimated_share'
                then provider || ' bill for the day minus the catalog estimate of these calls'
                || ' (bill allocated by share of the estimate)'
            else provider || ' bill for the day minus the catalog estimate (' || allocation_basis || ')'
        end as charge_description,
        cast(adjustment_usd as decimal(38, 24)) as cost_usd,
        null as consumed_quantity,
        null as consumed_unit,
        null as pricing_quantity,
        null as pricing_unit,
        null as unit_price_usd,
        null as sku_id,
        null as sku_meter,
        null as sku_price_id,
        null as sku_price_details,
        provider || ' API' as service_name,
        null as resource_id,
        'bill_adjustment' as cost_basis,
        null as requests
    from bill_adjustments
    where adjustment_usd <> 0
),

pool_billing as (
    select day, pool, min(provider_name) as provider_name, min(instance_type) as instance_type,
        min(gpu_type) as gpu_type
    from stg_gpu_billing
    where day between $first and $last
    group by all
),

pools as (
    select
        utilization.day,
        utilization.pool,
        utilization.gpu_cost_usd,
        utilization.idle_cost_usd,
        -- The pool's price of a GPU-hour that day (amortized, as gpu_cost_usd), to the 1e-12 dollar.
        cast(utilization.gpu_cost_usd / nullif(utilization.billed_gpu_hours, 0) as decimal(38, 12)) as gpu_hour_usd,
        billing.provider_name,
        billing.instance_type,
        billing.gpu_type
    from fct_gpu_utilization_daily as utilization
    left join pool_billing as billing using (day, pool)
    where utilization.day between $first and $last and utilization.gpu_cost_usd <> 0
),

pool_models as (
    select day, pool, feature, string_agg(distinct model, ', ' order by model) as models
    from int_selfhost_usage_daily
    where day between $first and $last
    group by all
),

gpu_shares as (
    select day, pool, feature, busy_cost_usd, idle_cost_usd
    from fct_gpu_cost_by_feature_daily
    where day between $first and $last and gpu_cost_usd is not null
    union all
    -- A pool with no timed call to split its cost by: the whole day, unallocated (as fct_total_cost_daily).
    select day, pool, 'unallocated', gpu_cost_usd - idle_cost_usd, idle_cost_usd
    from pools
    where not exists (
        select 1 from fct_gpu_cost_by_feature_daily as split
        where split.day = pools.day and split.pool = pools.pool and split.gpu_cost_usd is not null
    )
),

gpu_parts as (
    select gpu_shares.day, gpu_shares.pool, gpu_shares.feature, 'busy' as part, gpu_shares.busy_cost_usd as cost_usd
    from gpu_shares
    union all
    select gpu_shares.day, gpu_shares.pool, gpu_shares.feature, 'idle', gpu_shares.idle_cost_usd
    from gpu_shares
),

gpu_rows as (
    select
        gpu_parts.day,
        gpu_parts.feature,
        null as user_id,
        coalesce(pools.provider_name, 'self-hosted') as provider,
        coalesce(pool_models.models, 'pool ' || gpu_parts.pool) as model,
        -- GPU money with no GPU-hours to price it by cannot be Usage (it needs a quantity).
        case when pools.gpu_hour_usd is null then 'Adjustment' else 'Usage' end as charge_category,
        'GPU-hours of pool ' || gpu_parts.pool || ' ' || gpu_parts.part || ', the share of feature '
        || gpu_parts.feature as charge_description,
        cast(gpu_parts.cost_usd as decimal(38, 24)) as cost_usd,
        -- The GPU-hours this money buys at the pool's price: quantity x unit price = cost exactly,
        -- as FOCUS requires; it equals the hours split by serving time to the cost's rounding.
        cast(gpu_parts.cost_usd / pools.gpu_hour_usd as decimal(38, 12)) as consumed_quantity,
        case when pools.gpu_hour_usd is not null then 'GPU-Hours' end as consumed_unit,
        consumed_quantity as pricing_quantity,
        consumed_unit as pricing_unit,
        cast(pools.gpu_hour_usd as decimal(38, 24)) as unit_price_usd,
        case when pools.gpu_hour_usd is not null then
            'gpu-hour-' || coalesce(pools.instance_type, pools.gpu_type, gpu_parts.pool)
        end as sku_id,
        case when pools.gpu_hour_usd is not null then 'GPU Hours (' || gpu_parts.part || ')' end as sku_meter,
        case when pools.gpu_hour_usd is not null then
            'gpu-hour-' || coalesce(pools.instance_type, pools.gpu_type, gpu_parts.pool) || '-' || gpu_parts.pool
        end as sku_price_id,
        case when pools.gpu_hour_usd is not null then
            json_merge_patch('{}', json_object(
                'InstanceType', pools.instance_type, 'x_GpuType', pools.gpu_type, 'x_Pool', gpu_parts.pool
            ))
        end as sku_price_details,
        'Self-hosted inference' as service_name,
        gpu_parts.pool as resource_id,
        'gpu_' || gpu_parts.part as cost_basis,
        null as requests
    from gpu_parts
    inner join pools using (day, pool)
    left join pool_models using (day, pool, feature)
    where gpu_parts.cost_usd <> 0
),

spend as (
    select * from api_rows
    union all by name
    select * from adjustment_rows
    union all by name
    select * from gpu_rows
)

select
    cost_usd as BilledCost,
    provider as BillingAccountId,
    provider as BillingAccountName,
    'USD' as BillingCurrency,
    strftime(date_trunc('month', day) + interval 1 month, '%Y-%m-%dT%H:%M:%SZ') as BillingPeriodEnd,
    strftime(date_trunc('month', day), '%Y-%m-%dT%H:%M:%SZ') as BillingPeriodStart,
    charge_category as ChargeCategory,
    cast(null as varchar) as ChargeClass,
    charge_description as ChargeDescription,
    'Usage-Based' as ChargeFrequency,
    strftime(day + interval 1 day, '%Y-%m-%dT%H:%M:%SZ') as ChargePeriodEnd,
    strftime(day, '%Y-%m-%dT%H:%M:%SZ') as ChargePeriodStart,
    consumed_quantity as ConsumedQuantity,
    consumed_unit as ConsumedUnit,
    cost_usd as ContractedCost,
    unit_price_usd as ContractedUnitPrice,
    cost_usd as EffectiveCost,
    provider as InvoiceIssuerName,
    cost_usd as ListCost,
    unit_price_usd as ListUnitPrice,
    case when charge_category = 'Usage' then 'Standard' end as PricingCategory,
    pricing_quantity as PricingQuantity,
    pricing_unit as PricingUnit,
    provider as ProviderName,
    provider as PublisherName,
    resource_id as ResourceId,
    'AI and Machine Learning' as ServiceCategory,
    service_name as ServiceName,
    'Generative AI' as ServiceSubcategory,
    sku_id as SkuId,
    sku_meter as SkuMeter,
    cast(sku_price_details as varchar) as SkuPriceDetails,
    sku_price_id as SkuPriceId,
    -- The calls' own attribution as user-defined tags (one scheme, so unprefixed, as FOCUS asks);
    -- the user only where the money is per user (not GPU-hours).
    cast(json_merge_patch('{}', json_object('feature', feature, 'user', user_id)) as varchar) as Tags,
    cost_basis as x_CostBasis,
    model as x_Model,
    requests as x_Requests
from spend
order by day asc, feature asc, provider asc, model asc, user_id asc, ChargeCategory desc, SkuPriceId asc
