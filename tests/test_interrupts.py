"""Ctrl-C and SIGTERM on a range run: `costwatch run` (a real process, a real Dagster instance)
stops at once, marks its run failed, exits 130 / 143, and leaves every table whole. And it
speaks early: its first line within 2 seconds, progress as steps finish, a final tally."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import cli_project, costwatch_process

from pipelines.lake.health import read_every_row
from pipelines.resources.instance import open_instance

START = dt.date(2026, 10, 1)
DAYS = 4


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return cli_project(tmp_path_factory.mktemp("interrupts"), start=START, days=DAYS, requests_per_day=2000, seed=5)


def _start(project: Path, *args: str) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    process = costwatch_process(project, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, started


def _lines_until(process: subprocess.Popen, marker: str, timeout_s: float = 120) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in the output: {lines}")


def _runs(project: Path) -> dict[str, str]:
    """Run id -> status, from the project's Dagster instance."""

    with open_instance(project / "dagster_home") as instance:
        return {run.run_id: run.status.value for run in instance.get_runs()}


def _tables_are_whole(project: Path) -> None:
    assert read_every_row(project / "data" / "warehouse.duckdb") > 0


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_range_marks_the_run_failed_and_exits_128_plus_it(project, sent, code):
    last = START + dt.timedelta(days=DAYS - 1)
    before = set(_runs(project)) if (project / "dagster_home" / "history").exists() else set()
    process, started = _start(project, "run", "--from", str(START), "--to", str(last))
    try:
        first = process.stdout.readline()
        # Interpreter start and the CLI's own imports only (about 1 s quiet); the bound leaves room
        # for the suite's other worker loading the second core.
        assert time.monotonic() - started < 4.0, "the first line comes before the heavy imports"
        assert first.startswith(f"costwatch: {DAYS} day(s) {START}..{last} in 1 run(s)")
        # Stop it in the middle: once a step has finished (a progress line), not before.
        _lines_until(process, " steps] ")
        process.send_signal(sent)
        out, err = process.communicate(timeout=120)
    finally:  # a failed assertion leaves no run holding the project for the next test
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code
    name = signal.Signals(sent).name
    assert f"STOPPED by {name}" in err and f"re-run {START}..{last}" in err
    assert f"0 day(s) ok, {DAYS} failed in " in out
    [run_id] = set(_runs(project)) - before
    assert _runs(project)[run_id] == "FAILURE"
    _tables_are_whole(project)


def test_a_range_run_prints_progress_and_a_final_tally(project):
    last = START + dt.timedelta(days=1)
    process, _ = _start(project, "run", "--from", str(START), "--to", str(last))
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    progress = [line for line in out.splitlines() if " steps] " in line]
    assert progress and progress[-1].lstrip().startswith("[") and "elapsed" in progress[-1]
    done, total = progress[-1].split("]")[0].strip(" [").split(" ")[0].split("/")
    assert done == total  # the last step's line
    assert "ETA" in progress[0] or len(progress) == 1
    assert out.rstrip().splitlines()[-1].startswith("2 day(s) ok, 0 failed in ")


def test_a_demo_refused_by_a_running_project_writes_no_input(tmp_path):
    """Another process holds the project: the demo is refused (exit 75) before it writes anything."""
    folder = tmp_path / "busy"
    (folder / "data").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from pipelines.lake.lock import project_lock\n"
         "with project_lock(Path(sys.argv[1]), command='costwatch run (test holder)'):\n"
         "    print('held', flush=True); time.sleep(60)",
         str(folder / "data")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        demo = subprocess.run(
            [str(Path(sys.executable).with_name("costwatch")), "demo", "--days", "2", "--requests-per-day", "100"],
            cwd=folder, env=os.environ | {"DAGSTER_HOME": str(tmp_path / "home")},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert demo.returncode == 75, demo.stderr
    assert "costwatch run (test holder)" in demo.stderr
    assert not (folder / "data" / "inputs").exists()


def _every_day_run(project: Path) -> None:
    """Every day of the project run and recorded, nothing pending: the state after a clean range
    run. Runs the range only when an earlier test did not leave it so (in file order, the
    progress test's range run does)."""
    from pipelines.lake.fingerprints import DaySettings
    from pipelines.lake.manifest import PendingDays

    lake = project / "data" / "lake"
    every_day = {START + dt.timedelta(days=n) for n in range(DAYS)}
    if PendingDays(lake).days or not every_day <= set(DaySettings(lake).days):
        last = START + dt.timedelta(days=DAYS - 1)
        assert costwatch_process(project, "run", "--from", str(START), "--to", str(last)).wait(timeout=300) == 0
    assert PendingDays(lake).days == set()


def test_an_interrupted_run_changed_is_resumed_by_the_next_one(project):
    """A late file changes day 2; `run --changed` re-runs day 2 and the later days whose windows
    read it, and is stopped after day 2's ingest (which clears its `stale` mark). The set of days
    was recorded before the run started: the next `run --changed` re-runs all of them, and the
    month-to-date budget spend equals the day totals added up."""
    import gzip
    import json

    from pipelines.lake.manifest import InputManifest, PendingDays
    from pipelines.sources.gateway.day import MANIFEST_NAME

    last = START + dt.timedelta(days=DAYS - 1)
    lake = project / "data" / "lake"
    _every_day_run(project)

    day2 = START + dt.timedelta(days=1)
    source = project / "inputs" / "gateway" / f"requests_{day2}.jsonl.gz"
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        lines = [json.loads(line) for _, line in zip(range(400), handle, strict=False)]
    late = [
        {**record, "request_id": f"{record['request_id']}-late"}
        for record in lines
        if "request_id" in record and str(record.get("ts", "")).startswith(str(day2))
    ]
    with gzip.open(project / "inputs" / "gateway" / f"requests_{day2}_late.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(record) + "\n" for record in late)

    process, _ = _start(project, "run", "--changed")
    # Stopped once day 2's ingest is saved: the gateway manifest knows the late file and day 2 is no
    # longer stale in it. (Read from the manifest, not the progress lines: those come at most one
    # every 2 seconds, so a fast run may never print the ingest step's.)
    late_file = f"requests_{day2}_late.jsonl.gz"
    deadline = time.monotonic() + 120
    while True:
        manifest = InputManifest(lake, MANIFEST_NAME)
        if any(Path(name).name == late_file for name in manifest.files) and str(day2) not in manifest.stale:
            break
        assert process.poll() is None and time.monotonic() < deadline, "day 2's ingest never finished"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    assert f"re-running {day2} (inputs changed)" in out, out
    assert PendingDays(lake).days == {START + dt.timedelta(days=n) for n in range(1, DAYS)}

    resumed = costwatch_process(project, "run", "--changed", stdout=subprocess.PIPE, text=True)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "an interrupted or failed run left them unfinished" in out
    assert f"{DAYS - 1} day(s) ok, 0 failed" in out
    assert PendingDays(lake).days == set()
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as conn:
        late_in_marts, late_kept = conn.execute(
            "select (select count(*) from fct_requests where request_id like '%-late'),"
            " (select count(*) from stg_gateway_requests where request_id like '%-late')"
        ).fetchone()
        budget, days_total = conn.execute(
            "select (select spend_to_date_usd from fct_budget_forecast where day = $last and feature = 'total'),"
            " (select sum(cost_usd) from fct_spend_daily where day between $first and $last)",
            {"first": START, "last": last},
        ).fetchone()
    # Every late call kept by ingest (duplicates and malformed lines of the copy are not) is priced.
    assert late_in_marts == late_kept > 0.9 * len(late)
    assert abs(budget - days_total) <= 1e-6


def test_a_price_version_added_after_the_fact_reruns_exactly_the_days_it_prices(project):
    """A catalog version effective from day 3 that doubles gpt-4o-mini's prices: `run --changed`
    re-runs days 3 and 4 only (nothing changed before day 3), their gpt-4o-mini spend doubles, and
    the days before keep theirs; a second `run --changed` finds nothing to do."""
    import json

    import yaml

    last = START + dt.timedelta(days=DAYS - 1)
    _every_day_run(project)
    # The catalog entry gpt-4o-mini's calls are priced by (LiteLLM's provider-qualified key first).
    spend_sql = "select day, sum(cost_usd) from fct_requests where price_key = $key group by day order by day"
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as conn:
        (key,) = conn.execute("select any_value(price_key) from fct_requests where model = 'gpt-4o-mini'").fetchone()
        before = dict(conn.execute(spend_sql, {"key": key}).fetchall())
    assert len(before) == DAYS and all(value > 0 for value in before.values())

    config_path = project / "costwatch.yaml"
    config = yaml.safe_load(config_path.read_text())
    catalog = json.loads(Path(config["prices"]["catalog"]).read_text())
    entry = catalog[key]
    catalog[key] = {
        key: value * 2 if "cost" in key and isinstance(value, (int, float)) and not isinstance(value, bool) else value
        for key, value in entry.items()
    }
    (project / "doubled.json").write_text(json.dumps(catalog))
    day3 = START + dt.timedelta(days=2)
    config["prices"]["history"] = [{"catalog": "doubled.json", "effective_from": str(day3)}]
    config_path.write_text(yaml.safe_dump(config))

    changed = costwatch_process(project, "run", "--changed", stdout=subprocess.PIPE, text=True)
    out, _ = changed.communicate(timeout=300)
    assert changed.returncode == 0, out
    assert f"re-running 2 days {day3}..{last} (prices or mart settings changed since they ran)" in out, out
    assert "2 day(s) ok, 0 failed" in out
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as conn:
        after = dict(conn.execute(spend_sql, {"key": key}).fetchall())
    for day, value in before.items():
        assert after[day] == (2 * value if day >= day3 else value), day

    again = costwatch_process(project, "run", "--changed", stdout=subprocess.PIPE, text=True)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "nothing to run" in out, out
