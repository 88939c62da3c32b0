"""The Parquet lake: one folder per dataset and UTC day, each holding one file.

A partition is `lake/<dataset>/day=YYYY-MM-DD/data.parquet`. It is written beside its final
name and moved into place with `os.replace`, which is atomic on POSIX: a reader, or a run that
crashed mid-write, sees the old file or the new one, never half of one. Re-running a day
replaces its file whole, so re-runs are idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

import duckdb

PARTITION_FILE = "data.parquet"


def partition_file(lake_dir: Path, dataset: str, day: dt.date) -> Path:
    return lake_dir / dataset / f"day={day.isoformat()}" / PARTITION_FILE


def dataset_glob(lake_dir: Path, dataset: str) -> str:
    return str(lake_dir / dataset / "day=*" / PARTITION_FILE)


def sql_string(value: str | Path) -> str:
    """A SQL string literal. Only for file paths in DDL, where DuckDB takes no parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def write_partition(
    conn: duckdb.DuckDBPyConnection,
    relation_sql: str,
    lake_dir: Path,
    dataset: str,
    day: dt.date,
    params: dict[str, Any] | None = None,
) -> int:
    """Write the rows of `relation_sql` (without a `day` column: the folder carries it) as the
    day's partition of `dataset`, atomically. Returns the row count."""
    return write_file(conn, relation_sql, partition_file(lake_dir, dataset, day), params)


def write_file(
    conn: duckdb.DuckDBPyConnection, relation_sql: str, target: Path, params: dict[str, Any] | None = None
) -> int:
    """Write the rows of `relation_sql` to one Parquet file, atomically. Returns the row count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{PARTITION_FILE}.{uuid.uuid4().hex}.tmp")
    stage_table = f"_stage_{uuid.uuid4().hex[:12]}"
    try:
        # A temp table first, because COPY takes no prepared parameters.
        conn.execute(f"create temp table {stage_table} as {relation_sql}", params or {})
        conn.execute(
            f"copy {stage_table} to {sql_string(staging)} (format parquet, compression zstd)"
        )
        rows = conn.execute(f"select count(*) from {stage_table}").fetchone()[0]
        _fsync(staging)
        os.replace(staging, target)
        _fsync_dir(target.parent)
        return rows
    finally:
        conn.execute(f"drop table if exists {stage_table}")
        staging.unlink(missing_ok=True)


def dataset_view_sql(lake_dir: Path, dataset: str) -> str:
    """DDL for a view over every day of a dataset, with `day` typed from the folder name."""
    return (
        f"create or replace view {dataset} as select * from read_parquet("
        f"{sql_string(dataset_glob(lake_dir, dataset))}, hive_partitioning = true, "
        "hive_types = {'day': DATE}, union_by_name = true)"
    )


def file_state(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class InputManifest:
    """Which input files hold which days, so a day's run opens only the files that can hold it
    and a changed file re-opens the days it holds.

    Stored as `lake/_manifests/<name>.json`: `files` maps a path to the size, mtime and
    days it held when last read; `ingested` lists the days written; `stale` the ingested days
    whose input changed since (a file that holds or held them changed, appeared or vanished).
    """

    def __init__(self, lake_dir: Path, name: str):
        self.path = lake_dir / "_manifests" / f"{name}.json"
        state = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        self.files: dict[str, dict] = state.get("files", {})
        self.ingested: set[str] = set(state.get("ingested", []))
        self.stale: set[str] = set(state.get("stale", []))

    def is_current(self, name: str, state: dict) -> bool:
        known = self.files.get(name)
        return known is not None and (known["size"], known["mtime_ns"]) == (state["size"], state["mtime_ns"])

    def may_hold(self, name: str, state: dict, day: dt.date) -> bool:
        return not self.is_current(name, state) or day.isoformat() in self.files[name]["days"]

    def learn(self, name: str, state: dict, fmt: str, days_held: list[str]) -> None:
        if self.is_current(name, state):
            return
        affected = set(days_held) | set(self.files.get(name, {}).get("days", []))
        self.stale |= affected & self.ingested
        self.files[name] = {**state, "format": fmt, "days": days_held}

    def forget_missing(self, present: set[str]) -> None:
        for name in sorted(set(self.files) - present):
            self.stale |= set(self.files.pop(name)["days"]) & self.ingested

    def mark_ingested(self, day: dt.date) -> None:
        self.ingested.add(day.isoformat())
        self.stale.discard(day.isoformat())

    def save(self) -> None:
        write_json_atomic(
            self.path, {"files": self.files, "ingested": sorted(self.ingested), "stale": sorted(self.stale)}
        )


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    staging.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
    _fsync(staging)
    os.replace(staging, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
