/* What to know about each day's data before trusting its numbers, with the fix: a day without gateway input, a provider with calls but no bill for the day, calls no price covers.
materialized: daily_table
grain: day, finding, subject
lookback: 0
columns:
  finding: no_gateway_data (no gateway log line was read for the day), no_bill (a provider whose cost export is configured billed nothing for a day it had calls), or unpriced_model (API calls of a model the catalog has no price for).
  subject: What the finding is about: gateway_logs, a provider, or provider/model.
  requests: The calls concerned: the provider's calls (no_bill), the unpriced calls (unpriced_model); 0 for no_gateway_data.
  share: requests / the day's API calls (ratio 0-1); NULL for no_gateway_data.
  severity: warning for no_gateway_data and for unpriced calls above checks.max_unpriced_share of the day's API calls; info otherwise.
  message: The finding and its fix, in words.
*/
with days as (
    select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day
),

audit as (
    select day, sum(lines) as lines from gateway_ingest_audit where day between $start and $end group by day
),

calls as (
    select day, provider, model, sum(requests) as requests, sum(unpriced_requests) as unpriced_requests
    from fct_spend_daily
    where day between $start and $end and provider <> 'self_hosted'
    group by all
),

day_calls as (
    select day, sum(requests) as api_requests from calls group by day
),

exported_providers as (
    -- Providers some configured cost export bills: only those can be missing a bill.
    select distinct provider from stg_provider_costs
),

billed_days as (
    select distinct period_start as day, provider
    from stg_provider_costs
    where is_daily and period_start between $start and $end
),

findings as (
    select
        days.day,
        'no_gateway_data' as finding,
        'gateway_logs' as subject,
        0::hugeint as requests,
        'No gateway log line was read for ' || days.day || ': nothing is known of its calls, and its API cost '
        || 'shows as $0. Check that the gateway writes its logs where sources.gateway_logs points, then run '
        || '`costwatch run --date ' || days.day || '` again.' as message
    from days
    left join audit using (day)
    where coalesce(audit.lines, 0) = 0

    union all

    select
        day,
        'no_bill',
        provider,
        sum(requests),
        provider || ' had ' || format('{:,}', sum(requests)::bigint) || ' calls on ' || day
        || ' but its cost export has no line for the day, so the day''s cost is the catalog estimate. '
        || 'If the export has not caught up yet, `costwatch run --changed` re-runs the day when it does; '
        || 'else check the export under sources.provider_costs covers ' || day || '.'
    from calls
    where
        provider in (select provider from exported_providers)
        and not exists (
            select 1 from billed_days where billed_days.day = calls.day and billed_days.provider = calls.provider
        )
    group by day, provider

    union all

    select
        day,
        'unpriced_model',
        provider || '/' || model,
        unpriced_requests,
        format('{:,}', unpriced_requests::bigint) || ' calls of ' || model || ' (' || provider || ') on ' || day
        || ' have no catalog price, so their cost is unknown (counted nowhere, not $0). Add the model under '
        || 'prices.overrides in costwatch.yaml (input_cost_per_token, output_cost_per_token), or point it at '
        || 'a catalog key with the tag model_map_key.'
    from calls
    where unpriced_requests > 0
)

select
    findings.day,
    findings.finding,
    findings.subject,
    findings.requests::bigint as requests,
    case when findings.finding <> 'no_gateway_data' then findings.requests / day_calls.api_requests end as share,
    case
        when findings.finding = 'no_gateway_data' then 'warning'
        when findings.finding = 'unpriced_model' and findings.requests / day_calls.api_requests > $max_unpriced_share
            then 'warning'
        else 'info'
    end as severity,
    findings.message
from findings
left join day_calls using (day)
order by findings.day, findings.finding, findings.subject
