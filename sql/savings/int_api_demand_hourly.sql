/* The billed calls of API models that have a self-host candidate (savings.selfhost_candidates), hour by hour: their tokens and the token rates of the hour's busiest minute, per day x hour x provider x model - the demand a self-hosted replacement would have to serve (fct_selfhost_trigger).
materialized: daily_table
grain: day, hour, provider, model
lookback: 0
memory: per_request
columns:
  hour: Start of the hour, UTC.
  requests: Billed calls in the hour (status ok, not a gateway cache hit, priced from the catalog or an override).
  input_tokens: Their prompt tokens, cache reads and writes included.
  output_tokens: Their output tokens, reasoning included.
  peak_minute_input_tps: Prompt tokens per second in the hour's busiest minute for prompt tokens.
  peak_minute_output_tps: Output tokens per second in the hour's busiest minute for output tokens.
  cost_usd: What the calls cost as billed, USD.
*/
with calls as (
    select
        calls.day, calls.ts, calls.provider, calls.model, calls.input_tokens, calls.output_tokens,
        calls.billed_cost_usd
    from int_billed_calls as calls
    where
        calls.day between $start and $end
        and calls.status = 'ok'
        and not calls.gateway_cache_hit
        and calls.billed_pricing_basis in ('catalog', 'override')
        and model_family(calls.model) in (select candidates.api_model from selfhost_candidates as candidates)
),

minutes as (
    select
        day,
        provider,
        model,
        date_trunc('minute', ts) as minute,
        count(*) as requests,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(billed_cost_usd) as cost_usd
    from calls
    group by all
)

select
    day,
    date_trunc('hour', minute) as hour,
    provider,
    model,
    sum(requests) as requests,
    sum(input_tokens) as input_tokens,
    sum(output_tokens) as output_tokens,
    max(input_tokens) / 60.0 as peak_minute_input_tps,
    max(output_tokens) / 60.0 as peak_minute_output_tps,
    sum(cost_usd)::decimal(18, 12) as cost_usd
from minutes
group by all
order by all
