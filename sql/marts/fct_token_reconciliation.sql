/* Gateway token counts against the providers' usage exports, per day x provider x model family: finds lost logs and token-semantics bugs.
materialized: table
grain: day, provider, model_family
columns:
  model_family: Model name lower-cased without a date suffix.
  gateway_requests: Billable calls in the gateway logs (status ok, not a gateway cache hit).
  provider_requests: Requests the provider counted; NULL where its export does not count them.
  gateway_input_tokens: Prompt tokens in the logs, cache reads and writes included.
  provider_input_tokens: Prompt tokens the provider reports, cache reads and writes included (Anthropic's uncached count plus its cache reads and writes).
  gateway_cached_input_tokens: Cache reads in the logs.
  provider_cached_input_tokens: Cache reads the provider reports.
  gateway_cache_creation_input_tokens: Prompt-cache writes in the logs (5-minute and 1-hour).
  provider_cache_creation_input_tokens: Prompt-cache writes the provider reports (OpenAI input_cache_write_tokens; Anthropic's 5-minute and 1-hour writes).
  gateway_output_tokens: Generated tokens in the logs.
  provider_output_tokens: Generated tokens the provider reports.
  input_tokens_diff: gateway minus provider input tokens.
  output_tokens_diff: gateway minus provider output tokens.
  missing_share: Share (0-1) of the provider's output tokens the logs lack; negative when the logs have more.
  finding: matched (all counts within reconciliation.token_tolerance_pct), logs_missing_calls (logs short of input and output alike: lost log batches or traffic bypassing the gateway), cached_tokens_double_counted (logs' input exceeds the provider's by their cache reads: cached tokens counted twice), usage_without_logs, logs_without_usage, or mismatch.
*/
with gateway as (
    select
        day, provider, model_family,
        sum(requests) as requests,
        sum(input_tokens) as input_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(cache_creation_input_tokens) as cache_creation_input_tokens,
        sum(output_tokens) as output_tokens
    from int_provider_calls_daily
    where provider in (select distinct provider from stg_provider_usage)
    group by all
),

usage as (
    select
        day, provider, model_family,
        sum(requests) as requests,
        sum(input_tokens) as input_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(cache_creation_input_tokens) as cache_creation_input_tokens,
        sum(output_tokens) as output_tokens
    from stg_provider_usage
    group by all
),

joined as (
    select
        day, provider, model_family,
        gateway.requests as gateway_requests,
        usage.requests as provider_requests,
        gateway.input_tokens as gateway_input_tokens,
        usage.input_tokens as provider_input_tokens,
        gateway.cached_input_tokens as gateway_cached_input_tokens,
        usage.cached_input_tokens as provider_cached_input_tokens,
        gateway.cache_creation_input_tokens as gateway_cache_creation_input_tokens,
        usage.cache_creation_input_tokens as provider_cache_creation_input_tokens,
        gateway.output_tokens as gateway_output_tokens,
        usage.output_tokens as provider_output_tokens
    from gateway
    full outer join usage using (day, provider, model_family)
),

compared as (
    select
        *,
        gateway_input_tokens - provider_input_tokens as input_tokens_diff,
        gateway_output_tokens - provider_output_tokens as output_tokens_diff,
        $token_tolerance_pct as tolerance
    from joined
)

select
    day,
    provider,
    model_family,
    gateway_requests,
    provider_requests,
    gateway_input_tokens::bigint as gateway_input_tokens,
    provider_input_tokens::bigint as provider_input_tokens,
    gateway_cached_input_tokens::bigint as gateway_cached_input_tokens,
    provider_cached_input_tokens::bigint as provider_cached_input_tokens,
    gateway_cache_creation_input_tokens::bigint as gateway_cache_creation_input_tokens,
    provider_cache_creation_input_tokens::bigint as provider_cache_creation_input_tokens,
    gateway_output_tokens::bigint as gateway_output_tokens,
    provider_output_tokens::bigint as provider_output_tokens,
    input_tokens_diff::bigint as input_tokens_diff,
    output_tokens_diff::bigint as output_tokens_diff,
    (1 - gateway_output_tokens / nullif(provider_output_tokens, 0))::double as missing_share,
    case
        when gateway_input_tokens is null then 'usage_without_logs'
        when provider_input_tokens is null then 'logs_without_usage'
        when abs(input_tokens_diff) <= tolerance * provider_input_tokens
             and abs(output_tokens_diff) <= tolerance * provider_output_tokens then 'matched'
        when abs(output_tokens_diff) <= tolerance * provider_output_tokens
             and abs(input_tokens_diff - gateway_cached_input_tokens) <= tolerance * provider_input_tokens
             and gateway_cached_input_tokens > 0 then 'cached_tokens_double_counted'
        when input_tokens_diff < -tolerance * provider_input_tokens
             and output_tokens_diff < -tolerance * provider_output_tokens then 'logs_missing_calls'
        else 'mismatch'
    end as finding
from compared
order by day, provider, model_family
