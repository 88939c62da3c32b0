/* Provider-reported token usage per day x provider x model x project, canonical token semantics.
materialized: view
columns:
  model_family: Model name lower-cased without a date suffix, to meet the logs' name.
  requests: Requests the provider counted; NULL where the export does not count them (Anthropic).
*/
select
    source_format,
    provider,
    day,
    model,
    model_family(model) as model_family,
    project,
    batch,
    requests,
    input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    output_tokens
from provider_usage_lines
