"""Streaming gateway ingest: files many batches long give the partitions and counts a plain Python
count of the file gives, whatever the batch size; a range of days equals day by day; and Python
never holds the file (its peak memory follows the batch size, not the file)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import tracemalloc
import zlib

import duckdb
import pytest
from conftest import REPO, request

from pipelines.sources.gateway import day as gateway

DAY = "2026-11-20"
TINY = 512  # bytes of text per batch: a few records, so every file here is many batches long
DATASETS = ("gateway_requests", "gateway_quarantine", "gateway_ingest_audit")


def ingest(lake, files, day, batch_bytes):
    with duckdb.connect() as conn:
        return gateway.ingest_day(conn, lake, files, dt.date.fromisoformat(day), batch_bytes)


def partition(lake, dataset, day) -> str:
    return str(lake / dataset / f"day={day}" / "data.parquet")


def same_partitions(lake_a, lake_b, days) -> None:
    """Every partition of the two lakes holds the same rows (EXCEPT ALL both ways), the files'
    own paths aside (they are the same files)."""
    with duckdb.connect() as conn:
        for day in days:
            for dataset in DATASETS:
                a, b = partition(lake_a, dataset, day), partition(lake_b, dataset, day)
                counts = [
                    conn.execute(
                        "select count(*) from (select * from read_parquet($x) except all select * from read_parquet($y))",
                        {"x": x, "y": y},
                    ).fetchone()[0]
                    for x, y in ((a, b), (b, a))
                ]
                assert counts == [0, 0], (dataset, day, counts)
                rows = conn.execute("select count(*) from read_parquet($x)", {"x": a}).fetchone()[0]
                assert rows == conn.execute("select count(*) from read_parquet($x)", {"x": b}).fetchone()[0]


def python_count(lines: list[bytes]) -> dict:
    """Where each line of a canonical JSON-lines file goes, counted with plain `json`: the
    independent side. Lines must be simple (valid records or plainly broken ones)."""
    kept, duplicates, quarantined, records = set(), 0, 0, 0
    for line in lines:
        text = line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
        if not text.strip():
            continue
        records += 1
        try:
            record = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            quarantined += 1
            continue
        if record["request_id"] in kept:
            duplicates += 1
        else:
            kept.add(record["request_id"])
    return {"lines": records, "kept": len(kept), "quarantined": quarantined, "duplicates": duplicates}


def canonical_lines(count: int) -> list[bytes]:
    """`count` records of one day, every 7th a repeat of an earlier id, every 50th bad JSON, one
    line of bytes that are not UTF-8 and blank lines, in CRLF."""
    lines = []
    for number in range(count):
        request_id = f"r{number - 3}" if number % 7 == 6 else f"r{number}"
        record = request(
            request_id, f"{DAY}T{number % 24:02d}:{number % 60:02d}:00Z", "gpt-4o-mini", input_tokens=number
        )
        line = json.dumps(record).encode()
        if number % 50 == 49:
            line = line[:-5]
        lines.append(line)
    lines[len(lines) * 2 // 3] = b'{"request_id": "\xff\xfe", "ts": "' + DAY.encode() + b'T10:00:00Z"}'
    lines[10:10] = [b"", b"   "]
    return lines


def test_a_file_many_batches_long_matches_a_python_count_and_one_big_batch(tmp_path):
    lines = canonical_lines(400)
    path = tmp_path / "in" / "requests.jsonl.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n"))
    assert len(gzip.decompress(path.read_bytes())) > 50 * TINY
    expected = python_count(lines)
    small = ingest(tmp_path / "small", [(path, "canonical")], DAY, TINY)
    big = ingest(tmp_path / "big", [(path, "canonical")], DAY, 1 << 30)
    for result in (small, big):
        assert {key: getattr(result, key) for key in expected} == expected
        assert result.quarantine_by_reason == {"bad_json": 8, "not_utf8": 1}
        assert result.conflicting_duplicates == expected["duplicates"]  # the repeats differ in tokens
    same_partitions(tmp_path / "small", tmp_path / "big", [DAY])
    with duckdb.connect() as conn:
        numbers = conn.execute(
            "select list(record_ref order by record_ref) from read_parquet($q) where reason = 'not_utf8'",
            {"q": partition(tmp_path / "small", "gateway_quarantine", DAY)},
        ).fetchone()[0]
    # line numbers count the blank lines: the bad line is the (index + 1)-th line of the file
    bad_index = next(index for index, line in enumerate(lines) if b"\xff" in line)
    assert numbers == [f"line {bad_index + 1}"]


def test_a_gzip_cut_after_several_batches_keeps_its_prefix_and_one_damage_record(tmp_path):
    lines = [
        json.dumps(request(f"r{n}", f"{DAY}T10:00:00Z", "gpt-4o", note="x" * (n % 13))).encode() for n in range(600)
    ]
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    inflater = zlib.decompressobj(wbits=31)  # the independent side: what zlib inflates from the cut
    prefix = inflater.decompress(path.read_bytes()) + inflater.flush()
    arrived = prefix.split(b"\n")
    complete = len(arrived) - 1  # the last piece is cut mid-line (or empty)
    assert complete * 60 > 20 * TINY
    result = ingest(tmp_path / "lake", [(path, "canonical")], DAY, TINY)
    cut_line = 1 if arrived[-1] else 0
    assert (result.kept, result.lines) == (complete, complete + cut_line + 1)
    reasons = {"truncated_gzip:the stream ends before its end marker": 1} | ({"bad_json": 1} if cut_line else {})
    assert result.quarantine_by_reason == reasons
    with duckdb.connect() as conn:
        (ref,) = conn.execute(
            "select record_ref from read_parquet($q) where reason like 'truncated_gzip%'",
            {"q": partition(tmp_path / "lake", "gateway_quarantine", DAY)},
        ).fetchone()
    assert ref == f"line {len(arrived) + 1}"


def pretty_spans(count: int) -> tuple[bytes, int]:
    """The SDK console exporter's fixture spans, repeated with fresh ids, pretty-printed (indent 4)
    and one span per line in turn, one span's text broken by bytes that are not UTF-8."""
    spans = [json.loads(block) for block in _fixture_blocks()]
    out, records = [], 0
    for number in range(count):
        span = json.loads(json.dumps(spans[number % len(spans)]))
        span["attributes"]["gen_ai.response.id"] = f"resp-{number}"
        span["start_time"], span["end_time"] = f"{DAY}T10:00:{number % 60:02d}.0Z", f"{DAY}T10:00:{number % 60:02d}.5Z"
        text = json.dumps(span, indent=4 if number % 3 else None).encode()
        if number == count * 3 // 4:
            text = text.replace(b'"attributes"', b'"attri\xffbutes"')
        out.append(text)
        records += 1
    return b"\n".join(out) + b"\n", records


def _fixture_blocks() -> list[str]:
    text = (REPO / "fixtures" / "gateway" / "otel_console_spans.txt").read_text(encoding="utf-8")
    blocks, current = [], []
    for line in text.split("\n"):
        current.append(line)
        if line == "}":
            blocks.append("\n".join(current))
            current = []
    return blocks


def test_pretty_printed_spans_across_batches_are_one_record_each(tmp_path):
    data, spans = pretty_spans(60)
    assert data.count(b"\n{\n") > 30 and len(data) > 40 * TINY
    path = tmp_path / "spans.txt"
    path.write_bytes(data)
    small = ingest(tmp_path / "small", [(path, "otel_genai")], DAY, TINY)
    big = ingest(tmp_path / "big", [(path, "otel_genai")], DAY, 1 << 30)
    for result in (small, big):
        assert result.lines == spans  # every span one record, however many lines and batches it spans
        assert result.quarantine_by_reason.get("not_utf8") == 1
    same_partitions(tmp_path / "small", tmp_path / "big", [DAY])


def test_a_csv_row_with_a_quoted_newline_and_bad_bytes_in_later_batches(tmp_path):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = [
        "request_id",
        "startTime",
        "endTime",
        "model",
        "custom_llm_provider",
        "prompt_tokens",
        "completion_tokens",
    ]
    writer.writerow(header)
    for number in range(300):
        model = "gpt-4o\nmini" if number == 150 else "gpt-4o-mini"  # a quoted newline in a later batch
        writer.writerow([f"c{number}", f"{DAY}T10:00:00", f"{DAY}T10:00:01", model, "openai", number, 1])
    data = buffer.getvalue().encode()
    data = data.replace(b"c250,", b"c\xff250,")  # one row not UTF-8, far into the file
    path = tmp_path / "spend.csv"
    path.write_bytes(data)
    assert len(data) > 20 * TINY
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline="")))[1:]  # the independent count
    small = ingest(tmp_path / "small", [(path, "litellm_spend_logs")], DAY, TINY)
    big = ingest(tmp_path / "big", [(path, "litellm_spend_logs")], DAY, 1 << 30)
    for result in (small, big):
        assert (result.lines, result.kept, result.quarantine_by_reason) == (len(rows), len(rows) - 1, {"not_utf8": 1})
    same_partitions(tmp_path / "small", tmp_path / "big", [DAY])
    with duckdb.connect() as conn:
        model, ref = conn.execute(
            "select model, line_no from read_parquet($r) where request_id = 'c150'",
            {"r": partition(tmp_path / "small", "gateway_requests", DAY)},
        ).fetchone()
    assert (model, ref) == ("gpt-4o\nmini", 151)


@pytest.mark.parametrize("layout", ["array", "page"])
def test_json_exports_many_batches_long(tmp_path, layout):
    rows = [
        {"request_id": f"j{n}", "startTime": f"{DAY}T10:00:00", "model": "gpt-4o", "custom_llm_provider": "openai"}
        for n in range(200)
    ]
    rows[120] = {"request_id": f"j{3}", "startTime": f"{DAY}T10:00:00", "model": "gpt-4o"}  # a repeat
    document = rows if layout == "array" else {"object": "list", "data": rows, "has_more": False}
    path = tmp_path / "spend.json"
    path.write_text(json.dumps(document, indent=2))
    small = ingest(tmp_path / "small", [(path, "litellm_spend_logs")], DAY, TINY)
    big = ingest(tmp_path / "big", [(path, "litellm_spend_logs")], DAY, 1 << 30)
    for result in (small, big):
        assert (result.lines, result.kept, result.duplicates, result.quarantined) == (200, 199, 1, 0)
    same_partitions(tmp_path / "small", tmp_path / "big", [DAY])


def test_a_range_of_days_equals_day_by_day(tmp_path):
    days = ["2026-11-19", "2026-11-20", "2026-11-21"]
    files = []
    for index, name in enumerate(["a.jsonl", "b.jsonl.gz", "c.jsonl"]):
        lines = []
        for number in range(120):
            day = days[(number + index) % 3] if number % 10 else days[index]  # late and early arrivals
            record_id = f"r{number % 90}" if index else f"r{number}"  # b and c repeat a's ids
            lines.append(
                json.dumps(request(record_id, f"{day}T{number % 24:02d}:00:00Z", "gpt-4o", input_tokens=index))
            )
        lines.insert(5, "not json")  # counted on the day of the good record before it
        lines.insert(0, "{broken")  # before any good record: the day of the file's first good one
        data = ("\n".join(lines) + "\n").encode()
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        files.append((path, "canonical"))
    empty = tmp_path / "in" / "empty.jsonl"
    empty.write_bytes(b"")
    files.append((empty, "canonical"))
    with duckdb.connect() as conn:
        ranged = gateway.ingest_days(conn, tmp_path / "range", files, [dt.date.fromisoformat(d) for d in days], TINY)
    one_by_one = [ingest(tmp_path / "daily", files, day, 1 << 30) for day in days]
    assert [vars(result) for result in ranged] == [vars(result) for result in one_by_one]
    assert sum(result.lines for result in ranged) == 3 * 122
    same_partitions(tmp_path / "range", tmp_path / "daily", days)
    # and again, now that the manifest knows the files: nothing re-read that holds no day
    with duckdb.connect() as conn:
        again = gateway.ingest_days(conn, tmp_path / "range", files, [dt.date.fromisoformat(d) for d in days], TINY)
    repeat = [ingest(tmp_path / "daily", files, day, TINY) for day in days]
    assert [vars(result) for result in again] == [vars(result) for result in repeat]


def test_python_memory_follows_the_batch_size_not_the_file(tmp_path):
    batch_bytes = 64 << 10
    lines = [json.dumps(request(f"m{n}", f"{DAY}T10:00:00Z", "gpt-4o", tags={"pad": "p" * 80})) for n in range(40_000)]
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "big.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    assert len(data) >= 60 * batch_bytes
    ingest(tmp_path / "warm", [(path, "canonical")], DAY, batch_bytes)  # imports and caches first
    tracemalloc.start()
    try:
        result = ingest(tmp_path / "lake", [(path, "canonical")], DAY, batch_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.kept == 40_000
    # a batch's text a few times over (the block being read, the batch, its lines), never the file
    assert peak < 16 * batch_bytes < len(data) / 4, peak
