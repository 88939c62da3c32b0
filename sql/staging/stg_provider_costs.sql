/* Provider charges in USD, one row per export record, with the model family used to match gateway logs.
materialized: view
grain: source_file, record_ref
columns:
  model_family: Model name lower-cased without a date suffix (gpt-4o-mini-2024-07-18 -> gpt-4o-mini), so a bill's dated snapshot meets the logs' name; NULL for charges that are not per-model tokens.
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
    project,
    invoice_id,
    billed_usd,
    period_start = period_end as is_daily
from provider_cost_lines
