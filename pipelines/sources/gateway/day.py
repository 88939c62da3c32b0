"""One day of gateway logs: configured files -> records -> the day's lake partitions.

Every input record ends in exactly one of three places, so a day's lines always add up: kept (a
canonical record in `gateway_requests`), quarantined (with its reason and verbatim text, in
`gateway_quarantine`), or counted as a duplicate delivery of a kept `request_id`. Per file and
day, `gateway_ingest_audit` says where they went.

Files do not follow days: the input manifest remembers which days each file holds, so a day's
run opens only the files that can hold it, and a changed file marks the days it held stale.

The SQL is in `validate.sql` (the canonical rules, day assignment), `<format>.sql` (each format's
projection onto the canonical fields) and `day.sql` (dedupe, the partitions, the counts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lake.manifest import InputManifest, file_state, reading_input
from pipelines.lake.partitions import write_partition
from pipelines.sources import registry
from pipelines.sources.gateway.records import RAW_SCHEMA
from pipelines.sources.queries import load_queries, sql_text

SOURCE = "gateway_logs"
MANIFEST_NAME = SOURCE

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


def parse_records(conn: duckdb.DuckDBPyConnection, raw: pa.Table, fmt: str, fallback_day: dt.date) -> None:
    """Validate one file's records (`raw`, records.py) into temp table `gateway_file`: canonical
    typed columns, `reason` (NULL for a good record), `day` where the timestamp is known and
    `assigned_day` on every record (`fallback_day` when the file holds no good record)."""
    queries = load_queries(__package__, "validate.sql")
    conn.execute("set TimeZone = 'UTC'")
    conn.execute(sql_text(__package__, "macros.sql"))
    conn.register("gateway_raw", raw)
    try:
        # View bodies come from this package's .sql files, never from input or config.
        conn.execute(f"create or replace temp view gateway_objects as {queries['objects']}")  # noqa: S608 (package .sql text)
        conn.execute(f"create or replace temp view gateway_fields as {projection_sql(fmt)}")  # noqa: S608 (package .sql text)
        conn.execute(f"create or replace temp view gateway_validated as {queries['validated']}")  # noqa: S608 (package .sql text)
        conn.execute(
            f"create or replace temp table gateway_file as {queries['assign_days']}",  # noqa: S608 (package .sql text)
            {"fallback_day": fallback_day},
        )
    finally:
        conn.unregister("gateway_raw")


def _load_file(conn: duckdb.DuckDBPyConnection, path: Path, fmt: str, state: dict) -> list[str]:
    """Parse a file into temp table `gateway_file`; returns the days it holds."""
    with reading_input(SOURCE, path, fmt):
        raw = registry.get(fmt).read(path)
    fallback = dt.datetime.fromtimestamp(state["mtime_ns"] / 1e9, dt.timezone.utc).date()
    parse_records(conn, raw, fmt, fallback)
    days = conn.execute("select distinct assigned_day from gateway_file order by 1").fetchall()
    return [day.isoformat() for (day,) in days]


def stale_days(conn: duckdb.DuckDBPyConnection, lake_dir: Path, files: list[tuple[Path, str]]) -> list[dt.date]:
    """Ingested days whose input changed since they ran. Reads only new or changed files."""
    manifest = InputManifest(lake_dir, MANIFEST_NAME)
    manifest.forget_missing({str(path) for path, _ in files})
    for path, fmt in files:
        with reading_input(SOURCE, path, fmt):
            state = file_state(path)
        if not manifest.is_current(str(path), state):
            manifest.learn(str(path), state, fmt, _load_file(conn, path, fmt, state))
    conn.execute("drop table if exists gateway_file")
    manifest.save()
    return sorted(dt.date.fromisoformat(day) for day in manifest.stale)


def ingest_day(
    conn: duckdb.DuckDBPyConnection, lake_dir: Path, files: list[tuple[Path, str]], day: dt.date
) -> DayIngest:
    """Read every file that can hold `day`, and write the day's partitions of
    `gateway_requests`, `gateway_quarantine` and `gateway_ingest_audit` to the lake."""
    queries = load_queries(__package__, "day.sql")
    manifest = InputManifest(lake_dir, MANIFEST_NAME)
    manifest.forget_missing({str(path) for path, _ in files})
    result = DayIngest(day=day)
    # An empty file's records give the day's input its columns, so a day no file holds is an
    # empty day with the same columns as a real one.
    parse_records(conn, RAW_SCHEMA.empty_table(), "canonical", day)
    conn.execute(
        f"create or replace temp table gateway_day_input as {queries['day_input']}",  # noqa: S608 (package .sql text)
        {"source_format": "canonical", "day": day},
    )
    for path, fmt in files:
        with reading_input(SOURCE, path, fmt):
            name, state = str(path), file_state(path)
        if not manifest.may_hold(name, state, day):
            result.files_skipped += 1
            continue
        days_held = _load_file(conn, path, fmt, state)
        manifest.learn(name, state, fmt, days_held)
        if day.isoformat() in days_held:
            result.files_read.append(name)
            conn.execute(
                f"insert into gateway_day_input {queries['day_input']}",  # noqa: S608 (package .sql text)
                {"source_format": fmt, "day": day},
            )
    conn.execute("drop table gateway_file")
    conn.execute(f"create or replace temp table gateway_day_records as {queries['day_records']}")  # noqa: S608 (package .sql text)
    result.kept = write_partition(conn, queries["requests"], lake_dir, "gateway_requests", day)
    result.quarantined = write_partition(conn, queries["quarantine"], lake_dir, "gateway_quarantine", day)
    conn.execute(f"create or replace temp table gateway_day_audit as {queries['audit']}")  # noqa: S608 (package .sql text)
    write_partition(conn, "select * from gateway_day_audit", lake_dir, "gateway_ingest_audit", day)
    result.lines, result.duplicates, result.conflicting_duplicates = conn.execute(queries["counts"]).fetchone()
    result.quarantine_by_reason = dict(conn.execute(queries["reasons"]).fetchall())
    result.per_file = [
        dict(zip(("source_file", "lines", "kept", "quarantined", "duplicates"), row, strict=True))
        for row in conn.execute(queries["per_file"]).fetchall()
    ]
    conn.execute("drop table gateway_day_input; drop table gateway_day_records; drop table gateway_day_audit")

    manifest.mark_ingested(day)
    manifest.save()
    result.stale_days = sorted(manifest.stale)
    return result
