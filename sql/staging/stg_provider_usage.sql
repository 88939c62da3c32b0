/* Provider-reported token usage per day x provider x model x project (x tier and context window where grouped), canonical token semantics.
materialized: view
columns:
  model_family: Model name lower-cased without a date suffix, to meet the logs' name.
  requests: Requests the provider counted; NULL where the export does not count them (Anthropic).
  cache_creation_input_tokens: Prompt tokens written to the prompt cache, 5-minute and 1-hour writes together (part of input_tokens).
  cache_creation_1h_input_tokens: The 1-hour share of the cache writes (Anthropic); NULL where the export does not report it.
  audio_input_tokens: Audio tokens inside input_tokens, cached reads included (OpenAI); NULL where the export does not report them.
  audio_output_tokens: Audio tokens inside output_tokens (OpenAI); NULL where the export does not report them.
  web_search_requests: Server-side web searches (Anthropic server_tool_use); NULL where the export does not report them.
  service_tier: The tier the usage ran at (standard, batch, flex, priority); NULL when the export was not grouped by it.
  long_context: True for usage in the long-context window (Anthropic 200k-1M); NULL when the export does not say.
  context_window: The context window as the export gave it; NULL otherwise.
*/
select
    source_format,
    provider,
    day,
    model,
    model_family(model) as model_family,
    project,
    batch,
    service_tier,
    long_context,
    context_window,
    requests,
    input_tokens,
    cached_input_tokens,
    cache_creation_input_tokens,
    cache_creation_1h_input_tokens,
    audio_input_tokens,
    audio_output_tokens,
    web_search_requests,
    output_tokens
from provider_usage_lines
