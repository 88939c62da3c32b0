/* A finding's baseline when it is marked done: the cost per useful call of its feature, provider and model over its latest window */
with latest as (
    select feature, provider, model, period_start, day
    from fct_savings_opportunities
    where finding_key = $key
    order by day desc
    limit 1
)

select
    latest.period_start,
    latest.day as period_end,
    (sum(efficiency.cost_usd) / nullif(sum(efficiency.useful_requests), 0))::decimal(38, 12) as unit_cost_usd
from latest
inner join fct_token_efficiency_daily as efficiency
    on
        efficiency.feature = latest.feature
        and efficiency.provider = latest.provider
        and efficiency.model = latest.model
        and efficiency.day between latest.period_start and latest.day
group by latest.period_start, latest.day
