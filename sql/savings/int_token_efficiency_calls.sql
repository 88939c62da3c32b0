/* Every billed API call of the day as the token-efficiency levers see it, call by call: whether it repeats an earlier call (a duplicate of the same user, or a prompt a gateway response cache would have answered), the conversation history it carries, its day's prompt and answer sizes, and what trimming its prompt to the day's p90 or capping its answer at the day's p95 would save (each priced again by price_calls). fct_token_efficiency_daily adds them up; the combined upper bound of the savings findings takes them call by call.
materialized: daily_parquet
grain: request_id
lookback: 1
columns:
  billed_cost_usd: What the call cost as billed (fct_requests.cost_usd), USD.
  input_tokens: Its prompt tokens, cache included.
  output_tokens: Its output tokens, reasoning included.
  reasoning_tokens: Its reasoning tokens.
  finish_reason: Why its answer ended (length: cut by its output cap).
  is_duplicate: It repeats an earlier ok call with the same prompt_hash, user and feature within savings.duplicate_window_s seconds (default 60); the earlier call may be on the day before.
  is_gateway_repeat: Not a duplicate, and an earlier ok call (any user or feature, a gateway cache hit included) sent the same prompt_hash within savings.gateway_cache_ttl_s seconds (default 86400): a gateway response cache keyed on the prompt would have answered it.
  history_tokens: For a later turn of a conversation (an earlier ok call of the same conversation_id on the day or the day before), an estimate of the tokens its prompt carries from earlier turns: the previous turn's prompt and answer tokens, never above its own prompt; NULL otherwise.
  input_p50: The median prompt of the day's billed calls of its feature, provider and model, tokens (quantile_disc: a prompt that was sent).
  input_p90: Their 90th percentile prompt, tokens: the tail's threshold.
  input_p99: Their 99th percentile prompt, tokens.
  output_p50: Their median answer, output tokens (reasoning included).
  output_p95: Their 95th percentile answer, output tokens: the output cap's threshold.
  trimmed_tokens: For a prompt above input_p90 with plain tokens to trim, min(input_tokens - input_p90, its uncached input tokens); NULL otherwise.
  trim_savings_usd: What the call would cost less with those tokens removed (priced again by price_calls, the context tier included), USD; NULL when nothing is trimmed.
  capped_tokens: For an answer above output_p95 with visible tokens to cut, min(output_tokens - output_p95, its output tokens other than reasoning and audio); NULL otherwise.
  cap_savings_usd: What the call would cost less with those tokens cut (priced again by price_calls), USD; NULL when nothing is cut.
*/
with history as (
    -- The day before each day too: a call may repeat one from before midnight.
    select * exclude (prefix_hashes, billed_charges)
    from int_billed_calls
    where day between $start::date - $lookback_days and $end::date and status = 'ok'
),

sequenced as (
    select
        *,
        lag(ts) over (partition by prompt_hash, user_id, feature order by ts, request_id) as previous_same_prompt_ts,
        -- The ok call before it with the same prompt from anyone: what a gateway response cache holds.
        lag(ts) over (partition by prompt_hash order by ts, request_id) as previous_any_prompt_ts,
        -- The conversation's previous turn: its prompt and answer are what this prompt carries over.
        lag(input_tokens + output_tokens) over (partition by conversation_id order by ts, request_id)
            as previous_turn_tokens
    from history
),

day_calls as (
    select
        request_id,
        day,
        feature,
        provider,
        model,
        billed_cost_usd,
        input_tokens,
        output_tokens,
        reasoning_tokens,
        finish_reason,
        coalesce(
            prompt_hash is not null
            and epoch_ms(ts) - epoch_ms(previous_same_prompt_ts) <= $duplicate_window_s * 1000,
            false
        ) as is_duplicate,
        coalesce(
            prompt_hash is not null
            and epoch_ms(ts) - epoch_ms(previous_any_prompt_ts) <= $gateway_cache_ttl_s * 1000,
            false
        ) and not is_duplicate as is_gateway_repeat,
        case
            when conversation_id is not null and previous_turn_tokens is not null
                then least(previous_turn_tokens, input_tokens)
        end as history_tokens
    from sequenced
    where day between $start and $end and not gateway_cache_hit and billed_cost_usd is not null
),

shape as (
    -- The day's prompt and answer sizes per feature and model: the tails' thresholds.
    select
        day,
        feature,
        provider,
        model,
        quantile_disc(input_tokens, 0.5) as input_p50,
        quantile_disc(input_tokens, 0.9) as input_p90,
        quantile_disc(input_tokens, 0.99) as input_p99,
        quantile_disc(output_tokens, 0.5) as output_p50,
        quantile_disc(output_tokens, 0.95) as output_p95
    from day_calls
    group by all
),

tail_sized as (
    -- Per call, the plain prompt tokens above the day's p90 (cached ones stay), and the visible
    -- answer tokens above its p95 (reasoning and audio stay).
    select
        calls.* exclude (prefix_hashes, billed_charges),
        least(calls.input_tokens - shape.input_p90, calls.uncached_input_tokens) as trimmed_tokens,
        least(
            calls.output_tokens - shape.output_p95,
            calls.output_tokens - calls.reasoning_tokens - calls.audio_output_tokens
        ) as capped_tokens
    from int_billed_calls as calls
    inner join shape using (day, feature, provider, model)
    where
        calls.day between $start and $end
        and calls.status = 'ok'
        and not calls.gateway_cache_hit
        and calls.billed_cost_usd is not null
),

-- price_calls reads tail_calls, which the linter cannot see (ST03).
tail_calls as (  -- noqa: ST03
    -- The calls above the day's p90 prompt with their plain prompt tokens above it removed, and
    -- those above its p95 answer with their visible output above it cut: one pricing pass for both.
    select
        * replace (
            input_tokens - trimmed_tokens as input_tokens,
            uncached_input_tokens - trimmed_tokens as uncached_input_tokens,
            context_tokens - trimmed_tokens as context_tokens
        ),
        'trim' as lever,
        trimmed_tokens as removed_tokens
    from tail_sized
    where trimmed_tokens > 0
    union all by name
    select
        * replace (output_tokens - capped_tokens as output_tokens),
        'cap' as lever,
        capped_tokens as removed_tokens
    from tail_sized
    where capped_tokens > 0
),

tails as (
    select
        request_id,
        any_value(removed_tokens) filter (where lever = 'trim') as trimmed_tokens,
        any_value(billed_cost_usd - cost_usd) filter (where lever = 'trim') as trim_savings_usd,
        any_value(removed_tokens) filter (where lever = 'cap') as capped_tokens,
        any_value(billed_cost_usd - cost_usd) filter (where lever = 'cap') as cap_savings_usd
    from price_calls(tail_calls, $start, $end)
    group by request_id
)

select
    day_calls.day,
    day_calls.request_id,
    day_calls.feature,
    day_calls.provider,
    day_calls.model,
    day_calls.billed_cost_usd,
    day_calls.input_tokens,
    day_calls.output_tokens,
    day_calls.reasoning_tokens,
    day_calls.finish_reason,
    day_calls.is_duplicate,
    day_calls.is_gateway_repeat,
    day_calls.history_tokens,
    shape.input_p50,
    shape.input_p90,
    shape.input_p99,
    shape.output_p50,
    shape.output_p95,
    tails.trimmed_tokens,
    tails.trim_savings_usd,
    tails.capped_tokens,
    tails.cap_savings_usd
from day_calls
inner join shape using (day, feature, provider, model)
left join tails using (request_id)
order by all
