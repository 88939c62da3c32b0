"""`litellm_spend_logs`: an export of LiteLLM's `LiteLLM_SpendLogs` table (the proxy's spend log).

Files: CSV with a header row (`metadata` as a JSON string), a JSON array or `{"data": [...]}` page
(the API's export shape), or JSON lines; each optionally gzipped. The file name says which
(`.csv`, `.json`, `.jsonl`/`.ndjson`); other names are sniffed. In the quarantine a CSV row is
`row N` (the header is row 1), a JSON array element `[i]` (`data[i]` in a page), a JSON line `line N`.

Fields (projection: `litellm_spend_logs.sql`): `request_id`; `ts` from `startTime` (UTC when it
has no offset, as the table's `timestamp(3)` column holds it); `duration_ms` from
`request_duration_ms`, else `endTime - startTime`; `provider` from `custom_llm_provider`, else the
first `/` segment of `model`; `model` is the rest of `model`, kept whole however many `/` it has
(LiteLLM logs `azure/eu/gpt-4o-2024-08-06` as `custom_llm_provider` `azure` and `model`
`eu/gpt-4o-2024-08-06`; a model still prefixed with its own provider, as on LiteLLM's cache hits,
loses that prefix), so `provider/model` is the price catalog's key; `feature` from
`metadata.spend_logs_metadata.feature` or a `feature:X` request tag; `user_id` from `end_user`,
else the key's `user`; `status` `success`/`failure` -> `ok`/`error`; `gateway_cache_hit` from
`cache_hit`, which LiteLLM writes as `str(...)`: `"None"` (the call did not touch its cache) and
`"False"` -> false, `"True"` -> true; JSON booleans and null are read too, anything else is
quarantined. `tags` keep `team_id`, `request_tags`, the key alias, `model_map_key` (the catalog
entry LiteLLM priced with, `metadata.model_map_information.model_map_key`), `spend` (LiteLLM's
own cost, as its exact text), `service_tier` and `cache_creation_1h_input_tokens` (the 1-hour
share of the cache writes) from `metadata.usage_object`. Counts exported as text (CSV cells) are
read as numbers when they are digits.

Tokens: LiteLLM reports usage the OpenAI way for every provider: `prompt_tokens` includes cache
reads and writes (for Anthropic it adds `cache_read_input_tokens` and
`cache_creation_input_tokens` to the API's `input_tokens`), which is the canonical rule as is.
Reads from `metadata.usage_object.cache_read_input_tokens` (Anthropic via LiteLLM), else
`.prompt_tokens_details.cached_tokens` (OpenAI); writes from `.cache_creation_input_tokens`, else
`.prompt_tokens_details.cache_creation_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipelines.sources.gateway.records import BATCH_BYTES, export_batches, whole
from pipelines.sources.records import MAX_LINE_BYTES
from pipelines.sources.registry import register

# A LiteLLM row is wide (its `metadata` alone ~10 KB with the model map) and its projection
# extracts ~30 fields, each a parse of the row, which DuckDB holds per vector: validating a batch
# takes ~100x its bytes. 32 MiB batches of such rows ran DuckDB out of its 1 GB; 4 MiB stay
# under ~0.6 GiB (bench/bench.py litellm_1m), whatever the rows' width.
WIDE_BATCH_BYTES = 4 << 20


def read_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """Each exported row (CSV, JSON array or page, JSON lines) as one JSON object record, in
    batches of about `batch_bytes` (at most WIDE_BATCH_BYTES); a line of a CSV or JSON-lines
    export over `max_line_bytes` is quarantined as `line_too_long`."""
    return export_batches(path, min(batch_bytes, WIDE_BATCH_BYTES), max_line_bytes)


def read(path: Path) -> pa.Table:
    """The whole file's records in one table (tests and small files; ingest streams `read_batches`)."""
    return whole(read_batches(path))


register(
    "litellm_spend_logs", "gateway_logs", read_batches, "LiteLLM's LiteLLM_SpendLogs table exported as CSV or JSON"
)
