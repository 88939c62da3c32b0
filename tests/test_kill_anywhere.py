"""Kill anywhere, converge: `costwatch run` killed with SIGKILL at random moments, over and over,
then run once to the end, leaves marts equal to a clean run's, and no run open. Here a range
run; tests/test_kill_changed.py does `run --changed` (6 kills each, 12 in all).

Two projects from the same generated inputs (2 days x 150 requests, every source). The
reference runs cleanly; the other is killed at random moments, attempt after attempt. After
every kill: the run lock is free and every lake partition reads. Then one run to the end: every
warehouse table equals the reference's (bit for bit, doubles included) and every Dagster run of
the project is finished.

Each attempt is a child forked from a warm process (dagster, duckdb and costwatch imported once),
so a kill lands in the run's own work, not in interpreter start-up: the kill moment is drawn
uniformly over one attempt's measured duration.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli_project, request, warehouse_rows

from pipelines.lake.health import damaged_partitions
from pipelines.lake.lock import is_held
from pipelines.resources.instance import open_instance

pytestmark = pytest.mark.slow(seconds=400)  # 6 killed runs and their attempts

FIRST = dt.date(2026, 10, 1)
LAST = FIRST + dt.timedelta(days=1)
KILLS_PER_PHASE = 6  # each one a run cut at a random moment: 12 over the two tests (16 until
# the distributed mode's daemon test joined `make test`, for its 15 minutes)
SEED = 20261203

# The warm parent: reads one JSON request per line, forks a child per `start` (which runs
# `costwatch` in-process and exits with its code) and reaps it on `wait`.
ZYGOTE = r"""
import json, os, sys
import dagster, duckdb, great_expectations, pyarrow.parquet
import pipelines.cli, pipelines.definitions
for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "start":
        pid = os.fork()
        if pid == 0:
            os.environ["DAGSTER_HOME"] = request["home"]
            sink = os.open(os.devnull, os.O_WRONLY)
            os.dup2(sink, 1)
            os.dup2(sink, 2)
            code = 70
            try:
                code = pipelines.cli.main(request["argv"])
            finally:
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
    else:
        _, status = os.waitpid(request["pid"], 0)
        print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                          "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
"""


class Zygote:
    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def start(self, root: Path, *args: str) -> int:
        argv = ["--config", str(root / "costwatch.yaml"), *args]
        return self._ask({"op": "start", "home": str(root / "dagster_home"), "argv": argv})["pid"]

    def wait(self, pid: int) -> dict:
        return self._ask({"op": "wait", "pid": pid})

    def run(self, root: Path, *args: str) -> float:
        """Run to the end; its wall time."""
        started = time.monotonic()
        outcome = self.wait(self.start(root, *args))
        assert outcome == {"signal": None, "code": 0}, (args, outcome)
        return time.monotonic() - started

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote():
    warm = Zygote()
    yield warm
    warm.close()


def _unfinished_runs(root: Path) -> list[str]:

    with open_instance(root / "dagster_home") as instance:
        return [run.run_id for run in instance.get_runs() if not run.is_finished]


def _kill_at_random(
    zygote: Zygote,
    root: Path,
    args: tuple[str, ...],
    horizon_s: float,
    rng: random.Random,
    new_work: Callable[[], None] | None = None,
) -> int:
    """Attempts of `costwatch ARGS`, each SIGKILLed at a moment drawn over `horizon_s`, until
    KILLS_PER_PHASE kills landed mid-run (an attempt that finished first counts as a run, not a
    kill; `new_work` then gives the next attempts something to do, as a `run --changed` that
    finished has none). After each: the lock is free and every lake partition reads. Returns
    the attempts."""
    kills = attempts = 0
    while kills < KILLS_PER_PHASE:
        attempts += 1
        pid = zygote.start(root, *args)
        time.sleep(rng.uniform(0.0, horizon_s))
        os.kill(pid, signal.SIGKILL)
        outcome = zygote.wait(pid)
        if outcome["signal"] == signal.SIGKILL:
            kills += 1
        else:
            assert outcome["code"] == 0, (args, outcome)
            if new_work is not None:
                new_work()
        assert not is_held(root / "data")
        assert damaged_partitions(root / "data" / "lake") == []
    return attempts


def _assert_converged(root: Path, reference: Path) -> None:
    expected, actual = warehouse_rows(reference), warehouse_rows(root)
    assert sorted(actual) == sorted(expected)
    for name, rows in expected.items():
        assert actual[name] == rows, name  # bit for bit, doubles included
    assert _unfinished_runs(root) == []


def late_file(root: Path, batch: int) -> int:
    """Late batch `batch` of day 1 (even) or day 2 (odd): 40 more calls in a new log file.
    Returns the input tokens it adds."""
    day = FIRST + dt.timedelta(days=batch % 2)
    records = [
        request(
            f"late-{batch}-{n}",
            f"{day}T2{n % 4}:{n % 60:02d}:00Z",
            "gpt-4o",
            provider="openai",
            feature="chat",
            user_id=f"u_late_{n % 3}",
            input_tokens=1_000 + n,
            output_tokens=100 + n,
        )
        for n in range(40)
    ]
    with gzip.open(root / "inputs" / "gateway" / f"late_{batch}.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
    return sum(record["input_tokens"] for record in records)


def test_a_range_run_killed_anywhere_converges_after_the_next_run(tmp_path, zygote):
    reference = cli_project(tmp_path / "reference", start=FIRST, days=2, requests_per_day=150, seed=3)
    killed = tmp_path / "killed"
    shutil.copytree(reference, killed)
    every_day = ("run", "--from", str(FIRST), "--to", str(LAST))

    zygote.run(reference, *every_day)
    # The kills are drawn over a re-run's duration: an attempt after the first re-ingests only the
    # days a kill interrupted, so the first run's length (a third longer) let a third of the
    # attempts finish before their kill, each a whole run spent for no kill.
    horizon = zygote.run(reference, *every_day)
    attempts = _kill_at_random(zygote, killed, every_day, horizon, random.Random(SEED))
    zygote.run(killed, *every_day)
    _assert_converged(killed, reference)
    print(f"{KILLS_PER_PHASE} kills landed in {attempts} attempts of a {horizon:.1f} s range run")
