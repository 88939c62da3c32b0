"""Analysts read the published copy of the warehouse: replaced atomically when a run finishes, so a
read never fails or waits while a run writes. A real `costwatch run` process and real DuckDB files."""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import time

import pytest
from conftest import cli_project, costwatch_process

from pipelines.lake.publish import published_path, readable_warehouse
from pipelines.models.engine import connect_read_only

START = dt.date(2026, 10, 1)
DAYS = 4


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = cli_project(tmp_path_factory.mktemp("published"), start=START, days=DAYS, requests_per_day=3000, seed=9)
    assert _costwatch(root, "run", "--date", str(START)).wait(timeout=600) == 0
    return root


_costwatch = costwatch_process


def test_a_run_publishes_a_copy_that_holds_what_it_wrote(project):
    warehouse = project / "data" / "warehouse.duckdb"
    assert readable_warehouse(warehouse) == published_path(warehouse) == project / "data/published/warehouse.duckdb"
    with connect_read_only(published_path(warehouse), project / "data" / "lake") as copy:
        # The lake views work from the copy too (they read the lake's files by absolute path).
        (requests,) = copy.execute("select count(*) from fct_requests where day = $d", {"d": START}).fetchone()
        (costed,) = copy.execute(
            "select sum(requests) from fct_total_cost_daily where day = $d", {"d": START}
        ).fetchone()
    assert requests == costed > 0


def test_100_reads_during_a_run_neither_fail_nor_wait(project):
    """...and a session held open over the whole run (an analyst's shell left open) does not fail it."""
    warehouse = project / "data" / "warehouse.duckdb"
    session = contextlib.ExitStack()
    held = session.enter_context(connect_read_only(readable_warehouse(warehouse), project / "data" / "lake"))
    (before,) = held.execute("select count(distinct day) from fct_total_cost_daily").fetchone()
    run = _costwatch(
        project, "run", "--from", str(START + dt.timedelta(days=1)), "--to", str(START + dt.timedelta(days=DAYS - 1))
    )
    failures, slowest, during_run = [], 0.0, 0
    try:
        time.sleep(1.0)  # the run is past start-up and writing
        for _ in range(100):
            alive = run.poll() is None
            started = time.perf_counter()
            try:
                with connect_read_only(readable_warehouse(warehouse), project / "data" / "lake") as conn:
                    conn.execute("select count(*), sum(total_cost_usd) from fct_total_cost_daily").fetchone()
            except Exception as error:  # noqa: BLE001 (every failure is counted and shown)
                failures.append(f"{type(error).__name__}: {error}")
            slowest = max(slowest, time.perf_counter() - started)
            during_run += alive
            time.sleep(0.05)
    finally:
        assert run.wait(timeout=900) == 0
    # The held session still reads the copy it opened, unchanged by the run's publish.
    assert held.execute("select count(distinct day) from fct_total_cost_daily").fetchone() == (before,)
    session.close()
    assert failures == []
    assert slowest < 1.0, f"a read waited {slowest:.2f} s"
    assert during_run >= 90, f"only {during_run} of the 100 reads overlapped the run"
    # The run's days are in the copy it published when it finished.
    with connect_read_only(readable_warehouse(warehouse), project / "data" / "lake") as conn:
        (days,) = conn.execute("select count(distinct day) from fct_total_cost_daily").fetchone()
    assert days == DAYS


def test_the_shell_reads_the_published_copy_in_this_duckdb(project):
    import duckdb

    shell = _costwatch(project, "shell", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out, _ = shell.communicate(
        ".tables\nselect count(*) as days\nfrom (select distinct day from fct_total_cost_daily);\n"
        "drop table fct_total_cost_daily;\n",
        timeout=120,
    )
    assert shell.returncode == 0
    assert f"DuckDB {duckdb.__version__}, read-only, {project / 'data/published/warehouse.duckdb'}" in out
    assert "fct_total_cost_daily" in out and "alerts_outbox" in out  # .tables
    assert "read-only: SELECT statements only, not DROP" in out
