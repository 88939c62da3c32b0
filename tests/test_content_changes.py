"""Input files are known by their bytes, and a line too long to hold never fails a day.

A file replaced by one of the same size and modification time (`cp -p`, `rsync -t`) is a change
that `run --changed` re-runs; a `touch` is not. A line over `inputs.max_line_bytes` is quarantined
by file and line, and the rest of its file is ingested.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import os
import shutil
import tracemalloc
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import CATALOG, REPO, request

from pipelines import cli
from pipelines.lake import manifest as manifest_module
from pipelines.lake.manifest import InputManifest
from pipelines.resources.config import ConfigError, load_config
from pipelines.sources.gateway import day as gateway
from pipelines.sources.gateway.records import LineBatches, export_batches, jsonl_batches, whole

DAY = "2026-11-20"


def day_records(output_tokens: list[int]) -> list[dict]:
    return [
        request(f"r{i}", f"{DAY}T{i % 24:02d}:00:00Z", "gpt-4o", input_tokens=1000, output_tokens=tokens)
        for i, tokens in enumerate(output_tokens)
    ]


def jsonl_text(records: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def output_tokens_in(path: Path) -> int:
    """The file's output tokens, read with plain json: the independent side of the mart's sum."""
    return sum(json.loads(line)["output_tokens"] for line in path.read_text(encoding="utf-8").splitlines())


def replace_keeping_size_and_mtime(path: Path, text: str, *, same_inode: bool) -> None:
    """What `cp -p new path` (the same inode, written in place, then its times set) or
    `rsync -t` (a new file renamed over it, then its times set) leave: other bytes, the same
    size and modification time."""
    before = path.stat()
    data = text.encode("utf-8")
    assert len(data) == before.st_size
    if same_inode:
        with path.open("r+b") as handle:
            handle.write(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        staged = path.with_name(f".{path.name}.partial")
        staged.write_bytes(data)
        os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(staged, path)
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert (after.st_ino == before.st_ino) == same_inode


class Project:
    """A project run through the CLI in this process (its own data dir and Dagster home)."""

    def __init__(self, root: Path, **config):
        self.root = root
        (root / "inputs").mkdir(parents=True)
        (root / "dagster_home").mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
        settings = {
            "data_dir": "data",
            "start_date": "2026-10-01",
            "sources": {"gateway_logs": [{"path": "inputs/*.jsonl*", "format": "canonical"}]},
            "prices": {"catalog": str(CATALOG), "effective_from": "2025-09-01"},
            **config,
        }
        self.config = root / "costwatch.yaml"
        self.config.write_text(yaml.safe_dump(settings), encoding="utf-8")

    def run(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
            patch.setenv("DAGSTER_HOME", str(self.root / "dagster_home"))
            code = cli.main(["--config", str(self.config), *args])
        return code, out.getvalue()

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        with duckdb.connect(str(self.root / "data" / "warehouse.duckdb"), read_only=True) as conn:
            return conn.execute(sql, params or {}).fetchall()


def stale(lake: Path, files, **settings) -> list[dt.date]:
    with duckdb.connect() as conn:
        return gateway.stale_days(conn, lake, files, **settings)


def ingest(lake: Path, files, day: str = DAY, **settings) -> gateway.DayIngest:
    with duckdb.connect() as conn:
        return gateway.ingest_day(conn, lake, files, dt.date.fromisoformat(day), **settings)


@pytest.fixture
def count_hashes(monkeypatch):
    """The files hashed, in order; a file's recorded stat fields are trusted at once (no waiting
    out the ctime tick a just-written file gets hashed again for)."""
    hashed: list[Path] = []
    digest = manifest_module.file_digest

    def counting(path: Path) -> str:
        hashed.append(path)
        return digest(path)

    monkeypatch.setattr(manifest_module, "file_digest", counting)
    monkeypatch.setattr(manifest_module, "_RACY_NS", -1)
    return hashed


# --- change detection by content ------------------------------------------------------------------


# --- through the CLI: one project, one day run, then `run --changed` -------------------------------
# The day's log holds a line over `inputs.max_line_bytes` among good records. The second test
# replaces the log for good: keep it after the first.

LIMIT = 4096


def log_lines(output_tokens: list[int]) -> list[str]:
    """The day's good records with these output tokens, and at line 3 a well-formed record
    that would be kept but for its length (a long tag pushes it over LIMIT)."""
    good = [json.dumps(record) for record in day_records(output_tokens)]
    oversize = json.dumps(
        request("huge", f"{DAY}T12:00:00Z", "gpt-4o", output_tokens=7, tags={"blob": "x" * 3 * LIMIT})
    )
    return [*good[:2], oversize, *good[2:]]


def gzipped(lines: list[str]) -> bytes:
    """Stored, not compressed, and without a time in the header: text of the same length is a
    file of the same size."""
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=0, mtime=0)


def kept_records(log: Path) -> list[dict]:
    """The log's records within the limit, read with plain json and gzip: what the day must keep."""
    lines = gzip.decompress(log.read_bytes()).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if len(line.encode("utf-8")) <= LIMIT]


@pytest.fixture(scope="module")
def ran_day(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("content"), inputs={"max_line_bytes": LIMIT})
    log = project.root / "inputs" / "gateway.jsonl.gz"
    log.write_bytes(gzipped(log_lines([1234, 2000, 3111, 4000, 5555])))
    code, out = project.run("run", "--date", DAY)
    return project, log, code, out


def test_a_line_over_the_limit_is_quarantined_by_file_and_line_and_the_day_succeeds(ran_day):
    project, log, code, out = ran_day
    assert code == 0, out
    lines = gzip.decompress(log.read_bytes()).decode("utf-8").splitlines()
    over = [
        (number, len(line.encode("utf-8")))
        for number, line in enumerate(lines, start=1)
        if len(line.encode("utf-8")) > LIMIT
    ]
    assert len(over) == 1
    number, size = over[0]
    quarantined = project.query("select source_file, record_ref, reason, raw from gateway_quarantine")
    assert len(quarantined) == 1
    source_file, record_ref, reason, raw = quarantined[0]
    assert (source_file, record_ref) == (str(log.resolve()), f"line {number}")
    assert reason == (
        f"line_too_long:line {number} of {log.resolve()} is {size:,} bytes, over inputs.max_line_bytes ({LIMIT:,})"
    )
    assert lines[number - 1].startswith(raw) and 0 < len(raw) < LIMIT
    kept = kept_records(log)
    assert project.query("select count(*), sum(output_tokens) from fct_requests where day = $day", {"day": DAY}) == [
        (len(kept), sum(record["output_tokens"] for record in kept))
    ]
    assert project.query("select lines, kept, quarantined from gateway_ingest_audit") == [(len(lines), len(kept), 1)]


def test_run_changed_notices_a_replacement_with_the_same_size_and_mtime_and_the_marts_get_its_tokens(ran_day):
    project, log, code, _ = ran_day
    assert code == 0
    marts = "select sum(output_tokens) from fct_spend_daily where day = $day"
    old_tokens = sum(record["output_tokens"] for record in kept_records(log))
    assert project.query(marts, {"day": DAY}) == [(old_tokens,)]
    assert project.run("run", "--changed")[1].strip() == "nothing to run: no day's inputs changed"

    # `rsync -t`: the same records with other token counts of as many digits (the same size: the
    # log is gzipped without compression), renamed over the log with its modification time.
    data = gzipped(log_lines([4321, 9999, 1113, 4004, 5556]))
    staged = log.with_name(".gateway.jsonl.gz.partial")
    staged.write_bytes(data)
    before = log.stat()
    os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(staged, log)
    assert (log.stat().st_size, log.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    new_tokens = sum(record["output_tokens"] for record in kept_records(log))
    assert new_tokens != old_tokens

    code, out = project.run("run", "--changed")
    assert code == 0, out
    assert f"re-running {DAY} (inputs changed)" in out
    assert project.query(marts, {"day": DAY}) == [(new_tokens,)]

    # A touch moves the mtime (and the ctime) and keeps the bytes: nothing to re-run.
    os.utime(log, ns=(log.stat().st_atime_ns, log.stat().st_mtime_ns + 3_600 * 10**9))
    assert project.run("run", "--changed")[1].strip() == "nothing to run: no day's inputs changed"


# --- the manifest and the reader directly ---------------------------------------------------------


@pytest.mark.parametrize("same_inode", [True, False], ids=["cp -p (in place)", "rsync -t (renamed over)"])
def test_a_file_with_other_bytes_is_changed_whatever_its_size_and_mtime_say(tmp_path, same_inode):
    log = tmp_path / "gateway.jsonl"
    log.write_text(jsonl_text(day_records([1234, 2000])), encoding="utf-8")
    files = [(log, "canonical")]
    first = ingest(tmp_path / "lake", files)
    assert stale(tmp_path / "lake", files) == []
    replace_keeping_size_and_mtime(log, jsonl_text(day_records([4321, 9999])), same_inode=same_inode)
    assert stale(tmp_path / "lake", files) == [dt.date.fromisoformat(DAY)]
    rerun = ingest(tmp_path / "lake", files)
    assert (first.kept, rerun.kept) == (2, 2)
    with duckdb.connect() as conn:
        (kept,) = conn.execute(
            "select sum(output_tokens) from read_parquet($path)",
            {"path": str(tmp_path / "lake" / "gateway_requests" / f"day={DAY}" / "data.parquet")},
        ).fetchone()
    assert kept == output_tokens_in(log)
    assert stale(tmp_path / "lake", files) == []


def test_a_touched_file_is_not_a_change_and_is_hashed_once_for_it(tmp_path, count_hashes):
    lake = tmp_path / "lake"
    log = tmp_path / "gateway.jsonl"
    log.write_text(jsonl_text(day_records([10, 20])), encoding="utf-8")
    files = [(log, "canonical")]
    ingest(lake, files)
    assert count_hashes == [log]
    assert stale(lake, files) == [] and count_hashes == [log]  # stat unchanged: not read again

    stat = log.stat()
    os.utime(log, ns=(stat.st_atime_ns + 10**9, stat.st_mtime_ns + 86_400 * 10**9))
    assert stale(lake, files) == []  # new mtime and ctime, the same bytes: no change
    assert count_hashes == [log, log]
    assert stale(lake, files) == [] and count_hashes == [log, log]  # its new stat fields are recorded
    again = ingest(lake, files)
    assert again.files_read == [str(log)] and count_hashes == [log, log]
    recorded = InputManifest(lake, gateway.MANIFEST_NAME).files[str(log)]
    assert recorded["mtime_ns"] == log.stat().st_mtime_ns


def test_verify_content_always_hashes_every_file_on_every_run(tmp_path, count_hashes):
    lake = tmp_path / "lake"
    log = tmp_path / "gateway.jsonl"
    log.write_text(jsonl_text(day_records([10])), encoding="utf-8")
    files = [(log, "canonical")]
    ingest(lake, files, verify_content="always")
    for runs in (2, 3):
        assert stale(lake, files, verify_content="always") == []
        assert count_hashes == [log] * runs


def test_a_manifest_from_before_digests_reingests_nothing_and_learns_the_digest(tmp_path, count_hashes):
    lake = tmp_path / "lake"
    log = tmp_path / "gateway.jsonl"
    log.write_text(jsonl_text(day_records([10, 20])), encoding="utf-8")
    files = [(log, "canonical")]
    ingest(lake, files)
    # The record as costwatch wrote it before digests: size and mtime only.
    path = lake / "_manifests" / f"{gateway.MANIFEST_NAME}.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    stat = log.stat()
    saved["files"][str(log)] = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "format": "canonical",
        "days": [DAY],
    }
    path.write_text(json.dumps(saved), encoding="utf-8")

    assert stale(lake, files) == []  # compared by size and mtime, as before
    assert len(count_hashes) == 2  # hashed once on upgrade
    upgraded = InputManifest(lake, gateway.MANIFEST_NAME).files[str(log)]
    assert upgraded["sha256"] == manifest_module.file_digest(log)
    assert (upgraded["inode"], upgraded["ctime_ns"]) == (stat.st_ino, stat.st_ctime_ns)
    replace_keeping_size_and_mtime(log, jsonl_text(day_records([30, 40])), same_inode=False)
    assert stale(lake, files) == [dt.date.fromisoformat(DAY)]  # from then on, by content


def test_the_input_settings_are_validated_with_the_key_and_the_fix(tmp_path):
    base = {
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "*.jsonl", "format": "canonical"}]},
        "prices": {"catalog": str(CATALOG)},
    }
    path = tmp_path / "costwatch.yaml"
    path.write_text(yaml.safe_dump(base))
    assert (load_config(path).inputs.verify_content, load_config(path).inputs.max_line_bytes) == (
        "on_change",
        64 << 20,
    )
    for inputs, message in (
        ({"verify_content": "sometimes"}, "inputs.verify_content: 'sometimes' is not a way to verify input files"),
        ({"max_line_bytes": 100}, "inputs.max_line_bytes: must be between 1024 and 1073741824, got 100"),
        ({"max_line_bytes": "64MiB"}, "inputs.max_line_bytes: must be a whole number, got '64MiB'"),
    ):
        path.write_text(yaml.safe_dump({**base, "inputs": inputs}))
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_the_manifest_digest_is_the_one_file_digest_of_catalogs_too(tmp_path):
    """One digest helper: the price fingerprint's and the manifest's agree, and a catalog replaced
    with the same size and mtime is a new digest in the same process."""
    from pipelines.lake import fingerprints

    catalog = tmp_path / "prices.json"
    catalog.write_text('{"m": {"input_cost_per_token": 1e-6}}')
    first = fingerprints._content_digest(catalog)
    assert first == manifest_module.file_digest(catalog)
    replace_keeping_size_and_mtime(catalog, '{"m": {"input_cost_per_token": 3e-6}}', same_inode=False)
    assert fingerprints._content_digest(catalog) == manifest_module.file_digest(catalog) != first


# --- a line too long to hold ------------------------------------------------------------------------


def test_a_line_far_over_the_limit_is_never_held(tmp_path):
    """A 64 MiB line read with a 1 MiB limit: memory stays a few blocks, the lines after it keep
    their numbers."""
    limit, line_bytes = 1 << 20, 64 << 20
    path = tmp_path / "long.jsonl"

    def blocks():
        yield b'{"first": 1}\n'
        for _ in range(line_bytes // (64 << 10)):
            yield b"y" * (64 << 10)
        yield b'\n{"after": 2}\n'

    warm = [b'{"first": 1}\n', b"y" * (2 * limit), b'\n{"after": 2}\n']
    whole(LineBatches(path, blocks=iter(warm), max_line_bytes=limit))  # imports and caches first
    tracemalloc.start()
    try:
        table = whole(LineBatches(path, blocks=blocks(), max_line_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows = table.to_pylist()
    assert [(row["line_no"], row["raw"][:10]) for row in rows] == [
        (1, '{"first": '),
        (2, "yyyyyyyyyy"),
        (3, '{"after": '),
    ]
    assert rows[1]["read_error"] == (
        f"line_too_long:line 2 of {path} is {line_bytes:,} bytes, over inputs.max_line_bytes ({limit:,})"
    )
    assert peak < 4 * limit


@pytest.mark.parametrize("last_line_ends", [True, False])
def test_long_lines_anywhere_in_a_json_lines_file_keep_every_other_line(tmp_path, last_line_ends):
    """Lines over the limit at the start, inside a batch, across batches and at the end (with
    and without a final newline), read in small batches: each is one record, the others are as
    written."""
    limit = 5000
    lines = ["x" * 9000, '{"a": 1}', "", "y" * (limit + 1), "z" * limit, '{"b": 2}', "w" * 30_000]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + ("\n" if last_line_ends else ""), encoding="utf-8")
    for batch_bytes in (100, 8192, 1 << 20):
        rows = whole(jsonl_batches(path, batch_bytes, limit)).to_pylist()
        expected = [(number, len(line) > limit) for number, line in enumerate(lines, start=1) if line]
        assert [(row["line_no"], row["read_error"] is not None) for row in rows] == expected, batch_bytes
        for row in rows:
            line = lines[row["line_no"] - 1]
            assert row["raw"] == (line[:1024] if len(line) > limit else line)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_csv_line_over_the_limit_is_one_quarantined_row(tmp_path, newline):
    """The limit counts a line's bytes before its newline (a CRLF line's CR included, as for JSON
    lines); the rows after it keep their numbers."""
    limit = 2048
    path = tmp_path / "spend.csv"
    rows = [["request_id", "spend"], ["a", "1"], ["b", "z" * 5000], ["c", "3"], ["d", "y" * (limit + 1)], ["e", "5"]]
    lines = [",".join(row) for row in rows]
    path.write_bytes("".join(line + newline for line in lines).encode("utf-8"))

    def too_long(number: int) -> str:
        size = len((lines[number - 1] + newline.removesuffix("\n")).encode("utf-8"))
        return f"line_too_long:line {number} of {path} is {size:,} bytes, over inputs.max_line_bytes ({limit:,})"

    records = whole(export_batches(path, 1 << 20, limit)).to_pylist()
    assert [(record["record_ref"], record["read_error"]) for record in records] == [
        ("row 2", None),
        ("row 3", too_long(3)),
        ("row 4", None),
        ("row 5", too_long(5)),
        ("row 6", None),
    ]
    assert [json.loads(records[index]["raw"]) for index in (2, 4)] == [
        {"request_id": "c", "spend": "3"},
        {"request_id": "e", "spend": "5"},
    ]
