/* Total cost by model (API: bill or estimate; self-hosted: its pool's GPU cost), USD | stacked */
with billed_days as (
    select distinct day, provider from fct_allocated_spend_daily where day between $first and $last
),

costs as (
    select day, model, allocated_usd as usd from fct_allocated_spend_daily where day between $first and $last
    union all
    select spend.day, spend.model, spend.cost_usd
    from fct_spend_daily as spend
    left join billed_days using (day, provider)
    where spend.day between $first and $last and spend.cost_usd is not null and billed_days.provider is null
    union all
    select day, model, gpu_cost_usd from fct_selfhost_unit_cost_daily where day between $first and $last
),

ranked as (
    -- The 8 costliest models of the period by name; the rest as one series.
    select model, row_number() over (order by sum(usd) desc, model asc) as rank from costs group by model
)

select costs.day as x, case when ranked.rank <= 8 then costs.model else 'other models' end as series,
    sum(costs.usd)::double as y
from costs
inner join ranked using (model)
group by all
order by x, series
