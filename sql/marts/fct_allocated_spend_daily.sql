/* The day's billed money allocated to feature x user x model by each one's share of the estimate, so the allocation adds up to the bill exactly (to the micro-dollar, hence to the cent).
materialized: daily_table
grain: day, provider, feature, user_id, model, allocation_basis
lookback: 0
columns:
  feature: Product feature; 'unallocated' for billed money no gateway traffic explains.
  user_id: End user; 'unallocated' for billed money no gateway traffic explains.
  model: Model as logged; for an unallocated row, the bill's model family or line item.
  estimated_usd: The logs' cost of this feature x user x model at catalog prices, USD.
  allocated_usd: Its share of the provider's bill for the day, USD, in micro-dollars rounded so the provider's rows sum exactly to the day's bill (rounded to the micro-dollar).
  allocation_basis: estimated_share (bill split by estimated cost within provider x day x model), no_gateway_traffic (billed tokens with no logged calls), unpriced_model (logged calls, but no catalog price to split by), not_token_usage (charges such as fine-tuning), or no_bill (estimated, nothing billed).
*/
with bills as (
    -- One-day charges only: a monthly invoice cannot be split by day.
    select
        period_start as day,
        provider,
        model_family,
        cost_type,
        coalesce(model_family, line_item) as line_key,
        sum(billed_usd) as billed_usd
    from stg_provider_costs
    where is_daily and period_start between $start and $end
    group by all
),

estimates as (
    select
        day,
        feature,
        user_id,
        provider,
        model,
        model_family(model) as model_family,
        sum(cost_usd) as estimated_usd
    from fct_spend_daily
    where
        day between $start and $end
        and cost_usd is not null
        -- Providers billed that day.
        and exists (
            select 1 from bills where bills.day = fct_spend_daily.day and bills.provider = fct_spend_daily.provider
        )
    group by all
),

unpriced_models as (
    -- Logged calls with no catalog price: there is traffic, but no estimate to split a bill by.
    select distinct day, provider, model_family(model) as model_family
    from fct_spend_daily
    where day between $start and $end and unpriced_requests > 0
),

pools as (
    -- Which estimates each bill line is split across: token charges of a model go to that
    -- model's calls; a provider total without a model goes to all the provider's calls.
    select
        bills.day,
        bills.provider,
        bills.line_key,
        bills.billed_usd,
        estimates.feature,
        estimates.user_id,
        estimates.model,
        estimates.estimated_usd,
        sum(estimates.estimated_usd) over (partition by bills.day, bills.provider, bills.line_key)
            as pool_estimated_usd
    from bills
    join estimates
        on estimates.day = bills.day
       and estimates.provider = bills.provider
       and bills.cost_type = 'tokens'
       and (bills.model_family is null or estimates.model_family = bills.model_family)
),

shares as (
    select
        day, provider, feature, user_id, model, estimated_usd,
        billed_usd * estimated_usd / pool_estimated_usd as exact_usd,
        'estimated_share' as allocation_basis
    from pools
    where pool_estimated_usd > 0
    union all
    select
        bills.day, bills.provider, 'unallocated', 'unallocated', bills.line_key, 0, bills.billed_usd,
        case
            when bills.cost_type <> 'tokens' then 'not_token_usage'
            when exists (select 1 from unpriced_models
                         where unpriced_models.day = bills.day
                           and unpriced_models.provider = bills.provider
                           and unpriced_models.model_family = bills.model_family) then 'unpriced_model'
            else 'no_gateway_traffic'
        end
    from bills
    where not exists (
        select 1 from pools
        where pools.day = bills.day and pools.provider = bills.provider and pools.line_key = bills.line_key
          and pools.pool_estimated_usd > 0
    )
    union all
    select
        estimates.day, estimates.provider, estimates.feature, estimates.user_id, estimates.model,
        estimates.estimated_usd, 0, 'no_bill'
    from estimates
    where not exists (
        select 1 from pools
        where pools.day = estimates.day and pools.provider = estimates.provider and pools.feature = estimates.feature
          and pools.user_id = estimates.user_id and pools.model = estimates.model
    )
),

merged as (
    select
        day, provider, feature, user_id, model, allocation_basis,
        sum(estimated_usd) as estimated_usd,
        sum(exact_usd) as exact_usd
    from shares
    group by all
),

units as (
    -- Micro-dollars: fine enough that thousands of small rows keep their share (whole cents
    -- would round most of them to zero), exact enough to add up to the bill.
    select
        *,
        floor(exact_usd * 1000000) as floor_units,
        exact_usd * 1000000 - floor(exact_usd * 1000000) as fraction
    from merged
),

targets as (
    select day, provider, round(sum(billed_usd) * 1000000) as target_units from bills group by day, provider
),

ranked as (
    -- Largest remainder: the units lost to rounding down go to the rows that lost the most.
    select
        units.*,
        coalesce(targets.target_units, 0)
        - sum(units.floor_units) over (partition by units.day, units.provider) as leftover_units,
        row_number() over (
            partition by units.day, units.provider
            order by units.fraction desc, units.feature asc, units.user_id asc, units.model asc
        ) as remainder_rank
    from units
    left join targets using (day, provider)
)

select
    day,
    feature,
    user_id,
    provider,
    model,
    allocation_basis,
    -- The estimate keeps fct_requests' scale (a sum of them is DECIMAL(38, 12)): rounding it per row
    -- would make the rows drift from the requests. Only allocated_usd is in micro-dollars.
    estimated_usd,
    ((floor_units + case when remainder_rank <= leftover_units then 1 else 0 end) / 1000000)::decimal(18, 6)
        as allocated_usd
from ranked
order by day, provider, feature, user_id, model
