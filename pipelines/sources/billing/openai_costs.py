"""OpenAI Costs API pages (`GET /v1/organization/costs`, daily buckets) -> cost lines."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources.billing.common import (
    BadRecord,
    Parsed,
    decimal_field,
    each_result,
    text_field,
    to_usd,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.registry import register

OPENAI_TOKEN_KINDS = {"input": "input", "cached input": "cached_input", "output": "output"}


def read_openai_costs(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """OpenAI Costs API pages. `amount.value` is USD (a number or a decimal string);
    `line_item` is `"<model>, <input|cached input|output>"` for token usage, anything else for
    other charges (fine-tuning, tools), or NULL when the costs were not grouped by line item."""
    fmt = "openai_costs"
    for day, result, ref in each_result(path, fmt, parsed, "openai", "start_time", "end_time"):
        try:
            amount = result.get("amount")
            if not isinstance(amount, dict):
                raise BadRecord("missing_amount")
            value = decimal_field(amount.get("value"), "amount")
            line_item = text_field(result, "line_item")
            model, token_type, cost_type = None, None, "tokens" if line_item is None else "other"
            if isinstance(line_item, str) and ", " in line_item:
                head, tail = line_item.rsplit(", ", 1)
                if tail.strip().lower() in OPENAI_TOKEN_KINDS:
                    model, token_type, cost_type = head.strip(), OPENAI_TOKEN_KINDS[tail.strip().lower()], "tokens"
            parsed.cost_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "openai",
                    "period_start": day,
                    "period_end": day,
                    "line_item": line_item or "total",
                    "model": model,
                    "token_type": token_type,
                    "cost_type": cost_type,
                    "project": text_field(result, "project_id"),
                    "invoice_id": None,
                    "currency": amount.get("currency"),
                    "amount_original": str(amount.get("value")),
                    "billed_usd": to_usd(value, amount.get("currency"), rates, f"{path} {ref}"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, day, str(error), json.dumps(result)))


register(
    "openai_costs", "provider_costs", read_openai_costs, "OpenAI Costs API pages (organization/costs), daily buckets"
)
