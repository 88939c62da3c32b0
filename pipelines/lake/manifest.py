"""Input files: which days each holds (the manifest), and reading one without losing a day."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipelines.lake.health import lake_days, read_state
from pipelines.lake.partitions import _fsync

# What `stat` says of a file, recorded beside its digest: while all four are as recorded, its bytes
# are taken to be the digested ones (see InputManifest).
STAT_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")
# How to check that an input file is unchanged (`inputs.verify_content`): `on_change` hashes a file
# only when a stat field moved; `always` hashes every file on every run.
VERIFY_MODES = ("on_change", "always")
# A file whose recorded ctime is this close to when it was hashed is hashed again next time: the
# kernel stamps ctime from a clock that ticks every few milliseconds (and a file server from its
# own clock), so a write in the same tick as the recorded one would leave every stat field as it was.
_RACY_NS = 2_000_000_000
# Bytes read at a time. sha256 (with the CPU's SHA extensions) streams about twice as fast as
# blake2b here, and reads of 256 KiB hash as fast as 1-8 MiB ones (bench/bench_hash.py) while
# keeping the hash's buffer below an ingest batch (tests/test_streaming_ingest.py).
DIGEST_BLOCK = 256 << 10


def file_state(path: Path) -> dict:
    """The file's stat fields (STAT_FIELDS). Not its identity: that is its digest (`InputManifest.observe`)."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes as stored (a .gz file's compressed bytes), streamed: memory is
    one block whatever the file's size. The one content digest of costwatch: input files, price
    catalogs and load tests alike."""
    digest = hashlib.sha256()
    block = bytearray(DIGEST_BLOCK)
    view = memoryview(block)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(block):
            digest.update(view[:count])
    return digest.hexdigest()


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

    Stored as `lake/_manifests/<name>.json`: `files` maps a path to what it was when last read
    (its `sha256`, its stat fields, `hashed_at_ns`, and whatever a reader adds, e.g. a log's time
    zone) and the days it held; `ingested` lists the days written; `stale` the ingested days whose
    input changed since (a file that holds or held them changed, appeared or vanished).

    A file is changed when its bytes are: a file replaced by one of the same size and
    modification time (`cp -p`, `rsync -t`, a restore) is changed; a `touch` is not (no re-ingest).
    Hashing every file on every run would read every byte of the input history each morning, so
    the digest is kept with the file's size, mtime, ctime and inode, and a file is hashed again
    only when one of them moved (`verify_content: on_change`, the default). That is sound
    because ctime cannot be set from user space: the kernel stamps it on every write, truncate,
    chmod or utime of the inode, so `cp -p` over a file (a write, then a utime) moves it, and
    `rsync -t` or `mv` of another file onto the path brings another inode with its own ctime. Two
    cases need more than the stat fields: a write within the same clock tick as the recorded stat
    (a file recorded while being written) is caught by hashing again a file whose recorded ctime was
    within `_RACY_NS` of its hashing; and filesystems that do not keep ctime (some FUSE and object-store
    mounts, which report ctime = mtime or none) need `inputs.verify_content: always`, which hashes
    every file on every run (~0.8 s per GB here, bench/bench_hash.py).

    Manifests written before digests were kept still work: such a file is hashed once and compared
    by size and mtime, as it was then, so an upgrade re-ingests nothing; from then on it is
    compared by content. (A same-size, same-mtime replacement made before the upgrade stays
    unseen: re-run its days with `run --date` if one is suspected.)
    """

    def __init__(self, lake_dir: Path, name: str, verify: str = "on_change", store: ManifestStore | None = None):
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, not {verify!r}")
        self.name = name
        self.store = store if store is not None else JsonManifestStore(lake_dir)
        self.path = lake_dir / "_manifests" / f"{name}.json"
        self.verify = verify
        # What this run changed since it loaded or last saved, for a store that applies changes row by
        # row (Postgres) instead of replacing the whole document (the JSON file).
        self.changes = ManifestChanges()
        state = self.store.load(name)
        if state is None:
            # Rebuilt: every file is new to it, so each day the lake holds and a file holds runs again.
            state = {"ingested": sorted(day.isoformat() for day in lake_days(lake_dir))}
            self.changes.events.append(("rebuilt", tuple(state["ingested"])))
        self.files: dict[str, dict] = state.get("files", {})
        self.ingested: set[str] = set(state.get("ingested", []))
        self.stale: set[str] = set(state.get("stale", []))

    def observe(self, name: str, path: Path, state: dict) -> dict:
        """`state` (the file's `file_state`, plus what its reader adds) with the file's `sha256`:
        the recorded one while every stat field is as recorded, else hashed now. A file whose bytes
        did not change (a `touch`, a copy of itself) gets its new stat fields recorded, so it is not
        hashed again next run."""
        known = self.files.get(name)
        if (
            self.verify == "on_change"
            and known is not None
            and "sha256" in known
            and all(known.get(key) == state[key] for key in STAT_FIELDS)
            and known["hashed_at_ns"] - known["ctime_ns"] > _RACY_NS
        ):
            return {**state, "sha256": known["sha256"], "hashed_at_ns": known["hashed_at_ns"]}
        observed = {**state, "hashed_at_ns": time.time_ns(), "sha256": file_digest(path)}
        if self.is_current(name, observed):
            known.update(observed)
            self.changes.events.append(("observed", name))
        return observed

    def is_current(self, name: str, state: dict) -> bool:
        """Whether the file is as last read: the same bytes (`sha256`, from `observe`), and read the
        same way (a reader may add to `state` what else decides the days a file holds, e.g. a log's
        time zone). A file recorded before digests were kept is compared by size and mtime."""
        known = self.files.get(name)
        if known is None:
            return False
        if "sha256" not in known:
            return identity(known, legacy=True) == identity(state, legacy=True)
        return identity(known) == identity(state)

    def may_hold(self, name: str, state: dict, day: dt.date) -> bool:
        return not self.is_current(name, state) or day.isoformat() in self.files[name]["days"]

    def learn(self, name: str, state: dict, fmt: str, days_held: list[str]) -> None:
        """Record what the file (`state`, from `observe`) holds; the days it holds or held that were
        ingested are stale."""
        if self.is_current(name, state):
            return
        affected = set(days_held) | set(self.files.get(name, {}).get("days", []))
        self.stale |= affected & self.ingested
        self.files[name] = {**state, "format": fmt, "days": days_held}
        self.changes.events.append(("learned", name))

    def forget_missing(self, present: set[str]) -> None:
        for name in sorted(set(self.files) - present):
            self.stale |= set(self.files.pop(name)["days"]) & self.ingested
            self.changes.events.append(("forgot", name))

    def mark_ingested(self, day: dt.date) -> None:
        self.ingested.add(day.isoformat())
        self.stale.discard(day.isoformat())
        self.changes.events.append(("ingested", day.isoformat()))

    def save(self) -> None:
        """Store what this run changed (the JSON file: the whole manifest, replaced; Postgres: the
        changed rows, in one transaction), then take the store's view of `ingested` and `stale`,
        which, in Postgres, includes what concurrent runs stored meanwhile."""
        stored = self.store.save(self)
        self.changes = ManifestChanges()
        if stored is not None:
            self.ingested, self.stale = stored


@dataclass
class ManifestChanges:
    """A manifest's changes since it was loaded or saved, in order: a file `learned` (read: new or
    changed), `observed` (same bytes, new stat fields) or `forgot` (gone), a day `ingested`, and the
    days a manifest `rebuilt` from the lake starts with. A store that keeps rows applies them
    against what is stored now, which concurrent runs may have changed since this one loaded."""

    events: list[tuple[str, Any]] = field(default_factory=list)


class ManifestStore(Protocol):
    """Where input manifests live: `JsonManifestStore` (embedded) or a Postgres one
    (`pipelines.lake.manifest_postgres`, chosen by `state.backend`; pipelines/resources/state.py)."""

    def load(self, name: str) -> dict | None:
        """`{"files": {path: record}, "ingested": [day], "stale": [day]}`, or None when never saved."""
        ...

    def save(self, manifest: InputManifest) -> tuple[set[str], set[str]] | None:
        """Store `manifest.changes`; the stored (ingested, stale) days when they may differ from the
        manifest's own (other writers), else None."""
        ...


class JsonManifestStore:
    """Embedded: `lake/_manifests/<name>.json`, replaced whole on every save (write, fsync, rename).

    A save writes the run's whole view, so two runs saving at once would lose one's days: runs
    of a project take turns under its run lock (`pipelines.lake.lock.project_lock`, held by the
    warehouse resource for the whole run)."""

    def __init__(self, lake_dir: Path):
        self.folder = lake_dir / "_manifests"

    def load(self, name: str) -> dict | None:
        return read_state(self.folder / f"{name}.json")

    def save(self, manifest: InputManifest) -> None:
        write_json_atomic(
            manifest.path,
            {"files": manifest.files, "ingested": sorted(manifest.ingested), "stale": sorted(manifest.stale)},
        )


def identity(record: dict, *, legacy: bool = False) -> dict:
    """What makes a file the same file for the manifest: its digest and how it was read, not its
    stat fields (`legacy`: a record from before digests, compared by size and mtime instead)."""
    compared = {"size", "mtime_ns"} if legacy else {"sha256"}
    ignored = {"format", "days", "hashed_at_ns", "sha256", *STAT_FIELDS} - compared
    return {key: value for key, value in record.items() if key not in ignored}


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
