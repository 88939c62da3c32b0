-- A FOCUS 1.x export, one file at a time: `focus_input` (record_ref and the FOCUS columns below,
-- NULL where the file's FOCUS version lacks one) -> `billing_typed` -> `billing_lines`.

-- name: unrated_currencies
-- Currency codes other than USD, with the first record naming each. Text that is no currency
-- code at all (empty, a cut cell) is not a config problem: such rows are quarantined.
select upper(trim(BillingCurrency)) as code, min(record_ref) as first_ref
from focus_input
where regexp_full_match(upper(trim(BillingCurrency)), '[A-Z]{3}') and upper(trim(BillingCurrency)) <> 'USD'
group by code
order by code;

-- name: currency_rates
create or replace temp table currency_rates (code varchar, usd_per_unit double);

-- name: insert_currency_rate
insert into currency_rates values (?, ?);

-- name: billing_typed
create or replace temp table billing_typed as
with typed as (
    select
        record_ref,
        ProviderName as provider_name,
        coalesce(nullif(trim(ChargeCategory), ''), 'Usage') as charge_category,
        try_cast(ChargePeriodStart as timestamp) as period_start,
        try_cast(ChargePeriodEnd as timestamp) as period_end,
        try_cast(BilledCost as decimal(18, 10)) as billed_cost,
        try_cast(EffectiveCost as decimal(18, 10)) as effective_cost,
        try_cast(ListCost as decimal(18, 10)) as list_cost,
        try_cast(ConsumedQuantity as double) as consumed_quantity,
        lower(ConsumedUnit) as consumed_unit,
        ResourceId as resource_id,
        coalesce(upper(trim(BillingCurrency)), 'USD') as currency,
        case when json_valid(SkuPriceDetails) then SkuPriceDetails end as sku_details,
        case when json_valid(Tags) then Tags end as tags,
        -- FOCUS columns that hold JSON: broken JSON is damage (a cut last row ends in Tags). An
        -- empty cell is no JSON at all: the spec's example files write a null that way.
        nullif(trim(SkuPriceDetails), '') is not null and not json_valid(SkuPriceDetails) as sku_details_broken,
        nullif(trim(Tags), '') is not null and not json_valid(Tags) as tags_broken,
        ChargeDescription as charge_description,
        nullif(trim(CommitmentDiscountId), '') as commitment_discount_id,
        nullif(trim(CommitmentDiscountStatus), '') as commitment_discount_status
    from focus_input
),

resolved as (
    select
        typed.*,
        currency_rates.usd_per_unit,
        coalesce(
            json_extract_string(sku_details, '$.InstanceType'),
            nullif(regexp_extract(charge_description, $pattern, 1), '')
        ) as instance_type,
        try_cast(json_extract_string(sku_details, '$.GpuCount') as int) as sku_gpu_count,
        json_extract_string(tags, '$."' || $pool_tag || '"') as pool,
        json_extract_string(tags, '$."' || $replica_tag || '"') as replica_id
    from typed
    left join currency_rates on typed.currency = currency_rates.code
),

classified as (
    select
        resolved.*,
        instance_types.gpu_type,
        period_start::date as day,
        coalesce(sku_gpu_count, instance_types.gpu_count, 0) as gpu_count,
        try_cast(billed_cost * usd_per_unit as decimal(18, 10)) as billed_usd,
        try_cast(effective_cost * usd_per_unit as decimal(18, 10)) as effective_usd,
        case
            when
                period_start is null or not isfinite(period_start)
                or year(period_start) not between 1 and 9999
                then 'bad_timestamp:ChargePeriodStart'
            when not isfinite(period_end) or year(period_end) not between 1 and 9999
                then 'bad_timestamp:ChargePeriodEnd'
            when billed_cost is null then 'bad_number:BilledCost'
            when usd_per_unit is null then 'bad_currency:BillingCurrency'
            when try_cast(billed_cost * usd_per_unit as decimal(18, 10)) is null then 'out_of_range:BilledCost'
            when effective_cost is null then 'bad_number:EffectiveCost'
            when try_cast(effective_cost * usd_per_unit as decimal(18, 10)) is null then 'out_of_range:EffectiveCost'
            when not isfinite(consumed_quantity) then 'bad_number:ConsumedQuantity'
            when tags_broken then 'bad_json:Tags'
            when sku_details_broken then 'bad_json:SkuPriceDetails'
            when sku_gpu_count < 0 then 'bad_number:GpuCount'
            when period_end < period_start then 'charge_period_ends_before_start'
        end as reason,
        -- Not GPU usage hours, each counted by its reason. A commitment's Purchase row is the cash
        -- paid for a reservation, Savings Plan or CUD: its EffectiveCost is 0 by the spec because
        -- the money reaches the Usage rows it covers (their EffectiveCost); keeping it would count
        -- the same money twice. An Unused commitment row is commitment time no instance ran on: no
        -- replica and no GPU-hours to put it on.
        case
            when charge_category = 'Purchase' and commitment_discount_id is not null then 'commitment_purchase'
            when charge_category <> 'Usage' then 'not_a_usage_charge'
            when coalesce(sku_gpu_count, instance_types.gpu_count, 0) = 0 then 'not_a_gpu_instance'
            when commitment_discount_status = 'Unused' then 'unused_commitment'
        end as skip_reason
    from resolved
    left join instance_types on lower(resolved.instance_type) = instance_types.instance_key
)

-- A GPU usage hour is billed in charge periods of at most a day; a longer one is damage. Rows
-- skipped as not GPU usage keep theirs (a commitment's Purchase row spans its billing month).
select
    * replace (
        case
            when reason is null and skip_reason is null and period_end - period_start > interval 1 day
                then 'charge_period_longer_than_a_day'
            else reason
        end as reason
    )
from classified;

-- name: billing_lines
create or replace temp table billing_lines as
select
    'focus' as source_format,
    $source_file as source_file,
    record_ref,
    day,
    provider_name,
    coalesce(pool, 'untagged') as pool,
    coalesce(replica_id, resource_id) as replica_id,
    resource_id,
    instance_type,
    gpu_type,
    gpu_count,
    -- Usage is metered in hours; where a row is not, its charge period is its duration.
    coalesce(
        case when consumed_unit in ('hours', 'hour', 'hrs', 'hr') then consumed_quantity end,
        epoch(period_end - period_start) / 3600.0
    ) as instance_hours,
    coalesce(
        case when consumed_unit in ('hours', 'hour', 'hrs', 'hr') then consumed_quantity end,
        epoch(period_end - period_start) / 3600.0
    ) * gpu_count as gpu_hours,
    billed_usd,
    effective_usd,
    (list_cost * usd_per_unit)::decimal(18, 10) as list_usd
from billing_typed
where reason is null and skip_reason is null;

-- name: uncommitted_cost_mismatch
-- A Usage row no commitment discount covers has nothing amortized into it, so the spec's
-- EffectiveCost equals its BilledCost. (A row a commitment covers has BilledCost 0 and its
-- share of the purchase as EffectiveCost: that difference is the spec, not an error.)
select
    record_ref,
    resource_id,
    billed_usd::double as billed_usd,
    effective_usd::double as effective_usd
from billing_typed
where
    reason is null and skip_reason is null and commitment_discount_id is null
    and effective_usd <> billed_usd
order by record_ref;
