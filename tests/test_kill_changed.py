"""Kill anywhere, converge, for `run --changed`: a late file changes day 1 of a project that ran
cleanly; `run --changed` (which re-runs day 1 and the later day reading it through a window) is
SIGKILLed at random moments, attempt after attempt, then run once to the end: every warehouse
table equals that of a reference project that took the same late file in one clean
`run --changed`, and no run is left open. The machinery is tests/test_kill_anywhere.py's.
"""

from __future__ import annotations

import random
import shutil

import duckdb
import pytest
from conftest import cli_project
from test_kill_anywhere import FIRST, KILLS_PER_PHASE, LAST, SEED, Zygote, _assert_converged, _kill_at_random, late_file

from pipelines.models.engine import prepare_session

pytestmark = pytest.mark.slow(seconds=350)  # 25 killed runs and their attempts


@pytest.fixture(scope="module")
def zygote():
    warm = Zygote()
    yield warm
    warm.close()


def test_run_changed_killed_anywhere_converges_after_the_next_run(tmp_path, zygote):
    reference = cli_project(tmp_path / "reference", start=FIRST, days=2, requests_per_day=150, seed=3)
    zygote.run(reference, "run", "--from", str(FIRST), "--to", str(LAST))
    # The project to kill: the reference as it ran cleanly (copied, not run again).
    killed = tmp_path / "killed"
    shutil.copytree(reference, killed)

    # How long a `run --changed` after a late file takes (on a copy): the horizon of the kills.
    timing = tmp_path / "timing"
    shutil.copytree(reference, timing)
    late_file(timing, 0)
    horizon = zygote.run(timing, "run", "--changed")
    batches = [0]
    tokens = late_file(killed, 0)

    def another_late_file() -> None:  # an attempt finished the work: give the next ones more
        nonlocal tokens
        batches.append(len(batches))
        tokens += late_file(killed, batches[-1])

    attempts = _kill_at_random(
        zygote, killed, ("run", "--changed"), horizon, random.Random(SEED + 1), new_work=another_late_file
    )
    zygote.run(killed, "run", "--changed")
    # The reference takes the same late files, as one clean `run --changed`.
    for batch in batches:
        late_file(reference, batch)
    zygote.run(reference, "run", "--changed")
    _assert_converged(killed, reference)
    # The late calls are in (so the comparison above is not of two unchanged warehouses).
    with duckdb.connect(str(killed / "data" / "warehouse.duckdb"), read_only=True) as conn:
        prepare_session(conn, read_only=True)
        got = conn.execute(
            "select count(*), sum(input_tokens) from fct_requests where request_id like 'late-%'"
        ).fetchone()
    assert got == (40 * len(batches), tokens)
    print(
        f"{KILLS_PER_PHASE} kills landed in {attempts} attempts over {len(batches)} late files ({horizon:.1f} s each)"
    )
