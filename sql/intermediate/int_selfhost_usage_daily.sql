/* What self-hosted pools served per day x pool x feature x model: the usage both GPU cost splits share.
materialized: daily_table
grain: day, pool, feature, model
lookback: 0
columns:
  requests: Calls served (gateway cache hits excluded: no replica served them).
  request_ms: Sum of the calls' durations, milliseconds: the serving time a cost split follows.
*/
select
    day,
    pool,
    feature,
    model,
    count(*) as requests,
    sum(input_tokens)::bigint as input_tokens,
    sum(output_tokens)::bigint as output_tokens,
    sum(coalesce(duration_ms, 0))::bigint as request_ms
from fct_requests
where day between $start and $end and pool is not null and not gateway_cache_hit
group by all
order by all
