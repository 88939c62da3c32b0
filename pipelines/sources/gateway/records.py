"""Gateway log files -> records: one row per input record, verbatim, before any JSON parsing.

Python owns the byte level here (gzip, BOM, CRLF, invalid UTF-8 caught per record instead of
failing the file); DuckDB's `json_valid` and JSON functions then validate and project a million
records a second while keeping bad records verbatim (`validate.sql`). polars' NDJSON reader would
fail the whole file on one bad line.

Each record carries `record_ref`, where a person finds it in its file, the way the billing and
GPU sources write it: `line N` for a line of a JSON-lines file (1-based; blank lines are counted
but are not records), `row N` for a CSV row (the header is row 1), `[i]` for the i-th element
(0-based) of a JSON array and `data[i]` for a row of a `{"data": [...]}` page. A damaged file's
unreadable rest is one more record, referenced as the record after the last one read, with no
text. `line_no` numbers the records in file order (lines, or rows counted from 1 without the
header): it orders them, and stays on `gateway_requests` as the kept record's provenance.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sources.records import read_file_bytes, text_record

RAW_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_no", pa.int64()),  # 1-based line (JSONL) or record number (CSV/JSON exports): the file's order
        ("record_ref", pa.string()),  # `line N`, `row N`, `[i]`, `data[i]`: the quarantine's pointer into the file
        ("raw", pa.string()),  # verbatim record text; for undecodable bytes, a replacement-decoded copy
        ("read_error", pa.string()),  # set when the record failed before JSON parsing
    ]
)

_BOM = "\ufeff"
_DECODER = json.JSONDecoder()
_JSON_STRUCTURE = re.compile(r'["\[\]{}]')
_JSON_STRING_END = re.compile(r'["\\]')
# A line holding only `{`: how a pretty-printed JSON object starts (a JSON Lines record never does).
_PRETTY_OPENINGS = (b"{\n", b"{\r\n")


# `record_ref` of the N-th record (1-based) of a file, as a person looks for it there.
def _line(number: int) -> str:
    return f"line {number}"


def _csv_row(number: int) -> str:
    return f"row {number + 1}"  # the header is row 1, as a spreadsheet shows it (and billing's CSVs count)


def _array_element(number: int) -> str:
    return f"[{number - 1}]"  # the element's index, as jq writes it


def _page_row(number: int) -> str:
    return f"data[{number - 1}]"


def read_jsonl(path: Path) -> pa.Table:
    """One record per non-blank line. Blank lines are not records and are not counted."""
    return _jsonl_table(path, *read_file_bytes(path))


def read_json_values(path: Path) -> pa.Table:
    """JSON values one after another: one per line (JSON Lines, as `read_jsonl`), or pretty-printed
    over several lines, as the OpenTelemetry SDK's `ConsoleSpanExporter` writes each span
    (`span.to_json()`, indent 4: `{` alone on a line, every member indented below it, `}` alone on
    the last line). A pretty-printed value is one record, `line N` of its first line; one cut short
    (a file still being written) is one record too, ending where the indented lines stop."""
    data, damage = read_file_bytes(path)
    starts_pretty = data.removeprefix(_BOM.encode()).startswith(_PRETTY_OPENINGS)
    if not starts_pretty and not any(b"\n" + opening in data for opening in _PRETTY_OPENINGS):
        return _jsonl_table(path, data, damage)  # JSON Lines: the vectorised path (bytes.find is memchr-fast)
    lines = _jsonl_table(path, data, None)
    numbers, raws, errors = [], [], []
    in_block = False
    for number, raw, error in zip(
        lines.column("line_no").to_pylist(),
        lines.column("raw").to_pylist(),
        lines.column("read_error").to_pylist(),
        strict=True,
    ):
        if in_block and (raw[:1] in (" ", "\t") or raw == "}"):
            raws[-1].append(raw)
            errors[-1] = errors[-1] or error
            in_block = raw[:1] in (" ", "\t")
            continue
        numbers.append(number)
        raws.append([raw])
        errors.append(error)
        in_block = raw == "{"
    table = _raw_table(path, _line, numbers, ["\n".join(block) for block in raws], errors)
    return _with_damage(table, path, _line, data.count(b"\n") + 2, damage)


def _jsonl_table(path: Path, data: bytes, damage: str | None) -> pa.Table:
    try:
        lines = data.decode("utf-8").split("\n")
        decode_failed: set[int] = set()
    except UnicodeDecodeError:
        lines, decode_failed = [], set()
        for index, chunk in enumerate(data.split(b"\n")):
            try:
                lines.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(chunk.decode("utf-8", errors="replace"))
                decode_failed.add(index)
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][1:]
    # Vectorised: a Python loop over a million lines costs more than the JSON parsing.
    count = len(lines)
    text = pc.utf8_rtrim(pa.array(lines, pa.string()), characters="\r")
    flags = [None] * count
    numbers = pa.array(range(1, count + 1), pa.int64())
    for index in decode_failed:
        flags[index] = "not_utf8"
    table = pa.table(
        {
            "source_file": pa.array([str(path)] * count, pa.string()),
            "line_no": numbers,
            # `line N`, built vectorised like the rest of the table.
            "record_ref": pc.binary_join_element_wise("line ", pc.cast(numbers, pa.string()), ""),
            "raw": text,
            "read_error": pa.array(flags, pa.string()),
        },
        schema=RAW_SCHEMA,
    )
    kept = table.filter(pc.not_equal(pc.utf8_trim_whitespace(text), ""))
    return _with_damage(kept, path, _line, count + 1, damage)


def _with_damage(table: pa.Table, path: Path, ref: Callable[[int], str], number: int, damage: str | None) -> pa.Table:
    """Append the record that stands for a damaged file's unreadable rest (it has no text)."""
    if damage is None:
        return table
    return pa.concat_tables([table, _raw_table(path, ref, [number], [""], [damage])])


def read_export(path: Path) -> pa.Table:
    """A table export: CSV with a header row, a JSON array (or `{"data": [...]}`), or JSON
    lines. Each row becomes one JSON object record.

    The file name says which (`.csv`, `.json`, `.jsonl`/`.ndjson`, each optionally `.gz`): a
    JSON-lines file whose first line is damaged must not be read as a CSV header or as one
    broken document, which would lose every good line after it. Other names are sniffed."""
    data, damage = read_file_bytes(path)
    text = data.decode("utf-8", errors="surrogateescape").removeprefix(_BOM)
    stripped = text.lstrip()
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_table(path, data, damage)
    if suffix == ".json" or (suffix != ".csv" and stripped[:1] in ("[", "{")):
        if stripped.startswith("["):
            table = _read_json_array(path, stripped)
            return _with_damage(table, path, _array_element, table.num_rows + 1, damage)
        rows = _page_rows(stripped)
        if rows is None:  # not one `{"data": [...]}` page: JSON lines (a single line included)
            return _jsonl_table(path, data, damage)
        records = [text_record(json.dumps(row, ensure_ascii=False)) for row in rows]
        table = _raw_table(
            path, _page_row, list(range(1, len(rows) + 1)), [raw for raw, _ in records], [error for _, error in records]
        )
        return _with_damage(table, path, _page_row, len(rows) + 1, damage)
    numbers, raws, errors = [], [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    number = 0
    for number, row in enumerate(reader, start=1):
        if not any(cell.strip() for cell in row):
            continue
        numbers.append(number)
        if header is None or len(row) != len(header):
            raw, error = text_record(json.dumps(row, ensure_ascii=False))
            raws.append(raw)
            errors.append(error or f"ragged_row:{len(row)}_fields_for_{len(header or [])}_columns")
            continue
        raw, error = text_record(json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False))
        raws.append(raw)
        errors.append(error)
    return _with_damage(_raw_table(path, _csv_row, numbers, raws, errors), path, _csv_row, number + 1, damage)


def _page_rows(text: str) -> list | None:
    """The rows of a `{"data": [...]}` page, or None when the text is not one such page."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python parses
        return None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document["data"]
    return None


def _read_json_array(path: Path, text: str) -> pa.Table:
    """A JSON array of rows, read element by element, each kept verbatim: a cut or damaged
    array keeps every row before the damage and quarantines the rest as one record."""
    rows: list[tuple[str, str | None]] = []
    position, expect_row = _skip_space(text, 1), True
    while position < len(text):
        if text[position] == "]":
            position = _skip_space(text, position + 1)
            if position < len(text):
                rows.append((text[position:], "bad_json_document:data after the closing bracket"))
            break
        if not expect_row and text[position] == ",":
            position, expect_row = _skip_space(text, position + 1), True
            continue
        if not expect_row:
            rows.append((text[position:], "bad_json_document:expected ',' or ']' after a row"))
            break
        end = _value_end(text, position)
        if end is None:
            rows.append((text[position:], "bad_json_document:a row is cut or is not JSON"))
            break
        rows.append((text[position:end], None))
        position, expect_row = _skip_space(text, end), False
    else:
        rows.append(("", "bad_json_document:the array is cut before its closing bracket"))
    raws, errors = [], []
    for raw, error in rows:
        raw, read_error = text_record(raw)
        raws.append(raw)
        errors.append(read_error or error)
    return _raw_table(path, _array_element, list(range(1, len(rows) + 1)), raws, errors)


def _value_end(text: str, position: int) -> int | None:
    """Where the JSON value starting at `position` ends, or None when it does not end.

    Python's parser finds it for a well-formed row. For a malformed object or array, or one
    nested deeper than Python parses (about 1,000 levels), brackets are counted outside
    strings instead: DuckDB validates every row later, so such a row is one quarantined row,
    not the end of the file."""
    try:
        return _DECODER.raw_decode(text, position)[1]
    except (json.JSONDecodeError, RecursionError):
        if text[position] not in "[{":
            return None
    depth, index = 0, position
    while match := _JSON_STRUCTURE.search(text, index):
        index = match.end()
        if match.group() == '"':
            while (inside := _JSON_STRING_END.search(text, index)) and inside.group() == "\\":
                index = inside.end() + 1  # an escaped character
            if inside is None:
                return None
            index = inside.end()
        elif match.group() in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return index
    return None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _raw_table(
    path: Path, ref: Callable[[int], str], numbers: list[int], raws: list[str], errors: list[str | None]
) -> pa.Table:
    return pa.table(
        {
            "source_file": pa.array([str(path)] * len(numbers), pa.string()),
            "line_no": pa.array(numbers, pa.int64()),
            "record_ref": pa.array([ref(number) for number in numbers], pa.string()),
            "raw": pa.array(raws, pa.string()),
            "read_error": pa.array(errors, pa.string()),
        },
        schema=RAW_SCHEMA,
    )
