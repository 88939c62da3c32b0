/* Spend against its robust trailing baseline, per day x dimension (total, provider, model, feature, user, gpu_pool_idle) x key, with the causes of each move in dollars.
materialized: daily_table
grain: day, dimension, key
lookback: 28
renamed: impact_ratio <- impact_pct
columns:
  dimension: total, provider, model, feature, user, or gpu_pool_idle (a self-hosted pool's idle GPU cost).
  key: The provider, model, feature, user or pool; 'all' for the total.
  actual_usd: Spend on the day, USD (API token spend; idle GPU cost for gpu_pool_idle).
  expected_usd: Median of the same kind of day (weekday or weekend) over the previous 28 days, days without spend counted as 0, USD.
  impact_usd: actual_usd - expected_usd.
  impact_ratio: impact_usd / expected_usd (ratio); NULL when nothing was expected.
  score: impact_usd over the baseline's robust spread (1.4826 x MAD, at least 5% of expected_usd and a tenth of alerts.min_impact_usd).
  history_days: Days of the same kind in the baseline window; the baseline speaks only with at least 14 days of data before the day and 4 such days.
  is_anomaly: Enough history, abs(score) >= 3.5, and both gates passed: abs(impact_usd) >= alerts.min_impact_usd and abs(impact_ratio) >= alerts.min_impact_pct.
  severity: none, warning, or critical (abs(score) >= 8 or abs(impact_ratio) >= 1).
  volume_usd: The part of impact_usd due to the number of requests.
  input_tokens_per_request_usd: The part due to input tokens per request.
  output_tokens_per_request_usd: The part due to output tokens per request.
  cache_hit_rate_usd: The part due to the share of input tokens read from the prompt cache.
  model_price_mix_usd: The part due to model and price mix (average price per token). The five parts add up to impact_usd (for gpu_pool_idle: billed hours, price per GPU-hour and utilization).
  top_driver: The part with the largest absolute dollars.
  drivers: The parts as JSON.
  top_users: For a feature anomaly, the 3 users whose spend in it moved most (name, delta_usd vs their baseline), as JSON.
  top_models: For a feature anomaly, the 3 models whose spend in it moved most, as JSON.
*/
with as_of_days as (
    -- The days computed; each reads its own window of the $lookback_days days before it.
    select unnest(generate_series($start::date, $end::date, interval 1 day))::date as as_of
),

windows as (
    -- Each day computed with the days of its window, and whether each is the same kind of day
    -- (weekday or weekend) as it.
    select
        as_of_days.as_of,
        as_of_days.as_of - window_days.days_back::int as day,
        dayofweek(as_of_days.as_of - window_days.days_back::int) in (0, 6)
        = dayofweek(as_of_days.as_of) in (0, 6) as same_kind
    from as_of_days
    cross join range(0, $lookback_days + 1) as window_days(days_back)
),

history_start as (
    select min(day) as first_day from fct_spend_daily
),

spend as (
    -- API token spend with the parts the drivers need; self-hosted and unpriced calls have no cost.
    select * from fct_spend_daily
    where day between $start::date - $lookback_days and $end::date and cost_usd is not null
),

by_key as (
    select day, 'total' as dimension, 'all' as key, * exclude (day, feature, user_id, provider, model) from spend
    union all by name
    select day, 'provider' as dimension, provider as key, * exclude (day, feature, user_id, provider, model) from spend
    union all by name
    select day, 'model' as dimension, model as key, * exclude (day, feature, user_id, provider, model) from spend
    union all by name
    select day, 'feature' as dimension, feature as key, * exclude (day, feature, user_id, provider, model) from spend
    union all by name
    select day, 'user' as dimension, user_id as key, * exclude (day, feature, user_id, provider, model) from spend
),

daily as (
    select
        day, dimension, key,
        sum(requests) as requests,
        sum(input_tokens) as input_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(output_tokens) as output_tokens,
        -- Money stays fct_requests' DECIMAL: actual and expected spend add up to the requests;
        -- only the per-token prices derived from it below are doubles.
        sum(cost_usd) as cost_usd,
        sum(list_cost_usd - output_cost_usd) as input_list_usd,
        sum(output_cost_usd) as output_usd,
        sum(prompt_cache_savings_usd) as savings_usd
    from by_key
    group by all
),

keys as (
    -- The keys with spend in a day's window.
    select distinct windows.as_of, daily.dimension, daily.key
    from daily
    inner join windows using (day)
),

grid as (
    -- Every key on every day of the window: a day without spend is a 0, not a gap. Only the days
    -- read below: the day itself and the earlier days of its kind.
    select keys.as_of, keys.dimension, keys.key, windows.day, windows.same_kind
    from keys
    inner join windows using (as_of)
    cross join history_start
    where windows.day >= history_start.first_day and (windows.same_kind or windows.day = windows.as_of)
),

filled as (
    select grid.*,
        coalesce(daily.requests, 0) as requests, coalesce(daily.input_tokens, 0) as input_tokens,
        coalesce(daily.cached_input_tokens, 0) as cached_input_tokens,
        coalesce(daily.output_tokens, 0) as output_tokens,
        coalesce(daily.cost_usd, 0) as cost_usd, coalesce(daily.input_list_usd, 0) as input_list_usd,
        coalesce(daily.output_usd, 0) as output_usd, coalesce(daily.savings_usd, 0) as savings_usd
    from grid
    left join daily using (dimension, key, day)
),

baseline as (
    select
        as_of, dimension, key,
        count(*) as history_days,
        median(cost_usd) as expected_usd,
        avg(requests) as requests, avg(input_tokens) as input_tokens, avg(cached_input_tokens) as cached_input_tokens,
        avg(output_tokens) as output_tokens, avg(input_list_usd) as input_list_usd, avg(output_usd) as output_usd,
        avg(savings_usd) as savings_usd
    from filled
    where day < as_of and same_kind
    group by all
),

spread as (
    select filled.as_of, filled.dimension, filled.key,
        median(abs(filled.cost_usd - baseline.expected_usd)) as mad_usd
    from filled join baseline using (as_of, dimension, key)
    where filled.day < filled.as_of and filled.same_kind
    group by all
),

today as (
    select * from filled where day = as_of
),

structure as (
    -- Per-request structure: i = input tokens per request, o = output tokens per request,
    -- h = cached share of input, a = list price per input token, b = price per output token,
    -- s = saving per cached token. Cost = R x (i x a - i x h x s + o x b).
    select
        today.as_of, today.dimension, today.key, today.cost_usd as actual_usd, baseline.expected_usd,
        baseline.history_days, spread.mad_usd,
        today.requests as r1,
        coalesce(
            today.input_tokens / nullif(today.requests, 0), baseline.input_tokens / nullif(baseline.requests, 0)
        ) as i1,
        coalesce(
            today.output_tokens / nullif(today.requests, 0), baseline.output_tokens / nullif(baseline.requests, 0)
        ) as o1,
        coalesce(today.cached_input_tokens / nullif(today.input_tokens, 0), 0) as h1,
        coalesce(today.input_list_usd / nullif(today.input_tokens, 0), 0) as a1,
        coalesce(today.output_usd / nullif(today.output_tokens, 0), 0) as b1,
        coalesce(today.savings_usd / nullif(today.cached_input_tokens, 0), 0) as s1,
        -- A key with no baseline traffic takes today's structure: its whole impact is volume.
        case when baseline.requests > 0 then baseline.input_tokens / baseline.requests
             else today.input_tokens / nullif(today.requests, 0) end as i0,
        case when baseline.requests > 0 then baseline.output_tokens / baseline.requests
             else today.output_tokens / nullif(today.requests, 0) end as o0,
        case
            when baseline.requests > 0
                then coalesce(baseline.cached_input_tokens / nullif(baseline.input_tokens, 0), 0)
            else coalesce(today.cached_input_tokens / nullif(today.input_tokens, 0), 0)
        end as h0,
        case when baseline.requests > 0 then coalesce(baseline.input_list_usd / nullif(baseline.input_tokens, 0), 0)
             else coalesce(today.input_list_usd / nullif(today.input_tokens, 0), 0) end as a0,
        case when baseline.requests > 0 then coalesce(baseline.output_usd / nullif(baseline.output_tokens, 0), 0)
             else coalesce(today.output_usd / nullif(today.output_tokens, 0), 0) end as b0,
        case when baseline.requests > 0 then coalesce(baseline.savings_usd / nullif(baseline.cached_input_tokens, 0), 0)
             else coalesce(today.savings_usd / nullif(today.cached_input_tokens, 0), 0) end as s0
    from today
    join baseline using (as_of, dimension, key)
    join spread using (as_of, dimension, key)
),

chain as (
    -- Change one factor at a time, in order; each step's dollars are one driver, and the last
    -- (price mix) takes what is left, so the parts add up to actual - expected exactly. The steps
    -- are products of per-token doubles, brought to the requests' money scale once, here: the
    -- differences below are then exact decimals and telescope to impact_usd.
    select
        *,
        (r1 * (i0 * a0 - i0 * h0 * s0 + o0 * b0))::decimal(38, 12) as after_volume,
        (r1 * (i1 * a0 - i1 * h0 * s0 + o0 * b0))::decimal(38, 12) as after_input,
        (r1 * (i1 * a0 - i1 * h0 * s0 + o1 * b0))::decimal(38, 12) as after_output,
        (r1 * (i1 * a0 - i1 * h1 * s0 + o1 * b0))::decimal(38, 12) as after_cache
    from structure
),

token_anomalies as (
    select
        as_of, dimension, key, actual_usd, expected_usd, history_days, mad_usd,
        after_volume - expected_usd as volume_usd,
        after_input - after_volume as input_tokens_per_request_usd,
        after_output - after_input as output_tokens_per_request_usd,
        after_cache - after_output as cache_hit_rate_usd,
        actual_usd - after_cache as model_price_mix_usd
    from chain
),

idle as (
    -- Idle GPU cost = billed GPU-hours x USD per GPU-hour x (1 - utilization).
    -- Idle dollars at the token rows' money type (a widening cast: the mart keeps fewer decimals).
    select day, pool as key, billed_gpu_hours as hours,
        gpu_cost_usd / nullif(billed_gpu_hours, 0) as price, coalesce(utilization, 0) as utilization,
        idle_cost_usd::decimal(38, 12) as idle_usd
    from fct_gpu_utilization_daily
    where day between $start::date - $lookback_days and $end::date
),

idle_windows as (
    select windows.as_of, windows.same_kind, idle.*
    from idle
    inner join windows using (day)
),

idle_baseline as (
    select idle.as_of, idle.key, count(*) as history_days, median(idle.idle_usd) as expected_usd,
        avg(idle.hours order by idle.hours) as hours, avg(idle.price order by idle.price) as price,
        avg(idle.utilization order by idle.utilization) as utilization
    from idle_windows as idle
    where idle.day < idle.as_of and idle.same_kind
    group by all
),

idle_spread as (
    select history.as_of, history.key, median(abs(history.idle_usd - base.expected_usd)) as mad_usd
    from idle_windows as history
    join idle_baseline as base using (as_of, key)
    where history.day < history.as_of and history.same_kind
    group by all
),

idle_steps as (
    -- Idle cost = H x p x (1 - u); change billed hours, then price, then utilization. As for the
    -- token rows, each step is brought to the money scale once so the parts telescope exactly.
    select
        today.as_of, today.key, today.idle_usd as actual_usd, base.expected_usd, base.history_days,
        idle_spread.mad_usd,
        (today.hours * base.price * (1 - base.utilization))::decimal(38, 12) as after_hours,
        (today.hours * today.price * (1 - base.utilization))::decimal(38, 12) as after_price
    from idle_windows as today
    join idle_baseline as base using (as_of, key)
    left join idle_spread using (as_of, key)
    where today.day = today.as_of
),

idle_anomalies as (
    select
        as_of, 'gpu_pool_idle' as dimension, key, actual_usd, expected_usd, history_days, mad_usd,
        after_hours - expected_usd as volume_usd,
        after_price - after_hours as price_usd,
        actual_usd - after_price as utilization_usd,
        0::decimal(38, 12) as input_tokens_per_request_usd,
        0::decimal(38, 12) as output_tokens_per_request_usd,
        0::decimal(38, 12) as cache_hit_rate_usd,
        0::decimal(38, 12) as model_price_mix_usd
    from idle_steps
),

all_rows as (
    select *, null::decimal(38, 12) as price_usd, null::decimal(38, 12) as utilization_usd from token_anomalies
    union all by name
    select * from idle_anomalies
),

scored as (
    select
        *,
        actual_usd - expected_usd as impact_usd,
        (actual_usd - expected_usd) / nullif(expected_usd, 0) as impact_ratio,
        (actual_usd - expected_usd)
            / greatest(1.4826 * coalesce(mad_usd, 0), 0.05 * expected_usd, $min_impact_usd / 10) as score,
        history_days >= 4 and as_of - (select first_day from history_start) >= 14 as has_history
    from all_rows
),

flagged as (
    select
        *,
        has_history
            and abs(score) >= 3.5
            and abs(impact_usd) >= $min_impact_usd
            and (expected_usd = 0 or abs(impact_ratio) >= $min_impact_pct) as is_anomaly
    from scored
),

movers as (
    -- For a feature anomaly: its users and models whose spend moved most against their baseline.
    select flagged.as_of, flagged.key as feature, dimension_key.kind, dimension_key.name,
        sum(case when spend.day = flagged.as_of then spend.cost_usd else 0 end)
            - (
                sum(case when spend.day < flagged.as_of then spend.cost_usd else 0 end)
                / any_value(flagged.history_days)
            )::decimal(38, 12)
            as delta_usd
    from flagged
    join spend
        on spend.feature = flagged.key and spend.day between flagged.as_of - $lookback_days and flagged.as_of
    -- Each spend row counts once for its user and once for its model: a two-row lateral list.
    cross join lateral (select 'user' as kind, spend.user_id as name union all select 'model', spend.model) as dimension_key  -- noqa: ST05, LT11, LT05
    where flagged.dimension = 'feature' and flagged.is_anomaly
      and (spend.day = flagged.as_of or dayofweek(spend.day) in (0, 6) = dayofweek(flagged.as_of) in (0, 6))
    group by all
),

top_movers as (
    select as_of, feature,
        list(struct_pack(name := name, delta_usd := delta_usd) order by abs(delta_usd) desc)
            filter (where kind = 'user')[1:3] as top_users,
        list(struct_pack(name := name, delta_usd := delta_usd) order by abs(delta_usd) desc)
            filter (where kind = 'model')[1:3] as top_models
    from movers
    group by as_of, feature
),

explained as (
    select
        flagged.*,
        case
            when dimension = 'gpu_pool_idle' then
                case greatest(abs(volume_usd), abs(price_usd), abs(utilization_usd))
                    when abs(utilization_usd) then 'utilization' when abs(volume_usd) then 'billed_gpu_hours'
                    else 'price_per_gpu_hour' end
            else
                case greatest(abs(volume_usd), abs(input_tokens_per_request_usd), abs(output_tokens_per_request_usd),
                              abs(cache_hit_rate_usd), abs(model_price_mix_usd))
                    when abs(volume_usd) then 'volume'
                    when abs(input_tokens_per_request_usd) then 'input_tokens_per_request'
                    when abs(output_tokens_per_request_usd) then 'output_tokens_per_request'
                    when abs(cache_hit_rate_usd) then 'cache_hit_rate'
                    else 'model_price_mix' end
        end as top_driver,
        top_movers.top_users,
        top_movers.top_models
    from flagged
    left join top_movers
        on flagged.dimension = 'feature' and top_movers.as_of = flagged.as_of and top_movers.feature = flagged.key
)

select
    as_of as day,
    dimension,
    key,
    -- Money at fct_requests' scale, never rounded here: alerts and reports round when they present.
    actual_usd,
    expected_usd,
    impact_usd,
    impact_ratio,
    score,
    history_days,
    is_anomaly,
    case when not is_anomaly then 'none'
         when abs(score) >= 8 or abs(impact_ratio) >= 1 then 'critical'
         else 'warning' end as severity,
    volume_usd,
    input_tokens_per_request_usd,
    output_tokens_per_request_usd,
    cache_hit_rate_usd,
    model_price_mix_usd,
    top_driver,
    to_json(case when dimension = 'gpu_pool_idle' then
        {'billed_gpu_hours_usd': volume_usd, 'price_per_gpu_hour_usd': price_usd, 'utilization_usd': utilization_usd}
    else
        {'volume_usd': volume_usd, 'input_tokens_per_request_usd': input_tokens_per_request_usd,
         'output_tokens_per_request_usd': output_tokens_per_request_usd,
         'cache_hit_rate_usd': cache_hit_rate_usd, 'model_price_mix_usd': model_price_mix_usd}
    end)::varchar as drivers,
    to_json(top_users)::varchar as top_users,
    to_json(top_models)::varchar as top_models
from explained
-- Every key of the fixed dimensions; users only when they move.
where dimension <> 'user' or is_anomaly
order by as_of, dimension, key
