"""The Parquet lake: one folder per dataset and UTC day, each holding one file.

A partition is `lake/<dataset>/day=YYYY-MM-DD/data.parquet`. It is written beside its final
name and moved into place with `os.replace`, which is atomic on POSIX: a reader, or a run that
crashed mid-write, sees the old file or the new one, never half of one. Re-running a day
replaces its file whole, so re-runs are idempotent. A temp file that a killed writer left
behind is never read (readers glob `data.parquet` only) and is swept by the next write of its
partition once it is clearly abandoned.

One run at a time writes a project's data_dir (lake and warehouse): `project_lock` below.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

PARTITION_FILE = "data.parquet"


def partition_file(lake_dir: Path, dataset: str, day: dt.date) -> Path:
    return lake_dir / dataset / f"day={day.isoformat()}" / PARTITION_FILE


def dataset_glob(lake_dir: Path, dataset: str) -> str:
    return str(lake_dir / dataset / "day=*" / PARTITION_FILE)


def sql_string(value: str | Path) -> str:
    """A SQL string literal: the one place a value becomes SQL text.

    Only for the statements DuckDB cannot prepare: a persisted view over lake files (CREATE
    VIEW takes no parameters, and a view must outlive the statement) and COMMENT ON (its text is
    a literal in the grammar). Everything else passes values as parameters. In DuckDB's
    standard strings a quote doubled is the only escape (a backslash is an ordinary character),
    so the result reads back as `value` whatever it holds; NUL, which no path or comment
    needs, is refused."""
    if not isinstance(value, (str, Path)):
        raise TypeError(f"sql_string: expected a str or Path, got {type(value).__name__}")
    text = str(value)
    if "\x00" in text:
        raise ValueError("sql_string: a NUL character cannot be part of a path or comment")
    return "'" + text.replace("'", "''") + "'"


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
    _sweep_abandoned_temp_files(target)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    stage_table = f"_stage_{uuid.uuid4().hex[:12]}"
    try:
        # A temp table first: the rows are computed once, then both written and counted.
        conn.execute(f"create temp table {stage_table} as {relation_sql}", params or {})
        conn.execute(
            f"copy {stage_table} to $target (format parquet, compression zstd)", {"target": str(staging)}
        )
        rows = conn.execute(f"select count(*) from {stage_table}").fetchone()[0]
        _fsync(staging)
        os.replace(staging, target)
        _fsync_dir(target.parent)
        return rows
    finally:
        conn.execute(f"drop table if exists {stage_table}")
        staging.unlink(missing_ok=True)


# A temp file untouched this long belongs to a writer that died: a live write touches its file
# every row group, and the rows are computed into a temp table before the file is opened.
ABANDONED_TEMP_AGE_S = 3600


def _sweep_abandoned_temp_files(target: Path) -> None:
    """Remove temp files of `target` that a killed writer left behind. They are never read as
    data (every reader globs `data.parquet`), but they would pile up, one per crash."""
    cutoff = time.time() - ABANDONED_TEMP_AGE_S
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except FileNotFoundError:  # another sweep got there first
            pass


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


class InputUnavailable(RuntimeError):
    """A configured input file that was listed but cannot be read now: vanished between
    listing and reading, a dangling symlink (an unmounted share), a folder, no permission."""


@contextmanager
def reading_input(source: str, path: Path, fmt: str) -> Iterator[None]:
    """Turn an OS error while reading one input file into `InputUnavailable` naming the source,
    the file and what to do. The day then fails before it writes anything: skipping the file
    instead would replace the day's partitions with ones that silently lack its records."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputUnavailable(
            f"sources.{source}: cannot read {path} ({fmt}): {reason}. Nothing was written: the lake keeps "
            "what earlier runs ingested. Restore the file (or, if it is gone for good, remove it from the "
            "folder the source's path matches) and run the day again."
        ) from None


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


# ---------------------------------------------------------------------------------------------
# One run at a time


RUN_LOCK_FILE = ".costwatch-run.lock"


class ProjectBusy(RuntimeError):
    """Another process holds the project's run lock."""


@dataclass
class RunLock:
    """The held run lock of a data_dir. `previous` is what the last holder wrote in the lock
    file: when it names runs, that holder is gone (the lock was free), so runs of it that never
    finished died with it (see `pipelines.defs.resources`)."""

    path: Path
    handle: Any
    holder: dict
    previous: dict = field(default_factory=dict)
    depth: int = 0

    def add_run(self, run_id: str) -> None:
        """Name a Dagster run as this holder's, so whoever takes the lock next can tell it died
        with this process if it never finished."""
        self.holder["runs"].append(run_id)
        _write_holder(self.handle, self.holder)


_held: dict[Path, RunLock] = {}
_held_guard = threading.Lock()


@contextmanager
def project_lock(data_dir: Path, *, command: str, wait_s: float = 0.0, hint: str = "") -> Iterator[RunLock]:
    """Hold the run lock of `data_dir` (its lake and warehouse) for the duration.

    An OS lock (flock) on `data_dir/.costwatch-run.lock`: the kernel releases it when its holder
    exits, however it exits (SIGKILL included), so a crashed run never leaves the project locked.
    Re-entrant within a process: the CLI holds it over a range of days and each day's Dagster run
    takes it again. Another process's holder waits up to `wait_s` seconds, then gets
    `ProjectBusy` naming the holder (pid, command, start time) and, with `hint`, what to do.
    """
    path = (data_dir / RUN_LOCK_FILE).resolve()
    with _held_guard:
        held = _held.get(path)
        if held is not None:
            held.depth += 1
    if held is None:
        held = _acquire(path, command=command, wait_s=wait_s, hint=hint)
    try:
        yield held
    finally:
        with _held_guard:
            held.depth -= 1
            if held.depth == 0:
                del _held[path]
                held.handle.close()  # releases the flock


def _acquire(path: Path, *, command: str, wait_s: float, hint: str) -> RunLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Kept open for as long as the lock is held (closing it releases the flock); "a+b" never
    # truncates, so the holder's record stays readable to whoever finds the lock taken.
    handle = open(path, "a+b")  # noqa: SIM115
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(handle)
                handle.close()
                raise ProjectBusy(_busy_message(path, holder, wait_s, hint)) from None
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
    previous = _read_holder(handle)
    holder = {
        "pid": os.getpid(),
        "command": command,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": [],
    }
    _write_holder(handle, holder)
    lock = RunLock(path=path, handle=handle, holder=holder, previous=previous, depth=1)
    with _held_guard:
        _held[path] = lock
    return lock


def _busy_message(path: Path, holder: dict, wait_s: float, hint: str) -> str:
    if holder.get("pid"):
        who = f"another costwatch run (pid {holder['pid']}, `{holder.get('command', '?')}`, started {holder.get('started_at', '?')})"
    else:
        who = "another costwatch run"
    waited = f" after waiting {wait_s:g}s" if wait_s > 0 else ""
    return (
        f"{who} holds {path}{waited}: one run at a time writes the lake and the warehouse. "
        f"Wait for it to finish{hint}."
    )


def _read_holder(handle) -> dict:
    handle.seek(0)
    try:
        record = json.loads(handle.read().decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):  # a holder caught mid-write of its record
        return {}
    return record if isinstance(record, dict) else {}


def _write_holder(handle, holder: dict) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder).encode("utf-8"))
    handle.flush()
