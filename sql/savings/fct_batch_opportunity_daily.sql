/* Offline work billed at interactive prices: calls their caller declared batch work (workload = batch) that ran at the standard or priority tier, priced again at a cheaper tier by price_calls (the pricing code of fct_requests), per day x feature x provider x model x tier move.
materialized: daily_table
grain: day, feature, provider, model, current_tier, target_tier, reason
lookback: 0
memory: per_request
columns:
  current_tier: The service tier the calls were billed at (standard or priority; priced_service_tier in fct_requests).
  target_tier: The tier they are priced at here - batch (the provider's Batch API), or standard for priority calls.
  reason: Why the move is safe to suggest - declared_batch (the caller logged workload = batch: it waits for results) or priority_on_batch (priority, the dearest tier, paid for work its caller says is offline).
  requests: Billed calls in scope (status ok, not a gateway cache hit, priced from the catalog or an override, and the model has prices at the target tier).
  input_tokens: Their prompt tokens, cache reads and writes included.
  output_tokens: Their output tokens, reasoning included.
  current_cost_usd: What they cost as billed (fct_requests.cost_usd), USD.
  target_cost_usd: The same calls, same tokens and the same cache reads and writes, at the target tier's prices, USD.
  savings_usd: current_cost_usd - target_cost_usd, USD; basis price_rule (the same tokens at a documented cheaper tier).
  stacks_with_cache: Whether the target tier's discount reaches cache reads too (its cache-read price is lower than the one billed) - true for every call that read the cache, false when one did not get it; NULL when no call read the cache.
  confidence: high: the caller declared the work offline.
*/
with billed as (
    select *
    from int_billed_calls
    where
        day between $start and $end
        and workload = 'batch'
        and status <> 'error'
        and not gateway_cache_hit
        and billed_pricing_basis in ('catalog', 'override')
),

moves (current_tier, target_tier, reason) as (
    values
    ('standard', 'batch', 'declared_batch'),
    ('priority', 'batch', 'declared_batch'),
    ('priority', 'standard', 'priority_on_batch')
),

-- The lambda's `c.kind` reads to the linter as a table reference (RF01, RF03); price_calls reads
-- moved_calls, which the linter cannot see (ST03).
-- noqa: disable=RF01,RF03
moved_calls as (  -- noqa: ST03
    -- Each call in scope once per move open to it: the same call, only its service tier changed.
    -- The move starts from the tier billed, so a priority call on a model without priority prices
    -- (billed as standard) is not priced as if it had paid priority.
    select
        billed.* replace (moves.target_tier as service_tier),
        moves.current_tier,
        moves.reason,
        list_filter(billed.billed_charges, lambda c: c.kind = 'cache_read')[1].unit_usd as current_cache_read_usd
    from billed
    inner join moves on billed.billed_service_tier = moves.current_tier
),
-- noqa: enable=RF01,RF03

at_target as (
    select * from price_calls(moved_calls, $start, $end)
)

select
    day,
    feature,
    provider,
    model,
    current_tier,
    service_tier as target_tier,
    reason,
    count(*) as requests,
    sum(input_tokens) as input_tokens,
    sum(output_tokens) as output_tokens,
    sum(billed_cost_usd) as current_cost_usd,
    sum(cost_usd) as target_cost_usd,
    sum(billed_cost_usd) - sum(cost_usd) as savings_usd,
    bool_and(cache_read_usd < current_cache_read_usd) filter (where current_cache_read_usd is not null)
        as stacks_with_cache,
    'high' as confidence
from at_target
-- A model the catalog has no prices for at the target tier bills it as standard: no move to offer.
where priced_service_tier = service_tier
group by all
order by all
