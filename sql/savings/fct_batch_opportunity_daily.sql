/* Offline work billed at interactive prices, added up from int_batch_calls: calls their caller declared batch work (workload = batch), or that look latency-tolerant (not streamed, and from a service account, carrying a job tag or in an off-hours burst), that ran at the standard or priority tier, priced again at a cheaper tier by price_calls (the pricing code of fct_requests), per day x feature x provider x model x tier move.
materialized: daily_table
grain: day, feature, provider, model, current_tier, target_tier, reason
lookback: 0
memory: per_request
columns:
  current_tier: The service tier the calls were billed at (standard or priority; priced_service_tier in fct_requests).
  target_tier: The tier they are priced at here - batch (the provider's Batch API), or standard for priority calls.
  reason: Why the move is suggested - declared_batch (the caller logged workload = batch: it waits for results), priority_on_batch (priority, the dearest tier, paid for work its caller says is offline); inferred, for calls not declared batch that did not stream: service_account (user_id in savings.service_accounts), job_tag (tags.job is set) or offhours_burst (one user of the feature sent at least 30 calls in a minute, in an hour when the feature's other calls were under a quarter of its busiest hour's). One reason per call, in that order.
  requests: Billed calls in scope (status ok, not a gateway cache hit, priced from the catalog or an override, and the model has prices at the target tier).
  input_tokens: Their prompt tokens, cache reads and writes included.
  output_tokens: Their output tokens, reasoning included.
  current_cost_usd: What they cost as billed (fct_requests.cost_usd), USD.
  target_cost_usd: The same calls, same tokens and the same cache reads and writes, at the target tier's prices, USD.
  savings_usd: current_cost_usd - target_cost_usd, USD; basis price_rule (the same tokens at a documented cheaper tier).
  stacks_with_cache: Whether the target tier's discount reaches cache reads too (its cache-read price is lower than the one billed) - true for every call that read the cache, false when one did not get it; NULL when no call read the cache.
  samples: The 5 calls whose move saves most: [{cost_usd (the saving), request_id}], largest first (ties by request_id).
  draws: 5 of the calls drawn at random with a fixed seed: the ids with the smallest md5 (random_samples merges days into a window).
  confidence: high when the caller declared the work offline (declared_batch, priority_on_batch); medium when it is inferred (an upper bound: the caller may need the answers sooner).
*/
select
    day,
    feature,
    provider,
    model,
    current_tier,
    target_tier,
    reason,
    count(*) as requests,
    sum(input_tokens) as input_tokens,
    sum(output_tokens) as output_tokens,
    sum(billed_cost_usd) as current_cost_usd,
    sum(target_cost_usd) as target_cost_usd,
    sum(billed_cost_usd) - sum(target_cost_usd) as savings_usd,
    bool_and(target_cache_read_usd < current_cache_read_usd) filter (where current_cache_read_usd is not null)
        as stacks_with_cache,
    max_by(
        {'cost_usd': savings_usd, 'request_id': request_id},
        {'cost_usd': savings_usd, 'request_id': request_id},
        5
    ) as samples,
    min_by(request_id, md5(request_id), 5) as draws,
    case when reason in ('declared_batch', 'priority_on_batch') then 'high' else 'medium' end as confidence
from int_batch_calls
where day between $start and $end
group by all
order by all
