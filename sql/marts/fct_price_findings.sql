/* Stale prices: a model billed at a steady ratio to its catalog estimate, on days whose tokens match, since the day the ratio moved.
materialized: table
grain: provider, model_family
columns:
  model_family: Model name lower-cased without a date suffix.
  first_day: First day of the current run of days billed off the estimate.
  last_day: Last such day.
  days: Days in the run with matching tokens and a bill off the estimate by more than reconciliation.tolerance_pct.
  billed_usd: Billed over the run, USD.
  estimated_usd: Estimated at catalog prices over the run, USD.
  billed_to_estimated_ratio: Mean daily billed / estimated over the run: the factor the catalog price is off by.
  ratio_stddev: Standard deviation of the daily ratio; small means one price change, not noise.
  finding: stale_price when the run has at least 3 days and the ratio is steady (stddev under 2% of the mean); else unsteady_variance.
  recommendation: What to change, in words.
*/
with reconciled_daily as (
    -- One row per day x model: the reconciliation splits a model's day by service tier and long
    -- context where the bill does, and a stale price is found over the model's whole day.
    select day, provider, model_family, sum(billed_usd) as billed_usd, sum(estimated_usd) as estimated_usd
    from fct_invoice_reconciliation
    where granularity = 'day'
    group by all
),

daily as (
    -- Only days whose token counts agree: then a money gap is a price gap.
    select
        reconciliation.day,
        reconciliation.provider,
        reconciliation.model_family,
        reconciliation.billed_usd,
        reconciliation.estimated_usd,
        reconciliation.billed_usd / reconciliation.estimated_usd as ratio,
        abs(reconciliation.billed_usd / reconciliation.estimated_usd - 1) > $tolerance_pct as off_estimate
    from reconciled_daily as reconciliation
    join fct_token_reconciliation as tokens
        on tokens.day = reconciliation.day
       and tokens.provider = reconciliation.provider
       and tokens.model_family = reconciliation.model_family
    where reconciliation.estimated_usd > 0
      and tokens.finding = 'matched'
),

last_on_estimate as (
    select provider, model_family, max(day) filter (where not off_estimate) as last_matched_day
    from daily
    group by all
),

current_run as (
    select daily.*
    from daily
    join last_on_estimate using (provider, model_family)
    where daily.off_estimate
      and (last_on_estimate.last_matched_day is null or daily.day > last_on_estimate.last_matched_day)
),

runs as (
    select
        provider,
        model_family,
        min(day) as first_day,
        max(day) as last_day,
        count(*) as days,
        -- The run's money at fct_invoice_reconciliation's scale, unrounded: it adds up to those rows.
        sum(billed_usd) as billed_usd,
        sum(estimated_usd) as estimated_usd,
        -- In value order: the same result whatever order the days' rows are stored in.
        avg(ratio order by ratio)::double as billed_to_estimated_ratio,
        coalesce(stddev_samp(ratio order by ratio), 0)::double as ratio_stddev
    from current_run
    group by all
)

select
    *,
    case when days >= 3 and ratio_stddev < 0.02 * billed_to_estimated_ratio then 'stale_price'
         else 'unsteady_variance' end as finding,
    case when days >= 3 and ratio_stddev < 0.02 * billed_to_estimated_ratio then
        format('{} has been billed at {:.3f}x its catalog price since {}: update the catalog, '
               || 'or add prices.overrides.{} with prices {:.3f}x the catalog''s and effective_from: {}',
               model_family, billed_to_estimated_ratio, first_day, model_family, billed_to_estimated_ratio, first_day)
        else format('{} was billed off its estimate on {} day(s) since {} without a steady ratio: '
                    || 'look at the invoice lines',
                    model_family, days, first_day)
    end as recommendation
from runs
order by provider, model_family
