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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_LOCK_FILE = ".costwatch-run.lock"


class ProjectBusy(RuntimeError):
    """Another process holds the project's run lock."""


@dataclass
class RunLock:
    """The held run lock of a data_dir. `previous` is what the last holder wrote in the lock
    file: when it names runs, that holder is gone (the lock was free), so runs of it that never
    finished died with it (see `pipelines.resources.warehouse`)."""

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
        f"{who} holds {path}{waited}: one run at a time writes the lake and the warehouse. Wait for it to finish{hint}."
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
