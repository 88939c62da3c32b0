"""Gateway log files -> records: one row per input record, verbatim, before any JSON parsing.

Records stream: a reader yields them in batches of about `batch_bytes` of text (a batch ends at
a record's end), so no file is ever held whole; `day.py` validates each batch in DuckDB and spools
it to Parquet. Lines are split and decoded vectorised per batch (pyarrow); only a batch holding
bytes that are not UTF-8, a pretty-printed span or a CSV or JSON export goes through Python per record.

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

import codecs
import collections
import csv
import io
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sources.records import (
    MAX_LINE_BYTES,
    TOO_LONG_HEAD_BYTES,
    FileBlocks,
    line_too_long,
    text_record,
)

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
_BOM_BYTES = _BOM.encode()
# Text per batch: large enough that DuckDB's per-statement cost vanishes (~40,000 canonical
# records), small enough that a batch's Python and Arrow copies stay a few hundred MiB at most.
BATCH_BYTES = 32 << 20
_BLOCK_BYTES = 1 << 20  # bytes read (and inflated) at a time
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


class LineBatches:
    """A file's non-blank lines in batches (`RAW_SCHEMA` tables), `line N` each, blank lines
    counted but not records. After the last batch, `count` is the number of lines (the number a
    damaged file's rest gets is `count + 1`) and `damage` why reading stopped early, if it did.

    Each batch is split and decoded vectorised; a batch with bytes that are not UTF-8 is decoded
    line by line (a UTF-8 sequence never spans a newline, so per line is the same as per file).

    A line longer than `max_line_bytes` (its bytes before the newline, a CRLF line's CR included)
    is a record with read error `line_too_long` (naming the file, the line and its length) and its
    first TOO_LONG_HEAD_BYTES as text. It is never held:
    once the line still open passes the limit, its bytes are dropped as they are read, and a
    marker line stands in its place so the lines after it keep their numbers. The fast path pays
    one `rfind` per 1 MiB block; a batch is searched for long lines only when it is longer than
    the limit."""

    def __init__(
        self,
        path: Path,
        batch_bytes: int = BATCH_BYTES,
        blocks: Iterable[bytes] | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ):
        self.path = path
        self.batch_bytes = max(batch_bytes, 1)
        self.max_line_bytes = max(max_line_bytes, 1)
        self._file_blocks = FileBlocks(path, min(self.batch_bytes, _BLOCK_BYTES))
        self._blocks = self._file_blocks if blocks is None else blocks
        self.count = 0
        # Each line cut out of the stream, in file order: (its length in bytes, its first bytes).
        self._cut: collections.deque[tuple[int, bytes]] = collections.deque()
        # Stands in for a cut line: no line of a file can be it (NUL bytes and a fresh random token).
        self._cut_marker = b"\x00costwatch:line_too_long:" + uuid.uuid4().hex.encode() + b"\x00"

    @property
    def damage(self) -> str | None:
        return self._file_blocks.damage

    def __iter__(self) -> Iterator[pa.Table]:
        held: list[bytes] = []  # bytes since the last batch's end (a newline)
        size = 0
        open_line = 0  # bytes of the line still open at the end of `held` (after its last newline)
        cutting: int | None = None  # bytes of the over-long line being dropped, while it lasts
        head = b""
        for block in self._blocks:
            if cutting is not None:
                end = block.find(b"\n")
                if end < 0:
                    cutting += len(block)
                    continue
                self._cut.append((cutting + end, head))
                cutting, block = None, block[end:]  # its newline ends the marker's line
            cut = block.rfind(b"\n")
            open_line = open_line + len(block) if cut < 0 else len(block) - cut - 1
            if open_line > self.max_line_bytes:  # keep what is before the open line, the marker in its place
                data = b"".join([*held, block])
                start = len(data) - open_line
                cutting, head = open_line, data[start : start + TOO_LONG_HEAD_BYTES]
                held, size, open_line = [data[:start], self._cut_marker], start + len(self._cut_marker), 0
                continue
            size += len(block)
            if size >= self.batch_bytes and cut >= 0:
                yield self._batch(b"".join([*held, block[:cut]]))
                held, size = [block[cut + 1 :]], len(block) - cut - 1
            else:
                held.append(block)
        if cutting is not None:  # the file ends inside the over-long line
            self._cut.append((cutting, head))
        yield self._batch(b"".join(held))  # the last line (empty after a final newline)

    def _batch(self, data: bytes) -> pa.Table:
        if self.count == 0 and data.startswith(_BOM_BYTES):
            data = data[len(_BOM_BYTES) :]
        chunks = pc.split_pattern(pa.array([data], pa.binary()), "\n").flatten()
        count = len(chunks)
        try:
            text = chunks.cast(pa.string())
            flags = pa.nulls(count, pa.string())
        except pa.ArrowInvalid:  # bytes that are not UTF-8: this batch line by line
            lines, errors = [], []
            for chunk in data.split(b"\n"):
                try:
                    lines.append(chunk.decode("utf-8"))
                    errors.append(None)
                except UnicodeDecodeError:
                    lines.append(chunk.decode("utf-8", errors="replace"))
                    errors.append("not_utf8")
            text, flags = pa.array(lines, pa.string()), pa.array(errors, pa.string())
        too_long = None
        if self._cut or len(data) > self.max_line_bytes:  # a line of this batch may be over the limit
            text, flags, too_long = self._too_long(chunks, text, flags)
        text = pc.utf8_rtrim(text, characters="\r")
        numbers = pa.array(range(self.count + 1, self.count + count + 1), pa.int64())
        self.count += count
        table = pa.table(
            {
                "source_file": pa.array([str(self.path)] * count, pa.string()),
                "line_no": numbers,
                # `line N`, built vectorised like the rest of the table.
                "record_ref": pc.binary_join_element_wise("line ", pc.cast(numbers, pa.string()), ""),
                "raw": text,
                "read_error": flags,
            },
            schema=RAW_SCHEMA,
        )
        records = pc.not_equal(pc.utf8_trim_whitespace(text), "")
        if too_long is not None:  # an over-long line is a record even when its first bytes are blank
            records = pc.or_(records, too_long)
        return table.filter(records)

    def _too_long(
        self, chunks: pa.Array, text: pa.Array, flags: pa.Array
    ) -> tuple[pa.Array, pa.Array, pa.Array | None]:
        """Lines over the limit (held whole, or cut out of the stream) as `line_too_long` records:
        their first bytes as text. Returns text and flags (changed only when there are such lines)
        and the mask of those lines."""
        mask = pc.or_(
            pc.greater(pc.binary_length(chunks), self.max_line_bytes), pc.equal(chunks, pa.scalar(self._cut_marker))
        )
        if not pc.any(mask).as_py():
            return text, flags, None
        lines, errors = text.to_pylist(), flags.to_pylist()
        for index in pc.indices_nonzero(mask).to_pylist():
            chunk = chunks[index].as_py()
            size, head = self._cut.popleft() if chunk == self._cut_marker else (len(chunk), chunk[:TOO_LONG_HEAD_BYTES])
            lines[index] = head.decode("utf-8", errors="replace")
            errors[index] = line_too_long(self.path, self.count + index + 1, size, self.max_line_bytes)
        return pa.array(lines, pa.string()), pa.array(errors, pa.string()), mask


def jsonl_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """One record per non-blank line (`line N`). Blank lines are not records and are not counted;
    a line over `max_line_bytes` is a `line_too_long` record (`LineBatches`)."""
    lines = LineBatches(path, batch_bytes, max_line_bytes=max_line_bytes)
    yield from lines
    yield from _damage(path, _line, lines.count + 1, lines.damage)


def json_value_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """JSON values one after another: one per line (JSON Lines, as `jsonl_batches`), or pretty-printed
    over several lines, as the OpenTelemetry SDK's `ConsoleSpanExporter` writes each span
    (`span.to_json()`, indent 4: `{` alone on a line, every member indented below it, `}` alone on
    the last line). A pretty-printed value is one record, `line N` of its first line; one cut short
    (a file still being written) is one record too, ending where the indented lines stop. A
    value that runs past a batch's end is carried into the next batch. A line over
    `max_line_bytes` is a `line_too_long` record of its own, as in `jsonl_batches`."""
    lines = LineBatches(path, batch_bytes, max_line_bytes=max_line_bytes)
    block: tuple[int, list[str], str | None] | None = None  # the pretty-printed value still open
    for batch in lines:
        if block is None and not pc.any(pc.equal(batch.column("raw"), "{")).as_py():
            yield batch  # JSON Lines: the vectorised path
            continue
        numbers, raws, errors = [], [], []
        if block is not None:
            numbers, raws, errors = [block[0]], [block[1]], [block[2]]
        in_block = block is not None
        for number, raw, error in zip(
            batch.column("line_no").to_pylist(),
            batch.column("raw").to_pylist(),
            batch.column("read_error").to_pylist(),
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
        block = (numbers.pop(), raws.pop(), errors.pop()) if in_block else None
        if numbers:
            yield _raw_table(path, _line, numbers, ["\n".join(lines_) for lines_ in raws], errors)
    if block is not None:
        yield _raw_table(path, _line, [block[0]], ["\n".join(block[1])], [block[2]])
    yield from _damage(path, _line, lines.count + 1, lines.damage)


def whole(batches: Iterable[pa.Table]) -> pa.Table:
    """A reader's batches as one table: for tests and small files (ingest streams the batches)."""
    return pa.concat_tables([RAW_SCHEMA.empty_table(), *batches])


def _damage(path: Path, ref: Callable[[int], str], number: int, damage: str | None) -> Iterator[pa.Table]:
    """The record that stands for a damaged file's unreadable rest (it has no text)."""
    if damage is not None:
        yield _raw_table(path, ref, [number], [""], [damage])


def export_batches(
    path: Path, batch_bytes: int = BATCH_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[pa.Table]:
    """A table export: CSV with a header row, a JSON array (or `{"data": [...]}`), or JSON
    lines. Each row becomes one JSON object record.

    The file name says which (`.csv`, `.json`, `.jsonl`/`.ndjson`, each optionally `.gz`): a
    JSON-lines file whose first line is damaged must not be read as a CSV header or as one
    broken document, which would lose every good line after it. Other names are sniffed from
    the first character that is not white space. A `{"data": [...]}` page is read twice: once
    to know it is one whole page (else it is JSON lines), then row by row.

    A line over `max_line_bytes` of a JSON-lines or CSV file is a `line_too_long` record; a JSON
    array or page is read row by row whatever its lines, so the limit does not apply to it."""
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    if suffix in (".jsonl", ".ndjson"):
        yield from jsonl_batches(path, batch_bytes, max_line_bytes)
        return
    blocks = FileBlocks(path, min(batch_bytes, _BLOCK_BYTES))
    first = _first_character(blocks) if suffix != ".csv" else ""
    if suffix == ".json" or (suffix != ".csv" and first in ("[", "{")):
        if first == "[":
            text = _TextCursor(FileBlocks(path, blocks.block_size))
            rows = _json_array_rows(text)
            yield from _row_batches(path, _array_element, rows, batch_bytes, lambda: text.damage)
            return
        member = _page_member(_TextCursor(FileBlocks(path, blocks.block_size)))
        if member is None:  # not one `{"data": [...]}` page: JSON lines (a single line included)
            yield from jsonl_batches(path, batch_bytes, max_line_bytes)
            return
        text = _TextCursor(FileBlocks(path, blocks.block_size))
        rows = (text_record(json.dumps(row, ensure_ascii=False)) for row in _page_rows(text, member))
        yield from _row_batches(path, _page_row, rows, batch_bytes, lambda: text.damage)
        return
    blocks = FileBlocks(path, blocks.block_size)
    text = io.TextIOWrapper(io.BufferedReader(_BlockStream(blocks)), "utf-8-sig", "surrogateescape", "")
    lines = _BoundedLines(path, text, max_line_bytes)
    rows = _csv_rows(csv.reader(lines), lines)
    yield from _row_batches(path, _csv_row, rows, batch_bytes, lambda: blocks.damage)


class _BoundedLines:
    """A text file's lines for `csv.reader`, none longer than `limit` bytes held: an over-long
    line is read (and dropped) in pieces, and a marker line stands in its place (`cut`: each
    marker's file line, length and first characters), so the CSV row it was is quarantined."""

    def __init__(self, path: Path, text: io.TextIOBase, limit: int):
        self.path, self._text, self.limit = path, text, max(limit, 1)
        self.marker = f"\x00costwatch:line_too_long:{uuid.uuid4().hex}:"
        self.cut: dict[str, tuple[int, int, str]] = {}

    def __iter__(self) -> Iterator[str]:
        # readline's size is in characters, of 1 to 4 bytes: a line of up to `limit` characters
        # (and its \r\n) is read whole and measured in bytes; one that does not fit is over the limit.
        pending = ""  # a line read ahead while looking for an over-long line's \n after its \r
        for number in itertools.count(1):
            line, pending = pending or self._text.readline(self.limit + 2), ""
            if not line:
                return
            body = line.removesuffix("\n")  # the line's bytes before its newline, as LineBatches counts
            if len(body) * 4 <= self.limit or len(_utf8(body)) <= self.limit:
                yield line
                continue
            head, size = body[:TOO_LONG_HEAD_BYTES], len(_utf8(body))
            while not line.endswith(("\n", "\r")) and (line := self._text.readline(self.limit + 2)):
                size += len(_utf8(line.removesuffix("\n")))
            if line.endswith("\r"):  # a \r\n the piece may have split: its \n is no line of its own
                pending = self._text.readline(self.limit + 2)
                if pending.startswith("\n"):
                    pending = pending[1:]
            self.cut[f"{self.marker}{number}"] = (number, size, head)
            yield f"{self.marker}{number}\n"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _csv_rows(reader: Iterator[list[str]], lines: _BoundedLines) -> Iterator[tuple[str, str | None] | int]:
    """(raw, read_error) per non-blank row, or the row's number (an int) for a blank row, which
    counts but is no record. An over-long line is a `line_too_long` record with its first
    characters (one inside a quoted multi-line cell, which the row swallowed, comes after the
    last row)."""
    header = next(reader, None)
    for row in reader:
        if len(row) == 1 and row[0] in lines.cut:
            number, size, head = lines.cut.pop(row[0])
            yield text_record(head)[0], line_too_long(lines.path, number, size, lines.limit)
            continue
        if not any(cell.strip() for cell in row):
            yield 0
            continue
        if header is None or len(row) != len(header):
            raw, error = text_record(json.dumps(row, ensure_ascii=False))
            yield raw, error or f"ragged_row:{len(row)}_fields_for_{len(header or [])}_columns"
            continue
        yield text_record(json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False))
    for number, size, head in lines.cut.values():
        yield text_record(head)[0], line_too_long(lines.path, number, size, lines.limit)


def _row_batches(
    path: Path,
    ref: Callable[[int], str],
    rows: Iterator[tuple[str, str | None] | int],
    batch_bytes: int,
    damage: Callable[[], str | None],
) -> Iterator[pa.Table]:
    """Rows (numbered from 1; an int is a blank row, counted but no record) as batches of
    about `batch_bytes`, then the damage record, numbered after the last row."""
    numbers, raws, errors, size, number = [], [], [], 0, 0
    for number, row in enumerate(rows, start=1):
        if isinstance(row, int):
            continue
        numbers.append(number)
        raws.append(row[0])
        errors.append(row[1])
        size += len(row[0])
        if size >= batch_bytes:
            yield _raw_table(path, ref, numbers, raws, errors)
            numbers, raws, errors, size = [], [], [], 0
    if numbers:
        yield _raw_table(path, ref, numbers, raws, errors)
    yield from _damage(path, ref, number + 1, damage())


class _BlockStream(io.RawIOBase):
    """Blocks of bytes as a file object, for `io.TextIOWrapper` and `csv`."""

    def __init__(self, blocks: Iterable[bytes]):
        self._blocks = iter(blocks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._rest:
            self._rest = next(self._blocks, None)
            if self._rest is None:
                self._rest = b""
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def _first_character(blocks: Iterable[bytes]) -> str:
    """The file's first character that is not white space (after a BOM), or "" when it has none."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    for block in blocks:
        if stripped := decoder.decode(block).removeprefix(_BOM).lstrip():
            return stripped[0]
    return ""


class _TextCursor:
    """A file's text (UTF-8, undecodable bytes as surrogate escapes, without a BOM) read forward
    in blocks: `text[pos:]` is what is read and not yet consumed; `more()` reads the next block."""

    def __init__(self, blocks: FileBlocks):
        self._file_blocks = blocks
        self._blocks = iter(blocks)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.text, self.pos, self.eof = "", 0, False
        self._started = False

    @property
    def damage(self) -> str | None:
        return self._file_blocks.damage

    def more(self) -> bool:
        """Read one more block; False at the end of the file."""
        if self.eof:
            return False
        block = next(self._blocks, None)
        chunk = self._decoder.decode(block or b"", final=block is None)
        if not self._started and (chunk or block is None):
            chunk, self._started = chunk.removeprefix(_BOM), True
        if self.pos > (1 << 20) and self.pos > len(self.text) // 2:  # drop what is consumed
            self.text, self.pos = self.text[self.pos :], 0
        self.text += chunk
        self.eof = block is None
        return True

    def peek(self) -> str:
        """The next character, or "" at the end of the file."""
        while self.pos >= len(self.text):
            if not self.more():
                return ""
        return self.text[self.pos]

    def skip_space(self, *, unicode: bool = False) -> None:
        """Skip JSON's white space (or any Unicode white space, as `str.lstrip` does)."""
        while (char := self.peek()) and (char in " \t\r\n" or unicode and char.isspace()):
            self.pos += 1

    def rest(self) -> str:
        """Everything not yet consumed, to the end of the file (a damaged file's remainder)."""
        while self.more():
            pass
        rest, self.pos = self.text[self.pos :], len(self.text)
        return rest

    def value(self) -> tuple[int, bool, object] | None:
        """Where the JSON value at `pos` ends, whether Python's parser read it, and the value;
        or None when it does not end. Python's parser finds the end of a well-formed value; for
        a malformed object or array, or one nested deeper than Python parses (about 1,000
        levels), brackets are counted outside strings instead. Reads more until the value ends."""
        while True:
            start = self.peek()
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
                if end < len(self.text) or self.eof:  # a number may go on in the next block
                    return end, True, value
            except (json.JSONDecodeError, RecursionError):
                if start in ("[", "{"):
                    end = _bracket_end(self.text, self.pos)
                    if end is not None:
                        return end, False, None
                elif self.eof:
                    return None
            if not self.more():
                return None


def _json_array_rows(text: _TextCursor) -> Iterator[tuple[str, str | None]]:
    """The rows of a JSON array, each kept verbatim: a cut or damaged array keeps every row
    before the damage and quarantines the rest as one record."""
    text.skip_space(unicode=True)
    text.pos += 1  # the opening bracket
    text.skip_space()
    expect_row = True
    while char := text.peek():
        if char == "]":
            text.pos += 1
            text.skip_space()
            if text.peek():
                yield _checked(text.rest(), "bad_json_document:data after the closing bracket")
            return
        if not expect_row and char == ",":
            text.pos += 1
            text.skip_space()
            expect_row = True
            continue
        if not expect_row:
            yield _checked(text.rest(), "bad_json_document:expected ',' or ']' after a row")
            return
        found = text.value()
        if found is None:
            yield _checked(text.rest(), "bad_json_document:a row is cut or is not JSON")
            return
        yield _checked(text.text[text.pos : found[0]], None)
        text.pos = found[0]
        text.skip_space()
        expect_row = False
    yield "", "bad_json_document:the array is cut before its closing bracket"


def _checked(raw: str, error: str | None) -> tuple[str, str | None]:
    raw, read_error = text_record(raw)
    return raw, read_error or error


def _page_member(text: _TextCursor) -> int | None:
    """Which member of a `{"data": [...]}` page holds its rows (json.loads keeps the last of
    repeated keys), or None when the text is not one such page. Reads the page once, a member
    (or a row) at a time."""
    rows_member = None
    for index, key in _page_members(text):
        if key is None:
            return None
        if key == "data":
            rows_member = index if text.peek() == "[" else None
        if not _skip_value(text):
            return None
    text.skip_space()
    return rows_member if text.peek() == "" else None


def _page_members(text: _TextCursor) -> Iterator[tuple[int, str | None]]:
    """The page's members in order, `text` at each one's value (key None: not an object's member);
    the caller consumes the value before asking for the next."""
    text.skip_space(unicode=True)
    if text.peek() != "{":
        yield -1, None
        return
    text.pos += 1
    text.skip_space()
    if text.peek() == "}":
        text.pos += 1
        return
    for index in itertools.count():
        key = text.value() if text.peek() == '"' else None
        if key is None or not isinstance(key[2], str):
            yield index, None
            return
        text.pos = key[0]
        text.skip_space()
        if text.peek() != ":":
            yield index, None
            return
        text.pos += 1
        text.skip_space()
        yield index, key[2]
        text.skip_space()
        char = text.peek()
        text.pos += 1
        if char == "}":
            return
        if char != ",":
            yield index + 1, None
            return
        text.skip_space()


def _skip_value(text: _TextCursor) -> bool:
    """Consume one value json.loads reads; an array one element at a time (a page's rows)."""
    if text.peek() != "[":
        return _strict_value(text)
    text.pos += 1
    text.skip_space()
    if text.peek() == "]":
        text.pos += 1
        return True
    while True:
        if not _strict_value(text):
            return False
        text.skip_space()
        char = text.peek()
        text.pos += 1
        if char == "]":
            return True
        if char != ",":
            return False
        text.skip_space()


def _strict_value(text: _TextCursor) -> bool:
    found = text.value()
    if found is None or not found[1]:
        return False
    text.pos = found[0]
    return True


def _page_rows(text: _TextCursor, member: int) -> Iterator[object]:
    """The rows of the page member `_page_member` found (the file is read again)."""
    for index, _ in _page_members(text):
        if index < member:
            _skip_value(text)
            continue
        text.pos += 1  # the rows' opening bracket
        text.skip_space()
        while text.peek() not in ("]", ""):
            end, _, row = text.value()
            text.pos = end
            yield row
            text.skip_space()
            if text.peek() == ",":
                text.pos += 1
                text.skip_space()
        text.rest()  # to the file's end, where a damaged gzip says so
        return


def _bracket_end(text: str, position: int) -> int | None:
    """Where the malformed (or too deeply nested) object or array at `position` ends, counting
    brackets outside strings, or None when it does not end in `text`: DuckDB validates every
    row later, so such a row is one quarantined row, not the end of the file."""
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
