/* API spend against its baseline, anomalies marked, USD | lines */
with total as (
    select day, actual_usd, expected_usd, is_anomaly,
        case when is_anomaly then severity || ': ' || top_driver || ' ' || round(impact_usd, 2) end as note
    from fct_spend_anomalies
    where day between $first and $last and dimension = 'total'
)

select day as x, 'actual' as series, actual_usd::double as y, is_anomaly as marked, note from total
union all
select day, 'expected', expected_usd::double, false, null from total
order by x, series
