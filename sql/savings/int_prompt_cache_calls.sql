/* Prompt caching simulated per call: every billed call carrying prefix_hashes priced again as if it cached its longest reusable prefix (cache policy simulation v1 of the savings spec) at a short and a long cache lifetime, one row per call; fct_prompt_cache_opportunity_daily adds them up per day x feature x provider x model. Basis upper_bound: ideal cache breakpoints, no early eviction. A view over the per-day Parquet partitions in the lake.
materialized: daily_parquet
grain: request_id
lookback: 1
columns:
  request_id: The call: a billed call (status ok, not a gateway cache hit, priced from the catalog or an override) carrying prefix_hashes.
  day: Its UTC day. The day before warms the cache (its calls within the long lifetime are touches), and has its own rows.
  feature: Product feature that made the call.
  provider: Who served it.
  model: Model name exactly as logged.
  billed_cost_usd: What the call cost as billed (fct_requests.cost_usd), USD.
  input_tokens: Its input tokens, cache reads and writes included.
  cached_input_tokens: Its actual cache reads, tokens.
  cache_creation_input_tokens: Its actual cache writes (5-minute and 1-hour), tokens.
  ttl_short_s: The short cache lifetime simulated, seconds (cache_policies: OpenAI's in-memory lower bound, Anthropic's 5 minutes); the same on every row.
  ttl_long_s: The long one, seconds (cache_policies: Anthropic's 1-hour writes at 2x, OpenAI's in-memory upper bound). Where the provider fixes its cache's lifetime (cache_rules.lifetime_s: GPT-5.6+ caches live exactly 30 minutes), neither simulated lifetime outlives it.
  reusable_tokens_ttl_short: Simulated cache reads at the short lifetime, tokens: the call's longest prefix checkpoint (at least the model's minimum prefix) that a call of the same provider and model carried at most ttl_short_s before, rounded down to the provider's hit granularity (cache_rules), never above input_tokens.
  cache_write_tokens_ttl_short: Simulated cache writes at the short lifetime, tokens: its longest eligible checkpoint minus what it read, where writing costs extra (cache_rules write_premium: Anthropic, OpenAI GPT-5.6 and later); 0 elsewhere. Priced as 5-minute writes.
  counterfactual_cost_usd_ttl_short: The call priced by price_calls with those reads and writes (the rest of its prompt uncached), USD.
  savings_usd_ttl_short: billed_cost_usd - counterfactual_cost_usd_ttl_short, USD; negative when the simulated writes cost more than the reads save.
  reusable_tokens_ttl_long: As reusable_tokens_ttl_short, at the long lifetime.
  cache_write_tokens_ttl_long: As cache_write_tokens_ttl_short, at the long lifetime; priced as 1-hour writes where the provider sells them (Anthropic, 2x input), else as 5-minute writes (OpenAI has no 1-hour write price).
  counterfactual_cost_usd_ttl_long: As counterfactual_cost_usd_ttl_short, at the long lifetime, USD.
  savings_usd_ttl_long: billed_cost_usd - counterfactual_cost_usd_ttl_long, USD.
  unread_write: For a call that wrote the cache (actual): whether no later call read the write - no call of the provider and model carried the written checkpoint (the call's longest eligible one within its cache reads and writes) within the write's lifetime (the model's own where the provider fixes one, GPT-5.6+ 30 minutes; else 5 minutes, or 1 hour when any of the write was a 1-hour write) on the same day. NULL when the call wrote nothing, or when all its eligible checkpoints lie past what it read and wrote (not judged).
*/
with history as (
    -- The day before each day too: its calls within the long lifetime warm the cache (they add no savings).
    select *
    from int_billed_calls
    where
        day between $start::date - $lookback_days and $end::date
        and status = 'ok'
        and not gateway_cache_hit
        and billed_pricing_basis in ('catalog', 'override')
),

simulated as (
    select history.*, cache_rules(history.model) as rules
    from history
    where len(history.prefix_hashes) > 0
),

checkpoints as (
    select request_id, day, provider, model, ts, rules, unnest(prefix_hashes) as checkpoint
    from simulated
),

-- `checkpoint.tokens` and `rules.write_premium` are struct fields, which the linter reads as table
-- references (RF03).
-- noqa: disable=RF03
touches as (
    -- A checkpoint is touched (written or refreshed) by every call carrying it: its last touch
    -- before a call is the previous call of the provider and model that carried it.
    -- The next call carrying it says whether what this call wrote was read: on the same day only,
    -- as a day's own run sees it (a range run reads the next day's calls too).
    select
        request_id,
        checkpoint.tokens as checkpoint_tokens,
        rules.lifetime_s,
        epoch_ms(ts) - epoch_ms(lag(ts) over touches_of_hash) as since_last_touch_ms,
        case
            when lead(day) over touches_of_hash = day then epoch_ms(lead(ts) over touches_of_hash) - epoch_ms(ts)
        end as until_next_touch_ms
    from checkpoints
    where checkpoint.tokens >= rules.min_prefix_tokens
    window touches_of_hash as (partition by provider, model, checkpoint.hash order by ts, request_id)
),

-- noqa: enable=RF03

policies as (
    -- The two cache lifetimes simulated (sql/macros/cache_policies.sql).
    select policy, ttl_s from cache_policies()
),

per_call as (
    -- Per call and lifetime: its longest eligible checkpoint, and the longest one still alive.
    select
        touches.request_id,
        policies.policy,
        max(touches.checkpoint_tokens) as eligible_tokens,
        -- A lifetime the provider fixes caps the simulated one (GPT-5.6+: 30 minutes).
        coalesce(max(touches.checkpoint_tokens) filter (
            where touches.since_last_touch_ms
            <= least(policies.ttl_s, coalesce(touches.lifetime_s, policies.ttl_s)) * 1000
        ), 0) as alive_tokens
    from touches
    cross join policies
    group by touches.request_id, policies.policy
),

simulated_tokens as (
    select
        simulated.*,
        policies.policy,
        policies.ttl_s,
        coalesce(per_call.eligible_tokens, 0) as eligible_tokens,
        -- Reads: the longest alive checkpoint, in whole steps of the provider's granularity, never
        -- above the prompt.
        least(
            (coalesce(per_call.alive_tokens, 0) // simulated.rules.granularity_tokens)
            * simulated.rules.granularity_tokens,
            simulated.input_tokens
        ) as reads
    from simulated
    cross join policies
    left join per_call on simulated.request_id = per_call.request_id and policies.policy = per_call.policy
    where simulated.day between $start and $end
),

-- price_calls reads counterfactual_calls, which the linter cannot see (ST03).
-- noqa: disable=RF03
counterfactual_calls as (  -- noqa: ST03
    select
        * replace (
            reads as cached_input_tokens,
            -- The long lifetime writes 1-hour writes where the provider sells them (Anthropic); OpenAI
            -- has no 1-hour write (GPT-5.6+ writes live 30 minutes at one price): 5-minute writes.
            case when policy = 'ttl_short' or not rules.one_hour_writes then writes else 0 end
                as cache_creation_5m_input_tokens,
            case when policy = 'ttl_long' and rules.one_hour_writes then writes else 0 end
                as cache_creation_1h_input_tokens,
            input_tokens - reads - writes as uncached_input_tokens
        )
    from (
        select
            *,
            cached_input_tokens as cached_input_tokens_actual,
            cache_creation_5m_input_tokens + cache_creation_1h_input_tokens as cache_creation_actual,
            -- Writes: the rest of the longest eligible checkpoint, where writing costs extra.
            case
                when rules.write_premium then greatest(least(eligible_tokens, input_tokens) - reads, 0)
                else 0
            end as writes
        from simulated_tokens
    ) as with_writes
),
-- noqa: enable=RF03

priced as (
    select * from price_calls(counterfactual_calls, $start, $end)
),

lifetimes as (
    -- The two lifetimes as columns: a call's row for each, side by side.
    select
        request_id,
        any_value(day) as day,
        any_value(feature) as feature,
        any_value(provider) as provider,
        any_value(model) as model,
        any_value(billed_cost_usd) as billed_cost_usd,
        any_value(input_tokens) as input_tokens,
        any_value(cached_input_tokens_actual) as cached_input_tokens,
        any_value(cache_creation_actual) as cache_creation_input_tokens,
        any_value(ttl_s) filter (where policy = 'ttl_short') as ttl_short_s,
        any_value(ttl_s) filter (where policy = 'ttl_long') as ttl_long_s,
        any_value(cached_input_tokens) filter (where policy = 'ttl_short') as reusable_tokens_ttl_short,
        any_value(cache_creation_5m_input_tokens) filter (where policy = 'ttl_short')
            as cache_write_tokens_ttl_short,
        any_value(cost_usd) filter (where policy = 'ttl_short') as counterfactual_cost_usd_ttl_short,
        any_value(billed_cost_usd - cost_usd) filter (where policy = 'ttl_short') as savings_usd_ttl_short,
        any_value(cached_input_tokens) filter (where policy = 'ttl_long') as reusable_tokens_ttl_long,
        any_value(cache_creation_5m_input_tokens + cache_creation_1h_input_tokens) filter (where policy = 'ttl_long')
            as cache_write_tokens_ttl_long,
        any_value(cost_usd) filter (where policy = 'ttl_long') as counterfactual_cost_usd_ttl_long,
        any_value(billed_cost_usd - cost_usd) filter (where policy = 'ttl_long') as savings_usd_ttl_long
    from priced
    group by request_id
),

written as (
    -- Per call that wrote the cache and carries prefix_hashes: what it wrote ends at its longest
    -- eligible checkpoint within what it read and wrote (the cached prefix ends at the breakpoint),
    -- read only if a later call of the provider and model carries that checkpoint within the write's
    -- lifetime (the model's own where the provider fixes one; else 1 hour when any of it was a
    -- 1-hour write, 5 minutes otherwise). A call whose checkpoints all lie past that prefix is not
    -- judged. A call of the next day is not seen yet: a write read only after midnight counts as
    -- unread.
    select
        touches.request_id,
        coalesce(
            arg_max_null(touches.until_next_touch_ms, touches.checkpoint_tokens)
            > 1000 * coalesce(
                any_value(touches.lifetime_s),
                case when any_value(history.cache_creation_1h_input_tokens) > 0 then 3600 else 300 end
            ),
            true
        ) as unread
    from touches
    inner join history on touches.request_id = history.request_id
    where
        history.day between $start and $end
        and touches.checkpoint_tokens <= history.cached_input_tokens + history.cache_creation_5m_input_tokens
        + history.cache_creation_1h_input_tokens
    group by touches.request_id
)

select
    lifetimes.day,
    lifetimes.request_id,
    lifetimes.feature,
    lifetimes.provider,
    lifetimes.model,
    lifetimes.billed_cost_usd,
    lifetimes.input_tokens,
    lifetimes.cached_input_tokens,
    lifetimes.cache_creation_input_tokens,
    lifetimes.ttl_short_s,
    lifetimes.ttl_long_s,
    lifetimes.reusable_tokens_ttl_short,
    lifetimes.cache_write_tokens_ttl_short,
    lifetimes.counterfactual_cost_usd_ttl_short,
    lifetimes.savings_usd_ttl_short,
    lifetimes.reusable_tokens_ttl_long,
    lifetimes.cache_write_tokens_ttl_long,
    lifetimes.counterfactual_cost_usd_ttl_long,
    lifetimes.savings_usd_ttl_long,
    case when lifetimes.cache_creation_input_tokens > 0 then written.unread end as unread_write
from lifetimes
left join written on lifetimes.request_id = written.request_id
order by lifetimes.day, lifetimes.request_id
