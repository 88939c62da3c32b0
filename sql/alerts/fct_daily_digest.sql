/* The daily digest's numbers, one row per day: API spend against a week before, caching savings, bills off their estimate, idle GPU cost, and the features whose spend moved most.
materialized: daily_table
grain: day
lookback: 7
columns:
  spend_usd: API spend on the day (sum of fct_spend_by_feature_daily.cost_usd), USD; NULL when nothing was priced.
  week_ago_spend_usd: The same 7 days before, USD; NULL when nothing was priced that day.
  caching_savings_usd: Prompt-cache savings plus gateway cache hits' avoided cost on the day, USD.
  off_estimate_lines: Lines of fct_invoice_reconciliation for the day whose status is not matched.
  idle_gpu_cost_usd: Idle GPU cost of every self-hosted pool on the day, USD.
  top_movers: The 3 features whose spend changed most against 7 days before, by absolute change, ties by name; a list of {feature, delta_usd} (delta_usd = the day's spend - a week before's, USD, a missing day counting 0).
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

idle as (
    select day, sum(idle_cost_usd) as idle_gpu_cost_usd
    from fct_gpu_utilization_daily
    where day between $start and $end
    group by day
)

-- Money keeps its marts' scale (fct_requests' DECIMAL for spend and savings), never rounded here:
-- the Slack digest rounds when it words the numbers (pipelines/alerts/compose.py).
select
    as_of.day,
    totals.spend_usd,
    totals.week_ago_spend_usd,
    savings.caching_savings_usd,
    coalesce(off_estimate.off_estimate_lines, 0) as off_estimate_lines,
    idle.idle_gpu_cost_usd,
    top_movers.top_movers
from as_of
left join totals using (day)
left join savings using (day)
left join off_estimate using (day)
left join idle using (day)
left join top_movers using (day)
order by as_of.day
