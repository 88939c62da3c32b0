"""`litellm_spend_logs`: an export of LiteLLM's `LiteLLM_SpendLogs` table (the proxy's spend log).

Files: CSV with a header row (`metadata` as a JSON string), a JSON array or `{"data": [...]}` page
(the API's export shape), or JSON lines; each optionally gzipped. The file name says which
(`.csv`, `.json`, `.jsonl`/`.ndjson`); other names are sniffed. In the quarantine a CSV row is
`row N` (the header is row 1), a JSON array element `[i]` (`data[i]` in a page), a JSON line `line N`.

Fields (projection: `litellm_spend_logs.sql`): `request_id`; `ts` from `startTime`;
`duration_ms` from `request_duration_ms`, else `endTime - startTime`; `model` and `provider` from
`model` (`provider/model`) and `custom_llm_provider`; `feature` from
`metadata.spend_logs_metadata.feature` or a `feature:X` request tag; `user_id` from `end_user`,
else the key's `user`; `status` `success`/`failure` -> `ok`/`error`; `gateway_cache_hit` from
`cache_hit`; `tags` keep `team_id`, `request_tags` and the key alias. Counts exported as text
(CSV cells) are read as numbers when they are digits.

Tokens: LiteLLM reports usage the OpenAI way for every provider: `prompt_tokens` includes cached
tokens, read from `metadata.usage_object.cache_read_input_tokens` (Anthropic via LiteLLM) or
`.prompt_tokens_details.cached_tokens` (OpenAI); cache writes from
`.cache_creation_input_tokens`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.sources.gateway.records import read_export
from pipelines.sources.registry import register


def read(path: Path) -> pa.Table:
    """Each exported row (CSV, JSON array or page, JSON lines) as one JSON object record."""
    return read_export(path)


register("litellm_spend_logs", "gateway_logs", read, "LiteLLM's LiteLLM_SpendLogs table exported as CSV or JSON")
