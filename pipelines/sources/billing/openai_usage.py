"""OpenAI Usage API completions pages (`GET /v1/organization/usage/completions`) -> usage lines."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources.billing.common import (
    BadRecord,
    Parsed,
    each_result,
    flag_field,
    text_field,
    token_count,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.registry import register


def read_openai_usage(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """OpenAI Usage API completions pages: `input_tokens` already includes `input_cached_tokens`."""
    fmt = "openai_usage"
    for day, result, ref in each_result(path, fmt, parsed, "openai", "start_time", "end_time"):
        try:
            input_tokens = token_count(result, "input_tokens")
            cached = token_count(result, "input_cached_tokens")
            if cached > input_tokens:
                raise BadRecord("cached_exceeds_input")
            parsed.usage_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "openai",
                    "day": day,
                    "model": text_field(result, "model"),
                    "project": text_field(result, "project_id"),
                    "batch": flag_field(result, "batch"),
                    "requests": token_count(result, "num_model_requests", default=None),
                    "input_tokens": input_tokens,
                    "cached_input_tokens": cached,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": token_count(result, "output_tokens"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, day, str(error), json.dumps(result)))


register(
    "openai_usage",
    "provider_usage",
    read_openai_usage,
    "OpenAI Usage API completions pages (organization/usage/completions)",
)
