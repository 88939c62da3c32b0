"""The analysts' copy of the warehouse: `data/published/warehouse.duckdb`, replaced atomically
when a run finishes, so reads never wait for or collide with a run.

DuckDB allows one writer per file and a read-only open fails while a writer holds it. Analysts
(`costwatch query`, `costwatch shell`, the report, `duckdb -readonly`) open the published copy
instead: a run never opens it, and replacing it is a rename, so a reader that opened the old copy
keeps reading it to the end, and the next open gets the new one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipelines.lake.store import LakePath

PUBLISHED_DIR = "published"


def published_path(warehouse: Path) -> Path:
    return warehouse.parent / PUBLISHED_DIR / warehouse.name


def readable_warehouse(warehouse: Path) -> Path:
    """What an analyst opens: the published copy, or the warehouse itself before any run published one."""
    published = published_path(warehouse)
    return published if published.exists() else warehouse


def publish(conn: duckdb.DuckDBPyConnection, warehouse: Path) -> Path:
    """Copy `warehouse` (open on `conn`, the run's only writer) to its published path: checkpoint
    (the file then holds every committed change, nothing waits in the write-ahead log), copy to
    a staging file beside the target, flush it to disk, and rename it over the target."""
    conn.execute("checkpoint")
    return _replace_published(warehouse, lambda staging: shutil.copyfile(warehouse, staging))


def _replace_published(warehouse: Path, write: Callable[[Path], object]) -> Path:
    """`write` the published file to a staging file beside it, flush it to disk, and rename it over
    the published path. Returns that path."""
    target = published_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    try:
        write(staging)
        with open(staging, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def publish_catalog(lake_dir: LakePath, warehouse: Path) -> Path:
    """Distributed mode: the analysts' file is a catalog, rebuilt whole: the project's macros and
    a documented view over every dataset of the lake (`lake_catalog`), no rows of its own. Runs
    of different days write the lake at once, so no run's database is the warehouse; any run's
    publish gives the same views (they read the lake when queried), written to a staging file
    and renamed over the target as `publish` does."""
    from pipelines.models.engine import lake_catalog, prepare_session  # the engine imports this module's neighbours

    def write(staging: Path) -> None:
        with duckdb.connect(str(staging)) as conn:
            prepare_session(conn, lake=lake_dir)
            lake_catalog(conn, lake_dir)
            conn.execute("checkpoint")

    return _replace_published(warehouse, write)
