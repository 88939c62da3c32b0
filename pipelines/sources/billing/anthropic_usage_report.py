"""Anthropic Admin API usage report pages (`GET /v1/organizations/usage_report/messages`) -> usage lines.

Each result carries `uncached_input_tokens`, `cache_read_input_tokens`, `cache_creation`
(`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`), `output_tokens` and
`server_tool_use.web_search_requests` (searches, not tokens); `service_tier` and `context_window`
when the report was grouped by them."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources.billing.common import (
    INT64_MAX,
    BadRecord,
    Parsed,
    each_result,
    long_context_of,
    service_tier_field,
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
            writes_1h = token_count(creation, "ephemeral_1h_input_tokens")
            writes = token_count(creation, "ephemeral_5m_input_tokens") + writes_1h
            reads = token_count(result, "cache_read_input_tokens")
            input_tokens = token_count(result, "uncached_input_tokens") + reads + writes
            if input_tokens > INT64_MAX:
                raise BadRecord("out_of_range:input_tokens")
            tools = result.get("server_tool_use") or {}
            if not isinstance(tools, dict):
                raise BadRecord("bad_type:server_tool_use")
            context_window = text_field(result, "context_window")
            tier = service_tier_field(result)
            parsed.usage_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "anthropic",
                    "day": day,
                    "model": text_field(result, "model"),
                    "project": text_field(result, "workspace_id"),
                    "batch": tier == "batch",
                    "requests": None,
                    "input_tokens": input_tokens,
                    "cached_input_tokens": reads,
                    "cache_creation_input_tokens": writes,
                    "output_tokens": token_count(result, "output_tokens"),
                    "cache_creation_1h_input_tokens": writes_1h if "ephemeral_1h_input_tokens" in creation else None,
                    "audio_input_tokens": None,
                    "audio_output_tokens": None,
                    "web_search_requests": token_count(tools, "web_search_requests", default=None),
                    "service_tier": tier,
                    "long_context": long_context_of(context_window),
                    "context_window": context_window,
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
