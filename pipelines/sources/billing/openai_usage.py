"""OpenAI Usage API completions pages (`GET /v1/organization/usage/completions`) -> usage lines.

Token semantics, as the API reference states them: `input_tokens` counts every prompt token,
cached reads (`input_cached_tokens`) and cache writes (`input_cache_write_tokens`) included,
text, audio and image alike; `input_uncached_tokens` excludes both. Audio is split into uncached
(`input_audio_tokens`) and cached (`input_cached_audio_tokens`) reads, so the audio inside
input_tokens is their sum. `batch` and `service_tier` are set when the usage was grouped by them.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources.billing.common import (
    INT64_MAX,
    BadRecord,
    Parsed,
    each_result,
    flag_field,
    service_tier_field,
    text_field,
    token_count,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.registry import register


def read_openai_usage(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """OpenAI Usage API completions pages: `input_tokens` already includes cache reads and writes."""
    fmt = "openai_usage"
    for day, result, ref in each_result(path, fmt, parsed, "openai", "start_time", "end_time"):
        try:
            input_tokens = token_count(result, "input_tokens")
            cached = token_count(result, "input_cached_tokens")
            if cached > input_tokens:
                raise BadRecord("cached_exceeds_input")
            writes = token_count(result, "input_cache_write_tokens")
            if cached + writes > input_tokens:
                raise BadRecord("cache_writes_exceed_input")
            audio_input = _sum_reported(result, "input_audio_tokens", "input_cached_audio_tokens")
            if audio_input is not None and audio_input > input_tokens:
                raise BadRecord("audio_exceeds_input")
            output_tokens = token_count(result, "output_tokens")
            audio_output = token_count(result, "output_audio_tokens", default=None)
            if audio_output is not None and audio_output > output_tokens:
                raise BadRecord("audio_exceeds_output")
            batch = flag_field(result, "batch")
            tier = service_tier_field(result)
            parsed.usage_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "openai",
                    "day": day,
                    "model": text_field(result, "model"),
                    "project": text_field(result, "project_id"),
                    "batch": batch,
                    "requests": token_count(result, "num_model_requests", default=None),
                    "input_tokens": input_tokens,
                    "cached_input_tokens": cached,
                    "cache_creation_input_tokens": writes,
                    "output_tokens": output_tokens,
                    "cache_creation_1h_input_tokens": None,
                    "audio_input_tokens": audio_input,
                    "audio_output_tokens": audio_output,
                    "web_search_requests": None,
                    # Grouped by batch without service_tier: a batch line is the Batch API's tier.
                    "service_tier": tier or ("batch" if result.get("batch") is True else None),
                    "long_context": None,
                    "context_window": None,
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, day, str(error), json.dumps(result)))


def _sum_reported(result: dict, *keys: str) -> int | None:
    """The sum of the counts present; None when none of them is."""
    counts = [token_count(result, key, default=None) for key in keys]
    present = [count for count in counts if count is not None]
    if not present:
        return None
    total = sum(present)
    if total > INT64_MAX:
        raise BadRecord(f"out_of_range:{keys[0]}")
    return total


register(
    "openai_usage",
    "provider_usage",
    read_openai_usage,
    "OpenAI Usage API completions pages (organization/usage/completions)",
)
