"""The distributed mode end to end (execution.mode: distributed, README "Distributed mode"): a Dagster
instance in Postgres, its daemon with the queued run coordinator, one run per day and stage, each in
its own process and scratch DuckDB, the state in Postgres, the analysts' file a catalog of views.

Real components: the Postgres of .ci/services.sh, `dagster-daemon` as its own process launching runs
as processes (the default run launcher), `costwatch run` as its own process. The daemon's loop
interval (a module constant, 30 s) is set to 1 s in its process so the test waits for work, not for
the loop. After the days, the same day is queued twice at once: the tag limit starts one, whose
worker is SIGKILLed mid-run (marked failed), and only then the other, which completes.
The lake on the moto S3 server is the case in `make test` (about 2 minutes alone on two cores, 3.5
beside the rest of the suite); the lake on local disk, the same code over another filesystem, runs
in `make test-cluster` with it (about 1.7 minutes), for the suite's 15 minutes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import s3fs
import yaml
from conftest import PG_URL_ENV, REPO, cli_project, costwatch_process, warehouse_rows
from dagster._core.storage.dagster_run import RunsFilter

from pipelines.lake.store import run_listing_cache, s3_storage_options
from pipelines.resources.config import load_config

pytestmark = pytest.mark.distributed

FIRST = dt.date(2026, 10, 1)
DAYS = 2
URL_ENV = PG_URL_ENV
DAEMON = """
import dagster._daemon.controller as controller
controller.DEFAULT_DAEMON_INTERVAL_SECONDS = 1
import sys
sys.argv = ["dagster-daemon", "run", "-m", "pipelines.definitions"]
from dagster._daemon.cli import main
main()
"""


def _database(pg_url: str) -> str:
    """A fresh database for this test's Dagster instance; its URL."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(pg_url.replace("+psycopg2", ""))
    try:
        conn.autocommit = True  # CREATE DATABASE runs outside a transaction
        with conn.cursor() as cursor:
            cursor.execute(f"create database {name}")  # a name made above
    finally:
        conn.close()
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def _daemon(root: Path, env: dict) -> Iterator[subprocess.Popen]:
    log = open(root / "daemon.log", "wb")  # noqa: SIM115 (closed below)
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


# Two runs of one day queued at once, each a one-day backfill of a stage job (the windows' stage:
# 11 steps, where the daily job's 53 would add half a minute on S3), as `costwatch run` or the UI
# queues one, but not through `costwatch run`, whose project lock keeps a second command on this
# host out. Tagged, so the test tells them from the range's runs of that job.
PAIR_JOB, PAIR_TAG = "costwatch_stage_1", {"costwatch/test": "same-day-pair"}
QUEUE_TWICE = f"""
import sys
from pathlib import Path
import dagster as dg
from pipelines.cli import code_location_workspace, queue_backfill
with dg.DagsterInstance.get() as instance, code_location_workspace(instance, Path.cwd()) as workspace:
    for _ in range(2):
        queue_backfill(workspace, instance, {PAIR_JOB!r}, [sys.argv[1]], {PAIR_TAG!r})
"""


def _queue_day_twice(root: Path, env: dict) -> None:
    subprocess.run(
        [sys.executable, "-c", QUEUE_TWICE, FIRST.isoformat()], cwd=root, env=env, check=True, capture_output=True,
        timeout=120,
    )  # fmt: skip


def _wait_for(instance: dg.DagsterInstance, done, timeout_s: float = 900) -> list:
    """The same-day pair's runs, newest first, once `done(runs)` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = instance.get_runs(RunsFilter(tags=PAIR_TAG))
        if done(runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"timed out: {[(run.run_id, run.status) for run in runs]}")


def _step_started(instance: dg.DagsterInstance, run) -> bool:
    return any(
        event.is_dagster_event and event.dagster_event.event_type_value == "STEP_START"
        for event in instance.all_logs(run.run_id)
    )


def _worker_pid(instance: dg.DagsterInstance, run) -> int:
    """The process executing the run's steps, from its own engine event."""
    for event in instance.all_logs(run.run_id):
        found = re.search(r"Executing steps in process \(pid: (\d+)\)", event.message or "")
        if found:
            return int(found.group(1))
    raise AssertionError(f"no worker process logged for run {run.run_id}")


@contextmanager
def _instance(url: str, home: Path) -> Iterator[dg.DagsterInstance]:
    """A reader of the test's Dagster instance (its Postgres storage)."""
    home.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(
        overrides={"storage": {"postgres": {"postgres_url": url}}}, temp_dir=str(home)
    ) as instance:
        yield instance


# The S3 case in `make test` (the Postgres + moto); the local-disk case, the same code over
# another filesystem, in `make test-cluster` only, for the suite's 15 minutes.
@pytest.mark.parametrize("lake", [pytest.param("local", marks=pytest.mark.cluster), "s3"])
def test_days_run_in_parallel_on_the_daemon_equal_the_embedded_run(tmp_path, pg_url, lake):
    """`lake`: the lake on local disk, or on the moto S3 server of .ci/services.sh (storage.lake)."""
    embedded = cli_project(tmp_path / "embedded", start=FIRST, days=DAYS, requests_per_day=300, seed=11)
    root = cli_project(tmp_path / "distributed", start=FIRST, days=DAYS, requests_per_day=300, seed=11)
    config = yaml.safe_load((root / "costwatch.yaml").read_text())
    config["execution"] = {"mode": "distributed"}
    config["state"] = {"backend": "postgres", "url_env": URL_ENV}
    bucket = None
    if lake == "s3":
        assert os.environ.get("AWS_ENDPOINT_URL"), "run under .ci/services.sh: it starts the S3 server"
        bucket = f"costwatch-cluster-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(**s3_storage_options()).mkdir(bucket)
        config["storage"] = {"lake": f"s3://{bucket}/lake"}
    (root / "costwatch.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(REPO / "dagster_home" / "distributed" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    dagster_url = _database(pg_url)
    env = os.environ | {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "COSTWATCH_CONFIG": str(root / "costwatch.yaml"),
        "COSTWATCH_DAGSTER_PG_URL": dagster_url,
        "PYTHONUNBUFFERED": "1",
    }
    last = FIRST + dt.timedelta(days=DAYS - 1)
    days = ["--from", FIRST.isoformat(), "--to", last.isoformat()]

    started = time.perf_counter()
    sequential = costwatch_process(embedded, "run", *days, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = sequential.communicate(timeout=600)
    assert sequential.returncode == 0, output.decode()[-3000:]
    sequential_s = time.perf_counter() - started

    with _daemon(root, env):
        started = time.perf_counter()
        command = [str(Path(sys.executable).with_name("costwatch")), "--config", str(root / "costwatch.yaml")]
        run = subprocess.run([*command, "run", *days], cwd=root, env=env, capture_output=True, timeout=1500)
        parallel_s = time.perf_counter() - started
        log = run.stdout.decode() + run.stderr.decode()
        assert run.returncode == 0, log[-4000:]
        # Two runs of one day queued at once. The instance's tag limit starts one; its worker is
        # SIGKILLed mid-run (no handler, no goodbye): it is marked failed by the process that launched
        # it, and only then does the day's other run start, and it completes.
        _queue_day_twice(root, env)
        with _instance(dagster_url, tmp_path / "waiting") as instance:
            queued = _wait_for(instance, lambda runs: len(runs) == 2 and any(_step_started(instance, r) for r in runs))
            (killed,) = [run for run in queued if _step_started(instance, run)]
            os.kill(_worker_pid(instance, killed), signal.SIGKILL)
            pair = _wait_for(instance, lambda runs: len(runs) == 2 and all(run.is_finished for run in runs))
            (after,) = [run for run in pair if run.run_id != killed.run_id]
            assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
            assert after.status == dg.DagsterRunStatus.SUCCESS
        killed_id, pair_ids = killed.run_id, {run.run_id for run in pair}
    print(
        f"{lake} lake, {DAYS} days: embedded sequential {sequential_s:.1f} s, distributed in parallel {parallel_s:.1f} s"
    )

    # The same numbers: every relation of the embedded warehouse (its outbox is a Postgres table
    # here), every row.
    # DOUBLEs to 1e-9 relative: rounded to nine significant digits, then compared exactly.
    one = warehouse_rows(embedded, warehouse=embedded / "data" / "published" / "warehouse.duckdb", digits=9)
    with run_listing_cache():  # the S3 listings kept a second, as a run keeps them: 6.3 s to 3.0 s
        other = warehouse_rows(
            root,
            lake=load_config(root / "costwatch.yaml").lake if bucket else None,
            warehouse=root / "data" / "published" / "warehouse.duckdb",
            digits=9,
        )
    assert set(one) - set(other) == {"alerts_outbox"} and set(other) <= set(one)
    different = sorted(name for name in other if one[name] != other[name])
    assert not different, different
    assert sum(len(rows) for rows in other.values()) > 1000

    # From Dagster's own run records: each stage's days overlapped; one day's runs never did.
    with _instance(dagster_url, tmp_path / "reader") as instance:
        runs = instance.get_runs(RunsFilter())
        spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for record in runs:
            stats = instance.get_run_stats(record.run_id)
            assert record.status == dg.DagsterRunStatus.SUCCESS or record.run_id == killed_id, record.run_id
            job = "pair" if record.run_id in pair_ids else record.job_name
            spans.setdefault((job, record.tags["dagster/partition"]), []).append((stats.start_time, stats.end_time))
        stage_jobs = sorted({job for job, _ in spans if job.startswith("costwatch_stage_")})
        assert len(stage_jobs) >= 2
        for job in stage_jobs:
            (a,), (b,) = spans[(job, FIRST.isoformat())], spans[(job, last.isoformat())]
            assert a[0] < b[1] and b[0] < a[1], f"{job}: the days did not overlap"
        # The killed run held its day until it was marked failed; the next started after that.
        same_day = sorted(spans[("pair", FIRST.isoformat())])
        assert len(same_day) == 2 and same_day[0][1] <= same_day[1][0], same_day
        logs = "".join(
            str(event.message) + str(event.dagster_event)
            for record in runs
            for event in instance.all_logs(record.run_id)
        )

    # The state: every day ingested in Postgres; no connection string or key anywhere.
    with psycopg2.connect(pg_url.replace("+psycopg2", "")) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select day from costwatch.ingested_days where scope = %s and manifest = 'gateway_logs' order by day",
            # Keyed by the lake: its URI on S3 (what every host shares), else the local folder.
            (f"s3://{bucket}/lake" if bucket else str(root / "data" / "lake"),),
        )
        assert [day for (day,) in cursor.fetchall()] == [FIRST, last]
        cursor.execute("select string_agg(t::text, ' ') from costwatch.ingested_days as t")
        rows_text = cursor.fetchone()[0] or ""
    secrets = [pg_url, dagster_url, pg_url.split("@")[0], os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")]
    lake_bytes = b"".join(path.read_bytes() for path in (root / "data").rglob("*") if path.is_file())
    if bucket:  # every object of the S3 lake, read back
        objects = s3fs.S3FileSystem(**s3_storage_options())
        keys = objects.find(f"{bucket}/lake")
        assert any(key.endswith("/fct_spend_daily/day=2026-10-02/data.parquet") for key in keys)
        lake_bytes += b"".join(objects.cat_file(key) for key in keys)
    for secret in secrets:
        assert secret not in logs and secret not in log and secret not in rows_text
        assert secret.encode() not in lake_bytes
    assert re.search(r"stage 1/\d+\]", log)
