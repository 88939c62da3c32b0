"""Damaged state found and set aside, so one bad file never blocks the days it does not hold.

costwatch writes every file of its own whole (temp file, fsync, rename), so it never leaves a
half-written one. What damages state is everything else: a disk error, a copy cut short, a
hand edit, a restore from a bad backup. Two kinds are healed here:

- a lake partition that no longer reads as Parquet: moved to `lake/_damaged/` (kept, not
  deleted) and its day recorded as unfinished (`PendingDays`), so views over the dataset read
  the other days again and the next `costwatch run --changed` re-ingests the day from its inputs;
- a JSON state file (input manifest, pending days, day settings) that no longer parses: moved
  aside as `<name>.damaged` and rebuilt by its owner, conservatively (a rebuilt manifest treats
  every file as new, so each day it holds runs again).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.lake.partitions import PARTITION_FILE, listed_partitions, partition_file, whole_file
from pipelines.lake.store import LakePath, is_remote

if TYPE_CHECKING:
    from pipelines.resources.state import StateBackend

DAMAGED_DIR = "_damaged"
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class DamagedPartition:
    dataset: str
    day: dt.date | None  # None: a dataset kept as one file (not per day)
    path: Path
    reason: str

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.day}" if self.day else self.dataset


def read_state(path: Path) -> dict | None:
    """The JSON object stored at `path`: {} when there is none yet, None when the file cannot be
    read as one. A damaged file is moved aside (`<name>.damaged`, the evidence kept) and named
    on stderr; the caller rebuilds the state."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, ValueError) as error:
        reason = f"not JSON ({error})"
    else:
        if isinstance(state, dict):
            return state
        reason = f"a JSON {type(state).__name__}, not an object"
    aside = path.with_name(f"{path.name}.damaged")
    os.replace(path, aside)
    print(f"costwatch: {path} was unreadable ({reason}); moved to {aside.name} and rebuilt", file=sys.stderr)
    return None


def lake_partitions(lake_dir: LakePath) -> list[tuple[str, dt.date | None, LakePath]]:
    """Every partition file of the lake: (dataset, day, path); day None for one-file datasets.
    Local or in an object store (listed afresh: `pipelines.lake.store`)."""
    if is_remote(lake_dir):
        return _object_partitions(lake_dir)
    found = []
    if not lake_dir.is_dir():
        return found
    for dataset_dir in sorted(lake_dir.iterdir()):
        if not dataset_dir.is_dir() or dataset_dir.name.startswith(("_", ".")):
            continue
        whole = dataset_dir / PARTITION_FILE
        if whole.exists():
            found.append((dataset_dir.name, None, whole))
        for day_dir in sorted(dataset_dir.glob("day=*")):
            file = day_dir / PARTITION_FILE
            if file.exists():
                found.append((dataset_dir.name, dt.date.fromisoformat(day_dir.name.removeprefix("day=")), file))
    return found


def _object_partitions(lake: LakePath) -> list[tuple[str, dt.date | None, LakePath]]:
    """`lake_partitions` of an object-store lake, from one listing of its prefix."""
    found = []
    for dataset, day in listed_partitions(lake):
        if day is None:
            found.append((dataset, None, whole_file(lake, dataset)))
        else:
            date = dt.date.fromisoformat(day)
            found.append((dataset, date, partition_file(lake, dataset, date)))
    return found


def lake_days(lake_dir: LakePath) -> set[dt.date]:
    """The days any dataset of the lake holds a partition of."""
    return {day for _, day, _ in lake_partitions(lake_dir) if day is not None}


def damaged_partitions(lake_dir: Path) -> list[DamagedPartition]:
    """Partitions that are not whole Parquet files: too short, or without the `PAR1` magic at
    both ends, or a footer length that does not fit (a truncated, cut or overwritten file). Two
    small reads per file, no Parquet library: a year of a dozen datasets is checked in well
    under a second, so every run can afford it. Damage inside a column chunk with an intact
    footer is not seen here; DuckDB names the file when a query reaches it."""
    damaged = []
    for dataset, day, path in lake_partitions(lake_dir):
        reason = _not_parquet(path)
        if reason:
            damaged.append(DamagedPartition(dataset, day, path, reason))
    return damaged


def _not_parquet(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 12:
                return f"{size} bytes, shorter than any Parquet file"
            head = handle.read(4)
            handle.seek(size - 8)
            tail = handle.read(8)
    except OSError as error:
        return f"unreadable: {error.strerror or type(error).__name__}"
    if head != PARQUET_MAGIC or tail[4:] != PARQUET_MAGIC:
        return "no Parquet magic at its start and end (truncated or overwritten)"
    footer = int.from_bytes(tail[:4], "little")
    if footer + 12 > size:
        return f"its footer claims {footer} bytes of a {size}-byte file"
    return None


def set_aside(lake_dir: Path, damaged: DamagedPartition) -> Path:
    """Move a damaged partition under `lake/_damaged/`, keeping its dataset and day in the path."""
    relative = damaged.path.relative_to(lake_dir)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = lake_dir / DAMAGED_DIR / relative.with_name(f"{relative.name}.{stamp}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(damaged.path, target)
    return target


def heal_lake(lake_dir: Path, state: StateBackend | None = None) -> list[str]:
    """Set every damaged partition aside and record its day as unfinished (the pending days of
    `state`, the project's state backend; default the lake's JSON file), so `costwatch run
    --changed` re-ingests it. One line per partition, saying what was done."""
    from pipelines.lake.manifest import PendingDays

    lines = []
    for damaged in damaged_partitions(lake_dir):
        target = set_aside(lake_dir, damaged)
        if damaged.day is not None:
            (state.pending_days() if state is not None else PendingDays(lake_dir)).add([damaged.day])
            fix = f"`costwatch run --changed` re-ingests {damaged.day} from its inputs"
        else:
            fix = "the next run of any day writes it again"
        lines.append(f"lake partition {damaged.label} was unreadable ({damaged.reason}): moved to {target}; {fix}")
    for line in lines:
        print(f"costwatch: {line}", file=sys.stderr)
    return lines


def locked_by_another_process(error: Exception) -> bool:
    """DuckDB's error for a file another process holds open for writing. (Matched on its words:
    "lock" alone also matches a damaged *block*.)"""
    return "Could not set lock on file" in str(error)


def read_every_row(path: Path, *, read_only: bool = True) -> int:
    """Open the DuckDB file and read every column of every row of every table (a row's hash reads
    them all); returns the tables. DuckDB opens a damaged file and reads its blocks lazily, so
    opening alone proves little: a damaged block raises `duckdb.Error` here."""
    import duckdb

    with duckdb.connect(str(path), read_only=read_only) as conn:
        tables = [name for (name,) in conn.execute("select table_name from duckdb_tables()").fetchall()]
        for table in tables:
            conn.execute(f'select count(hash("{table}")) from "{table}"').fetchone()  # noqa: S608 (names from the catalog)
    return len(tables)


class WarehouseDamaged(RuntimeError):
    """The warehouse file exists but DuckDB cannot open it, or read a block of it."""

    def __init__(self, path: Path, error: Exception):
        super().__init__(
            f"the warehouse {path} cannot be opened or read: {str(error).splitlines()[0]}. The file is damaged; the lake "
            f"is not. Fix: `costwatch rebuild` (it moves the damaged file aside and rebuilds the marts from the lake)."
        )


class WarehouseMissing(RuntimeError):
    """The warehouse file is gone while the lake holds days a run would not recompute."""


def require_warehouse(warehouse: Path, lake_dir: LakePath, days: set[dt.date] | None) -> None:
    """Refuse to start a warehouse afresh with one run's days when the lake holds others: the
    marts would silently cover only those days. `costwatch rebuild` recomputes them all."""
    if warehouse.exists():
        return
    held = lake_days(lake_dir)
    others = sorted(day for day in held if days is None or day not in days)
    if others:
        raise WarehouseMissing(
            f"the warehouse {warehouse} is missing, but the lake holds {len(held)} day(s) ({min(held)}..{max(held)}): "
            f"a run now would start it afresh with only its own days. Fix: `costwatch rebuild` rebuilds the marts of "
            "every day from the lake; then run the day."
        )
