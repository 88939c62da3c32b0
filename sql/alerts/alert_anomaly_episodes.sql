/* Anomaly episodes to alert about, per day x dimension x key: the episodes with an anomaly on the day (new, lasting or escalated) and those whose last anomaly was QUIET_DAYS (3) days before, which have recovered.
materialized: daily_table
grain: day, dimension, key
lookback: 3
renamed: impact_ratio <- impact_pct
columns:
  day: The day the alerts are for.
  dimension: total, provider, model, feature, user, or gpu_pool_idle, as in fct_spend_anomalies.
  key: The provider, model, feature, user or pool; 'all' for the total.
  episode_state: open (an anomaly on the day) or recovered (QUIET_DAYS = 3 normal days in a row since the episode's last anomaly).
  episode_start: First anomalous day of the episode. An episode lasts while fewer than QUIET_DAYS normal days separate its anomalies.
  last_anomaly_day: The episode's latest anomalous day through day (equals day while open).
  worst_severity: The loudest severity the episode has reached so far, warning or critical; an escalation is a new alert.
  actual_usd: Spend on last_anomaly_day, USD (from fct_spend_anomalies).
  expected_usd: Expected spend on last_anomaly_day, USD.
  impact_usd: actual_usd - expected_usd on last_anomaly_day, USD.
  impact_ratio: impact_usd / expected_usd on last_anomaly_day (ratio); NULL when nothing was expected.
  top_driver: The cause with the largest absolute dollars on last_anomaly_day.
  drivers: The causes in dollars on last_anomaly_day, as JSON.
  top_users: For a feature, the 3 users whose spend in it moved most on last_anomaly_day, as JSON.
  top_models: For a feature, the 3 models whose spend in it moved most on last_anomaly_day, as JSON.
*/
with quiet_period as (
    -- QUIET_DAYS: normal days in a row before an anomaly counts as resolved. Up to QUIET_DAYS - 1
    -- normal days keep the episode open: a one-day dip in a lasting problem is not a recovery
    -- followed by a new alert. It is the header's `lookback` (the window a day's alerts report on).
    select $lookback_days as quiet_days
),

flagged as (
    select
        day,
        dimension,
        key,
        severity,
        coalesce(day - lag(day) over (partition by dimension, key order by day), 99) as gap_days,
        lead(day) over (partition by dimension, key order by day) - day as next_gap_days
    from fct_spend_anomalies
    -- Every anomalous day through $end: an episode's start reaches back along its chain of anomalies.
    -- `lookback: 3` covers which episodes a day reports (open on the day, recovered from 3 days before); a
    -- change further back alters a later day only by joining or splitting an episode, so re-run from that day.
    where is_anomaly and day <= $end
),

numbered as (
    select
        flagged.*,
        sum(case when flagged.gap_days > quiet_period.quiet_days then 1 else 0 end)
            over (partition by flagged.dimension, flagged.key order by flagged.day)
            as episode
    from flagged
    cross join quiet_period
),

episode_days as (
    -- Each anomalous day with its episode as a day that reads through it sees it: the episode's
    -- start, and the loudest severity reached by then.
    select
        day,
        dimension,
        key,
        next_gap_days,
        min(day) over (partition by dimension, key, episode) as episode_start,
        max(case severity when 'critical' then 2 when 'warning' then 1 else 0 end)
            over (partition by dimension, key, episode order by day) as worst
    from numbered
),

episodes as (
    -- A day's alerts: the episodes with an anomaly on it (open), and those whose last anomaly
    -- was QUIET_DAYS before it with none since (recovered).
    select episode_days.day as alert_day, 'open' as episode_state, episode_days.*
    from episode_days
    where episode_days.day between $start and $end
    union all
    select episode_days.day + quiet_period.quiet_days, 'recovered', episode_days.*
    from episode_days
    cross join quiet_period
    where
        quiet_period.quiet_days > 0  -- with none, the day's anomaly is its open row
        and episode_days.day + quiet_period.quiet_days between $start and $end
        and (episode_days.next_gap_days is null or episode_days.next_gap_days > quiet_period.quiet_days)
)

select
    episodes.alert_day as day,
    episodes.dimension,
    episodes.key,
    episodes.episode_state,
    episodes.episode_start,
    episodes.day as last_anomaly_day,
    case when episodes.worst = 2 then 'critical' else 'warning' end as worst_severity,
    latest.actual_usd,
    latest.expected_usd,
    latest.impact_usd,
    latest.impact_ratio,
    latest.top_driver,
    latest.drivers,
    latest.top_users,
    latest.top_models
from episodes
inner join fct_spend_anomalies as latest
    on
        episodes.day = latest.day
        and episodes.dimension = latest.dimension
        and episodes.key = latest.key
order by episodes.alert_day, episodes.dimension, episodes.key
