"""The Parquet lake: one folder per dataset and UTC day, each holding one file.

A partition is `lake/<dataset>/day=YYYY-MM-DD/data.parquet`. It is written beside its final
name and moved into place with `os.replace`, which is atomic on POSIX: a reader, or a run that
crashed mid-write, sees the old file or the new one, never half of one. Re-running a day
replaces its file whole, so re-runs are idempotent. A temp file that a killed writer left
behind is never read (readers glob `data.parquet` only) and is swept by the next write of its
partition once it is clearly abandoned.

The lake may also be an object-store prefix (`storage.lake: s3://...`, a UPath from
`pipelines.lake.store`): the same layout, each partition one object, written by COPY to a local
temp file and one upload of the finished file (`store.put_whole`), never a partial key.

One run at a time writes a project's data_dir: `pipelines.lake.lock`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lake.store import LakePath, is_remote, put_whole

PARTITION_FILE = "data.parquet"


def listed_partitions(lake: LakePath) -> list[tuple[str, str | None]]:
    """Every partition object of an object-store lake, from one listing of its prefix (S3 pages it,
    1,000 keys a request; not a request or two per folder): (dataset, day as its folder spells it),
    the day None for a dataset's one whole file. A folder whose name starts with `_` or `.`
    (manifests, set-aside files) holds no dataset."""
    root = lake.path.rstrip("/") + "/"
    found: list[tuple[str, str | None]] = []
    for key in sorted(lake.fs.find(root)):
        parts = key[len(root) :].split("/") if key.startswith(root) else []
        if not parts or parts[0].startswith(("_", ".")) or parts[-1] != PARTITION_FILE:
            continue
        if len(parts) == 2:
            found.append((parts[0], None))
        elif len(parts) == 3 and parts[1].startswith("day="):
            found.append((parts[0], parts[1].removeprefix("day=")))
    return found


def lake_datasets(lake_dir: LakePath) -> dict[str, str]:
    """Each dataset folder of the lake that holds data, and how: 'whole' (one `data.parquet`) or
    'daily' (`day=*/data.parquet`). An object-store lake is read with one listing of its prefix."""
    found: dict[str, str] = {}
    if is_remote(lake_dir):
        for dataset, day in listed_partitions(lake_dir):
            if day is None:
                found[dataset] = "whole"
            else:
                found.setdefault(dataset, "daily")
        return found
    for folder in sorted(lake_dir.iterdir()) if lake_dir.is_dir() else []:
        if folder.name.startswith(("_", ".")):
            continue
        if (folder / PARTITION_FILE).exists():
            found[folder.name] = "whole"
        elif any(folder.glob(f"day=*/{PARTITION_FILE}")):
            found[folder.name] = "daily"
    return found


def partition_file(lake_dir: LakePath, dataset: str, day: dt.date) -> LakePath:
    return lake_dir / dataset / f"day={day.isoformat()}" / PARTITION_FILE


def dataset_glob(lake_dir: LakePath, dataset: str) -> str:
    return str(lake_dir / dataset / "day=*" / PARTITION_FILE)


def sql_string(value: str | LakePath) -> str:
    """A SQL string literal: the one place a value becomes SQL text.

    Only for the statements DuckDB cannot prepare: a persisted view over lake files (CREATE
    VIEW takes no parameters, and a view must outlive the statement) and COMMENT ON (its text is
    a literal in the grammar). Everything else passes values as parameters. In DuckDB's
    standard strings a quote doubled is the only escape (a backslash is an ordinary character),
    so the result reads back as `value` whatever it holds; NUL, which no path or comment
    needs, is refused."""
    if not isinstance(value, (str, Path)) and not is_remote(value):
        raise TypeError(f"sql_string: expected a str, Path or lake URI, got {type(value).__name__}")
    text = str(value)
    if "\x00" in text:
        raise ValueError("sql_string: a NUL character cannot be part of a path or comment")
    return "'" + text.replace("'", "''") + "'"


def write_partition(
    conn: duckdb.DuckDBPyConnection,
    relation_sql: str,
    lake_dir: LakePath,
    dataset: str,
    day: dt.date,
    params: dict[str, Any] | None = None,
) -> int:
    """Write the rows of `relation_sql` (without a `day` column: the folder carries it) as the
    day's partition of `dataset`, atomically. Returns the row count."""
    return write_file(conn, relation_sql, partition_file(lake_dir, dataset, day), params)


def write_file(
    conn: duckdb.DuckDBPyConnection, relation_sql: str, target: LakePath, params: dict[str, Any] | None = None
) -> int:
    """Write the rows of `relation_sql` to one Parquet file, atomically. Returns the row count."""
    if is_remote(target):
        return _write_object(conn, relation_sql, target, params)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned_temp_files(target)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Straight from the query to the file (COPY returns the row count): no temp table of the
        # rows first, which for a ten-million-request day was a second copy of the day.
        (rows,) = conn.execute(
            f"copy ({relation_sql}) to $target (format parquet, compression zstd)",  # noqa: S608 (a select from code)
            {**(params or {}), "target": str(staging)},
        ).fetchone()
        _fsync(staging)
        os.replace(staging, target)
        _fsync_dir(target.parent)
        return rows
    finally:
        staging.unlink(missing_ok=True)


def _write_object(
    conn: duckdb.DuckDBPyConnection, relation_sql: str, target: LakePath, params: dict[str, Any] | None
) -> int:
    """`write_file` for an object store: the whole file is written locally first, then uploaded
    as the object in one piece, so no key ever holds part of it. The local copy sits in a private
    temp folder, removed afterwards (a killed writer's is left to the OS's temp cleaning)."""
    with tempfile.TemporaryDirectory(prefix="costwatch-put-") as folder:
        staging = Path(folder) / PARTITION_FILE
        (rows,) = conn.execute(
            f"copy ({relation_sql}) to $target (format parquet, compression zstd)",  # noqa: S608 (a select from code)
            {**(params or {}), "target": str(staging)},
        ).fetchone()
        put_whole(staging, target)
        return rows


# A temp file untouched this long belongs to a writer that died: a live write touches its file
# every row group.
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


def whole_file(lake_dir: LakePath, dataset: str) -> LakePath:
    """The one file of an unpartitioned dataset (a settings or whole-history table in the lake)."""
    return lake_dir / dataset / PARTITION_FILE


def whole_view_sql(lake_dir: LakePath, dataset: str) -> str:
    """DDL for a view over an unpartitioned dataset's one file."""
    return (
        f"create or replace view {dataset} as select * from read_parquet({sql_string(whole_file(lake_dir, dataset))})"  # noqa: S608 (a dataset name from code; the path escaped)
    )


def dataset_view_sql(lake_dir: LakePath, dataset: str, *, day_first: bool = False) -> str:
    """DDL for a view over every day of a dataset, with `day` typed from the folder name (the last
    column; `day_first`: the first, as a warehouse table of the model has it)."""
    columns = "day, * exclude (day)" if day_first else "*"
    return (
        f"create or replace view {dataset} as select {columns} from read_parquet("  # noqa: S608 (a dataset name from code; the glob escaped)
        f"{sql_string(dataset_glob(lake_dir, dataset))}, hive_partitioning = true, "
        "hive_types = {'day': DATE}, union_by_name = true)"
    )


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
