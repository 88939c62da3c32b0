/* Estimated (gateway logs x catalog prices) against billed (provider exports), per billing period x provider x model or line item x service tier x long context where the bill carries them.
materialized: table
grain: provider, granularity, period_start, line_key, service_tier, long_context
columns:
  day: The billed day for a one-day period (cost APIs, daily invoices); NULL for a longer invoice period.
  period_start: First UTC day of the billing period.
  period_end: Last UTC day of the billing period, inclusive.
  granularity: day, or period for an invoice covering several days.
  line_key: The model family for token charges, else the bill's line item (fine-tuning, tools, ...).
  model_family: Model family of token charges; NULL for other charges.
  service_tier: The tier reconciled (standard, batch, flex, priority) when every token line of the model's bill for the period names one; NULL when the bill does not say, and then the estimate covers every tier.
  long_context: Whether the row is the long-context share (calls priced above the base context tier against the bill's long-context lines) when every token line of the model's bill says; NULL when it does not, and then the estimate covers both.
  estimated_usd: The gateway logs' cost of the period's billable calls at catalog prices, USD.
  billed_usd: What the provider billed, USD.
  variance_usd: billed_usd minus estimated_usd, USD.
  variance_ratio: variance_usd / estimated_usd (ratio); NULL when nothing was estimated.
  status: matched (within reconciliation.tolerance_usd or tolerance_pct of the bill), over (billed more than estimated), under (billed less), billed_without_logs (billed, no gateway traffic), logs_without_billing (gateway traffic on a day the provider's export covers, nothing billed), unpriced_model (billed, logged, but the catalog has no price to estimate with).
  logged_requests: Billable gateway calls behind the estimate.
  source_format: Export the billed amount came from.
*/
with bill_lines as (
    select
        period_start,
        period_end,
        provider,
        coalesce(model_family, line_item) as line_key,
        model_family,
        source_format,
        service_tier,
        long_context,
        billed_usd
    from stg_provider_costs
),

bill_dimensions as (
    -- A dimension is reconciled by only where every line of the model's bill from one export
    -- carries it (OpenAI line items, a cost report grouped by description); where any line lacks
    -- it (an invoice, an ungrouped report) it is added up on both sides.
    select
        period_start,
        period_end,
        provider,
        line_key,
        source_format,
        bool_and(service_tier is not null) as by_service_tier,
        bool_and(long_context is not null) as by_long_context
    from bill_lines
    group by all
),

billed as (
    select
        bill_lines.period_start,
        bill_lines.period_end,
        bill_lines.provider,
        bill_lines.line_key,
        bill_lines.model_family,
        bill_lines.source_format,
        case when bill_dimensions.by_service_tier then bill_lines.service_tier end as service_tier,
        case when bill_dimensions.by_long_context then bill_lines.long_context end as long_context,
        sum(bill_lines.billed_usd) as billed_usd
    from bill_lines
    join bill_dimensions using (period_start, period_end, provider, line_key, source_format)
    group by all
),

estimated_daily as (
    select
        day,
        provider,
        model_family,
        service_tier,
        long_context,
        sum(requests) as logged_requests,
        sum(estimated_usd) as estimated_usd
    from int_provider_calls_daily
    group by all
),

billed_vs_estimated as (
    -- Each bill line against the logs' estimate over the same days, tier and context window
    -- (a dimension the bill does not carry matches every value of it).
    select
        billed.period_start,
        billed.period_end,
        billed.provider,
        billed.line_key,
        billed.model_family,
        billed.service_tier,
        billed.long_context,
        billed.source_format,
        sum(estimated_daily.logged_requests) as logged_requests,
        sum(estimated_daily.estimated_usd) as estimated_usd,
        billed.billed_usd
    from billed
    left join estimated_daily
        on estimated_daily.provider = billed.provider
       and estimated_daily.model_family = billed.model_family
       and estimated_daily.day between billed.period_start and billed.period_end
       and (billed.service_tier is null or estimated_daily.service_tier = billed.service_tier)
       and (billed.long_context is null or estimated_daily.long_context = billed.long_context)
    group by all
),

covered_days as (
    -- Days a daily export covers, so a missing line there means "billed zero", not "not arrived".
    select distinct provider, day from provider_billing_coverage
),

unbilled_traffic as (
    select
        estimated_daily.day as period_start,
        estimated_daily.day as period_end,
        estimated_daily.provider,
        estimated_daily.model_family as line_key,
        estimated_daily.model_family,
        estimated_daily.service_tier,
        estimated_daily.long_context,
        null as source_format,
        estimated_daily.logged_requests,
        estimated_daily.estimated_usd,
        null::decimal(18, 10) as billed_usd
    from estimated_daily
    join covered_days using (provider, day)
    where estimated_daily.estimated_usd > 0
      and not exists (
          select 1 from billed
          where billed.provider = estimated_daily.provider
            and billed.model_family = estimated_daily.model_family
            and billed.period_start = estimated_daily.day
            and billed.period_end = estimated_daily.day
            and (billed.service_tier is null or billed.service_tier = estimated_daily.service_tier)
            and (billed.long_context is null or billed.long_context = estimated_daily.long_context)
      )
),

reconciled as (
    select * from billed_vs_estimated
    union all
    select * from unbilled_traffic
)

select
    case when period_start = period_end then period_start end as day,
    period_start,
    period_end,
    case when period_start = period_end then 'day' else 'period' end as granularity,
    provider,
    line_key,
    model_family,
    service_tier,
    long_context,
    -- Unrounded: the estimate keeps fct_requests' scale (DECIMAL(38, 12)), the bill its export's, so
    -- the estimates add up to the requests and variance_usd is exactly billed minus estimated.
    coalesce(estimated_usd, 0) as estimated_usd,
    coalesce(billed_usd, 0) as billed_usd,
    coalesce(billed_usd, 0) - coalesce(estimated_usd, 0) as variance_usd,
    ((coalesce(billed_usd, 0) - coalesce(estimated_usd, 0)) / nullif(estimated_usd, 0))::double as variance_ratio,
    coalesce(logged_requests, 0)::bigint as logged_requests,
    case
        when billed_usd is null then 'logs_without_billing'
        when logged_requests > 0 and estimated_usd is null then 'unpriced_model'
        when coalesce(estimated_usd, 0) = 0 and billed_usd <> 0 then 'billed_without_logs'
        when abs(billed_usd - coalesce(estimated_usd, 0))
             <= greatest($tolerance_usd, $tolerance_pct * abs(billed_usd)) then 'matched'
        when billed_usd > coalesce(estimated_usd, 0) then 'over'
        else 'under'
    end as status,
    source_format
from reconciled
order by period_start, period_end, provider, line_key, service_tier nulls first, long_context nulls first
