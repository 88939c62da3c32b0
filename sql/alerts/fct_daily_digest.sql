/* The daily digest's numbers, one row per day: total cost (API and GPU, busy and idle) against a week before, API spend, caching savings, bills off their estimate, what to know about the day's data, and the features whose API spend moved most.
materialized: daily_table
grain: day
lookback: 7
columns:
  total_cost_usd: Everything the day cost (sum of fct_total_cost_daily.total_cost_usd: API bill or estimate plus self-hosted GPUs), USD; NULL when the day has no cost row.
  week_ago_total_cost_usd: The same 7 days before, USD; NULL when that day has no cost row.
  api_cost_usd: The API part of total_cost_usd (bill where billed, else estimate), USD.
  gpu_busy_cost_usd: The self-hosted GPU cost while serving, USD.
  gpu_idle_cost_usd: The self-hosted GPU cost while idle, USD.
  spend_usd: API spend on the day at catalog prices (sum of fct_spend_by_feature_daily.cost_usd), USD; NULL when nothing was priced.
  week_ago_spend_usd: The same 7 days before, USD; NULL when nothing was priced that day.
  caching_savings_usd: Prompt-cache savings plus gateway cache hits' avoided cost on the day, USD.
  off_estimate_lines: Lines of fct_invoice_reconciliation for the day whose status is not matched.
  idle_gpu_cost_usd: Idle GPU cost of every self-hosted pool on the day (fct_gpu_utilization_daily), USD.
  findings: The day's fct_data_findings (no gateway data, no bill, unpriced calls), warnings first: a list of {severity, finding, subject, message}; NULL when there are none.
  savings_findings: The day's 10 largest open savings findings by monthly USD (fct_savings_opportunities, largest first; exposure rows, which estimate nothing, left out), a list of {basis, kind, feature, provider, model, target, window_days, monthly_savings_usd, requests_affected, finding_key}; NULL when there are none. The digest shows the top 3 of at least savings.min_monthly_usd.
  top_movers: The 3 features whose API spend (at catalog prices) changed most against 7 days before, by absolute change, ties by name; a list of {feature, delta_usd} (delta_usd = the day's spend - a week before's, USD, a missing day counting 0).
*/
with as_of as (
    select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day
),

spend as (
    -- Every day some day computed reads: each one and the same day a week before.
    select day, feature, cost_usd
    from fct_spend_by_feature_daily
    where day between $start::date - $lookback_days and $end
),

feature_spend as (
    select
        as_of.day,
        spend.feature,
        sum(spend.cost_usd) filter (where spend.day = as_of.day) as spend_usd,
        sum(spend.cost_usd) filter (where spend.day = as_of.day - $lookback_days) as week_ago_spend_usd
    from as_of
    inner join spend on spend.day = as_of.day or spend.day = as_of.day - $lookback_days
    group by as_of.day, spend.feature
),

totals as (
    select day, sum(spend_usd) as spend_usd, sum(week_ago_spend_usd) as week_ago_spend_usd
    from feature_spend
    group by day
),

movers as (
    -- A feature new this week, or gone, moved by all of its spend; one priced on neither day did not move.
    select
        day,
        feature,
        coalesce(spend_usd, 0) - coalesce(week_ago_spend_usd, 0) as delta_usd
    from feature_spend
    where spend_usd is not null or week_ago_spend_usd is not null
),

top_movers as (
    select
        day,
        list(struct_pack(feature := feature, delta_usd := delta_usd) order by abs(delta_usd) desc, feature)[1:3]
            as top_movers
    from movers
    group by day
),

savings as (
    select day, sum(prompt_cache_savings_usd + gateway_cache_avoided_usd) as caching_savings_usd
    from fct_spend_by_feature_daily
    where day between $start and $end
    group by day
),

off_estimate as (
    select day, count(*) as off_estimate_lines
    from fct_invoice_reconciliation
    where day between $start and $end and status <> 'matched'
    group by day
),

costs as (
    select day, total_cost_usd, api_cost_usd, gpu_busy_cost_usd, gpu_idle_cost_usd
    from fct_total_cost_daily
    where day between $start::date - $lookback_days and $end
),

idle as (
    select day, sum(idle_cost_usd) as idle_gpu_cost_usd
    from fct_gpu_utilization_daily
    where day between $start and $end
    group by day
),

findings as (
    select
        day,
        list(
            struct_pack(severity := severity, finding := finding, subject := subject, message := message)
            order by severity = 'warning' desc, finding asc, subject asc
        ) as findings
    from fct_data_findings
    where day between $start and $end
    group by day
),

savings_findings as (
    select
        day,
        list(
            struct_pack(
                basis := basis, kind := kind, feature := feature, provider := provider, model := model,
                target := target, window_days := window_days, monthly_savings_usd := monthly_savings_usd,
                requests_affected := requests_affected, finding_key := finding_key
            )
            order by monthly_savings_usd desc, finding_key asc
        )[1:10] as savings_findings
    from fct_savings_opportunities
    -- Open findings with an estimate only: an acknowledged one is being worked on, a dismissed or
    -- done one is settled, an exposure row (basis exposure) has no saving to rank.
    where day between $start and $end and status = 'open' and monthly_savings_usd is not null
    group by day
),

total_cost as (
    select
        as_of.day,
        sum(cost.total_cost_usd) filter (where cost.day = as_of.day) as total_cost_usd,
        sum(cost.total_cost_usd) filter (where cost.day = as_of.day - $lookback_days) as week_ago_total_cost_usd,
        sum(cost.api_cost_usd) filter (where cost.day = as_of.day) as api_cost_usd,
        sum(cost.gpu_busy_cost_usd) filter (where cost.day = as_of.day) as gpu_busy_cost_usd,
        sum(cost.gpu_idle_cost_usd) filter (where cost.day = as_of.day) as gpu_idle_cost_usd
    from as_of
    inner join costs as cost on cost.day = as_of.day or cost.day = as_of.day - $lookback_days
    group by as_of.day
)

-- Money keeps its marts' scale (fct_requests' DECIMAL for spend and savings), never rounded here:
-- the Slack digest rounds when it words the numbers (pipelines/alerts/compose.py).
select
    as_of.day,
    total_cost.total_cost_usd,
    total_cost.week_ago_total_cost_usd,
    total_cost.api_cost_usd,
    total_cost.gpu_busy_cost_usd,
    total_cost.gpu_idle_cost_usd,
    totals.spend_usd,
    totals.week_ago_spend_usd,
    savings.caching_savings_usd,
    coalesce(off_estimate.off_estimate_lines, 0) as off_estimate_lines,
    idle.idle_gpu_cost_usd,
    findings.findings,
    savings_findings.savings_findings,
    top_movers.top_movers
from as_of
left join total_cost using (day)
left join totals using (day)
left join savings using (day)
left join off_estimate using (day)
left join idle using (day)
left join findings using (day)
left join savings_findings using (day)
left join top_movers using (day)
order by as_of.day
