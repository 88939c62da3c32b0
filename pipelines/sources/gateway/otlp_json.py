"""`otlp_json`: OpenTelemetry spans in the OTLP JSON file format, one `ExportTraceServiceRequest`
per line, as the SDK's `opentelemetry-exporter-otlp-json-file` and the Collector's file exporter
write them (`{"resourceSpans": [{"resource": ..., "scopeSpans": [{"scope": ..., "spans": [...]}]}]}`).

The encoding is the protobuf JSON mapping with OTLP's deviations (opentelemetry-proto,
docs/specification.md, "JSON Protobuf Encoding"): `traceId`/`spanId` hex, enums as integers,
lowerCamelCase keys, 64-bit integers as decimal strings (`intValue: "3000"`,
`startTimeUnixNano`). Writers of the plain protobuf mapping (`MessageToJson`) put enum names
(`STATUS_CODE_ERROR`) and base64 ids instead: both are read, an id as it is written.

Records (`otlp_json_spans.sql`): one per span, `line N resourceSpans[i].scopeSpans[j].spans[k]`;
a line that is not a trace request, or a resource or scope entry OTLP would not write, is one
quarantined record. Attributes are `[{"key": ..., "value": {"stringValue" | "intValue" |
"doubleValue" | "boolValue" | "arrayValue": ...}}]`; a span whose attribute list repeats a key is
quarantined (OTLP requires unique keys).

Fields and tokens (projection: `otlp_json.sql`): the attributes `otel_genai` reads, with the same
precedence (that module's docstring lists them); `ts` from `startTimeUnixNano` (to the
microsecond, rounded), `duration_ms` from the end time, `status` `error` for status code 2.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.sources.gateway.records import RAW_SCHEMA, read_jsonl
from pipelines.sources.queries import sql_text
from pipelines.sources.registry import register


def read(path: Path) -> pa.Table:
    """One record per span of every request line; damaged lines stay one record each."""
    lines = read_jsonl(path)
    with duckdb.connect() as conn:
        conn.register("otlp_lines", lines)
        spans = conn.sql(sql_text(__package__, "otlp_json_spans.sql")).to_arrow_table()
    return spans.cast(RAW_SCHEMA)


register(
    "otlp_json",
    "gateway_logs",
    read,
    "OpenTelemetry spans with gen_ai.* attributes in the OTLP JSON file format (resourceSpans, one request per line)",
)
