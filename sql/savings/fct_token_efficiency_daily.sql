/* Money spent on calls that bought nothing new, on prompts past a price threshold and on the long tails of prompts and answers, per day x feature x provider x model: duplicate calls and truncated retries (basis measured: money spent), the long-context premium (basis price_rule), repeats a gateway response cache would have answered, the input tail above the day's p90 and the output tail above its p95 (basis upper_bound: each priced again by price_calls with the change), and the reasoning tokens' cost (exposure). The per-call figures come from int_token_efficiency_calls.
materialized: daily_table
grain: day, feature, provider, model
lookback: 1
memory: per_request
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
  useful_requests: requests - duplicate_requests - the truncated retries that were not also duplicates (a call is wasted once): the calls that were not waste, summed over a window (a re-send after midnight nets its cut call out on the re-send's day), what a finding's cost per call is measured over (its baseline, and the months after it is done).
  long_context_requests: Billed calls priced above the base context tier (price_tier other than base).
  long_context_premium_usd: What those calls cost over the same tokens at the base tier's rates, USD (basis price_rule; the calls are priced again by price_calls with context_tokens = 0).
  gateway_repeat_requests: Billed calls whose prompt_hash an earlier ok call (any user or feature, a gateway cache hit included) sent within savings.gateway_cache_ttl_s seconds (default 86400), duplicates excluded: what a gateway response cache keyed on the prompt would have answered.
  gateway_repeat_usd: What those repeats cost, USD (basis upper_bound: safe only for deterministic answers that are not personal).
  input_tokens: Prompt tokens of the billed calls, cache included.
  uncached_input_tokens: Of those, the tokens billed at the plain input price (the `input` charges).
  uncached_input_usd: What the `input` charges cost, USD: with uncached_input_tokens, the day's effective price of a plain prompt token (prompt growth is priced with it).
  input_p50: The median prompt of the day's billed calls, tokens (cache included; quantile_disc: a prompt that was sent).
  input_p90: The 90th percentile prompt, tokens: the tail's threshold.
  input_p99: The 99th percentile prompt, tokens.
  tail_requests: Billed calls whose prompt is above input_p90 and has plain tokens to trim.
  tail_excess_input_tokens: Plain (uncached) prompt tokens above input_p90: per call above it, min(input_tokens - input_p90, uncached_input_tokens).
  tail_trim_usd: What the calls above input_p90 would cost less with those tokens removed (priced again by price_calls, the context tier included), USD (basis upper_bound: trimming may cost quality).
  output_p50: The median answer of the day's billed calls, output tokens (reasoning included).
  output_p95: The 95th percentile answer, output tokens: the output cap's threshold.
  verbose_requests: Billed calls whose answer is above output_p95 with visible tokens to cut.
  verbose_excess_output_tokens: Visible output tokens above output_p95: per call above it, min(output_tokens - output_p95, its output tokens other than reasoning and audio).
  output_cap_usd: What the calls above output_p95 would cost less with those tokens cut (priced again by price_calls), USD (basis upper_bound: a cap cuts answers; a finding is made only where under 1 % of calls are already cut).
  reasoning_tokens: Reasoning tokens of the billed calls.
  conversation_turn_requests: Billed calls that follow an earlier ok call of the same conversation_id (on the day or the day before): later turns, whose prompts carry the conversation so far.
  conversation_turn_usd: What those later turns cost, USD (exposure: compaction - summarising or dropping earlier turns - could cut their prompts; by how much, and at what cost to the answers, the logs cannot tell).
  conversation_input_tokens: Their prompt tokens, cache included.
  conversation_history_tokens: Of those, an estimate of the tokens from earlier turns: per later turn, the previous turn's prompt and answer tokens, never above its own prompt.
  duplicate_samples: The day's 5 costliest duplicates: [{cost_usd, request_id}], costliest first (ties by request_id); NULL when none.
  truncated_retry_samples: The 5 costliest truncated retries counted on the day, as duplicate_samples.
  gateway_repeat_samples: The 5 costliest gateway repeats, as duplicate_samples.
  tail_samples: The 5 calls whose trimmed tail saves most: [{cost_usd (the saving), request_id}].
  verbose_samples: The 5 calls whose capped answer saves most, as tail_samples.
  long_context_samples: The 5 long-context calls whose premium is largest, as tail_samples.
  duplicate_draws: 5 duplicates drawn at random with a fixed seed: the ids with the smallest md5 (random_samples merges days into a window); NULL when none.
  truncated_retry_draws: 5 truncated retries counted on the day, drawn as duplicate_draws.
  gateway_repeat_draws: 5 gateway repeats, drawn as duplicate_draws.
  tail_draws: 5 calls above input_p90 with tokens to trim, drawn as duplicate_draws.
  verbose_draws: 5 calls above output_p95 with tokens to cut, drawn as duplicate_draws.
  long_context_draws: 5 long-context calls, drawn as duplicate_draws.
  reasoning_usd: What they cost (the `reasoning` charges), USD (exposure: a lower reasoning effort spends fewer; how many fewer cannot be told from the logs).
*/
with history as (
    -- The day before each day too: a cut call may be sent again after midnight.
    -- Without the two list columns: this CTE is read more than once, so DuckDB may keep a copy of it.
    select
        * exclude (prefix_hashes, billed_charges),
        prefix_hashes[1].hash as first_prefix_hash
    from int_billed_calls
    where day between $start::date - $lookback_days and $end::date and status = 'ok'
),

sequenced as (
    -- Per call, the next call of the same user and feature with the same prompt or the same first prefix.
    select
        *,
        lead(ts) over (partition by prompt_hash, user_id, feature order by ts, request_id) as next_same_prompt_ts,
        lead(ts) over (partition by first_prefix_hash, user_id, feature order by ts, request_id)
            as next_same_prefix_ts,
        lead(day) over (partition by prompt_hash, user_id, feature order by ts, request_id) as next_same_prompt_day,
        lead(day) over (partition by first_prefix_hash, user_id, feature order by ts, request_id)
            as next_same_prefix_day
    from history
),

retried as (
    -- The cut calls sent again, with the day each is counted on: the first re-send's day (its own
    -- day when the re-send is).
    select
        request_id,
        day,
        feature,
        provider,
        model,
        billed_cost_usd,
        least(
            case
                when prompt_hash is not null
                    and epoch_ms(next_same_prompt_ts) - epoch_ms(ts) <= $truncation_retry_window_s * 1000
                    then next_same_prompt_day
            end,
            case
                when first_prefix_hash is not null
                    and epoch_ms(next_same_prefix_ts) - epoch_ms(ts) <= $truncation_retry_window_s * 1000
                    then next_same_prefix_day
            end
        ) as retried_on
    from sequenced
    where finish_reason = 'length' and not gateway_cache_hit and billed_cost_usd is not null
),

calls as (
    -- The calls of the days read, as int_token_efficiency_calls flags and prices them.
    select *
    from int_token_efficiency_calls
    where day between $start::date - $lookback_days and $end::date
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

day_charges as (
    select
        day,
        feature,
        provider,
        model,
        unnest(billed_charges) as charge
    from int_billed_calls
    where
        day between $start and $end
        and status = 'ok'
        and not gateway_cache_hit
        and billed_cost_usd is not null
),

charge_totals as (
    -- What the day's plain-input and reasoning charges came to.
    select
        day,
        feature,
        provider,
        model,
        coalesce(sum(charge['quantity']) filter (where charge['kind'] = 'input'), 0) as uncached_input_tokens,
        coalesce(sum(charge['quantity'] * charge['unit_usd']) filter (where charge['kind'] = 'input'), 0)
            as uncached_input_usd,
        coalesce(sum(charge['quantity'] * charge['unit_usd']) filter (where charge['kind'] = 'reasoning'), 0)
            as reasoning_usd
    from day_charges
    group by all
),

tails as (
    -- The day's prompt and answer sizes, and the tails trimmed and capped call by call.
    select
        day,
        feature,
        provider,
        model,
        any_value(input_p50) as input_p50,
        any_value(input_p90) as input_p90,
        any_value(input_p99) as input_p99,
        any_value(output_p50) as output_p50,
        any_value(output_p95) as output_p95,
        count(trimmed_tokens) as tail_requests,
        sum(trimmed_tokens) as tail_excess_input_tokens,
        sum(trim_savings_usd) as tail_trim_usd,
        max_by(
            {'cost_usd': trim_savings_usd, 'request_id': request_id},
            {'cost_usd': trim_savings_usd, 'request_id': request_id},
            5
        ) filter (where trimmed_tokens is not null) as tail_samples,
        count(capped_tokens) as verbose_requests,
        sum(capped_tokens) as verbose_excess_output_tokens,
        sum(cap_savings_usd) as output_cap_usd,
        max_by(
            {'cost_usd': cap_savings_usd, 'request_id': request_id},
            {'cost_usd': cap_savings_usd, 'request_id': request_id},
            5
        ) filter (where capped_tokens is not null) as verbose_samples,
        min_by(request_id, md5(request_id), 5) filter (where trimmed_tokens is not null) as tail_draws,
        min_by(request_id, md5(request_id), 5) filter (where capped_tokens is not null) as verbose_draws
    from calls
    where day between $start and $end
    group by all
),

long_context as (
    select
        day,
        feature,
        provider,
        model,
        count(*) as long_context_requests,
        sum(billed_cost_usd) - sum(cost_usd) as long_context_premium_usd,
        max_by(
            {'cost_usd': billed_cost_usd - cost_usd, 'request_id': request_id},
            {'cost_usd': billed_cost_usd - cost_usd, 'request_id': request_id},
            5
        ) as long_context_samples,
        min_by(request_id, md5(request_id), 5) as long_context_draws
    from price_calls(base_tier_calls, $start, $end)
    group by all
),

per_call as (
    -- Each billed call on the day it is counted on, with its flags for that day.
    select
        request_id, day, feature, provider, model, billed_cost_usd as cost_usd, is_duplicate,
        finish_reason = 'length' as cut, false as retried, false as retried_day_before,
        is_gateway_repeat, input_tokens, reasoning_tokens, false as retried_duplicate, history_tokens
    from calls
    where day between $start and $end
    union all
    select
        retried.request_id, retried.retried_on as day, retried.feature, retried.provider, retried.model,
        retried.billed_cost_usd, false, false, true, retried.retried_on > retried.day,
        false, 0, 0, coalesce(calls.is_duplicate, false), null
    from retried
    left join calls using (request_id)
    where retried.retried_on between $start and $end
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
        -- A cut call that also repeated an earlier one is a duplicate already: not wasted twice.
        count(*) filter (where retried and retried_duplicate) as truncated_retry_duplicates,
        coalesce(sum(cost_usd) filter (where retried), 0) as truncated_retry_usd,
        coalesce(sum(cost_usd) filter (where retried_day_before), 0) as truncated_retry_day_before_usd,
        -- The costliest examples (cost, then request_id: the same ids on every run).
        max_by({'cost_usd': cost_usd, 'request_id': request_id}, {'cost_usd': cost_usd, 'request_id': request_id}, 5)
            filter (where is_duplicate) as duplicate_samples,
        max_by({'cost_usd': cost_usd, 'request_id': request_id}, {'cost_usd': cost_usd, 'request_id': request_id}, 5)
            filter (where retried) as truncated_retry_samples,
        max_by({'cost_usd': cost_usd, 'request_id': request_id}, {'cost_usd': cost_usd, 'request_id': request_id}, 5)
            filter (where is_gateway_repeat) as gateway_repeat_samples,
        min_by(request_id, md5(request_id), 5) filter (where is_duplicate) as duplicate_draws,
        min_by(request_id, md5(request_id), 5) filter (where retried) as truncated_retry_draws,
        min_by(request_id, md5(request_id), 5) filter (where is_gateway_repeat) as gateway_repeat_draws,
        count(*) filter (where is_gateway_repeat) as gateway_repeat_requests,
        coalesce(sum(cost_usd) filter (where is_gateway_repeat), 0) as gateway_repeat_usd,
        sum(input_tokens) as input_tokens,
        sum(reasoning_tokens) as reasoning_tokens,
        count(history_tokens) as conversation_turn_requests,
        coalesce(sum(cost_usd) filter (where history_tokens is not null), 0) as conversation_turn_usd,
        coalesce(sum(input_tokens) filter (where history_tokens is not null), 0) as conversation_input_tokens,
        coalesce(sum(history_tokens), 0) as conversation_history_tokens
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
    measured.requests - measured.duplicate_requests - measured.truncated_retry_requests
    + measured.truncated_retry_duplicates as useful_requests,
    coalesce(long_context.long_context_requests, 0) as long_context_requests,
    coalesce(long_context.long_context_premium_usd, 0) as long_context_premium_usd,
    measured.gateway_repeat_requests,
    measured.gateway_repeat_usd,
    measured.input_tokens,
    coalesce(charge_totals.uncached_input_tokens, 0) as uncached_input_tokens,
    coalesce(charge_totals.uncached_input_usd, 0) as uncached_input_usd,
    tails.input_p50,
    tails.input_p90,
    tails.input_p99,
    coalesce(tails.tail_requests, 0) as tail_requests,
    coalesce(tails.tail_excess_input_tokens, 0) as tail_excess_input_tokens,
    coalesce(tails.tail_trim_usd, 0) as tail_trim_usd,
    tails.output_p50,
    tails.output_p95,
    coalesce(tails.verbose_requests, 0) as verbose_requests,
    coalesce(tails.verbose_excess_output_tokens, 0) as verbose_excess_output_tokens,
    coalesce(tails.output_cap_usd, 0) as output_cap_usd,
    measured.reasoning_tokens,
    coalesce(charge_totals.reasoning_usd, 0) as reasoning_usd,
    measured.conversation_turn_requests,
    measured.conversation_turn_usd,
    measured.conversation_input_tokens,
    measured.conversation_history_tokens,
    measured.duplicate_samples,
    measured.truncated_retry_samples,
    measured.gateway_repeat_samples,
    tails.tail_samples,
    tails.verbose_samples,
    long_context.long_context_samples,
    measured.duplicate_draws,
    measured.truncated_retry_draws,
    measured.gateway_repeat_draws,
    tails.tail_draws,
    tails.verbose_draws,
    long_context.long_context_draws
from measured
left join long_context using (day, feature, provider, model)
left join tails using (day, feature, provider, model)
left join charge_totals using (day, feature, provider, model)
order by all
