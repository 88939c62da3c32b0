"""Input files: which days each holds (the manifest), and reading one without losing a day."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.lake.health import lake_days, read_state
from pipelines.lake.partitions import _fsync


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
        state = read_state(self.path)
        if state is None:
            # Rebuilt: every file is new to it, so each day the lake holds and a file holds runs again.
            state = {"ingested": sorted(day.isoformat() for day in lake_days(lake_dir))}
        self.files: dict[str, dict] = state.get("files", {})
        self.ingested: set[str] = set(state.get("ingested", []))
        self.stale: set[str] = set(state.get("stale", []))

    def is_current(self, name: str, state: dict) -> bool:
        """Whether the file is as last read: the same size and mtime, and read the same way (a reader
        may add to `state` what else decides the days a file holds, e.g. a log's time zone)."""
        known = self.files.get(name)
        return known is not None and {key: known[key] for key in known if key not in ("format", "days")} == state

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


class PendingDays:
    """The days a `costwatch run` set out to recompute and has not finished, so an interrupted
    run is resumed instead of forgotten: `lake/_manifests/pending_days.json`.

    A run records all its days before it starts (the changed days and the later days whose
    windows read them) and clears a stretch's days once the run over them succeeded. Ingest
    clears a day's `stale` mark in the input manifest as soon as the day is read, so without this
    record a run killed after the changed day but before its later days left those marts computed
    from the old data, and the next `run --changed` found nothing to do."""

    def __init__(self, lake_dir: Path):
        self.path = lake_dir / "_manifests" / "pending_days.json"
        state = read_state(self.path)
        # Rebuilt, it cannot tell which run was cut short: every day the lake holds runs again.
        self.days: set[dt.date] = (
            lake_days(lake_dir) if state is None else {dt.date.fromisoformat(day) for day in state.get("days", [])}
        )

    def add(self, days: Iterable[dt.date]) -> None:
        self.days |= set(days)
        self._save()

    def done(self, days: Iterable[dt.date]) -> None:
        self.days -= set(days)
        self._save()

    def _save(self) -> None:
        write_json_atomic(self.path, {"days": sorted(day.isoformat() for day in self.days)})


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    staging.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
    _fsync(staging)
    os.replace(staging, path)
