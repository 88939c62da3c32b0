/* When to move an API model to the team's own GPUs: the savings spec's API -> self-host trigger, as of each day, per day x provider x model x candidate (savings.selfhost_candidates). Demand is each hour's busiest minute in prompt and output tokens per second; one replica's capacity is the candidate's load test within its latency SLO. One load-test shape cannot separate prefill from decode, so the replicas needed are a band: low = ceil(max(input/capacity, output/capacity) x (1 + headroom)), high = ceil((input/capacity + output/capacity) x (1 + headroom)), never under the warm floor. Self-hosting is suggested (consider_selfhost) only when the API cost at least (1 + margin) x the high band's self-host cost in each of the last 4 weeks, the hourly volume's coefficient of variation is at most 1 and a quality note is configured; otherwise stay_on_api, with the break-even volume to watch.
materialized: daily_table
grain: day, provider, model, candidate
lookback: 27
columns:
  period_start: The first day of the window the money figures cover: savings.window_days ending on day, or the model's first day with calls in it when later.
  candidate: The open model that would take the calls (selfhost_candidates.model).
  gpu_type: The candidate's GPU.
  days_observed: Days of the window from the model's first call day in it: the hours self-hosting would run.
  requests: Billed calls of the model in the window.
  input_tokens: Their prompt tokens, cache included.
  output_tokens: Their output tokens.
  api_cost_usd: What they cost as billed, after the provider's cache discounts, USD.
  peak_input_tps: Prompt tokens per second in the window's busiest minute.
  peak_output_tps: Output tokens per second in the window's busiest minute for output.
  hourly_cv: Coefficient of variation (standard deviation / mean) of the tokens per hour over the window's hours, quiet hours included: how steady the load is.
  per_replica_input_tps: Prompt tokens per second one replica sustains within the SLO: the load test's fastest requests_per_s within latency_slo_s x that row's prompt_tokens.
  per_replica_output_tps: The same for output tokens.
  replicas_low: The most replicas any hour of the window needs, low band.
  replicas_high: The same, high band.
  selfhost_cost_low_usd: Sum over the window's hours of the low band's replicas (at least the warm floor) x gpus_per_replica x usd_per_gpu_hour, plus ops_usd, USD.
  selfhost_cost_high_usd: The same for the high band, USD.
  ops_usd: ops_usd_per_month for the window's hours (hours / (30.44 x 24) months), USD.
  margin: The candidate's margin: the API must cost (1 + margin) x the self-host cost.
  weeks_observed: Of the 4 weeks ending on day, those whose 7 days all lie on or after the model's first call day.
  weeks_above_trigger: Of those, the weeks whose API cost is at least (1 + margin) x that week's high-band self-host cost (its ops prorated by 7 / 30.44).
  break_even_tokens_per_month: The monthly tokens (input + output, at the window's mix and price per token) at which the API would cost (1 + margin) x the high band's self-host cost of the window, per 30.44 days: the volume to watch. It holds while the replicas the load needs stay as they are. NULL when the window cost nothing.
  quality_note: Why the candidate is good enough (savings.selfhost_candidates.<model>.quality_note); NULL when none is configured.
  verdict: consider_selfhost (all 4 weeks above the trigger, hourly_cv at most 1, a quality note), stay_on_api, or no_rate_within_slo (no load-test row within the candidate's latency SLO).
*/
with as_of as (
    select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day
),

capacity as (
    -- A replica's token rates within the SLO: the load test's fastest rate whose latency is within
    -- it, times that row's prompt and output sizes. NULL when no row is within the SLO.
    select
        candidates.api_model,
        candidates.model as candidate,
        candidates.gpu_type,
        candidates.gpus_per_replica,
        candidates.usd_per_gpu_hour,
        candidates.headroom,
        candidates.warm_floor,
        candidates.ops_usd_per_month,
        candidates.margin,
        candidates.quality_note,
        arg_max(tests.requests_per_s * tests.prompt_tokens, tests.requests_per_s) as per_replica_input_tps,
        arg_max(tests.requests_per_s * tests.output_tokens, tests.requests_per_s) as per_replica_output_tps
    from selfhost_candidates as candidates
    left join selfhost_candidate_load_tests as tests
        on candidates.api_model = tests.api_model and tests.request_latency_s <= candidates.latency_slo_s
    group by all
),

model_days as (
    -- Each API model seen in the 4 weeks ending on each day, from its first call day in them.
    select
        as_of.day,
        demand.provider,
        demand.model,
        min(demand.day) as first_day
    from as_of
    inner join int_api_demand_hourly as demand
        on demand.day between as_of.day - 27 and as_of.day
    group by all
),

slots as (
    -- Every hour from that first day to the as-of day: a quiet hour still pays the warm floor.
    select
        model_days.*,
        unnest(generate_series(
            model_days.first_day::timestamptz, model_days.day::timestamptz + interval 23 hour, interval 1 hour
        )) as hour
    from model_days
),

hours as (
    select
        slots.day,
        slots.first_day,
        slots.provider,
        slots.model,
        slots.hour,
        capacity.*,
        coalesce(demand.requests, 0) as requests,
        coalesce(demand.input_tokens, 0) as input_tokens,
        coalesce(demand.output_tokens, 0) as output_tokens,
        coalesce(demand.cost_usd, 0) as cost_usd,
        coalesce(demand.peak_minute_input_tps, 0) as input_tps,
        coalesce(demand.peak_minute_output_tps, 0) as output_tps,
        ((slots.day - slots.hour::date) // 7)::integer as weeks_back,
        slots.hour::date >= slots.day - ($window_days - 1) as in_window
    from slots
    inner join capacity on model_family(slots.model) = capacity.api_model
    left join int_api_demand_hourly as demand
        on
            slots.provider = demand.provider
            and slots.model = demand.model
            and slots.hour = demand.hour
            and demand.day = slots.hour::date
),

banded as (
    select
        *,
        greatest(
            warm_floor,
            ceil(greatest(input_tps / per_replica_input_tps, output_tps / per_replica_output_tps) * (1 + headroom))
        )::bigint as replicas_low_hour,
        greatest(
            warm_floor,
            ceil((input_tps / per_replica_input_tps + output_tps / per_replica_output_tps) * (1 + headroom))
        )::bigint as replicas_high_hour
    from hours
),

priced as (
    select
        *,
        replicas_low_hour * gpus_per_replica * usd_per_gpu_hour as selfhost_low_usd,
        replicas_high_hour * gpus_per_replica * usd_per_gpu_hour as selfhost_high_usd
    from banded
),

weeks as (
    -- The 4 weeks ending on day, each judged on its own: whole weeks of calls only.
    select
        day,
        provider,
        model,
        count(*) filter (where whole_week) as weeks_observed,
        count(*) filter (
            where whole_week and api_usd >= (1 + margin) * (selfhost_high_usd + ops_usd_per_month * 7 / 30.44)
        ) as weeks_above_trigger
    from (
        select
            day,
            provider,
            model,
            weeks_back,
            any_value(margin) as margin,
            any_value(ops_usd_per_month) as ops_usd_per_month,
            any_value(first_day) <= day - 7 * weeks_back - 6 as whole_week,
            sum(cost_usd) as api_usd,
            sum(selfhost_high_usd) as selfhost_high_usd
        from priced
        where weeks_back < 4
        group by day, provider, model, weeks_back
    ) as per_week
    group by day, provider, model
),

windowed as (
    select
        day,
        provider,
        model,
        candidate,
        gpu_type,
        margin,
        quality_note,
        per_replica_input_tps,
        per_replica_output_tps,
        ops_usd_per_month,
        min(hour::date) as period_start,
        count(distinct hour::date) as days_observed,
        count(*) as hours_observed,
        sum(requests) as requests,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(cost_usd) as api_cost_usd,
        max(input_tps) as peak_input_tps,
        max(output_tps) as peak_output_tps,
        -- Population CV from exact integer sums, so a range run and a day's run agree to the bit:
        -- sqrt(n * sum(x^2) - sum(x)^2) / sum(x).
        sqrt((
            count(*) * sum((input_tokens + output_tokens)::hugeint * (input_tokens + output_tokens))
            - sum(input_tokens + output_tokens)::hugeint * sum(input_tokens + output_tokens)
        )::double) / nullif(sum(input_tokens + output_tokens), 0) as hourly_cv,
        max(replicas_low_hour) as replicas_low,
        max(replicas_high_hour) as replicas_high,
        sum(selfhost_low_usd) as selfhost_gpu_low_usd,
        sum(selfhost_high_usd) as selfhost_gpu_high_usd
    from priced
    where in_window
    group by all
),

costed as (
    select
        windowed.*,
        (windowed.ops_usd_per_month * windowed.hours_observed / (30.44 * 24))::decimal(18, 6) as ops_usd
    from windowed
)

select
    costed.day,
    costed.period_start,
    costed.provider,
    costed.model,
    costed.candidate,
    costed.gpu_type,
    costed.days_observed,
    costed.requests,
    costed.input_tokens,
    costed.output_tokens,
    costed.api_cost_usd::decimal(18, 6) as api_cost_usd,
    costed.peak_input_tps,
    costed.peak_output_tps,
    costed.hourly_cv,
    costed.per_replica_input_tps,
    costed.per_replica_output_tps,
    costed.replicas_low,
    costed.replicas_high,
    (costed.selfhost_gpu_low_usd + costed.ops_usd)::decimal(18, 6) as selfhost_cost_low_usd,
    (costed.selfhost_gpu_high_usd + costed.ops_usd)::decimal(18, 6) as selfhost_cost_high_usd,
    costed.ops_usd,
    costed.margin,
    weeks.weeks_observed,
    weeks.weeks_above_trigger,
    (
        (1 + costed.margin) * (costed.selfhost_gpu_high_usd + costed.ops_usd) / nullif(costed.api_cost_usd, 0)
        * (costed.input_tokens + costed.output_tokens) * 30.44 / costed.days_observed
    )::bigint as break_even_tokens_per_month,
    costed.quality_note,
    case
        when costed.per_replica_input_tps is null then 'no_rate_within_slo'
        when
            weeks.weeks_above_trigger = 4 and costed.hourly_cv <= 1 and costed.quality_note is not null
            then 'consider_selfhost'
        else 'stay_on_api'
    end as verdict
from costed
inner join weeks using (day, provider, model)
order by all
