"""`otel_genai`: OpenTelemetry GenAI spans as the Python SDK writes them (`span.to_json()`:
`context`, `start_time`, `end_time`, `status`, flat `attributes`): the `ConsoleSpanExporter`'s
default output, each span pretty-printed over many lines and the spans concatenated, or one span
per line (JSON Lines, a formatter with `indent=None`). OTLP's own JSON is the `otlp_json` format.

Fields (projection: `otel_genai.sql`; the first attribute present wins, the current name before
the older ones): `request_id` from `gen_ai.response.id`, else the span id; `model` from
`gen_ai.response.model`, else `gen_ai.request.model`; `provider` from `gen_ai.provider.name`, else
`gen_ai.system`, kept as the span writes it (`gcp.vertex_ai`, `azure.ai.openai`, `aws.bedrock`:
pricing maps them to catalog providers); `user_id` from `user.id`/`enduser.id`; `feature` from
`feature`/`app.feature`; `ts` and `duration_ms` from the span's times; `status` `error` when the
span's status code is ERROR. `service_tier` from `openai.response.service_tier`, else
`gen_ai.openai.response.service_tier`, `openai.request.service_tier`,
`gen_ai.openai.request.service_tier`; `finish_reason` the first of `gen_ai.response.finish_reasons`;
`max_tokens` from `gen_ai.request.max_tokens`; `stream` from `gen_ai.request.stream`
(`gen_ai.is_streaming`, OpenLLMetry); `conversation_id` from `gen_ai.conversation.id`;
`reasoning_tokens` from `gen_ai.usage.reasoning.output_tokens` (`gen_ai.usage.reasoning_tokens`,
OpenLLMetry). `tags` keep the trace id, the span name, `gen_ai.operation.name` and `error.type`.
No attribute carries 1-hour cache writes, audio tokens, web searches or a cost: those stay empty.

Tokens: input from `gen_ai.usage.input_tokens` (`gen_ai.usage.prompt_tokens`, the old name);
output from `gen_ai.usage.output_tokens` (`gen_ai.usage.completion_tokens`); cache reads from
`gen_ai.usage.cache_read.input_tokens` (`gen_ai.usage.cache_read_input_tokens`, OpenLLMetry's
older name); cache writes from `gen_ai.usage.cache_write.input_tokens`, else the deprecated
`gen_ai.usage.cache_creation.input_tokens` (and `gen_ai.usage.cache_creation_input_tokens`). The
semantic conventions say input SHOULD include the cache reads and writes: the canonical rule
already (OpenLLMetry's Anthropic instrumentation adds them to the API's `input_tokens`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipelines.sources.gateway.records import BATCH_BYTES, json_value_batches, whole
from pipelines.sources.records import MAX_LINE_BYTES
from pipelines.sources.registry import register


def read_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """One record per span: a pretty-printed span from its `{` line to its `}` line (`line N` of
    the first), or one span per non-blank line (`line N`); in batches of about `batch_bytes`. A
    line over `max_line_bytes` is quarantined as `line_too_long`."""
    return json_value_batches(path, batch_bytes, max_line_bytes)


def read(path: Path) -> pa.Table:
    """The whole file's records in one table (tests and small files; ingest streams `read_batches`)."""
    return whole(read_batches(path))


register(
    "otel_genai",
    "gateway_logs",
    read_batches,
    "OpenTelemetry spans with gen_ai.* attributes as the SDK's ConsoleSpanExporter writes them "
    "(pretty-printed or one per line)",
)
