/* What prompt caching would cost or save if every call that carries prefix_hashes cached its longest reusable prefix: cache policy simulation v1 of the savings spec, for a short (300 s) and a long (3,600 s) cache lifetime, per day x feature x provider x model: int_prompt_cache_calls (the simulation, per call) added up. Basis upper_bound: it assumes ideal cache breakpoints and no early eviction.
materialized: daily_table
grain: day, feature, provider, model
lookback: 0
memory: per_request
columns:
  requests: Billed API calls (status ok, not a gateway cache hit, priced from the catalog or an override).
  requests_with_prefix_hashes: Those carrying prefix_hashes: the calls simulated.
  billed_input_tokens: Input tokens of all the billed calls, cache included.
  prefix_hash_coverage: Share of billed_input_tokens in calls carrying prefix_hashes (0-1).
  input_tokens: Input tokens of the simulated calls, cache reads and writes included.
  cached_input_tokens: Their actual cache reads.
  cache_creation_input_tokens: Their actual cache writes.
  ttl_short_s: The short cache lifetime simulated, seconds (OpenAI's in-memory lower bound, Anthropic's 5 minutes).
  ttl_long_s: The long one, seconds (Anthropic's 1-hour writes at 2x, OpenAI's in-memory upper bound). Where the provider fixes its cache's lifetime (cache_rules.lifetime_s: GPT-5.6+ caches live exactly 30 minutes), neither simulated lifetime outlives it.
  reusable_tokens_ttl_short: Simulated cache reads at the short lifetime: per call, its longest prefix checkpoint (at least the model's minimum prefix) that a call of the same provider and model carried at most ttl_short_s before, rounded down to the provider's hit granularity (cache_rules).
  cache_write_tokens_ttl_short: Simulated cache writes at the short lifetime: per call, its longest eligible checkpoint minus what it read, where writing costs extra (cache_rules write_premium: Anthropic, OpenAI GPT-5.6 and later); 0 elsewhere. Priced as 5-minute writes (cache_creation_input_token_cost: 1.25x input on both).
  reusable_tokens_ttl_long: As reusable_tokens_ttl_short, at the long lifetime.
  cache_write_tokens_ttl_long: As cache_write_tokens_ttl_short, at the long lifetime; priced as 1-hour writes where the provider sells them (Anthropic, 2x input), else as 5-minute writes (OpenAI has no 1-hour write price: GPT-5.6+ writes cost 1.25x input at any lifetime).
  actual_cost_usd: What the simulated calls cost as billed, USD.
  counterfactual_cost_usd_ttl_short: The same calls priced by price_calls with the simulated reads and writes at the short lifetime, USD.
  counterfactual_cost_usd_ttl_long: The same at the long lifetime, USD.
  savings_usd_ttl_short: actual_cost_usd - counterfactual_cost_usd_ttl_short, USD; negative when the simulated writes cost more than the reads save.
  savings_usd_ttl_long: actual_cost_usd - counterfactual_cost_usd_ttl_long, USD.
  best_policy: ttl_short or ttl_long, whichever saves more; none when neither saves anything.
  billed_cache_read_tokens: Actual cache reads of all the billed calls (with prefix_hashes or not).
  billed_cache_write_tokens: Actual cache writes of all the billed calls.
  unhashed_requests: Billed calls without prefix_hashes whose prompt is at least the model's minimum cacheable prefix: calls the simulation cannot see.
  unhashed_uncached_input_usd: What their plain (uncached) prompt tokens cost, USD (the `input` charges): the spend prompt caching could act on, not estimated (basis exposure).
  cache_writing_requests: Billed calls that wrote the cache (actual).
  cache_writing_cost_usd: What they cost as billed, USD.
  cache_write_premium_usd: What their cache writes cost above the same tokens as plain input, USD (basis measured: they are priced again by price_calls with the writes as uncached input); a write is only worth it when a later call reads it.
  unread_write_requests: Of the cache-writing calls carrying prefix_hashes, those whose write no later call read: no call of the provider and model carried the written checkpoint (the call's longest eligible one within its cache reads and writes) within the write's lifetime (the model's own where the provider fixes one, GPT-5.6+ 30 minutes; else 5 minutes, or 1 hour when any of the write was a 1-hour write) on the same day.
  cache_write_waste_usd: The write premium of those calls, USD (basis measured).
  ttl_short_samples: The 5 calls whose simulated reads at the short lifetime save most: [{cost_usd (the saving), request_id}], largest first (ties by request_id); NULL when none would read.
  ttl_short_draws: 5 calls that would read at the short lifetime, drawn at random with a fixed seed: the ids with the smallest md5 (random_samples merges days into a window).
  ttl_long_samples: As ttl_short_samples, at the long lifetime.
  ttl_long_draws: As ttl_short_draws, at the long lifetime.
  cache_write_waste_samples: The 5 unread writes whose premium is largest, as ttl_short_samples.
  cache_write_waste_draws: 5 unread writes, drawn as ttl_short_draws.
*/
with per_group as (
    -- The simulated calls (int_prompt_cache_calls: the simulation, per call) added up.
    select
        day,
        feature,
        provider,
        model,
        count(*) as requests_with_prefix_hashes,
        sum(input_tokens) as input_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(cache_creation_input_tokens) as cache_creation_input_tokens,
        sum(reusable_tokens_ttl_short) as reusable_tokens_ttl_short,
        sum(cache_write_tokens_ttl_short) as cache_write_tokens_ttl_short,
        sum(reusable_tokens_ttl_long) as reusable_tokens_ttl_long,
        sum(cache_write_tokens_ttl_long) as cache_write_tokens_ttl_long,
        sum(billed_cost_usd) as actual_cost_usd,
        sum(counterfactual_cost_usd_ttl_short) as counterfactual_cost_usd_ttl_short,
        sum(counterfactual_cost_usd_ttl_long) as counterfactual_cost_usd_ttl_long,
        max_by(
            {'cost_usd': savings_usd_ttl_short, 'request_id': request_id},
            {'cost_usd': savings_usd_ttl_short, 'request_id': request_id},
            5
        ) filter (where reusable_tokens_ttl_short > 0) as ttl_short_samples,
        min_by(request_id, md5(request_id), 5) filter (where reusable_tokens_ttl_short > 0) as ttl_short_draws,
        max_by(
            {'cost_usd': savings_usd_ttl_long, 'request_id': request_id},
            {'cost_usd': savings_usd_ttl_long, 'request_id': request_id},
            5
        ) filter (where reusable_tokens_ttl_long > 0) as ttl_long_samples,
        min_by(request_id, md5(request_id), 5) filter (where reusable_tokens_ttl_long > 0) as ttl_long_draws
    from int_prompt_cache_calls
    where day between $start and $end
    group by all
),

day_calls as (
    -- Every billed call of the days (prefix_hashes or not).
    select *
    from int_billed_calls
    where
        day between $start and $end
        and status = 'ok'
        and not gateway_cache_hit
        and billed_pricing_basis in ('catalog', 'override')
),

-- price_calls reads unwritten_calls, which the linter cannot see (ST03).
unwritten_calls as (  -- noqa: ST03
    -- The day's calls that wrote the cache, their writes billed as plain input instead.
    select
        * replace (
            0 as cache_creation_5m_input_tokens,
            0 as cache_creation_1h_input_tokens,
            uncached_input_tokens + cache_creation_5m_input_tokens + cache_creation_1h_input_tokens
            as uncached_input_tokens
        )
    from day_calls
    where cache_creation_5m_input_tokens + cache_creation_1h_input_tokens > 0
),

judged as (
    -- Whether each write was read: judged per call with the simulation (int_prompt_cache_calls).
    select request_id, unread_write
    from int_prompt_cache_calls
    where day between $start and $end
),

write_premium as (
    select
        day,
        feature,
        provider,
        model,
        count(*) as cache_writing_requests,
        sum(billed_cost_usd) as cache_writing_cost_usd,
        sum(billed_cost_usd) - sum(cost_usd) as cache_write_premium_usd,
        count(*) filter (where judged.unread_write) as unread_write_requests,
        coalesce(sum(billed_cost_usd - cost_usd) filter (where judged.unread_write), 0) as cache_write_waste_usd,
        max_by(
            {'cost_usd': billed_cost_usd - cost_usd, 'request_id': request_id},
            {'cost_usd': billed_cost_usd - cost_usd, 'request_id': request_id},
            5
        ) filter (where judged.unread_write) as cache_write_waste_samples,
        min_by(request_id, md5(request_id), 5) filter (where judged.unread_write) as cache_write_waste_draws
    from price_calls(unwritten_calls, $start, $end)
    left join judged using (request_id)
    group by all
),

lifetimes as (
    -- The lifetimes simulated (sql/macros/cache_policies.sql), on every row, simulated calls or not.
    select
        any_value(ttl_s) filter (where policy = 'ttl_short') as ttl_short_s,
        any_value(ttl_s) filter (where policy = 'ttl_long') as ttl_long_s
    from cache_policies()
),

-- `charge.kind` is a lambda's struct field, which the linter reads as a table reference (RF03).
-- noqa: disable=RF03
billed as (
    select
        day_calls.*,
        coalesce(len(day_calls.prefix_hashes), 0) = 0
        and day_calls.input_tokens >= cache_rules(day_calls.model).min_prefix_tokens as unhashed,
        coalesce(list_sum(list_transform(
            list_filter(day_calls.billed_charges, lambda charge: charge.kind = 'input'),
            lambda charge: charge.quantity * charge.unit_usd
        )), 0) as uncached_input_usd
    from day_calls
),
-- noqa: enable=RF03

billed_days as (
    select
        day,
        feature,
        provider,
        model,
        count(*) as requests,
        sum(input_tokens) as billed_input_tokens,
        sum(cached_input_tokens) as billed_cache_read_tokens,
        sum(cache_creation_5m_input_tokens + cache_creation_1h_input_tokens) as billed_cache_write_tokens,
        -- Calls the simulation cannot see: no prefix_hashes, a prompt at least the model's minimum.
        count(*) filter (where unhashed) as unhashed_requests,
        coalesce(sum(uncached_input_usd) filter (where unhashed), 0) as unhashed_uncached_input_usd,
        coalesce(sum(input_tokens) filter (where len(prefix_hashes) > 0) / nullif(sum(input_tokens), 0), 0)
            as prefix_hash_coverage
    from billed
    group by all
)

select
    billed_days.day,
    billed_days.feature,
    billed_days.provider,
    billed_days.model,
    billed_days.requests,
    coalesce(per_group.requests_with_prefix_hashes, 0) as requests_with_prefix_hashes,
    billed_days.billed_input_tokens,
    billed_days.prefix_hash_coverage,
    coalesce(per_group.input_tokens, 0) as input_tokens,
    coalesce(per_group.cached_input_tokens, 0) as cached_input_tokens,
    coalesce(per_group.cache_creation_input_tokens, 0) as cache_creation_input_tokens,
    lifetimes.ttl_short_s,
    lifetimes.ttl_long_s,
    coalesce(per_group.reusable_tokens_ttl_short, 0) as reusable_tokens_ttl_short,
    coalesce(per_group.cache_write_tokens_ttl_short, 0) as cache_write_tokens_ttl_short,
    coalesce(per_group.reusable_tokens_ttl_long, 0) as reusable_tokens_ttl_long,
    coalesce(per_group.cache_write_tokens_ttl_long, 0) as cache_write_tokens_ttl_long,
    coalesce(per_group.actual_cost_usd, 0) as actual_cost_usd,
    coalesce(per_group.counterfactual_cost_usd_ttl_short, 0) as counterfactual_cost_usd_ttl_short,
    coalesce(per_group.counterfactual_cost_usd_ttl_long, 0) as counterfactual_cost_usd_ttl_long,
    coalesce(per_group.actual_cost_usd - per_group.counterfactual_cost_usd_ttl_short, 0) as savings_usd_ttl_short,
    coalesce(per_group.actual_cost_usd - per_group.counterfactual_cost_usd_ttl_long, 0) as savings_usd_ttl_long,
    case
        when greatest(savings_usd_ttl_short, savings_usd_ttl_long) <= 0 then 'none'
        when savings_usd_ttl_long > savings_usd_ttl_short then 'ttl_long'
        else 'ttl_short'
    end as best_policy,
    billed_days.billed_cache_read_tokens,
    billed_days.billed_cache_write_tokens,
    billed_days.unhashed_requests,
    billed_days.unhashed_uncached_input_usd::decimal(18, 12) as unhashed_uncached_input_usd,
    coalesce(write_premium.cache_writing_requests, 0) as cache_writing_requests,
    coalesce(write_premium.cache_writing_cost_usd, 0) as cache_writing_cost_usd,
    coalesce(write_premium.cache_write_premium_usd, 0) as cache_write_premium_usd,
    coalesce(write_premium.unread_write_requests, 0) as unread_write_requests,
    coalesce(write_premium.cache_write_waste_usd, 0) as cache_write_waste_usd,
    per_group.ttl_short_samples,
    per_group.ttl_short_draws,
    per_group.ttl_long_samples,
    per_group.ttl_long_draws,
    write_premium.cache_write_waste_samples,
    write_premium.cache_write_waste_draws
from billed_days
left join per_group using (day, feature, provider, model)
left join write_premium using (day, feature, provider, model)
cross join lifetimes
order by all
