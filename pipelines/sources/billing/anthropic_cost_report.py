"""Anthropic Admin API cost report pages (`GET /v1/organizations/cost_report`) -> cost lines.

Amounts are decimal strings in CENTS of the record's currency. Grouped by `description`, each
token line names its `model`, `token_type`, `service_tier` (standard or batch) and
`context_window` (`0-200k`, or `200k-1M` billed at the long-context rate), so long-context and
Batch API money can be told apart from the rest. Anthropic documents that Priority Tier costs
are not in this report."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources.billing.common import (
    BadRecord,
    Parsed,
    decimal_field,
    each_result,
    long_context_of,
    service_tier_field,
    text_field,
    to_usd,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.registry import register

ANTHROPIC_TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cached_input",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write",
    "output_tokens": "output",
}


def read_anthropic_cost_report(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """Anthropic Admin API cost report. `amount` is a decimal string in CENTS of `currency`."""
    fmt = "anthropic_cost_report"
    for day, result, ref in each_result(path, fmt, parsed, "anthropic", "starting_at", "ending_at"):
        try:
            cents = decimal_field(result.get("amount"), "amount")
            cost_type = text_field(result, "cost_type") or "tokens"
            token_type = ANTHROPIC_TOKEN_TYPES.get(text_field(result, "token_type") or "")
            if cost_type == "tokens" and token_type is None and result.get("token_type") is not None:
                raise BadRecord("unknown_token_type")
            model = text_field(result, "model")
            context_window = text_field(result, "context_window")
            line_item = text_field(result, "description") or " ".join(
                part for part in (model, cost_type, result.get("token_type")) if part
            )
            parsed.cost_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "anthropic",
                    "period_start": day,
                    "period_end": day,
                    "line_item": line_item,
                    "model": model,
                    "token_type": token_type,
                    "cost_type": cost_type,
                    "project": text_field(result, "workspace_id"),
                    "invoice_id": None,
                    "currency": result.get("currency"),
                    "amount_original": str(result.get("amount")),
                    "billed_usd": to_usd(cents / 100, result.get("currency"), rates, f"{path} {ref}"),
                    "service_tier": service_tier_field(result),
                    "long_context": long_context_of(context_window),
                    "context_window": context_window,
                    "modality": None,
                    "quantity": None,
                    "quantity_unit": None,
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, day, str(error), json.dumps(result)))


register(
    "anthropic_cost_report",
    "provider_costs",
    read_anthropic_cost_report,
    "Anthropic Admin API cost_report pages (amounts in cents)",
)
