/* Money spent on calls that bought nothing new, and on prompts past a price threshold, per day x feature x provider x model: duplicate calls and truncated retries (basis measured: money spent) and the long-context premium (basis price_rule).
materialized: daily_table
grain: day, feature, provider, model
lookback: 1
columns:
  requests: Billed calls (status ok, not a gateway cache hit) of the day.
  cost_usd: What they cost, USD.
  duplicate_requests: Billed calls that repeat an earlier ok call with the same prompt_hash, user and feature within savings.duplicate_window_s seconds (default 60) - a retry storm or a client loop. The first call of a run of repeats is not one; the earlier call may be on the day before.
  duplicate_usd: What the duplicates cost, USD (basis measured; regenerations the user asked for are included).
  finish_length_requests: Billed calls cut by their output cap (finish_reason = length).
  finish_length_usd: What those cut calls cost, USD.
  truncated_retry_requests: Billed calls cut by their output cap that the same user sent again for the same feature (the same prompt_hash, or the same first prefix hash: a raised max_tokens changes prompt_hash) within savings.truncation_retry_window_s seconds (default 120). Counted on the day of the cut call when the re-send is the same day, else on the re-send's day (a day's run cannot see the next day), under the cut call's feature, provider and model.
  truncated_retry_usd: What the cut calls that were sent again cost, USD (basis measured: paid for an answer thrown away).
  truncated_retry_day_before_usd: The part of truncated_retry_usd made the day before (cut before midnight, sent again after it), USD: spend of the day before, so a window starting on this day adds it to its spend in scope.
  useful_requests: requests - duplicate_requests - truncated_retry_requests: the calls that were not waste, what a finding's cost per call is measured over (its baseline, and the months after it is done).
  long_context_requests: Billed calls priced above the base context tier (price_tier other than base).
  long_context_premium_usd: What those calls cost over the same tokens at the base tier's rates, USD (basis price_rule; the calls are priced again by price_calls with context_tokens = 0).
*/
with history as (
    -- The day before each day too: a repeat or a re-send may follow its first call across midnight.
    select *
    from int_billed_calls
    where day between $start::date - $lookback_days and $end::date and status = 'ok'
),

sequenced as (
    -- Per call, the ok call before it with the same prompt, user and feature, and the next call of
    -- the same user and feature with the same prompt or the same first prefix.
    select
        *,
        lag(ts) over (partition by prompt_hash, user_id, feature order by ts, request_id) as previous_same_prompt_ts,
        lead(ts) over (partition by prompt_hash, user_id, feature order by ts, request_id) as next_same_prompt_ts,
        lead(ts) over (partition by prefix_hashes[1].hash, user_id, feature order by ts, request_id)
            as next_same_prefix_ts,
        lead(day) over (partition by prompt_hash, user_id, feature order by ts, request_id) as next_same_prompt_day,
        lead(day) over (partition by prefix_hashes[1].hash, user_id, feature order by ts, request_id)
            as next_same_prefix_day
    from history
),

flagged as (
    select
        *,
        prompt_hash is not null
        and epoch_ms(ts) - epoch_ms(previous_same_prompt_ts) <= $duplicate_window_s * 1000 as is_duplicate,
        -- The day the cut call is counted on: the first re-send's day (its own day when the re-send is).
        case
            when finish_reason = 'length' then least(
                case
                    when prompt_hash is not null
                        and epoch_ms(next_same_prompt_ts) - epoch_ms(ts) <= $truncation_retry_window_s * 1000
                        then next_same_prompt_day
                end,
                case
                    when prefix_hashes[1].hash is not null
                        and epoch_ms(next_same_prefix_ts) - epoch_ms(ts) <= $truncation_retry_window_s * 1000
                        then next_same_prefix_day
                end
            )
        end as retried_on
    from sequenced
    where not gateway_cache_hit and billed_cost_usd is not null
),

-- price_calls reads base_tier_calls, which the linter cannot see (ST03).
base_tier_calls as (  -- noqa: ST03
    -- The day's long-context calls, the same tokens at the base tier: context_tokens = 0.
    select * replace (0 as context_tokens)
    from history
    where
        day between $start and $end
        and not gateway_cache_hit
        and billed_cost_usd is not null
        and billed_price_tier <> 'base'
),

long_context as (
    select
        day,
        feature,
        provider,
        model,
        count(*) as long_context_requests,
        sum(billed_cost_usd) - sum(cost_usd) as long_context_premium_usd
    from price_calls(base_tier_calls, $start, $end)
    group by all
),

per_call as (
    -- Each billed call on the day it is counted on, with its flags for that day.
    select
        day, feature, provider, model, billed_cost_usd as cost_usd, is_duplicate,
        finish_reason = 'length' as cut, false as retried, false as retried_day_before
    from flagged
    where day between $start and $end
    union all
    select retried_on as day, feature, provider, model, billed_cost_usd, false, false, true, retried_on > day
    from flagged
    where retried_on between $start and $end
),

measured as (
    select
        day,
        feature,
        provider,
        model,
        count(*) filter (where not retried) as requests,
        coalesce(sum(cost_usd) filter (where not retried), 0) as cost_usd,
        count(*) filter (where is_duplicate) as duplicate_requests,
        coalesce(sum(cost_usd) filter (where is_duplicate), 0) as duplicate_usd,
        count(*) filter (where cut) as finish_length_requests,
        coalesce(sum(cost_usd) filter (where cut), 0) as finish_length_usd,
        count(*) filter (where retried) as truncated_retry_requests,
        coalesce(sum(cost_usd) filter (where retried), 0) as truncated_retry_usd,
        coalesce(sum(cost_usd) filter (where retried_day_before), 0) as truncated_retry_day_before_usd
    from per_call
    group by all
)

select
    measured.day,
    measured.feature,
    measured.provider,
    measured.model,
    measured.requests,
    measured.cost_usd,
    measured.duplicate_requests,
    measured.duplicate_usd,
    measured.finish_length_requests,
    measured.finish_length_usd,
    measured.truncated_retry_requests,
    measured.truncated_retry_usd,
    measured.truncated_retry_day_before_usd,
    measured.requests - measured.duplicate_requests - measured.truncated_retry_requests as useful_requests,
    coalesce(long_context.long_context_requests, 0) as long_context_requests,
    coalesce(long_context.long_context_premium_usd, 0) as long_context_premium_usd
from measured
left join long_context using (day, feature, provider, model)
order by all
