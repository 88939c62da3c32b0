"""One day of gateway logs: configured files -> records -> the day's lake partitions.

Every input record ends in exactly one of three places, so a day's lines always add up: kept (a
canonical record in `gateway_requests`), quarantined (with its reason and verbatim text, in
`gateway_quarantine`), or counted as a duplicate delivery of a kept `request_id`. Per file and
day, `gateway_ingest_audit` says where they went.

Files do not follow days: the input manifest remembers which days each file holds, so a day's
run opens only the files that can hold it, and a changed file (its bytes, not its size or time:
`lake/manifest.py`) marks the days it held stale. A line over `max_line_bytes` is quarantined
as `line_too_long` by file and line, never held (`records.py`).

Memory is bounded by the batch size, not by a file or a day: a file's records stream from the
reader in batches (`records.py`); each batch is validated in DuckDB and spooled to Parquet in a
scratch folder under the lake (`_ingest_spool/`, the raw text kept only for quarantined
records); then each day is deduplicated and written from the spool by DuckDB with a memory limit
and a temp directory, so its aggregates and sorts spill to disk instead of growing. A range of
days (`ingest_days`) reads each file once and writes every day from the same spool.

The SQL is in `validate.sql` (the canonical rules, day assignment), `<format>.sql` (each format's
projection onto the canonical fields) and `day.sql` (dedupe, the partitions, the counts).
"""

from __future__ import annotations

import datetime as dt
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lake.manifest import InputManifest, ManifestStore, file_state, reading_input
from pipelines.lake.partitions import ABANDONED_TEMP_AGE_S, sql_string, write_partition
from pipelines.lake.store import LakePath
from pipelines.sources import registry
from pipelines.sources.gateway.records import BATCH_BYTES, RAW_SCHEMA
from pipelines.sources.queries import load_queries, sql_text
from pipelines.sources.records import MAX_LINE_BYTES

SOURCE = "gateway_logs"
MANIFEST_NAME = SOURCE
SPOOL_DIR = "_ingest_spool"  # under the lake; a run's scratch, removed when the run ends
# DuckDB's share while a day is written: its dedupe and sorts spill to the spool beyond this.
MEMORY_LIMIT = "1GB"

# The lake datasets a day's ingest writes (one Parquet file per day each), and what a row is.
DATASETS = {
    "gateway_requests": "Canonical gateway records as ingested, one row per request_id (first delivery); "
    "a view over the lake's per-day Parquet.",
    "gateway_quarantine": "Input records that broke a rule, with the reason, where they are in their file "
    "(record_ref) and the verbatim text; a view over the lake's per-day Parquet.",
    "gateway_ingest_audit": "Where every input record went, per day x file: lines = kept + quarantined + duplicates.",
}


@dataclass
class DayIngest:
    """What a day's ingest read and where every line went. lines = kept + quarantined + duplicates."""

    day: dt.date
    files_read: list[str] = field(default_factory=list)
    files_skipped: int = 0
    lines: int = 0
    kept: int = 0
    quarantined: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0  # repeated request_id whose fields differ from the kept copy
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    per_file: list[dict] = field(default_factory=list)
    stale_days: list[str] = field(default_factory=list)  # other ingested days whose files changed


def projection_sql(fmt: str) -> str:
    """The format's projection onto the canonical fields: `<module>.sql` beside the module that
    registered the format."""
    module = registry.get(fmt).module
    package, _, stem = module.rpartition(".")
    if package != __package__:
        raise ValueError(f"format {fmt}: {module} is not a gateway format module")
    return sql_text(__package__, f"{stem}.sql")


def _prepare(conn: duckdb.DuckDBPyConnection, fmt: str) -> None:
    """The views from a batch of records (`gateway_raw`) to validated, typed records. Binding
    them costs a few tenths of a second, so a connection keeps the last format's."""
    if conn.execute("select getvariable('gateway_views_format')").fetchall()[0][0] == fmt:
        return
    queries = load_queries(__package__, "validate.sql")
    conn.execute("set TimeZone = 'UTC'")
    conn.execute(sql_text(__package__, "macros.sql"))
    conn.register("gateway_raw", RAW_SCHEMA.empty_table())
    # View bodies come from this package's .sql files, never from input or config.
    conn.execute(f"create or replace temp view gateway_objects as {queries['objects']}")  # noqa: S608 (package .sql text)
    conn.execute(f"create or replace temp view gateway_fields as {projection_sql(fmt)}")  # noqa: S608 (package .sql text)
    conn.execute(f"create or replace temp view gateway_validated as {queries['validated']}")  # noqa: S608 (package .sql text)
    conn.unregister("gateway_raw")
    conn.execute("set variable gateway_views_format = $fmt", {"fmt": fmt})


def parse_records(conn: duckdb.DuckDBPyConnection, raw: pa.Table, fmt: str, fallback_day: dt.date) -> None:
    """Validate a whole file's records (`raw`, records.py) into temp table `gateway_file`:
    canonical typed columns, `reason` (NULL for a good record), `day` where the timestamp is
    known and `assigned_day` on every record (`fallback_day` when the file holds no good record).
    For tests and small tables; the ingest validates batch by batch (`_read_file`)."""
    queries = load_queries(__package__, "validate.sql")
    _prepare(conn, fmt)
    conn.register("gateway_raw", raw)
    try:
        conn.execute(
            f"create or replace temp table gateway_file as {queries['assign_days']}",  # noqa: S608 (package .sql text)
            {"fallback_day": fallback_day},
        )
    finally:
        conn.unregister("gateway_raw")


@dataclass
class _FileRead:
    """One input file as read into the spool: the days it holds, and where its records are."""

    name: str
    fmt: str
    days: list[str]
    spool: Path | None  # folder of the file's batches (Parquet); None when not spooled
    # The day of records before the file's first good record: that record's day, or the file's
    # modification day when it holds no good record (validate.sql, `assign_days`).
    leading_day: dt.date


def _read_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    state: dict,
    spool: Path | None,
    batch_bytes: int,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> _FileRead:
    """Stream a file's records through validation batch by batch, each batch spooled as one
    Parquet file under `spool` (when given). A record without a readable day takes the day of
    the last good record before it, carried from batch to batch; records before the file's
    first good record keep NULL in the spool and take `leading_day` when a day is written."""
    queries = load_queries(__package__, "validate.sql")
    _prepare(conn, fmt)
    fallback = dt.datetime.fromtimestamp(state["mtime_ns"] / 1e9, dt.timezone.utc).date()
    days: set[dt.date] = set()
    first_good: dt.date | None = None
    carried: dt.date | None = None  # the day of the last good record read so far
    leading = False  # records before the first good record exist
    if spool is not None:
        spool.mkdir(parents=True)
    with reading_input(SOURCE, path, fmt):
        batches = _prefetched(registry.get(fmt).read(path, batch_bytes, max_line_bytes))
        for number, batch in enumerate(batches):
            conn.register("gateway_raw", batch)
            try:
                conn.execute(
                    f"create or replace temp table gateway_batch as {queries['batch_days']}",  # noqa: S608 (package .sql text)
                    {"carried_day": carried},
                )
            finally:
                conn.unregister("gateway_raw")
            batch_first, batch_last, batch_days, unassigned = conn.execute(queries["batch_summary"]).fetchall()[0]
            first_good = first_good or batch_first
            carried = batch_last or carried
            days.update(batch_days)
            leading = leading or unassigned > 0
            if spool is not None:
                target = sql_string(spool / f"batch_{number:06d}.parquet")
                conn.execute(
                    f"copy ({queries['spooled']}) to {target} (format parquet)",  # noqa: S608 (package .sql text, a path literal)
                    {"source_format": fmt},
                )
    leading_day = first_good or fallback
    if leading:
        days.add(leading_day)
    conn.execute("drop table if exists gateway_batch")
    return _FileRead(str(path), fmt, sorted(day.isoformat() for day in days), spool, leading_day)


def _prefetched(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The reader's batches, the next one read (inflated, split, decoded) in a thread while
    DuckDB validates this one: zlib, pyarrow and DuckDB all release the GIL. One batch ahead,
    so memory stays two batches."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                handoff.put(batch)
            handoff.put(done)
        except BaseException as error:  # raised again in the consumer, with its traceback
            handoff.put(error)

    worker = threading.Thread(target=produce, name="gateway-reader", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting to hand over a batch
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()


def stale_days(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    files: list[tuple[Path, str]],
    batch_bytes: int = BATCH_BYTES,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    verify_content: str = "on_change",
    store: ManifestStore | None = None,
) -> list[dt.date]:
    """Ingested days whose input changed since they ran: a file's bytes, not its size or time
    (`InputManifest`, kept in `store`: the lake's JSON file unless given). Reads only new or
    changed files (streamed, nothing spooled)."""
    manifest = InputManifest(lake_dir, MANIFEST_NAME, verify_content, store)
    manifest.forget_missing({str(path) for path, _ in files})
    for path, fmt in files:
        with reading_input(SOURCE, path, fmt):
            state = manifest.observe(str(path), path, file_state(path))
        if not manifest.is_current(str(path), state):
            read = _read_file(conn, path, fmt, state, None, batch_bytes, max_line_bytes)
            manifest.learn(str(path), state, fmt, read.days)
    manifest.save()
    return sorted(dt.date.fromisoformat(day) for day in manifest.stale)


def ingest_day(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    files: list[tuple[Path, str]],
    day: dt.date,
    batch_bytes: int = BATCH_BYTES,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    verify_content: str = "on_change",
    store: ManifestStore | None = None,
    lake: LakePath | None = None,
) -> DayIngest:
    """Read every file that can hold `day`, and write the day's partitions of
    `gateway_requests`, `gateway_quarantine` and `gateway_ingest_audit` to the lake."""
    (result,) = ingest_days(
        conn,
        lake_dir,
        files,
        [day],
        batch_bytes,
        max_line_bytes=max_line_bytes,
        verify_content=verify_content,
        store=store,
        lake=lake,
    )
    return result


def ingest_days(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    files: list[tuple[Path, str]],
    days: list[dt.date],
    batch_bytes: int = BATCH_BYTES,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    verify_content: str = "on_change",
    store: ManifestStore | None = None,
    lake: LakePath | None = None,
) -> list[DayIngest]:
    """`ingest_day` for each of `days` (a range run's days, in order), reading each file that can
    hold any of them once: one DayIngest per day, each as `ingest_day` alone would give it. A
    line over `max_line_bytes` is quarantined (`line_too_long`); `verify_content` is how the
    manifest checks a file is unchanged (`on_change` or `always`, `InputManifest`); `store` where the
    manifest lives (the lake's JSON file unless given: `state.backend`); `lake` where the partitions go
    (`lake_dir` unless given: an object-store lake keeps the spool and manifests in `lake_dir`)."""
    manifest = InputManifest(lake_dir, MANIFEST_NAME, verify_content, store)
    manifest.forget_missing({str(path) for path, _ in files})
    spool_root = lake_dir / SPOOL_DIR
    _sweep_abandoned_spools(spool_root)
    spool = spool_root / uuid.uuid4().hex
    (memory_limit,) = conn.execute("select current_setting('memory_limit')").fetchall()[0]
    try:
        spool.mkdir(parents=True)
        try:
            # Where DuckDB spills. It outlives this run's spool: DuckDB cannot switch it once used.
            conn.execute(f"set temp_directory = {sql_string(spool_root / 'duckdb_temp')}")  # noqa: S608 (SET takes no parameters; a path we made, quoted)
        except duckdb.NotImplementedException:  # the connection has spilled before: it keeps its folder
            pass
        conn.execute(f"set memory_limit = {sql_string(MEMORY_LIMIT)}")  # noqa: S608 (SET takes no parameters; a constant, quoted)
        read: dict[str, _FileRead] = {}
        # A file `ingest_day` of the first day would skip is one it could hold no day of the range;
        # after the first day every file read is current, so a later day skips what does not hold it.
        skipped_first = 0
        for index, (path, fmt) in enumerate(files):
            with reading_input(SOURCE, path, fmt):
                name = str(path)
                state = manifest.observe(name, path, file_state(path))
            holds = [day for day in days if manifest.may_hold(name, state, day)]
            if not holds:
                skipped_first += 1
                continue
            if days and days[0] not in holds:
                skipped_first += 1
            read[name] = _read_file(conn, path, fmt, state, spool / f"file_{index:05d}", batch_bytes, max_line_bytes)
            manifest.learn(name, state, fmt, read[name].days)
        results = []
        for position, day in enumerate(days):
            holding = [read[name] for name in read if day.isoformat() in read[name].days]
            result = _write_day(conn, lake_dir if lake is None else lake, holding, day)
            if position == 0:
                result.files_skipped = skipped_first
            else:
                result.files_skipped = sum(
                    1 for path, _ in files if day.isoformat() not in manifest.files.get(str(path), {}).get("days", [])
                )
            manifest.mark_ingested(day)
            manifest.save()
            result.stale_days = sorted(manifest.stale)
            results.append(result)
        return results
    finally:
        conn.execute(f"set memory_limit = {sql_string(memory_limit)}")  # noqa: S608 (SET takes no parameters; DuckDB's own setting, quoted)
        shutil.rmtree(spool, ignore_errors=True)
        try:
            spool_root.rmdir()  # when no other run's spool is left in it
        except OSError:
            pass


def _sweep_abandoned_spools(spool_root: Path) -> None:
    """Remove the spool a killed run left behind (a live run's spool is touched every batch;
    DuckDB's spill folder, `duckdb_temp`, every spill)."""
    if not spool_root.is_dir():
        return
    cutoff = time.time() - ABANDONED_TEMP_AGE_S
    for leftover in spool_root.iterdir():
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            pass


def _write_day(
    conn: duckdb.DuckDBPyConnection, lake_dir: LakePath, holding: list[_FileRead], day: dt.date
) -> DayIngest:
    """Dedupe one day's spooled records and write its three partitions."""
    queries = load_queries(__package__, "day.sql")
    result = DayIngest(day=day, files_read=[file.name for file in holding])
    # An empty batch gives the day's input its columns, so a day no file holds is an empty day
    # with the same columns as a real one.
    batch_queries = load_queries(__package__, "validate.sql")
    if not holding:  # else the views of the last file read are in place, and every format's columns are alike
        _prepare(conn, "canonical")
    conn.register("gateway_raw", RAW_SCHEMA.empty_table())
    try:
        conn.execute(
            f"create or replace temp table gateway_batch as {batch_queries['batch_days']}",  # noqa: S608 (package .sql text)
            {"carried_day": None},
        )
    finally:
        conn.unregister("gateway_raw")
    conn.execute(
        f"create or replace temp table gateway_day_empty as {batch_queries['spooled']}",  # noqa: S608 (package .sql text)
        {"source_format": "canonical"},
    )
    conn.execute("drop table gateway_batch")
    # A view over the spool (paths and days as literals: a view takes no parameters).
    parts = ["select * from gateway_day_empty"]
    for file in holding:
        leading, target = sql_string(file.leading_day.isoformat()), sql_string(day.isoformat())
        parts.append(
            f"select * replace (coalesce(assigned_day, {leading}::date) as assigned_day) "  # noqa: S608 (literals from sql_string)
            f"from read_parquet({sql_string(file.spool / '*.parquet')}) "
            f"where coalesce(assigned_day, {leading}::date) = {target}::date"
        )
    union = "\nunion all\n".join(parts)
    conn.execute(f"create or replace temp view gateway_day_input as {union}")  # noqa: S608 (parts above: literals from sql_string)
    conn.execute(f"create or replace temp table gateway_day_repeated as {queries['repeated']}")  # noqa: S608 (package .sql text)
    conn.execute(f"create or replace temp view gateway_day_records as {queries['day_records']}")  # noqa: S608 (package .sql text)
    result.kept = write_partition(conn, queries["requests"], lake_dir, "gateway_requests", day)
    result.quarantined = write_partition(conn, queries["quarantine"], lake_dir, "gateway_quarantine", day)
    conn.execute(f"create or replace temp table gateway_day_audit as {queries['audit']}")  # noqa: S608 (package .sql text)
    write_partition(conn, "select * from gateway_day_audit", lake_dir, "gateway_ingest_audit", day)
    result.lines, result.duplicates, result.conflicting_duplicates = conn.execute(queries["counts"]).fetchall()[0]
    result.quarantine_by_reason = dict(conn.execute(queries["reasons"]).fetchall())
    result.per_file = [
        dict(zip(("source_file", "lines", "kept", "quarantined", "duplicates"), row, strict=True))
        for row in conn.execute(queries["per_file"]).fetchall()
    ]
    conn.execute(
        "drop view gateway_day_records; drop view gateway_day_input; drop table gateway_day_repeated; "
        "drop table gateway_day_audit; drop table gateway_day_empty"
    )
    return result
