"""One run at a time writes a project's data_dir (lake and warehouse)."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.lake.manifest import write_json_atomic

RUN_LOCK_FILE = ".costwatch-run.lock"
# Who holds the lock, and their runs: a separate file replaced whole (write, fsync, rename), so a
# holder killed while updating it leaves the previous record, never half of one.
HOLDER_FILE = ".costwatch-run.json"


class ProjectBusy(RuntimeError):
    """Another process holds the project's run lock."""


@dataclass
class RunLock:
    """The held run lock of a data_dir. `holder` is what this process wrote in the lock file: its
    pid, command and runs, and `orphans`: the runs of earlier holders. A holder that left runs in
    the file is gone (the lock was free), so those of its runs that never finished died with it;
    they stay in the file, holder after holder, until a process with the Dagster instance at hand
    marks them failed (`pipelines.resources.warehouse.fail_orphaned_runs`)."""

    path: Path
    handle: Any
    record: Path
    holder: dict
    depth: int = 0

    def add_run(self, run_id: str) -> None:
        """Name a Dagster run as this holder's, so whoever takes the lock next can tell it died
        with this process if it never finished."""
        if run_id in self.holder["runs"]:
            return
        self.holder["runs"].append(run_id)
        _write_holder(self.record, self.holder)

    def runs_finished(self, run_ids: list[str]) -> None:
        """This holder's runs that reached an end (success, failure, stopped and marked failed)."""
        self.holder["runs"] = [run_id for run_id in self.holder["runs"] if run_id not in run_ids]
        _write_holder(self.record, self.holder)

    @property
    def orphans(self) -> list[str]:
        return list(self.holder["orphans"])

    def orphans_settled(self, run_ids: list[str]) -> None:
        """The earlier holders' runs that are now finished (or marked failed)."""
        self.holder["orphans"] = [run_id for run_id in self.holder["orphans"] if run_id not in run_ids]
        _write_holder(self.record, self.holder)


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


def is_held(data_dir: Path) -> bool:
    """Whether a process holds the run lock of `data_dir` now (asked without taking it for long)."""
    path = data_dir / RUN_LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


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
                holder = _read_holder(path.with_name(HOLDER_FILE))
                handle.close()
                raise ProjectBusy(_busy_message(path, holder, wait_s, hint)) from None
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
    record = path.with_name(HOLDER_FILE)
    previous = _read_holder(record)
    holder = {
        "pid": os.getpid(),
        "command": command,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": [],
        # Inherited, not dropped: a holder killed before it marked them failed passes them on.
        "orphans": sorted(set(previous.get("orphans", [])) | set(previous.get("runs", []))),
    }
    _write_holder(record, holder)
    lock = RunLock(path=path, handle=handle, record=record, holder=holder, depth=1)
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
        f"{who} holds {path}{waited}: one run at a time writes the lake and the warehouse. Wait for it to finish{hint}."
    )


def _read_holder(record: Path) -> dict:
    try:
        holder = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (UnicodeDecodeError, ValueError):  # damaged by hand (our writes replace it whole)
        return {}
    return holder if isinstance(holder, dict) else {}


def _write_holder(record: Path, holder: dict) -> None:
    write_json_atomic(record, holder)
