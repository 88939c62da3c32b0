/* Savings realized by the findings marked done (costwatch findings done KEY): per finding and calendar month after its baseline, the cost per useful call of its feature, provider and model against the baseline, times the month's useful calls.
materialized: table
grain: finding_key, month
columns:
  finding_key: The finding marked done (fct_savings_opportunities.finding_key).
  done_at: When it was marked done, UTC.
  month: The calendar month measured (its first day); only the days after the baseline's last day count.
  days: Days of the month, after the baseline, with billed calls of the finding's feature, provider and model.
  unit_cost_before_usd: The baseline: cost per useful call (not a duplicate, not a re-sent cut call) over the finding's window when it was marked done, USD.
  unit_cost_after_usd: The same over the month's days counted, USD.
  volume_after: Useful calls of those days.
  realized_savings_usd: (unit_cost_before_usd - unit_cost_after_usd) x volume_after, USD (basis realized); negative when the calls got dearer.
*/
with scopes as (
    -- Each finding's feature, provider and model.
    select distinct finding_key, feature, provider, model from fct_savings_opportunities
),

done as (
    select
        state.finding_key,
        state.changed_at as done_at,
        state.baseline_unit_cost_usd,
        state.baseline_end,
        scope.feature,
        scope.provider,
        scope.model
    from savings_findings_state as state
    inner join scopes as scope using (finding_key)
    where state.status = 'done'
),

months as (
    select
        done.finding_key,
        done.done_at,
        done.baseline_unit_cost_usd,
        date_trunc('month', efficiency.day)::date as month,
        count(distinct efficiency.day) as days,
        sum(efficiency.cost_usd) as cost_usd,
        sum(efficiency.useful_requests) as volume_after
    from done
    inner join fct_token_efficiency_daily as efficiency
        on
            efficiency.feature = done.feature
            and efficiency.provider = done.provider
            and efficiency.model = done.model
            and efficiency.day > done.baseline_end
    group by all
)

select
    finding_key,
    done_at,
    month,
    days,
    baseline_unit_cost_usd as unit_cost_before_usd,
    -- Unit costs are ratios: kept to 1e-12 USD.
    (cost_usd / nullif(volume_after, 0))::decimal(38, 12) as unit_cost_after_usd,
    volume_after,
    (baseline_unit_cost_usd - unit_cost_after_usd) * volume_after as realized_savings_usd
from months
order by finding_key, month
