"""OpenAI Costs API pages (`GET /v1/organization/costs`, daily buckets) -> cost lines.

With `group_by=line_item` each result is one line of the bill, named by a `line_item` text and,
for token lines, the tokens billed in `quantity`. Token lines follow one grammar (seen in real
exports; OpenAI documents the field, not the grammar):

    [<tier> | ]<model>[ <modality>], <token kind>[, long context]

    gpt-4o-mini-2024-07-18, input
    gpt-4o-2024-08-06, cached input
    gpt-5.6-sol, cache writes
    gpt-audio-mini-2025-12-15 audio, input           modality: text, audio or image
    priority | gpt-5.6-sol, output, long context     tier: priority, flex, batch

A line without a tier prefix is the standard (default) tier; one without `, long context` is
billed at the base rate. Everything else (`web search tool calls`, `fine-tuning training, <model>`,
`whisper`, `Image models`) is another charge, kept with its text. A line that looks like token
usage (a `<word> | ` prefix, or a token word after the comma) but does not parse is kept as
`unrecognised` with its raw text, its money counted, and reported by the lake gate: it is never
dropped and never guessed onto a model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.sources.billing.common import (
    SERVICE_TIERS,
    BadRecord,
    Parsed,
    decimal_field,
    each_result,
    quantity_field,
    text_field,
    to_usd,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.registry import register

OPENAI_TOKEN_KINDS = {
    "input": "input",
    "cached input": "cached_input",
    "cache writes": "cache_write",
    "cache write": "cache_write",
    "output": "output",
}
# The tier prefixes OpenAI writes; `default`/`standard` for completeness. Another word before
# ` | ` is not guessed at: the line is unrecognised.
OPENAI_LINE_TIERS = {"priority", "flex", "batch", "default", "standard"}

LINE_ITEM = re.compile(
    r"(?:(?P<tier>[a-z_]+) \| )?"
    r"(?P<model>[^\s,|]+)(?: (?P<modality>text|audio|image))?"
    r", (?P<kind>" + "|".join(sorted(OPENAI_TOKEN_KINDS, key=len, reverse=True)) + r")"
    r"(?P<long_context>, long context)?",
    re.IGNORECASE,
)
# Looks like token usage: a tier prefix, or a token word after the first comma.
TOKEN_LIKE = re.compile(r"^\S+ \| |,[^,]*\b(?:input|output|cached?|writes?|context)\b", re.IGNORECASE)


@dataclass(frozen=True)
class LineItem:
    """What an OpenAI cost `line_item` says was billed."""

    cost_type: str  # tokens, other, or unrecognised
    model: str | None = None
    token_type: str | None = None  # input, cached_input, cache_write, output
    modality: str | None = None  # text, audio, image; None when the line item does not name one
    service_tier: str | None = None  # standard, batch, flex, priority
    long_context: bool | None = None


def parse_line_item(text: str | None) -> LineItem:
    """The grammar above. None (costs not grouped by line item) is the day's total, in tokens."""
    if text is None:
        return LineItem(cost_type="tokens")
    line = text.strip()
    match = LINE_ITEM.fullmatch(line)
    if match is not None:
        tier = (match["tier"] or "standard").lower()
        if tier in OPENAI_LINE_TIERS:
            return LineItem(
                cost_type="tokens",
                model=match["model"],
                token_type=OPENAI_TOKEN_KINDS[match["kind"].lower()],
                modality=match["modality"].lower() if match["modality"] else None,
                service_tier=SERVICE_TIERS[tier],
                long_context=match["long_context"] is not None,
            )
    if TOKEN_LIKE.search(line):
        return LineItem(cost_type="unrecognised")
    return LineItem(cost_type="other")


def read_openai_costs(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """OpenAI Costs API pages. `amount.value` is USD (a number or a decimal string); `line_item`
    follows the grammar above, or is NULL when the costs were not grouped by line item;
    `quantity` (tokens for token lines) is kept when present."""
    fmt = "openai_costs"
    for day, result, ref in each_result(path, fmt, parsed, "openai", "start_time", "end_time"):
        try:
            amount = result.get("amount")
            if not isinstance(amount, dict):
                raise BadRecord("missing_amount")
            value = decimal_field(amount.get("value"), "amount")
            line_item = text_field(result, "line_item")
            line = parse_line_item(line_item)
            parsed.cost_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "openai",
                    "period_start": day,
                    "period_end": day,
                    "line_item": line_item or "total",
                    "model": line.model,
                    "token_type": line.token_type,
                    "cost_type": line.cost_type,
                    "project": text_field(result, "project_id"),
                    "invoice_id": None,
                    "currency": amount.get("currency"),
                    "amount_original": str(amount.get("value")),
                    "billed_usd": to_usd(value, amount.get("currency"), rates, f"{path} {ref}"),
                    "service_tier": line.service_tier,
                    "long_context": line.long_context,
                    "context_window": None,
                    "modality": line.modality,
                    "quantity": quantity_field(result),
                    "quantity_unit": text_field(result, "quantity_unit"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, day, str(error), json.dumps(result)))


register(
    "openai_costs", "provider_costs", read_openai_costs, "OpenAI Costs API pages (organization/costs), daily buckets"
)
