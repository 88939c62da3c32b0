/* Spend anomalies (alerted episodes) and their top driver */
select day, dimension, key, impact_usd::decimal(18, 2) as impact_usd, round(100 * impact_ratio, 1) as impact_pct,
       severity, top_driver
from fct_spend_anomalies
where is_anomaly and day between $first and $last
  -- an episode's first day: no anomaly of the same key in the 3 days before it
  and not exists (select 1 from fct_spend_anomalies as before
                  where before.dimension = fct_spend_anomalies.dimension and before.key = fct_spend_anomalies.key
                    and before.is_anomaly
                    and before.day between fct_spend_anomalies.day - 3 and fct_spend_anomalies.day - 1)
order by day, dimension, key
