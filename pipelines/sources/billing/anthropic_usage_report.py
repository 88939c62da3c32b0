"""Anthropic Admin API usage report pages (`GET /v1/organizations/usage_report/messages`) -> usage lines."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources.billing.common import (
    INT64_MAX,
    BadRecord,
    Parsed,
    each_result,
    text_field,
    token_count,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.registry import register


def read_anthropic_usage_report(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """Anthropic usage report (messages). Its `uncached_input_tokens` EXCLUDES cache reads and
    cache writes; the canonical input_tokens adds them back."""
    fmt = "anthropic_usage_report"
    for day, result, ref in each_result(path, fmt, parsed, "anthropic", "starting_at", "ending_at"):
        try:
            creation = result.get("cache_creation") or {}
            if not isinstance(creation, dict):
                raise BadRecord("bad_type:cache_creation")
            writes = token_count(creation, "ephemeral_5m_input_tokens") + token_count(
                creation, "ephemeral_1h_input_tokens"
            )
            reads = token_count(result, "cache_read_input_tokens")
            input_tokens = token_count(result, "uncached_input_tokens") + reads + writes
            if input_tokens > INT64_MAX:
                raise BadRecord("out_of_range:input_tokens")
            parsed.usage_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "anthropic",
                    "day": day,
                    "model": text_field(result, "model"),
                    "project": text_field(result, "workspace_id"),
                    "batch": result.get("service_tier") == "batch",
                    "requests": None,
                    "input_tokens": input_tokens,
                    "cached_input_tokens": reads,
                    "cache_creation_input_tokens": writes,
                    "output_tokens": token_count(result, "output_tokens"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, day, str(error), json.dumps(result)))


register(
    "anthropic_usage_report",
    "provider_usage",
    read_anthropic_usage_report,
    "Anthropic Admin API usage_report/messages pages",
)
