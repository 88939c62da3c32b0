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
with feature_spend as (
    select
        feature,
        sum(cost_usd) filter (where day = $day) as spend_usd,
        sum(cost_usd) filter (where day = $day::date - $lookback_days) as week_ago_spend_usd
    from fct_spend_by_feature_daily
    where day in ($day, $day::date - $lookback_days)
    group by feature
),

movers as (
    -- A feature new this week, or gone, moved by all of its spend; one priced on neither day did not move.
    select
        feature,
        coalesce(spend_usd, 0) - coalesce(week_ago_spend_usd, 0) as delta_usd
    from feature_spend
    where spend_usd is not null or week_ago_spend_usd is not null
)

-- Money keeps its marts' scale (fct_requests' DECIMAL for spend and savings), never rounded here:
-- the Slack digest rounds when it words the numbers (pipelines/alerts/compose.py).
select
    $day::date as day,
    (select sum(spend_usd) from feature_spend) as spend_usd,
    (select sum(week_ago_spend_usd) from feature_spend) as week_ago_spend_usd,
    (
        select sum(prompt_cache_savings_usd + gateway_cache_avoided_usd)
        from fct_spend_by_feature_daily
        where day = $day
    ) as caching_savings_usd,
    (
        select count(*)
        from fct_invoice_reconciliation
        where day = $day and status <> 'matched'
    ) as off_estimate_lines,
    (select sum(idle_cost_usd) from fct_gpu_utilization_daily where day = $day) as idle_gpu_cost_usd,
    (
        select list(struct_pack(feature := feature, delta_usd := delta_usd) order by abs(delta_usd) desc, feature)[1:3]
        from movers
    ) as top_movers
