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

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sources.gateway.records import BATCH_BYTES, RAW_SCHEMA, jsonl_batches, whole
from pipelines.sources.queries import sql_text
from pipelines.sources.records import MAX_LINE_BYTES
from pipelines.sources.registry import register


def read_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """One record per span of every request line; damaged lines (and lines over `max_line_bytes`,
    `line_too_long`) stay one record each. Each batch
    of lines is split into its spans on its own (a line is a whole request), numbered on from
    the batch before."""
    spans_sql = sql_text(__package__, "otlp_json_spans.sql")
    numbered = 0
    with duckdb.connect() as conn:
        for lines in jsonl_batches(path, batch_bytes, max_line_bytes):
            conn.register("otlp_lines", lines)
            spans = conn.sql(spans_sql).to_arrow_table().cast(RAW_SCHEMA)
            conn.unregister("otlp_lines")
            line_no = pc.add(spans.column("line_no"), numbered)
            numbered += spans.num_rows
            yield spans.set_column(1, "line_no", line_no)


def read(path: Path) -> pa.Table:
    """The whole file's records in one table (tests and small files; ingest streams `read_batches`)."""
    return whole(read_batches(path))


register(
    "otlp_json",
    "gateway_logs",
    read_batches,
    "OpenTelemetry spans with gen_ai.* attributes in the OTLP JSON file format (resourceSpans, one request per line)",
)
