"""`canonical`: costwatch's own gateway record, JSON Lines (`.jsonl`, `.jsonl.gz`), one record per line.

Fields (projection: `canonical.sql`): `request_id` (required), `ts` (RFC 3339; UTC when it has no
offset; required), `model` (required), `provider`, `feature` (missing -> `unattributed`),
`user_id` (missing -> `anonymous`), `input_tokens`, `cached_input_tokens`,
`cache_creation_input_tokens`, `output_tokens`, `gateway_cache_hit`, `status` (`ok`/`error`),
`duration_ms`, `pool`, `replica_id`, `workload` (`interactive`/`batch`), `tags`; and the optional
fields that price and explain a call (README, "The canonical record's optional fields"):
`service_tier`, `cache_creation_1h_input_tokens`, `audio_input_tokens`, `audio_output_tokens`,
`reasoning_tokens`, `web_search_requests`, `finish_reason`, `max_tokens`, `stream`,
`conversation_id`, `prompt_hash`, `prefix_hashes`, `reported_cost_usd`. Any other top-level field
is kept in `tags`.

Tokens: the OpenAI/OTel convention, the canonical rule itself: `input_tokens` counts every prompt
token, `cached_input_tokens` (cache reads) and `cache_creation_input_tokens` (cache writes)
included. Anthropic's own API counts the other way (`input_tokens` excludes cache reads and
writes); a gateway that logs Anthropic usage raw must add them before writing canonical records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipelines.sources.gateway.records import BATCH_BYTES, jsonl_batches, whole
from pipelines.sources.records import MAX_LINE_BYTES
from pipelines.sources.registry import register


def read_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """One record per non-blank line (`line N`), in batches of about `batch_bytes`; a line over
    `max_line_bytes` is quarantined as `line_too_long`."""
    return jsonl_batches(path, batch_bytes, max_line_bytes)


def read(path: Path) -> pa.Table:
    """The whole file's records in one table (tests and small files; ingest streams `read_batches`)."""
    return whole(read_batches(path))


register("canonical", "gateway_logs", read_batches, "costwatch's canonical JSON Lines (.jsonl, .jsonl.gz)")
