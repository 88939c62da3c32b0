/* Self-hosted request activity per day x pool x replica: calls, tokens, and the hours the replica had at least one request in flight.
materialized: daily_table
grain: day, pool, replica_id
lookback: 0
columns:
  requests: Calls the replica served (gateway cache hits excluded: no replica served them).
  busy_hours: Hours with at least one request in flight on the replica (the union of its requests' [start, start + duration] intervals, within the day).
*/
with calls as (
    select
        day,
        pool,
        replica_id,
        ts,
        ts + to_milliseconds(duration_ms) as ends_at,
        input_tokens,
        output_tokens
    from fct_requests
    where day between $start and $end
      and pool is not null
      and replica_id is not null
      and not gateway_cache_hit
      and duration_ms is not null
),

ordered as (
    select
        *,
        max(ends_at) over (
            partition by day, pool, replica_id order by ts, ends_at rows between unbounded preceding and 1 preceding
        ) as previous_end
    from calls
),

islands as (
    -- Gaps and islands: a request that starts after everything before it ended opens a new busy stretch.
    select
        *,
        sum(case when previous_end is null or ts > previous_end then 1 else 0 end) over (
            partition by day, pool, replica_id order by ts, ends_at rows between unbounded preceding and current row
        ) as island
    from ordered
),

busy as (
    select day, pool, replica_id, island, min(ts) as starts_at, max(ends_at) as ends_at
    from islands
    group by all
),

busy_hours as (
    -- Summed in whole microseconds, then divided once: a sum of doubles depends on the order the
    -- rows arrive in, and a day must come out the same whether it runs alone or in a range.
    select day, pool, replica_id,
        sum(epoch_us(least(ends_at, (day + interval 1 day)::timestamptz)) - epoch_us(starts_at)) / 3600e6
            as busy_hours
    from busy
    group by all
)

select
    calls.day,
    calls.pool,
    calls.replica_id,
    count(*) as requests,
    sum(calls.input_tokens)::bigint as input_tokens,
    sum(calls.output_tokens)::bigint as output_tokens,
    any_value(busy_hours.busy_hours) as busy_hours
from calls
join busy_hours using (day, pool, replica_id)
group by all
order by all
