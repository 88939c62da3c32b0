/* Each billed call of a model with a cheaper sibling (savings.routes) priced again at the sibling's prices, one row per call; fct_model_fit_daily adds them up per day x feature x provider x model x target model. Basis upper_bound: the same tokens, as if the sibling answered them. A view over the per-day Parquet partitions in the lake.
materialized: daily_parquet
grain: request_id
lookback: 0
columns:
  request_id: The call: a billed API call (status ok, not a gateway cache hit, priced) of a model whose family has a route in savings.routes.
  day: Its UTC day.
  feature: Product feature that made the call.
  provider: Who served it.
  model: Model name exactly as logged.
  target_model: The cheaper sibling (savings.routes, by the model's family: lower-case, no date suffix), priced under its own catalog name.
  billed_cost_usd: What the call cost as billed (fct_requests.cost_usd), USD.
  target_cost_usd: The same call at the target's prices - same tokens, same cache reads and writes, same service tier - by price_calls, USD. NULL when the target has no price.
  input_tokens: Its input tokens, cache included.
  output_tokens: Its answer tokens.
  easy_scale: The smallest multiple of both savings.easy thresholds (max_input_tokens, max_output_tokens) under which the call is easy: greatest(input_tokens / max_input_tokens, output_tokens / max_output_tokens); easy at <= 1. NULL when its answer was cut by its cap (finish_reason length): never easy.
  rightsize_savings_usd: billed_cost_usd - target_cost_usd: what moving the call to the target saves, USD (negative when the target costs more); NULL when the target has no price.
  route_savings_usd: rightsize_savings_usd for an easy call (easy_scale <= 1), the one routing by difficulty moves, USD; NULL for any other call.
*/
with routes as (
    select
        key as model_family,
        value ->> '$' as target_model
    from json_each($routes)
),

-- price_calls reads at_target, which the linter cannot see (ST03).
at_target as (  -- noqa: ST03
    -- The billed calls of a routed model under the target's name: the same tokens, its prices.
    select
        calls.* replace (routes.target_model as model, null::varchar as model_map_key),
        calls.model as logged_model,
        routes.target_model
    from int_billed_calls as calls
    inner join routes on model_family(calls.model) = routes.model_family
    where
        calls.day between $start and $end
        and calls.pool is null
        and calls.status = 'ok'
        and not calls.gateway_cache_hit
        and calls.billed_cost_usd is not null
),

repriced as (
    select
        day,
        request_id,
        feature,
        provider,
        logged_model as model,
        target_model,
        billed_cost_usd,
        cost_usd as target_cost_usd,
        input_tokens,
        output_tokens,
        -- The smallest multiple of the savings.easy thresholds under which the call is easy
        -- (NULL when its answer was cut: never easy).
        case when coalesce(finish_reason, '') <> 'length' then greatest(
            input_tokens / $easy_max_input_tokens, output_tokens / $easy_max_output_tokens
        ) end as easy_scale
    from price_calls(at_target, $start, $end)
)

select
    day,
    request_id,
    feature,
    provider,
    model,
    target_model,
    billed_cost_usd,
    target_cost_usd,
    input_tokens,
    output_tokens,
    easy_scale,
    billed_cost_usd - target_cost_usd as rightsize_savings_usd,
    case when easy_scale <= 1 then billed_cost_usd - target_cost_usd end as route_savings_usd
from repriced
order by day, request_id
