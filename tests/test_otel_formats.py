"""OpenTelemetry spans read from the files their producers write.

The spans come from the real packages, driven in the test: the official OpenAI instrumentation
(`opentelemetry-instrumentation-openai-v2`) around the real `openai` client, and OpenLLMetry's
Anthropic instrumentation (`opentelemetry-instrumentation-anthropic`) around the real `anthropic`
client, both calling a local HTTP server that answers with usage we chose. The SDK writes them
three ways: `ConsoleSpanExporter` (its default, one pretty-printed span over many lines),
`opentelemetry-exporter-otlp-json-file` (OTLP JSON, one request per line) and the OTLP protobuf
encoder through protobuf's `MessageToJson` (enum names, base64 ids). Every expected number below
is the fake server's answer, worked by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import duckdb
import openai
import pytest
from google.protobuf.json_format import MessageToJson
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipelines.sources.gateway import day as gateway
from pipelines.sources.gateway import otel_genai, otlp_json

UTC = dt.timezone.utc

# What the fake provider answers, by the model asked for.
CHAT_PRIORITY = {
    "id": "chatcmpl-priority-1",
    "object": "chat.completion",
    "created": 1795000000,
    "model": "gpt-4o-2024-08-06",
    "service_tier": "priority",
    "system_fingerprint": "fp_1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "length"}],
    "usage": {
        "prompt_tokens": 3000,
        "completion_tokens": 400,
        "total_tokens": 3400,
        "prompt_tokens_details": {"cached_tokens": 2048, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}
CHAT_FLEX = {
    **CHAT_PRIORITY,
    "id": "chatcmpl-flex-2",
    "model": "o4-mini-2025-04-16",
    "service_tier": "flex",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 900,
        "total_tokens": 2100,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 640},
    },
}
MESSAGE_CACHED = {
    "id": "msg_01cached",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "max_tokens",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 1000,
        "cache_read_input_tokens": 6000,
        "cache_creation_input_tokens": 2000,
        "output_tokens": 300,
        "service_tier": "standard",
    },
}
MESSAGE_PLAIN = {
    **MESSAGE_CACHED,
    "id": "msg_02plain",
    "model": "claude-haiku-4-5-20251001",
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 250, "output_tokens": 40},
}
ANSWERS = {
    "gpt-4o": (200, CHAT_PRIORITY),
    "o4-mini": (200, CHAT_FLEX),
    "gpt-4o-mini": (429, {"error": {"message": "rate limited", "type": "rate_limit_error", "code": None}}),
    "claude-sonnet-4-5": (200, MESSAGE_CACHED),
    "claude-haiku-4-5": (200, MESSAGE_PLAIN),
}


class FakeProvider(BaseHTTPRequestHandler):
    """OpenAI's /v1/chat/completions and Anthropic's /v1/messages, answering by model."""

    def do_POST(self):  # noqa: N802 (http.server's method name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        status, answer = ANSWERS[body["model"]]
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The spans of five calls, as each exporter wrote them: {"console": path, "otlp": path,
    "protobuf_json": path, "spans": the SDK's finished spans}."""
    folder = tmp_path_factory.mktemp("otel")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    console_path, otlp_path = folder / "console.txt", folder / "spans.otlp.jsonl"
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    with open(console_path, "w", encoding="utf-8") as console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=console)))
        provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(otlp_path)))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        openai_instrumentor, anthropic_instrumentor = OpenAIInstrumentor(), AnthropicInstrumentor()
        openai_instrumentor.instrument(tracer_provider=provider)
        anthropic_instrumentor.instrument(tracer_provider=provider)
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            chat = openai.OpenAI(base_url=f"{base}/v1", api_key="test", max_retries=0)
            messages = anthropic.Anthropic(base_url=base, api_key="test", max_retries=0)
            question = [{"role": "user", "content": "hello"}]
            chat.chat.completions.create(model="gpt-4o", messages=question, max_tokens=50, service_tier="priority")
            chat.chat.completions.create(model="o4-mini", messages=question, service_tier="flex")
            with pytest.raises(openai.RateLimitError):
                chat.chat.completions.create(model="gpt-4o-mini", messages=question)
            messages.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=question)
            messages.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=question)
        finally:
            openai_instrumentor.uninstrument()
            anthropic_instrumentor.uninstrument()
            provider.shutdown()
            server.shutdown()
    spans = memory.get_finished_spans()
    protobuf_path = folder / "spans.protobuf.jsonl"
    protobuf_path.write_text(MessageToJson(encode_spans(spans), indent=None) + "\n", encoding="utf-8")
    return {"console": console_path, "otlp": otlp_path, "protobuf_json": protobuf_path, "spans": spans}


def validated(path, fmt, read):
    """Every record of the file through the format's projection and validate.sql, by request_id
    (and a list of all rows, quarantined ones included)."""
    with duckdb.connect() as conn:
        gateway.parse_records(conn, read(path), fmt, dt.date(2026, 11, 20))
        conn.execute("select * from gateway_file order by line_no")
        names = [d[0] for d in conn.description]
        rows = [dict(zip(names, row, strict=True)) for row in conn.fetchall()]
    return {row["request_id"]: row for row in rows if row["reason"] is None}, rows


FORMATS = {"console": ("otel_genai", otel_genai.read), "otlp": ("otlp_json", otlp_json.read)}
FIELDS = [
    "provider",
    "model",
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "service_tier",
    "finish_reason",
    "max_tokens",
    "status",
]


def span_id(span) -> str:
    return f"{span.context.span_id:016x}"


@pytest.mark.parametrize("layout", ["console", "otlp"])
def test_each_exporters_file_keeps_every_span_with_the_servers_numbers(exported, layout):
    fmt, read = FORMATS[layout]
    kept, rows = validated(exported[layout], fmt, read)
    assert [row["reason"] for row in rows] == [None] * 5
    error_span = next(
        span for span in exported["spans"] if span.attributes.get("gen_ai.request.model") == "gpt-4o-mini"
    )
    # the failed call has no response id: its span id stands in (the console writes it as 0x...)
    error_id = ("0x" if layout == "console" else "") + span_id(error_span)
    expected = {
        # openai-v2 2.4b0 records neither prompt_tokens_details.cached_tokens nor reasoning tokens
        # on chat spans: the 2,048 cached tokens the server reported are not in the file.
        "chatcmpl-priority-1": ("openai", "gpt-4o-2024-08-06", 3000, 0, 0, 400, 0, "priority", "length", 50, "ok"),
        "chatcmpl-flex-2": ("openai", "o4-mini-2025-04-16", 1200, 0, 0, 900, 0, "flex", "stop", None, "ok"),
        error_id: ("openai", "gpt-4o-mini", 0, 0, 0, 0, 0, None, None, None, "error"),
        # OpenLLMetry adds the cache reads and writes to the API's input_tokens: 1,000 + 6,000 + 2,000
        "msg_01cached": (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            9000,
            6000,
            2000,
            300,
            0,
            None,
            "length",
            1024,
            "ok",
        ),
        "msg_02plain": ("anthropic", "claude-haiku-4-5-20251001", 250, 0, 0, 40, 0, None, "stop", 256, "ok"),
    }
    assert {rid: tuple(row[name] for name in FIELDS) for rid, row in kept.items()} == expected
    by_id = {span_id(span): span for span in exported["spans"]}
    for row in kept.values():
        span = by_id[row_span_id(row, layout)]
        start = dt.datetime.fromtimestamp(span.start_time // 1000 / 1e6, UTC)
        assert abs(row["ts"] - start) <= dt.timedelta(microseconds=1)  # the console rounds through a float
        assert row["duration_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6, abs=1)


def row_span_id(row, layout) -> str:
    raw = json.loads(row["raw"])
    return raw["context"]["span_id"].removeprefix("0x") if layout == "console" else raw["spanId"]


def test_the_console_layout_is_one_record_per_pretty_printed_span(exported):
    """ConsoleSpanExporter writes `span.to_json()` with indent 4: the span's first line is `{`,
    and its record_ref points there."""
    lines = exported["console"].read_text(encoding="utf-8").split("\n")
    openings = [number for number, line in enumerate(lines, start=1) if line == "{"]
    assert len(openings) == 5 and len(lines) > 5 * 20
    _, rows = validated(exported["console"], "otel_genai", otel_genai.read)
    assert [row["record_ref"] for row in rows] == [f"line {number}" for number in openings]


def test_otlp_record_refs_name_the_span_in_its_request(exported):
    _, rows = validated(exported["otlp"], "otlp_json", otlp_json.read)
    # SimpleSpanProcessor exports each span alone: one request per line, one span in each
    assert [row["record_ref"] for row in rows] == [
        f"line {number} resourceSpans[0].scopeSpans[0].spans[0]" for number in range(1, 6)
    ]


def test_the_two_layouts_of_the_same_spans_read_alike(exported):
    console, _ = validated(exported["console"], "otel_genai", otel_genai.read)
    otlp, _ = validated(exported["otlp"], "otlp_json", otlp_json.read)
    compared = FIELDS + ["feature", "user_id", "stream", "conversation_id", "gateway_cache_hit"]
    assert {rid.removeprefix("0x"): tuple(row[name] for name in compared) for rid, row in console.items()} == {
        rid: tuple(row[name] for name in compared) for rid, row in otlp.items()
    }


def test_the_protobuf_json_mapping_enum_names_and_base64_ids(exported):
    """`MessageToJson` writes `STATUS_CODE_ERROR` and `SPAN_KIND_CLIENT` by name, ids in base64,
    all five spans in one request line."""
    text = exported["protobuf_json"].read_text(encoding="utf-8")
    assert '"STATUS_CODE_ERROR"' in text and text.count("\n") == 1
    kept, rows = validated(exported["protobuf_json"], "otlp_json", otlp_json.read)
    assert len(rows) == 5 and all(row["reason"] is None for row in rows)
    otlp, _ = validated(exported["otlp"], "otlp_json", otlp_json.read)
    answered = {rid: tuple(row[name] for name in FIELDS) for rid, row in kept.items() if row["status"] == "ok"}
    assert answered == {rid: tuple(row[name] for name in FIELDS) for rid, row in otlp.items() if row["status"] == "ok"}
    (error,) = [row for row in kept.values() if row["status"] == "error"]
    assert error["model"] == "gpt-4o-mini" and len(answered) == 4


# --- both attribute generations, hand-built where no installable producer writes them today ---
# util-genai >= 1.1 writes only the current conventions; the older names below are the semantic
# conventions' v1.26-v1.30 names and OpenLLMetry's, which spans already on disk still carry.

OLD_GENERATION = {
    "gen_ai.system": "az.ai.openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-11-20",
    "gen_ai.response.id": "chatcmpl-old-1",
    "gen_ai.usage.prompt_tokens": 5000,
    "gen_ai.usage.completion_tokens": 700,
    "gen_ai.usage.cache_read_input_tokens": 1024,
    "gen_ai.usage.cache_creation_input_tokens": 512,
    "gen_ai.openai.request.service_tier": "auto",
    "gen_ai.openai.response.service_tier": "default",
    "gen_ai.usage.reasoning_tokens": 300,
    "gen_ai.is_streaming": True,
    "gen_ai.response.finish_reasons": ["tool_calls"],
}
NEW_GENERATION = {
    "gen_ai.provider.name": "gcp.vertex_ai",
    "gen_ai.request.model": "claude-sonnet-4-5@20250929",
    "gen_ai.response.id": "msg_vertex_1",
    "gen_ai.usage.input_tokens": 250_000,
    "gen_ai.usage.output_tokens": 1_000,
    "gen_ai.usage.cache_read.input_tokens": 100_000,
    "gen_ai.usage.cache_write.input_tokens": 50_000,
    "gen_ai.usage.cache_creation.input_tokens": 1,  # the deprecated name loses to the current one
    "gen_ai.usage.reasoning.output_tokens": 200,
    "gen_ai.request.stream": False,
    "gen_ai.request.max_tokens": 4096,
    "gen_ai.conversation.id": "conv-42",
    "openai.request.service_tier": "flex",
    "gen_ai.response.finish_reasons": ["end_turn"],
}
GENERATIONS = {
    "chatcmpl-old-1": ("az.ai.openai", "gpt-4o-2024-11-20", 5000, 1024, 512, 700, 300, "standard", "tool_calls"),
    "msg_vertex_1": (
        "gcp.vertex_ai",
        "claude-sonnet-4-5@20250929",
        250_000,
        100_000,
        50_000,
        1_000,
        200,
        "flex",
        "stop",
    ),
}


def console_span(attributes: dict, span_id: str, status: str = "UNSET") -> dict:
    return {
        "name": "chat",
        "context": {"trace_id": "0x" + "ab" * 16, "span_id": "0x" + span_id, "trace_state": "[]"},
        "kind": "SpanKind.CLIENT",
        "parent_id": None,
        "start_time": "2026-11-20T10:00:00.000000Z",
        "end_time": "2026-11-20T10:00:02.250000Z",
        "status": {"status_code": status},
        "attributes": attributes,
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "app"}, "schema_url": ""},
    }


def otlp_value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, list):
        return {"arrayValue": {"values": [otlp_value(item) for item in value]}}
    return {"stringValue": value}


def otlp_span(attributes: dict, span_id: str, **fields) -> dict:
    return {
        "traceId": "ab" * 16,
        "spanId": span_id,
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": "1795168800000000000",  # 2026-11-20T10:00:00Z
        "endTimeUnixNano": "1795168802250000000",
        "attributes": [{"key": key, "value": otlp_value(value)} for key, value in attributes.items()],
        "status": {},
        **fields,
    }


def otlp_request(*spans) -> dict:
    return {
        "resourceSpans": [
            {"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}
        ]
    }


GENERATION_FIELDS = FIELDS[:8] + ["finish_reason"]


def test_both_attribute_generations_in_the_console_layout(tmp_path):
    path = tmp_path / "spans.txt"
    spans = [console_span(OLD_GENERATION, "01"), console_span(NEW_GENERATION, "02")]
    path.write_text("".join(json.dumps(span, indent=4) + "\n" for span in spans), encoding="utf-8")
    kept, rows = validated(path, "otel_genai", otel_genai.read)
    assert {rid: tuple(row[name] for name in GENERATION_FIELDS) for rid, row in kept.items()} == GENERATIONS
    old, new = kept["chatcmpl-old-1"], kept["msg_vertex_1"]
    assert (old["stream"], old["max_tokens"], old["duration_ms"]) == (True, None, 2250)
    assert (new["stream"], new["max_tokens"], new["conversation_id"]) == (False, 4096, "conv-42")
    assert new["ts"] == dt.datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_both_attribute_generations_in_otlp_json(tmp_path):
    path = tmp_path / "spans.jsonl"
    request = otlp_request(otlp_span(OLD_GENERATION, "01"), otlp_span(NEW_GENERATION, "02"))
    path.write_text(json.dumps(request) + "\n", encoding="utf-8")
    kept, _ = validated(path, "otlp_json", otlp_json.read)
    assert {rid: tuple(row[name] for name in GENERATION_FIELDS) for rid, row in kept.items()} == GENERATIONS
    assert kept["msg_vertex_1"]["ts"] == dt.datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert kept["msg_vertex_1"]["duration_ms"] == 2250


# --- nothing valid quarantined, every malformed span quarantined with its reason ---------------


def test_console_damage_is_quarantined_span_by_span(tmp_path):
    good = json.dumps(console_span(NEW_GENERATION, "02"), indent=4)
    bad_tokens = json.dumps(console_span({**OLD_GENERATION, "gen_ai.usage.prompt_tokens": "many"}, "03"), indent=4)
    cut = json.dumps(console_span(OLD_GENERATION, "04"), indent=4)[:300]  # a file still being written
    one_line = json.dumps(console_span({**OLD_GENERATION, "gen_ai.response.id": "chatcmpl-line"}, "05"))
    path = tmp_path / "spans.txt"
    path.write_text("\n".join([good, "not json", bad_tokens, one_line, cut]), encoding="utf-8")
    _, rows = validated(path, "otel_genai", otel_genai.read)
    good_lines, bad_lines = good.count("\n") + 1, bad_tokens.count("\n") + 1
    assert [(row["record_ref"], row["reason"]) for row in rows] == [
        ("line 1", None),
        (f"line {good_lines + 1}", "bad_json"),
        (f"line {good_lines + 2}", "bad_type:input_tokens"),
        (f"line {good_lines + 2 + bad_lines}", None),
        (f"line {good_lines + 3 + bad_lines}", "bad_json"),
    ]
    assert rows[-1]["raw"] == cut  # the cut span is one record, verbatim


def test_otlp_damage_is_quarantined_where_it_is(tmp_path):
    good = otlp_span(NEW_GENERATION, "02")
    duplicated = {**otlp_span({}, "03"), "attributes": [{"key": "a", "value": {"intValue": "1"}}] * 2}
    lines = [
        json.dumps(otlp_request(good, "not a span", duplicated, {**otlp_span({}, "04"), "attributes": {"a": 1}})),
        "not json",
        json.dumps({"resourceLogs": []}),
        json.dumps({"resourceSpans": {"scopeSpans": []}}),
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": {"a": 1}}]}, 7]}),
        json.dumps({"resourceSpans": []}),  # an empty request holds no span: no record
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, rows = validated(path, "otlp_json", otlp_json.read)
    span = "line 1 resourceSpans[0].scopeSpans[0].spans"
    assert [(row["record_ref"], row["reason"]) for row in rows] == [
        (f"{span}[0]", None),
        (f"{span}[1]", "not_an_object"),
        (f"{span}[2]", "bad_otlp:attribute keys missing or repeated"),
        (f"{span}[3]", "bad_type:attributes"),
        ("line 2", "bad_json"),
        ("line 3", "not_otlp_traces:no resourceSpans"),
        ("line 4", "bad_otlp:resourceSpans is not a list"),
        ("line 5 resourceSpans[0].scopeSpans[0]", "bad_otlp:spans is not a list"),
        ("line 5 resourceSpans[1]", "bad_otlp:not an object"),
    ]
    assert [row["line_no"] for row in rows] == list(range(1, 10))


def test_otlp_day_accounting_adds_up(tmp_path):
    """Through the day's ingest: every span is kept, quarantined or a duplicate, per file."""
    path = tmp_path / "spans.jsonl"
    request = otlp_request(otlp_span(NEW_GENERATION, "02"), otlp_span(OLD_GENERATION, "01"))
    path.write_text(json.dumps(request) + "\n" + json.dumps(request) + "\nnot json\n", encoding="utf-8")
    with duckdb.connect() as conn:
        result = gateway.ingest_day(conn, tmp_path / "lake", [(path, "otlp_json")], dt.date(2026, 11, 20))
    assert (result.lines, result.kept, result.quarantined, result.duplicates) == (5, 2, 1, 2)


def test_spans_in_both_layouts_are_priced_through_the_daily_run(project):
    """The formats as a config names them, through the daily job to fct_requests. gpt-4o-2024-08-06
    at the standard tier: 3,000 input of which 2,048 cache reads, 400 output."""
    usage = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 3000,
        "gen_ai.usage.cache_read.input_tokens": 2048,
        "gen_ai.usage.output_tokens": 400,
        "openai.response.service_tier": "default",
    }
    console = project.root / "inputs" / "console.txt"
    console.write_text(json.dumps(console_span({**usage, "gen_ai.response.id": "c-1"}, "01"), indent=4) + "\n")
    otlp = project.root / "inputs" / "spans.otlp.jsonl"
    otlp.write_text(json.dumps(otlp_request(otlp_span({**usage, "gen_ai.response.id": "o-1"}, "02"))) + "\n")
    project.write_config(
        sources={
            "gateway_logs": [{"path": str(console), "format": "otel_genai"}, {"path": str(otlp), "format": "otlp_json"}]
        }
    )
    project.run_day("2026-11-20")
    cost = dict(project.query("select request_id, cost_usd from fct_requests"))
    # 952 uncached x 2.5e-6 + 2,048 cached x 1.25e-6 + 400 out x 1e-5 (the demo catalog's gpt-4o-2024-08-06)
    expected = 952 * D("2.5e-6") + 2048 * D("1.25e-6") + 400 * D("1e-5")
    assert cost == {"c-1": expected, "o-1": expected}


# Any mix of pretty-printed spans, one-line spans and garbage lines: each span is one record at its
# first line, and only the garbage is quarantined. Garbage here never starts with a space or a tab
# and is never `{` or `}` alone: such lines inside a pretty-printed span are part of it by design.
garbage_lines = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), min_size=1).filter(
    lambda text: text.strip() and text[0] not in " \t" and text not in ("{", "}")
)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    st.lists(st.one_of(st.sampled_from(["pretty", "line"]), garbage_lines), max_size=8),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
)
def test_any_mix_of_layouts_keeps_every_span(tmp_path_factory, items, cut_last, newline):
    texts, expected, number = [], [], 1
    for index, item in enumerate(items):
        if item in ("pretty", "line"):
            span = console_span({**NEW_GENERATION, "gen_ai.response.id": f"r{index}"}, f"{index:02x}")
            text = json.dumps(span, indent=4 if item == "pretty" else None)
            expected.append((f"line {number}", None))
        else:
            text = item
            expected.append((f"line {number}", "quarantined"))
        texts.append(text)
        number += text.count("\n") + 1
    if cut_last:  # a pretty-printed span the exporter is still writing
        texts.append(json.dumps(console_span(NEW_GENERATION, "ff"), indent=4)[:200])
        expected.append((f"line {number}", "quarantined"))
    path = tmp_path_factory.mktemp("mix") / "spans.txt"
    path.write_bytes("\n".join(texts).replace("\n", newline).encode())
    _, rows = validated(path, "otel_genai", otel_genai.read)
    assert [(row["record_ref"], row["reason"] and "quarantined") for row in rows] == expected
