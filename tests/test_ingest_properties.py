"""Nothing is lost at gateway ingest, whatever the files hold: property-based tests.

Hypothesis builds log files (canonical and OTel JSON lines, LiteLLM CSV / JSON array / JSON
lines, plain or gzip, whole or cut) that mix valid calls with every kind of damage a real
pipeline sees. The test keeps its own model of each record (valid or not, which UTC day, which
tokens) and its own reader of the bytes it wrote (which lines are non-blank, what their text
is), then runs `ingest_day` for every day and checks the lake against that model:

- ingest never raises;
- per day and per file: lines read = kept + quarantined + duplicates, each equal to the model's count;
- over all days, the lines of a file add up to the non-blank lines (records) written;
- every valid call is kept exactly once, with its exact token counts (first delivery wins);
- every other record is quarantined with a non-empty reason and its verbatim text.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.sources.gateway import day as gateway

pytestmark = pytest.mark.slow  # hypothesis searches; part of `make test` all the same

UTC = dt.timezone.utc
DAYS = [dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
FILE_DAY = dt.date(2026, 11, 10)  # every file's mtime: the day of lines in a file with no good record
BOM = b"\xef\xbb\xbf"
INVALID_UTF8 = [b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]
BAD_TS = [
    "not-a-time",
    "2026-13-01T00:00:00Z",
    "2026-11-31T10:00:00Z",
    "infinity",
    "epoch",
    "20000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "",
    1732000000,
]
TOKEN_FIELDS = ["input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens"]
INT64_MAX = 2**63 - 1
DELETE = object()

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the model: logical calls and the records that carry them -------------------------------------


@dataclass(frozen=True)
class Call:
    """One LLM call as the gateway saw it, before any format renders it."""

    request_id: str
    ts: dt.datetime  # UTC
    model: str
    input_tokens: int
    cached_input_tokens: int
    cache_creation_input_tokens: int
    output_tokens: int
    feature: str

    @property
    def tokens(self) -> tuple[int, int, int, int]:
        return (self.input_tokens, self.cached_input_tokens, self.cache_creation_input_tokens, self.output_tokens)


@dataclass
class Record:
    """What the test expects of one record (a non-blank line, a CSV row, a JSON array element)."""

    line_no: int
    raw: str | None  # expected verbatim text in the quarantine (None: checked another way)
    call: Call | None = None  # set when the record is valid
    own_day: dt.date | None = None  # the UTC day of its readable timestamp, when it has one
    reason: str | None = None  # exact expected reason, where the test pins it
    cells: list[str] | None = None  # CSV rows: the cells written


@dataclass
class InputFile:
    name: str
    fmt: str
    data: bytes
    records: list[Record] = field(default_factory=list)
    layout: str = "lines"  # lines, csv or json_array: how the quarantine's record_ref points into the file

    def record_ref(self, record: Record) -> str:
        """`line N`; a CSV's `row N` with the header as row 1; a JSON array's 0-based `[i]`."""
        if self.layout == "csv":
            return f"row {record.line_no + 1}"
        if self.layout == "json_array":
            return f"[{record.line_no - 1}]"
        return f"line {record.line_no}"

    def __repr__(self) -> str:  # falsifying examples can hold megabytes
        return f"InputFile({self.name!r}, {self.fmt!r}, data={_short(self.data)}, records={_short(self.records)})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 4000 else f"{text[:3000]}...<{len(text)} chars>...{text[-500:]}"


# --- rendering one call in each format ------------------------------------------------------------

FIELD_PATHS = {
    "canonical": {
        "request_id": ("request_id",),
        "ts": ("ts",),
        "model": ("model",),
        "input_tokens": ("input_tokens",),
        "cached_input_tokens": ("cached_input_tokens",),
        "cache_creation_input_tokens": ("cache_creation_input_tokens",),
        "output_tokens": ("output_tokens",),
        "gateway_cache_hit": ("gateway_cache_hit",),
        "status": ("status",),
    },
    "otel_genai": {
        "request_id": ("attributes", "gen_ai.response.id"),
        "ts": ("start_time",),
        "model": ("attributes", "gen_ai.response.model"),
        "input_tokens": ("attributes", "gen_ai.usage.input_tokens"),
        "cached_input_tokens": ("attributes", "gen_ai.usage.cache_read.input_tokens"),
        "cache_creation_input_tokens": ("attributes", "gen_ai.usage.cache_creation.input_tokens"),
        "output_tokens": ("attributes", "gen_ai.usage.output_tokens"),
    },
    "litellm_spend_logs": {
        "request_id": ("request_id",),
        "ts": ("startTime",),
        "model": ("model",),
        "input_tokens": ("prompt_tokens",),
        "cached_input_tokens": ("metadata", "usage_object", "cache_read_input_tokens"),
        "cache_creation_input_tokens": ("metadata", "usage_object", "cache_creation_input_tokens"),
        "output_tokens": ("completion_tokens",),
        "status": ("status",),
    },
}
# The name a format's bad-type reason uses for a text field.
TEXT_FIELD_NAMES = {
    "canonical": {"request_id": "request_id", "ts": "ts", "model": "model"},
    "otel_genai": {"request_id": "gen_ai.response.id", "ts": "start_time", "model": "gen_ai.response.model"},
    "litellm_spend_logs": {"request_id": "request_id", "ts": "startTime", "model": "model"},
}
LITELLM_COLUMNS = [
    "request_id",
    "call_type",
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "model",
    "custom_llm_provider",
    "user",
    "metadata",
    "cache_hit",
    "request_tags",
    "end_user",
    "status",
]  # status last, as LiteLLM exports it: a row cut short never ends in a whole value


def render(call: Call, fmt: str, offset_minutes: int = 0) -> dict:
    if fmt == "canonical":
        local = call.ts.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
        return {
            "request_id": call.request_id,
            "ts": local.isoformat(),
            "model": call.model,
            "input_tokens": call.input_tokens,
            "cached_input_tokens": call.cached_input_tokens,
            "cache_creation_input_tokens": call.cache_creation_input_tokens,
            "output_tokens": call.output_tokens,
            "feature": call.feature,
            "provider": "openai",
            "status": "ok",
        }
    end = call.ts + dt.timedelta(milliseconds=1500)
    if fmt == "otel_genai":
        return {
            "name": f"chat {call.model}",
            "context": {"trace_id": "0xabc", "span_id": f"span-{call.request_id}"},
            "start_time": call.ts.isoformat().replace("+00:00", "Z"),
            "end_time": end.isoformat().replace("+00:00", "Z"),
            "status": {"status_code": "UNSET"},
            "attributes": {
                "gen_ai.response.id": call.request_id,
                "gen_ai.provider.name": "openai",
                "gen_ai.response.model": call.model,
                "app.feature": call.feature,
                "gen_ai.usage.input_tokens": call.input_tokens,
                "gen_ai.usage.cache_read.input_tokens": call.cached_input_tokens,
                "gen_ai.usage.cache_creation.input_tokens": call.cache_creation_input_tokens,
                "gen_ai.usage.output_tokens": call.output_tokens,
            },
        }
    return {
        "request_id": call.request_id,
        "call_type": "acompletion",
        "spend": 0.001,
        "prompt_tokens": call.input_tokens,
        "completion_tokens": call.output_tokens,
        "startTime": call.ts.strftime("%Y-%m-%d %H:%M:%S.%f+00:00"),
        "endTime": end.strftime("%Y-%m-%d %H:%M:%S.%f+00:00"),
        "model": call.model,
        "custom_llm_provider": "openai",
        "user": "key-owner",
        "cache_hit": False,
        "request_tags": [],
        "end_user": call.feature,
        "status": "success",
        "metadata": {
            "usage_object": {
                "cache_read_input_tokens": call.cached_input_tokens,
                "cache_creation_input_tokens": call.cache_creation_input_tokens,
            }
        },
    }


def set_path(record: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        record = record[key]
    if value is DELETE:
        record.pop(path[-1], None)
    else:
        record[path[-1]] = value


def csv_line(cells: list[str]) -> str:
    """One CSV row without its line end, quoting cells that hold a CR or LF (RFC 4180)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)  # quotes what holds any line-end character
    return out.getvalue().removesuffix("\r\n")


def csv_cells(record: dict) -> list[str]:
    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    return [cell(record.get(column)) for column in LITELLM_COLUMNS]


# --- strategies -----------------------------------------------------------------------------------

text_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
model_names = st.one_of(
    st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "llama-3.1-8b"]),
    st.text(text_chars, min_size=1, max_size=20).filter(lambda s: s.strip() and "/" not in s),
)
token_counts = st.one_of(st.integers(0, 5000), st.integers(0, INT64_MAX))


@st.composite
def calls(draw, request_id: str) -> Call:
    day = draw(st.sampled_from(DAYS))
    # Near midnight on purpose: the edges of a UTC day.
    seconds = draw(st.one_of(st.integers(0, 86_399), st.sampled_from([0, 59, 86_340, 86_399])))
    micros = draw(st.sampled_from([0, 1, 999_999, 123_456]))
    ts = dt.datetime.combine(day, dt.time(), UTC) + dt.timedelta(seconds=seconds, microseconds=micros)
    input_tokens = draw(token_counts)
    cached = draw(st.integers(0, input_tokens))
    creation = draw(st.integers(0, input_tokens - cached))
    suffix = draw(st.text(text_chars, max_size=6))
    feature = draw(
        st.one_of(st.text(text_chars, max_size=30), st.sampled_from(["x" * 600_000, "y" * 3_000_000]))
        if draw(st.integers(0, 11)) == 0
        else st.text(text_chars, max_size=30)
    )
    return Call(
        request_id=request_id + suffix,
        ts=ts,
        model=draw(model_names),
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        cache_creation_input_tokens=creation,
        output_tokens=draw(token_counts),
        feature=feature,
    )


def pin(changes, reason):
    return st.just((changes, reason))


def mutations(fmt: str, container: str):
    """(what to change, expected reason or None) for records that break exactly one rule."""
    names = TEXT_FIELD_NAMES[fmt]
    is_csv = container == "csv"
    text_number = "12 tokens" if fmt == "litellm_spend_logs" else "12"  # LiteLLM reads digit strings as counts
    options = [
        pin((("request_id", DELETE),), "missing_request_id"),
        pin((("model", DELETE),), "missing_model"),
        st.sampled_from(BAD_TS).map(lambda value: ((("ts", value),), "missing_ts" if value is None else "bad_ts")),
    ]
    if not is_csv:  # a CSV cell is always text: objects and arrays cannot be told from text there
        options += [
            pin((("request_id", None),), "missing_request_id"),
            pin((("ts", DELETE),), "missing_ts"),
            pin((("request_id", {"id": 1}),), f"bad_type:{names['request_id']}"),
            pin((("ts", ["2026-11-20T10:00:00Z"]),), f"bad_type:{names['ts']}"),
            pin((("model", ["gpt-4o"]),), f"bad_type:{names['model']}"),
        ]
    token = st.sampled_from(TOKEN_FIELDS)
    options += [
        token.map(lambda name: (((name, text_number),), f"bad_type:{name}")),
        st.tuples(token, st.integers(1, INT64_MAX)).map(lambda t: (((t[0], -t[1]),), f"negative:{t[0]}")),
        st.tuples(token, st.one_of(st.integers(INT64_MAX + 1, 2**64 + 5), st.just(10**25), st.just(10**400))).map(
            lambda t: (((t[0], t[1]),), f"bad_type:{t[0]}")
        ),
        st.tuples(token, st.sampled_from([1.5, True, [1], {"n": 1}, "twelve"])).map(
            lambda t: (((t[0], t[1]),), f"bad_type:{t[0]}")
        ),
        st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)).map(
            lambda t: (
                (("input_tokens", t[0]), ("cached_input_tokens", t[0] + t[1]), ("cache_creation_input_tokens", 0)),
                "cached_exceeds_input",
            )
        ),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 10**6)).map(
            lambda t: (
                (
                    ("input_tokens", t[0] + t[1]),
                    ("cached_input_tokens", t[0]),
                    ("cache_creation_input_tokens", t[1] + t[2]),
                ),
                "cache_reads_and_writes_exceed_input",
            )
        ),
    ]
    if fmt == "canonical":
        options += [
            pin((("gateway_cache_hit", "yes"),), "bad_type:gateway_cache_hit"),
            pin((("status", "maybe"),), "bad_status"),
        ]
    return st.one_of(options)


def mutate(call: Call, fmt: str, changes) -> dict:
    record = render(call, fmt)
    for name, value in changes:
        set_path(record, FIELD_PATHS[fmt][name], value)
        if fmt == "otel_genai" and name == "request_id":
            record["context"].pop("span_id")  # the span id stands in for a missing response id
    return record


def own_day_after(changes, call: Call) -> dt.date | None:
    """The day of a mutated record's timestamp: its call's day unless the timestamp was broken."""
    return None if any(name == "ts" for name, _ in changes) else call.ts.date()


# Each draw of a "slot" yields the pieces of one record: kind and payload. Kinds:
#   valid, duplicate, conflict, invalid, garbage, not_json_object, not_utf8, huge_line, blank
SLOT_KINDS = [
    "valid",
    "valid",
    "valid",
    "duplicate",
    "conflict",
    "invalid",
    "invalid",
    "garbage",
    "not_json_object",
    "not_utf8",
    "huge_line",
    "blank",
]
garbage_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=1, max_size=80
).filter(lambda s: not s.isspace() and s.strip() != "")
NOT_OBJECTS = ["[1, 2]", "123", '"text"', "null", "true", "[" * 20_000 + "]" * 20_000]


@dataclass
class Slot:
    kind: str
    call: Call | None = None
    record: dict | None = None  # rendered JSON object for valid/invalid records
    reason: str | None = None
    own_day: dt.date | None = None
    text: str | None = None  # garbage / not-object / huge text
    bad_bytes: bytes | None = None
    blank: str | None = None


@st.composite
def slots(draw, fmt: str, container: str, file_index: int, pool: list[Call]) -> list[Slot]:
    result = []
    for position in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(SLOT_KINDS))
        if kind in ("duplicate", "conflict") and not pool:
            kind = "valid"
        if container == "csv" and kind in ("not_json_object", "huge_line"):
            kind = "garbage"  # in a CSV these are just cells: the ragged/garbage rows cover them
        request_id = f"r{file_index}-{position}-"
        if kind == "valid":
            call = draw(calls(request_id))
            pool.append(call)
            offset = draw(st.sampled_from([0, 0, 330, -300, 14 * 60, -12 * 60]))
            result.append(Slot(kind, call=call, record=render(call, fmt, offset)))
        elif kind == "duplicate":
            call = draw(st.sampled_from(pool))
            result.append(Slot(kind, call=call, record=render(call, fmt)))
        elif kind == "conflict":  # the same request_id and time, other content
            first = draw(st.sampled_from(pool))
            call = replace(first, output_tokens=(first.output_tokens + 1) % (INT64_MAX + 1), feature="changed")
            result.append(Slot(kind, call=call, record=render(call, fmt)))
        elif kind == "invalid":
            call = draw(calls(request_id))
            changes, reason = draw(mutations(fmt, container))
            result.append(
                Slot(
                    kind,
                    call=call,
                    record=mutate(call, fmt, changes),
                    reason=reason,
                    own_day=own_day_after(changes, call),
                )
            )
        elif kind == "garbage":
            result.append(Slot(kind, text=draw(garbage_text)))
        elif kind == "not_json_object":
            result.append(Slot(kind, text=draw(st.sampled_from(NOT_OBJECTS)), reason="not_an_object"))
        elif kind == "huge_line":
            body = draw(st.sampled_from(['{"request_id": "' + "h" * 3_000_000, "9" * 5_000]))
            result.append(Slot(kind, text=body))
        elif kind == "not_utf8":
            call = draw(calls(request_id))
            result.append(
                Slot(
                    kind,
                    call=call,
                    record=render(call, fmt),
                    bad_bytes=draw(st.sampled_from(INVALID_UTF8)),
                    reason="not_utf8",
                )
            )
        else:
            result.append(Slot(kind, blank=draw(st.sampled_from(["", " ", "\t", "  \t "]))))
    return result


# --- building files, and reading their bytes the simple way ---------------------------------------


def record_bytes(slot: Slot) -> bytes:
    if slot.record is not None:
        data = json.dumps(slot.record, ensure_ascii=ascii_json(slot)).encode()
        if slot.bad_bytes is not None:  # inside a string value, so only the encoding is wrong
            data = data.replace(b'"openai"', b'"open' + slot.bad_bytes + b'ai"', 1)
        return data
    return (slot.text if slot.text is not None else slot.blank).encode()


def ascii_json(slot: Slot) -> bool:
    return slot.call is not None and len(slot.call.request_id) % 2 == 0  # both JSON spellings of text


def reference_lines(data: bytes) -> tuple[list[tuple[int, str, bool]], int]:
    """(line_no, text, is UTF-8) of every non-blank line, and how many lines the text has:
    lines split on LF, a trailing CR dropped, a BOM at the start dropped."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    chunks = data.split(b"\n")
    lines = []
    for number, chunk in enumerate(chunks, start=1):
        try:
            text, utf8 = chunk.decode("utf-8"), True
        except UnicodeDecodeError:
            text, utf8 = chunk.decode("utf-8", errors="replace"), False
        text = text.rstrip("\r")
        if text.strip():
            lines.append((number, text, utf8))
    return lines, len(chunks)


def gunzip_prefix(data: bytes) -> bytes:
    """Everything zlib can inflate from a gzip stream cut short, member after member."""
    out = b""
    while data:
        inflater = zlib.decompressobj(wbits=31)
        out += inflater.decompress(data) + inflater.flush()
        if not inflater.eof:
            return out
        data = inflater.unused_data
    return out


@st.composite
def jsonl_files(draw, fmt: str, index: int, pool: list[Call]) -> InputFile:
    file_slots = draw(slots(fmt, "jsonl", index, pool))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    texts = [record_bytes(slot) for slot in file_slots]
    cut_tail = draw(st.booleans())
    if cut_tail and file_slots:  # a last line cut mid-record, without its newline
        whole = json.dumps(render(draw(calls(f"r{index}-cut-")), fmt)).encode()
        texts.append(whole[: draw(st.integers(1, len(whole) - 1))])
        file_slots.append(Slot("cut"))
    data = newline.join(texts)
    if texts and not cut_tail and draw(st.booleans()):
        data += newline
    if draw(st.booleans()):
        data = BOM + data
    gzipped, damage = draw(st.sampled_from(["plain", "plain", "gzip", "gzip_cut", "gzip_trailing"])), None
    disk = data
    if gzipped != "plain":
        members = draw(st.integers(1, 2))
        split = len(data) // 2 if members == 2 else len(data)
        disk = gzip.compress(data[:split]) + (gzip.compress(data[split:]) if members == 2 else b"")
        if gzipped == "gzip_cut":
            disk = disk[: draw(st.integers(2, max(2, len(disk) - 1)))]
            data, damage = gunzip_prefix(disk), "truncated_gzip"
        elif gzipped == "gzip_trailing":
            disk += b"not gzip"
            damage = "damaged_gzip"
    lines, line_count = reference_lines(data)
    records = []
    for number, text, utf8 in lines:
        whole = texts[number - 1].decode("utf-8", errors="replace").rstrip("\r") if number <= len(texts) else None
        if text != whole:  # the line a cut stream ends in: only part of it arrived (maybe of the BOM)
            records.append(Record(number, text))
            continue
        slot = file_slots[number - 1]
        if slot.kind in ("valid", "duplicate", "conflict"):
            records.append(Record(number, text, call=slot.call, own_day=slot.call.ts.date()))
        else:
            reason = slot.reason if fmt != "litellm_spend_logs" else None
            if not utf8:
                reason = "not_utf8"
            records.append(Record(number, text, own_day=slot.own_day if utf8 else None, reason=reason))
    if damage:
        records.append(Record(line_count + 1, "", reason=damage))
    return InputFile(f"f{index}.jsonl" + (".gz" if gzipped != "plain" else ""), fmt, disk, records)


@st.composite
def litellm_csv_files(draw, index: int, pool: list[Call]) -> InputFile:
    file_slots = draw(slots("litellm_spend_logs", "csv", index, pool))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [csv_line(LITELLM_COLUMNS)]
    rows: list[tuple[Slot, list[str]]] = []
    for slot in file_slots:
        if slot.record is not None:
            cells = csv_cells(slot.record)
            if slot.bad_bytes is not None:
                cells[LITELLM_COLUMNS.index("custom_llm_provider")] = "open\x01BAD\x01ai"
        elif slot.kind == "garbage":  # a row with the wrong number of cells
            cells = [slot.text] * draw(st.sampled_from([1, 3, len(LITELLM_COLUMNS) + 1]))
        else:
            cells = [slot.blank] * draw(st.sampled_from([1, len(LITELLM_COLUMNS)]))
        rows.append((slot, cells))
        lines.append(csv_line(cells))
    text = "".join(line + newline for line in lines)
    cut_row = None
    if rows and draw(st.booleans()):  # the last row cut short, no newline
        cut_call = draw(calls(f"r{index}-cut-"))
        row_text = csv_line(csv_cells(render(cut_call, "litellm_spend_logs")))
        cut_row = row_text[: draw(st.integers(1, len(row_text) - 1))]
        text += cut_row
    data = text.encode()
    bad = draw(st.sampled_from(INVALID_UTF8))
    data = data.replace(b"\x01BAD\x01", bad)
    if draw(st.booleans()):
        data = BOM + data
    gzipped = draw(st.booleans())
    records = []
    number = 0
    for number, (slot, cells) in enumerate(rows, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if slot.kind in ("valid", "duplicate", "conflict"):
            records.append(Record(number, None, call=slot.call, own_day=slot.call.ts.date(), cells=cells))
        elif slot.bad_bytes is not None:
            records.append(Record(number, None, reason="not_utf8", cells=None))
        else:
            ragged = len(cells) != len(LITELLM_COLUMNS)
            records.append(Record(number, None, own_day=None if ragged else slot.own_day, cells=cells))
    cut_cells = next(csv.reader([cut_row])) if cut_row is not None else []
    if any(cell.strip() for cell in cut_cells):
        # Cut inside its last cell (status), the row still has every cell, and its startTime is whole.
        whole = len(cut_cells) == len(LITELLM_COLUMNS)
        records.append(Record(number + 1, None, own_day=cut_call.ts.date() if whole else None, cells=cut_cells))
    return InputFile(
        f"f{index}.csv" + (".gz" if gzipped else ""),
        "litellm_spend_logs",
        gzip.compress(data) if gzipped else data,
        records,
        layout="csv",
    )


@st.composite
def litellm_json_array_files(draw, index: int, pool: list[Call]) -> InputFile:
    file_slots = [slot for slot in draw(slots("litellm_spend_logs", "json", index, pool)) if slot.kind != "blank"]
    separator = draw(st.sampled_from([", ", ",\n", ",\r\n  "]))
    elements = []
    records = []
    for number, slot in enumerate(file_slots, start=1):
        if slot.kind == "garbage" and _is_json(slot.text.strip(" \t\r\n")):
            slot = Slot("garbage", text=slot.text.strip(" \t\r\n"))  # an element is read without its spacing
        elif slot.kind in ("garbage", "huge_line"):
            slot = Slot("not_json_object", text="[1, 2]", reason="not_an_object")
        element = record_bytes(slot).decode("utf-8", errors="surrogateescape")
        elements.append(element)
        expected = element.encode("utf-8", "surrogateescape").decode("utf-8", errors="replace")
        if slot.kind in ("valid", "duplicate", "conflict"):
            records.append(Record(number, expected, call=slot.call, own_day=slot.call.ts.date()))
        else:
            records.append(Record(number, expected, own_day=None if slot.bad_bytes else slot.own_day))
    text = "[" + separator.join(elements) + "]"
    ending = draw(st.sampled_from(["whole", "whole", "no_bracket", "cut"]))
    if ending == "no_bracket":
        text = text[:-1]
        records.append(
            Record(len(elements) + 1, "", reason="bad_json_document:the array is cut before its closing bracket")
        )
    elif ending == "cut" and elements:
        last = elements[-1]
        keep = draw(st.integers(1, max(1, len(last) - 1)))
        text = text[: len(text) - 1 - len(last)] + last[:keep]
        partial = last[:keep].encode("utf-8", "surrogateescape").decode("utf-8", errors="replace")
        records[-1] = Record(len(elements), partial)
        if _is_json(last[:keep]):  # a number cut short is still a number: then the array alone is cut
            records.append(Record(len(elements) + 1, "", reason="bad_json_document:the array is cut"))
    data = text.encode("utf-8", "surrogateescape")
    if draw(st.booleans()):
        data = BOM + data
    return InputFile(f"f{index}.json", "litellm_spend_logs", data, records, layout="json_array")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


@st.composite
def input_sets(draw) -> list[InputFile]:
    pool: list[Call] = []
    files = []
    for index in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["canonical", "canonical", "otel_genai", "litellm_csv", "litellm_json", "litellm_jsonl"])
        )
        if kind == "litellm_csv":
            files.append(draw(litellm_csv_files(index, pool)))
        elif kind == "litellm_json":
            files.append(draw(litellm_json_array_files(index, pool)))
        else:
            fmt = "litellm_spend_logs" if kind == "litellm_jsonl" else kind
            files.append(draw(jsonl_files(fmt, index, pool)))
    return files


# --- the test's own expectations --------------------------------------------------------------


def assigned_days(records: list[Record]) -> list[dt.date]:
    """A record's day: its own timestamp's; else the day of the nearest valid record before it
    in the file, else after it; else the file's modification day."""
    valid_days = [(position, record.call.ts.date()) for position, record in enumerate(records) if record.call]
    days = []
    for position, record in enumerate(records):
        if record.own_day is not None:
            days.append(record.own_day)
            continue
        before = [day for at, day in valid_days if at < position]
        after = [day for at, day in valid_days if at > position]
        days.append(before[-1] if before else after[0] if after else FILE_DAY)
    return days


@dataclass
class Expected:
    counts: dict  # (file path, day) -> {"lines", "kept", "quarantined", "duplicates"}
    kept: dict  # request_id -> tokens of the first delivery
    conflicts: dict  # day -> conflicting duplicates
    quarantined: dict  # (file path, record_ref) -> Record


def expectations(files: list[InputFile], paths: list[Path]) -> Expected:
    counts, deliveries, quarantined = {}, {}, {}
    for input_file, path in zip(files, paths, strict=True):
        for record, day in zip(input_file.records, assigned_days(input_file.records), strict=True):
            entry = counts.setdefault((str(path), day), {"lines": 0, "kept": 0, "quarantined": 0, "duplicates": 0})
            entry["lines"] += 1
            if record.call is None:
                entry["quarantined"] += 1
                quarantined[(str(path), input_file.record_ref(record))] = record
            else:
                deliveries.setdefault((day, record.call.request_id), []).append(
                    (str(path), record.line_no, record.call)
                )
    kept, conflicts = {}, {}
    for (day, request_id), copies in deliveries.items():
        copies.sort(key=lambda copy: (copy[0], copy[1]))
        first = copies[0][2]
        assert request_id not in kept, "the generator puts every copy of a call on the call's day"
        kept[request_id] = first.tokens
        counts[(copies[0][0], day)]["kept"] += 1
        for path, _, call in copies[1:]:
            counts[(path, day)]["duplicates"] += 1
            if (call.model, call.tokens) != (first.model, first.tokens):
                conflicts[day] = conflicts.get(day, 0) + 1
    return Expected(counts, kept, conflicts, quarantined)


def write_inputs(root: Path, files: list[InputFile]) -> list[Path]:
    paths = []
    stamp = dt.datetime.combine(FILE_DAY, dt.time(12), UTC).timestamp()
    for input_file in files:
        path = root / input_file.name
        path.write_bytes(input_file.data)
        os.utime(path, (stamp, stamp))
        paths.append(path)
    return paths


def lake_rows(lake: Path, dataset: str) -> list[dict]:
    files = sorted(lake.glob(f"{dataset}/day=*/data.parquet"))
    if not files:
        return []
    with duckdb.connect() as conn:
        conn.execute("select * from read_parquet($files, hive_partitioning = true)", {"files": [str(f) for f in files]})
        names = [column[0] for column in conn.description]
        return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def check_ingest(files: list[InputFile]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        paths = write_inputs(root, files)
        expected = expectations(files, paths)
        specs = [(path, input_file.fmt) for path, input_file in zip(paths, files, strict=True)]
        days = sorted({day for _, day in expected.counts} | set(DAYS) | {FILE_DAY})
        seen = {}
        with duckdb.connect() as conn:
            # As a range run ingests (each file read once for every day; test_streaming_ingest.py
            # pins that each day's result is what `ingest_day` alone gives).
            results = gateway.ingest_days(conn, root / "lake", specs, days)  # never raises
            for day, result in zip(days, results, strict=True):
                assert result.lines == result.kept + result.quarantined + result.duplicates
                for row in result.per_file:
                    assert row["lines"] == row["kept"] + row["quarantined"] + row["duplicates"], row
                    seen[(row["source_file"], day)] = {
                        key: row[key] for key in ("lines", "kept", "quarantined", "duplicates")
                    }
                want = [counts for (_, at), counts in expected.counts.items() if at == day]
                assert result.lines == sum(counts["lines"] for counts in want), day
                assert result.conflicting_duplicates == expected.conflicts.get(day, 0), day
        assert seen == expected.counts
        for input_file, path in zip(files, paths, strict=True):  # over all days, a file's lines are its records
            assert sum(counts["lines"] for (name, _), counts in seen.items() if name == str(path)) == len(
                input_file.records
            )

        kept = lake_rows(root / "lake", "gateway_requests")
        assert sorted(row["request_id"] for row in kept) == sorted(expected.kept)  # each exactly once
        for row in kept:
            tokens = (
                row["input_tokens"],
                row["cached_input_tokens"],
                row["cache_creation_input_tokens"],
                row["output_tokens"],
            )
            assert tokens == expected.kept[row["request_id"]], row["request_id"]

        quarantine = lake_rows(root / "lake", "gateway_quarantine")
        assert sorted((row["source_file"], row["record_ref"]) for row in quarantine) == sorted(expected.quarantined)
        for row in quarantine:
            record = expected.quarantined[(row["source_file"], row["record_ref"])]
            assert row["reason"], row
            if record.reason is not None:
                assert row["reason"].startswith(record.reason), (row["reason"], record.reason)
            if record.raw is not None:
                assert row["raw"] == record.raw
            elif record.cells is not None:
                cells = json.loads(row["raw"])
                assert (list(cells.values()) if isinstance(cells, dict) else cells) == record.cells
            else:
                assert row["raw"]


@PROPERTY_SETTINGS
@given(input_sets())
def test_every_record_of_every_file_is_kept_once_or_quarantined_with_its_text(files):
    check_ingest(files)
