/* Provider charges in USD, one row per export record, with the model family and price dimensions used to match gateway logs.
materialized: view
grain: source_file, record_ref
columns:
  model_family: Model name lower-cased without a date suffix (gpt-4o-mini-2024-07-18 -> gpt-4o-mini), so a bill's dated snapshot meets the logs' name; NULL for charges that are not per-model tokens.
  cost_type: tokens (per-model token usage), other (a charge such as fine-tuning or tool calls), or unrecognised (an OpenAI line item that looks like token usage but does not follow the line-item grammar; its money is kept under its raw text).
  service_tier: The tier the line was billed at (standard, batch, flex, priority); NULL when the export does not say (an invoice, an ungrouped cost report).
  long_context: True for a line billed at the model's long-context rate (OpenAI ', long context', Anthropic 200k-1M window); NULL when the export does not say.
  context_window: The context window as the export gave it (Anthropic 0-200k or 200k-1M); NULL otherwise.
  modality: text, audio or image where the OpenAI line item names it; NULL otherwise.
  quantity: What the line billed, in quantity_unit (tokens for OpenAI token lines); NULL when the export does not say.
  quantity_unit: Unit of quantity as the export gave it.
  is_daily: True when the charge covers exactly one UTC day (cost APIs, daily invoices); false for a longer invoice period.
*/
select
    source_format,
    source_file,
    record_ref,
    provider,
    period_start,
    period_end,
    line_item,
    model,
    case when model is not null and cost_type = 'tokens'
        then model_family(model) end as model_family,
    token_type,
    cost_type,
    service_tier,
    long_context,
    context_window,
    modality,
    quantity,
    quantity_unit,
    project,
    invoice_id,
    billed_usd,
    period_start = period_end as is_daily
from provider_cost_lines
