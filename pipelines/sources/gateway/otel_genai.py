"""`otel_genai`: OpenTelemetry GenAI spans, JSON Lines as the SDKs' JSON exporters write them
(`context`, `start_time`, `end_time`, `status`, flat `attributes`), one span per line.

Fields (projection: `otel_genai.sql`): `request_id` from `gen_ai.response.id`, else the span id;
`model` from `gen_ai.response.model`, else `gen_ai.request.model`; `provider` from
`gen_ai.provider.name`, else `gen_ai.system`; `user_id` from `user.id`/`enduser.id`; `feature`
from `feature`/`app.feature`; `ts` and `duration_ms` from the span's times; `status` `error` when
the span's status code is ERROR; `tags` keep the trace id, span name and `gen_ai.conversation.id`.

Tokens: the semantic conventions say `gen_ai.usage.input_tokens` SHOULD include
`gen_ai.usage.cache_read.input_tokens` and `gen_ai.usage.cache_creation.input_tokens`: the
canonical rule already.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.sources.gateway.records import read_jsonl
from pipelines.sources.registry import register


def read(path: Path) -> pa.Table:
    """One span per non-blank line (`line N`)."""
    return read_jsonl(path)


register(
    "otel_genai",
    "gateway_logs",
    read,
    "OpenTelemetry spans with gen_ai.* attributes, one JSON object per line",
)
