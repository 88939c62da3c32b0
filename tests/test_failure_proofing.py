"""Failure-proofing of costwatch runs: what a killed run, a re-run, a late file, two runs at once,
a Slack outage and an unreadable input leave behind. Real subprocesses, real signals, a real
Dagster instance per project (DAGSTER_HOME), real DuckDB files and a real HTTP Slack server.

Four tests share one project that ran three days (`three_days`), in this order: re-running
gives identical marts; a concurrent run leaves them identical too; an unreadable input changes
nothing and, once back, gives them again; the late-file test, which changes the inputs for good,
comes last in this file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal as D
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from conftest import CATALOG, REPO, request
from slack_server import SlackTestServer

from pipelines import cli
from pipelines.definitions import build_definitions
from pipelines.defs.schedules import DAILY_JOB
from pipelines.lake.lock import HOLDER_FILE, RUN_LOCK_FILE, project_lock
from pipelines.lake.partitions import dataset_view_sql, partition_file, write_partition
from pipelines.models.engine import load_models, prepare_session

pytestmark = pytest.mark.slow  # real subprocesses and ~17 day-runs; part of `make test` all the same

COSTWATCH = Path(sys.executable).with_name("costwatch")
D1, D2, D3 = "2026-10-05", "2026-10-06", "2026-10-07"
PRICES = json.loads(CATALOG.read_text(encoding="utf-8"))


def cost(model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> D:
    """A request's cost by hand, from the catalog's per-token prices."""
    price = {key: D(str(value)) for key, value in PRICES[model].items() if isinstance(value, float)}
    return (
        (input_tokens - cached_input_tokens) * price["input_cost_per_token"]
        + cached_input_tokens * price["cache_read_input_token_cost"]
        + output_tokens * price["output_cost_per_token"]
    )


# --- a throwaway project driven like a user drives it: `costwatch` with DAGSTER_HOME -----------


@dataclasses.dataclass
class Costwatch:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "costwatch.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def lake(self) -> Path:
        return self.data / "lake"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.root / "dagster_home")}

    @classmethod
    def create(cls, root: Path, **config) -> Costwatch:
        (root / "inputs").mkdir(parents=True)
        (root / "dagster_home").mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
        settings = {
            "data_dir": "data",
            "start_date": "2026-10-01",
            "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
            "prices": {"catalog": str(CATALOG), "effective_from": "2025-09-01"},
            **config,
        }
        (root / "costwatch.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        return cls(root)

    def write_jsonl(self, name: str, records: list) -> Path:
        path = self.root / "inputs" / name
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
        return path

    def run(self, *args: str) -> tuple[int, str, str]:
        """`costwatch --config ... ARGS` in this process: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            patch.setenv("DAGSTER_HOME", str(self.root / "dagster_home"))
            code = cli.main(["--config", str(self.config_path), *args])
        return code, out.getvalue(), err.getvalue()

    def spawn(self, *args: str) -> subprocess.Popen:
        """`costwatch --config ... ARGS` as its own process."""
        return subprocess.Popen(
            [str(COSTWATCH), "--config", str(self.config_path), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def instance(self) -> dg.DagsterInstance:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_HOME", str(self.root / "dagster_home"))
            return dg.DagsterInstance.get()

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        with duckdb.connect(str(self.data / "warehouse.duckdb"), read_only=True) as conn:
            prepare_session(conn, read_only=True)
            return conn.execute(sql, params or {}).fetchall()

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every relation of the warehouse (the SQL models' tables and views, the lake views, the
        outbox), each as its full sorted contents."""
        with duckdb.connect(str(self.data / "warehouse.duckdb"), read_only=True) as conn:
            prepare_session(conn, read_only=True)
            names = [
                name
                for (name,) in conn.execute(
                    "select table_name from duckdb_tables() where not internal "
                    "union select view_name from duckdb_views() where not internal order by 1"
                ).fetchall()
            ]
            return {
                name: conn.execute(f'select * from "{name}" order by all').fetchall()  # noqa: S608 (a name from the catalog)
                for name in names
            }


def wait_for(condition, what: str, timeout_s: float = 60.0, interval_s: float = 0.01):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def ok_run_ids(printed: str) -> list[str]:
    """The run ids of `costwatch run`'s `DAY  ok  SECONDS  run ID` lines."""
    return [line.split()[-1] for line in printed.splitlines() if line.split()[1:2] == ["ok"]]


def lock_holder(project: Costwatch) -> dict:
    try:
        return json.loads((project.data / HOLDER_FILE).read_text(encoding="utf-8") or "{}")
    except (FileNotFoundError, ValueError):
        return {}


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


# --- 1. a run killed mid-write --------------------------------------------------------------------

# The writer's temp file name is `.data.parquet.<uuid4 hex>.tmp`: the writer draws a known uuid, so
# the test can put a FIFO at that name before it starts.
WRITER_UUID = uuid.UUID(int=0xC057)
WRITER = """
import datetime as dt, sys, uuid
from pathlib import Path
import duckdb
from pipelines.lake import partitions
partitions.uuid.uuid4 = lambda: uuid.UUID(int={uuid_int})
with duckdb.connect() as conn:
    conn.execute("set threads = 1")
    partitions.write_partition(conn, "select range as id, md5(range::varchar) as label from range({rows})",
                               Path(sys.argv[1]), "events", dt.date(2026, 10, 5))
"""
NEW_ROWS = 200_000  # megabytes of Parquet: far more than a pipe holds, so the writer blocks in it


def test_a_writer_killed_mid_write_leaves_the_old_partition_whole_and_its_temp_file_unread(tmp_path):
    lake, day = tmp_path / "lake", dt.date(2026, 10, 5)
    with duckdb.connect() as conn:
        write_partition(conn, "select * from (values (1, 'old'), (2, 'old')) as t(id, label)", lake, "events", day)
    target = partition_file(lake, "events", day)
    # The writer's temp file is a FIFO this test reads only the start of: the writer's COPY opens
    # it, writes until the pipe is full and blocks there, mid-file, for as long as the test wants.
    temp = target.with_name(f".{target.name}.{WRITER_UUID.hex}.tmp")
    os.mkfifo(temp)
    reader = os.open(temp, os.O_RDONLY | os.O_NONBLOCK)  # opens now; reads b"" until the writer opens it
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(uuid_int=WRITER_UUID.int, rows=NEW_ROWS), str(lake)], cwd=REPO
    )
    try:
        head = wait_for(lambda: _read_some(reader), "the writer to start its temp file", timeout_s=120)
        # The file is under way (Parquet's magic) and the writer cannot finish: the rest of the
        # file never leaves the pipe.
        assert head.startswith(b"PAR1") and writer.poll() is None
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
        os.close(reader)
    assert writer.returncode == -signal.SIGKILL

    with duckdb.connect() as conn:
        content = conn.execute(
            "select id, label from read_parquet($path) order by id", {"path": str(target)}
        ).fetchall()
        # The kill landed mid-write (its temp file is left over): the partition is the old one, whole.
        assert temp.exists() and content == [(1, "old"), (2, "old")]
        # Readers never see the leftover: the dataset view reads the old rows only.
        conn.execute(dataset_view_sql(lake, "events"))
        assert conn.execute("select id, label, day from events order by id").fetchall() == [
            (1, "old", day),
            (2, "old", day),
        ]

        # The next write of the partition works and sweeps a leftover abandoned long ago, while a
        # fresh one (it could be a live writer's) stays.
        hour_ago = time.time() - 7200
        os.utime(temp, (hour_ago, hour_ago))
        fresh = target.with_name(".data.parquet.fresh.tmp")
        fresh.write_bytes(b"PAR1 still being written")
        write_partition(conn, "select * from (values (3, 'next')) as t(id, label)", lake, "events", day)
        assert conn.execute("select id, label from events").fetchall() == [(3, "next")]
    assert not temp.exists() and fresh.exists()


def test_a_run_killed_mid_step_does_not_block_the_next_run_which_gives_the_right_numbers(tmp_path):
    project = Costwatch.create(tmp_path / "project")
    project.write_jsonl(
        "a.jsonl",
        [
            request("k1", f"{D1}T09:00:00Z", "gpt-4o", feature="chat", input_tokens=1_000, output_tokens=100),
            request("k2", f"{D1}T10:00:00Z", "gpt-4o-mini", feature="search", input_tokens=4_000, output_tokens=200),
        ],
    )
    # A log that is still being shipped: a FIFO the ingest blocks on, so the kill lands inside a
    # step that holds the `warehouse` pool slot, every time.
    stuck = project.root / "inputs" / "b.jsonl"
    os.mkfifo(stuck)
    killed = project.spawn("run", "--date", D1)
    shipper = None
    try:
        shipper = wait_for(lambda: _open_writer(stuck), "the run to open the FIFO", timeout_s=120)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        killed.kill()
        killed.communicate()
        if shipper is not None:
            os.close(shipper)
    run_id = lock_holder(project)["runs"][0]
    instance = project.instance()
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert [slot.run_id for slot in instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots] == [
        run_id
    ]

    stuck.unlink()
    project.write_jsonl(
        "b.jsonl",
        [
            request(
                "k3",
                f"{D1}T11:00:00Z",
                "gpt-4o",
                feature="chat",
                input_tokens=2_000,
                cached_input_tokens=1_000,
                output_tokens=10,
            )
        ],
    )
    # A leftover temp file of a killed writer, in the partition the run writes: readable Parquet
    # whose rows must never count.
    leftover = partition_file(project.lake, "gateway_requests", dt.date.fromisoformat(D1)).with_name(
        ".data.parquet.dead.tmp"
    )
    leftover.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as conn:
        conn.execute(
            "copy (select 'ghost' || range as request_id from range(5)) to $path (format parquet)",
            {"path": str(leftover)},
        )

    # Before the fix, this run waited forever for the dead run's slot: it runs in a thread that
    # the test stops waiting for.
    rerun: list = []
    worker = threading.Thread(target=lambda: rerun.append(project.run("run", "--date", D1)), daemon=True)
    worker.start()
    worker.join(timeout=180)
    assert rerun, "the next run did not finish in 180 s"
    assert rerun[0][0] == 0, rerun[0]
    assert project.instance().get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    expected = (
        cost("gpt-4o", 1_000, 100)
        + cost("gpt-4o-mini", 4_000, 200)
        + cost("gpt-4o", 2_000, 10, cached_input_tokens=1_000)
    )
    assert project.query("select count(*), sum(cost_usd) from fct_requests") == [(3, expected)]
    assert project.query("select sum(requests), sum(cost_usd) from fct_spend_daily where day = $day", {"day": D1}) == [
        (3, expected)
    ]
    assert project.query("select count(*) from gateway_requests where request_id like 'ghost%'") == [(0,)]


def test_a_run_registered_by_a_process_killed_before_its_first_step_is_failed_by_the_next_command(tmp_path):
    """The window between Dagster registering a run (NOT_STARTED) and its first step: a process
    killed there left a run nobody would ever finish. `costwatch run` names each run in the lock
    before Dagster registers it, so the next holder marks it failed, even when it has nothing to
    run; and a holder killed before it could do so passes the run on."""
    project = Costwatch.create(tmp_path / "project")
    instance = project.instance()
    registered = instance.add_run(dg.DagsterRun(job_name="costwatch_daily", run_id=str(uuid.uuid4())))
    assert registered.status == dg.DagsterRunStatus.NOT_STARTED
    # The dead process: it named the run in the lock's record, then died holding nothing.
    with project_lock(project.data, command="costwatch run (killed)") as lock:
        lock.add_run(registered.run_id)
    # A holder that died before settling it hands it on to the next one.
    with project_lock(project.data, command="costwatch query (killed too)") as lock:
        assert lock.orphans == [registered.run_id]
    assert lock_holder(project)["orphans"] == [registered.run_id]

    code, out, err = project.run("run", "--changed")
    assert code == 0, err
    assert f"run {registered.run_id} of a process that died mid-run: marked failed" in out
    assert "nothing to run" in out
    assert project.instance().get_run_by_id(registered.run_id).status == dg.DagsterRunStatus.FAILURE
    assert lock_holder(project)["orphans"] == []
    unfinished = [run.run_id for run in project.instance().get_runs() if not run.is_finished]
    assert unfinished == []


def _read_some(fd: int) -> bytes | None:
    """What a non-blocking FIFO reader holds now: None until a writer has written something."""
    try:
        return os.read(fd, 4096) or None  # b"": no writer has opened the FIFO yet
    except BlockingIOError:  # a writer has it open but has written nothing yet
        return None


def _open_writer(fifo: Path) -> int | None:
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds once a reader has it open
    except OSError:
        return None


# --- the shared three-day project -----------------------------------------------------------------


def day_records(day: str, scale: int) -> list:
    return [
        request(
            f"{day}-a",
            f"{day}T08:00:00Z",
            "gpt-4o",
            feature="chat",
            user_id="alice",
            input_tokens=1_000 * scale,
            cached_input_tokens=200,
            output_tokens=100 * scale,
        ),
        request(
            f"{day}-b",
            f"{day}T09:30:00Z",
            "gpt-4o-mini",
            feature="search",
            user_id="bob",
            input_tokens=3_000 * scale,
            output_tokens=50,
        ),
        request(
            f"{day}-c",
            f"{day}T23:59:59Z",
            "gpt-4o",
            feature="chat",
            user_id="carol",
            input_tokens=500,
            output_tokens=500,
            gateway_cache_hit=scale == 2,
        ),
        request(
            f"{day}-a",
            f"{day}T08:00:00Z",
            "gpt-4o",
            feature="chat",
            user_id="alice",  # redelivered
            input_tokens=1_000 * scale,
            cached_input_tokens=200,
            output_tokens=100 * scale,
        ),
        '{"request_id": "broken", "ts": ',
    ]


def openai_costs(days: list[str]) -> dict:
    buckets = []
    for index, day in enumerate(days):
        start = int(dt.datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp())
        buckets.append(
            {
                "object": "bucket",
                "start_time": start,
                "end_time": start + 86400,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": 0.01 + index / 100, "currency": "usd"},
                        "line_item": "gpt-4o, input",
                        "project_id": "proj_web",
                    }
                ],
            }
        )
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    project = Costwatch.create(
        tmp_path_factory.mktemp("three_days"),
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/billing/costs_*.json", "format": "openai_costs"}],
        },
        budgets={"chat": 0.01, "search": 100},
    )
    for scale, day in enumerate((D1, D2, D3), start=1):
        project.write_jsonl(f"gateway_{day}.jsonl", day_records(day, scale))
    # The export lives on a share the inputs folder links to, as exports often do.
    (project.root / "share").mkdir()
    (project.root / "share" / "costs_oct.json").write_text(json.dumps(openai_costs([D1, D2, D3])))
    (project.root / "inputs" / "billing").mkdir()
    (project.root / "inputs" / "billing" / "costs_oct.json").symlink_to(project.root / "share" / "costs_oct.json")
    code, out, err = project.run("run", "--from", D1, "--to", D3)
    assert code == 0, out + err
    return project, project.snapshot()


# --- 2. re-running any day gives identical marts -----------------------------------------------------


def test_rerunning_a_day_and_then_every_day_leaves_every_mart_identical(three_days):
    project, clean = three_days
    models = set(load_models())
    assert models | {"alerts_outbox"} <= set(clean), "every SQL model and the outbox are in the warehouse"
    assert all(
        clean[name]
        for name in (
            "fct_requests",
            "fct_spend_daily",
            "fct_budget_forecast",
            "fct_invoice_reconciliation",
            "alerts_outbox",
            "gateway_quarantine",
        )
    )
    (alerts,) = project.query("select count(*) from alerts_outbox")

    assert project.run("run", "--date", D2)[0] == 0
    assert project.snapshot() == clean
    assert project.run("run", "--from", D1, "--to", D3)[0] == 0
    assert project.snapshot() == clean
    assert project.query("select count(*), count(distinct alert_id) from alerts_outbox") == [(alerts[0], alerts[0])]


# --- 4. two runs at once ---------------------------------------------------------------------------------


def test_a_second_run_fails_fast_or_waits_while_one_holds_the_project_and_nothing_is_corrupted(three_days):
    project, clean = three_days
    first = project.spawn("run", "--date", D2)
    try:
        holder = wait_for(
            lambda: lock_holder(project).get("pid") == first.pid and lock_holder(project),
            "the first run to take the project's run lock",
            timeout_s=120,
        )
        assert holder["command"].endswith(f"run --date {D2}")

        code, _, err = project.run("run", "--date", D3)
        assert code == cli.EXIT_BUSY
        assert f"another costwatch run (pid {first.pid}, `{holder['command']}`, started {holder['started_at']})" in err
        assert str(project.data / RUN_LOCK_FILE) in err and "--wait SECONDS" in err

        # A run started any other way (the Dagster UI, a schedule) is held off the same way.
        job = build_definitions(project.config_path).resolve_job_def(DAILY_JOB)
        other = job.execute_in_process(partition_key=D3, instance=project.instance(), raise_on_error=False)
        assert not other.success
        failure = next(event for event in other.all_events if event.is_failure)
        error = failure.event_specific_data.error
        while error.cause is not None:
            error = error.cause
        assert f"pid {first.pid}" in error.message

        # --wait queues behind the first run, then runs.
        code, out, err = project.run("run", "--date", D3, "--wait", "180")
        assert code == 0, out + err
    finally:
        first_out, first_err = first.communicate(timeout=180)
    assert first.returncode == 0, first_err
    instance = project.instance()
    first_run, waited_run = (ok_run_ids(text)[0] for text in (first_out, out))
    assert instance.get_run_record_by_id(first_run).end_time <= instance.get_run_record_by_id(waited_run).start_time
    # The warehouse opens, every mart reads, and they are what a single clean run made.
    assert project.snapshot() == clean


# --- 5. Slack goes down mid-run ----------------------------------------------------------------------------
# tests/test_alerts.py already covers Slack down for a whole run (alerts stay pending, the next
# run sends each once) and the token never reaching the outbox; this is the outage that starts
# after the first alert went out, and how the run reports it.

TOKEN = "xoxb-failure-proofing-789"


def test_slack_failing_mid_run_keeps_the_rest_pending_reports_it_and_the_next_run_sends_each_once(tmp_path):
    project = Costwatch.create(
        tmp_path / "project",
        budgets={"chat": 0.001},
        # A fixed past day: a cut-off that reaches it, so its alerts are posted.
        alerts={"min_impact_usd": 50, "min_impact_pct": 0.2, "slack_channel": "#llm-cost", "max_age_days": 36500},
    )
    project.write_jsonl(
        "logs.jsonl", [request("s1", f"{D1}T10:00:00Z", "gpt-4o", feature="chat", input_tokens=1000, output_tokens=100)]
    )
    slack = SlackTestServer(token=TOKEN, lifetime_s=120).start()

    def outage_after_first_post():
        slack.admit(1)
        wait_for(lambda: len(slack.messages) == 1, "the first alert to land", timeout_s=60)
        # Slack's edge answers 502 (slack-sdk does not retry it): the second alert fails there.
        slack.fail_next(1, status=502)
        slack.admit(1000)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLACK_BOT_TOKEN", TOKEN)
            patch.setenv("SLACK_API_URL", slack.api_url)
            slack.hold()
            script = threading.Thread(target=outage_after_first_post, daemon=True)
            script.start()
            code, out, err = project.run("run", "--date", D1)
            script.join(timeout=60)
            assert code == 0, out + err  # an outage is not a failed run
            outbox = project.query(
                "select alert_id, status, attempts, last_error from alerts_outbox order by created_at"
            )
            assert len(outbox) == 3 and len(slack.messages) == 1
            (sent_id, *_), (failed_id, *_), (untouched_id, *_) = outbox
            assert outbox[0][1:3] == ("sent", 1)
            assert outbox[1][1:3] == ("pending", 1) and "HTTP 502" in outbox[1][3]
            assert outbox[2][1:] == ("pending", 0, None)  # the batch stopped: its attempts are not spent
            assert "alerts: 1 sent, 2 waiting in alerts_outbox for the next run, 0 failed (Slack: " in err
            assert "HTTP 502" in err
            (run_id,) = ok_run_ids(out)
            check = _check_evaluation(project.instance(), run_id, "alerts_delivered")
            assert not check.passed and check.metadata["undelivered_alerts"].value == [failed_id, untouched_id]

            code, out, err = project.run("run", "--date", D1)
            assert code == 0 and "alerts:" not in err
            (run_id,) = ok_run_ids(out)
            assert _check_evaluation(project.instance(), run_id, "alerts_delivered").passed
    finally:
        slack.stop()
    posted = [message.metadata["event_payload"]["alert_id"] for message in slack.messages]
    assert posted == [sent_id, failed_id, untouched_id]  # each alert exactly once
    assert project.query("select status, attempts from alerts_outbox order by created_at") == [
        ("sent", 1),
        ("sent", 2),
        ("sent", 1),
    ]


def _check_evaluation(instance: dg.DagsterInstance, run_id: str, name: str):
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    (evaluation,) = [
        record.dagster_event.event_specific_data
        for record in records
        if record.dagster_event.event_specific_data.check_name == name
    ]
    return evaluation


# --- 6. input files unavailable mid-run ---------------------------------------------------------------
# Breaks three_days' inputs and puts them back: runs after the tests that compare to the clean
# snapshot, before the late-file test.


def test_an_unreadable_input_fails_the_day_by_name_keeps_the_lake_and_the_next_run_is_whole(three_days):
    project, clean = three_days
    day = dt.date.fromisoformat(D1)
    every_file = {path: digest(path)[0] for path in project.lake.rglob("*.parquet")}
    of_the_broken_sources = {
        path: digest(path)
        for path in (
            partition_file(project.lake, dataset, day)
            for dataset in (
                "gateway_requests",
                "gateway_quarantine",
                "gateway_ingest_audit",
                "fct_requests",
                "provider_cost_lines",
                "provider_usage_lines",
                "provider_billing_coverage",
            )
        )
    }
    # The share holding the export goes away (the link in inputs/ dangles), and the day's log
    # path becomes a folder.
    share, log = project.root / "share", project.root / "inputs" / f"gateway_{D1}.jsonl"
    (share / "costs_oct.json").rename(share / "elsewhere.json")
    log.rename(log.with_suffix(".moved"))
    log.mkdir()
    try:
        code, _, err = project.run("run", "--date", D1)
        assert code == 1
        assert f"sources.provider_costs: cannot read {(share / 'costs_oct.json').resolve()} (openai_costs)" in err
        assert f"sources.gateway_logs: cannot read {log.resolve()} (canonical)" in err
        code, _, err = project.run("run", "--changed")  # finding the changed days reads the logs too
        assert code == 1 and f"sources.gateway_logs: cannot read {log.resolve()} (canonical)" in err
        # Nothing of those sources was rewritten, nothing in the lake changed, every mart is as it was.
        assert {path: digest(path) for path in of_the_broken_sources} == of_the_broken_sources
        assert {path: digest(path)[0] for path in project.lake.rglob("*.parquet")} == every_file
        assert project.snapshot() == clean
    finally:
        log.rmdir()
        log.with_suffix(".moved").rename(log)
        (share / "elsewhere.json").rename(share / "costs_oct.json")

    # The files are back: a re-run of the day gives the full numbers.
    assert project.run("run", "--date", D1)[0] == 0
    assert project.snapshot() == clean
    spend = (
        cost("gpt-4o", 1_000, 100, cached_input_tokens=200) + cost("gpt-4o-mini", 3_000, 50) + cost("gpt-4o", 500, 500)
    )
    assert project.query("select sum(cost_usd) from fct_spend_daily where day = $day", {"day": D1}) == [(spend,)]
    assert project.query(
        "select sum(billed_usd)::decimal(18, 6) from provider_cost_lines where day = $day", {"day": D1}
    ) == [(D("0.01"),)]


# --- 3. a late file for a past day ---------------------------------------------------------------------
# Changes three_days' inputs for good: keep it after the tests that compare to the clean snapshot.


def test_a_late_file_reruns_its_day_and_the_days_whose_windows_read_it(three_days):
    project, _ = three_days
    late = [
        request("late-1", f"{D1}T15:00:00Z", "gpt-4o", feature="chat", input_tokens=10_000, output_tokens=1_000),
        request(
            "late-2", f"{D1}T16:00:00Z", "gpt-4o-mini", feature="summarise", input_tokens=20_000, output_tokens=400
        ),
        request(
            f"{D1}-b",
            f"{D1}T09:30:00Z",
            "gpt-4o-mini",
            feature="search",
            user_id="bob",  # already counted
            input_tokens=3_000,
            output_tokens=50,
        ),
    ]
    chat_late, summarise_late = cost("gpt-4o", 10_000, 1_000), cost("gpt-4o-mini", 20_000, 400)
    spend = "select day, feature, sum(cost_usd) from {table} group by all order by all"
    before = {
        table: {(day, feature): usd for day, feature, usd in project.query(spend.format(table=table))}
        for table in ("fct_spend_daily", "fct_spend_by_feature_daily")
    }
    before_to_date = {
        (day, feature): usd
        for day, feature, usd in project.query("select day, feature, spend_to_date_usd from fct_budget_forecast")
    }
    project.write_jsonl("late_arrivals.jsonl", late)

    code, out, err = project.run("run", "--changed")
    assert code == 0, out + err
    assert f"re-running {D1} (inputs changed) and 2 days {D2}..{D3} (their trailing windows read them)" in out
    # The three consecutive days re-run as one run over their range.
    assert [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ok"]] == [f"{D1}..{D3}"]

    day1 = dt.date.fromisoformat(D1)
    for table in ("fct_spend_daily", "fct_spend_by_feature_daily"):
        after = {(day, feature): usd for day, feature, usd in project.query(spend.format(table=table))}
        expected = dict(before[table])
        expected[(day1, "chat")] += chat_late
        expected[(day1, "summarise")] = summarise_late
        assert after == expected, table
    assert project.query("select count(*) from fct_requests where day = $day", {"day": D1}) == [(5,)]
    # Month-to-date spend on every later day of the month includes the late records.
    to_date = {
        (day, feature): usd
        for day, feature, usd in project.query("select day, feature, spend_to_date_usd from fct_budget_forecast")
    }
    for day in (D1, D2, D3):
        key = dt.date.fromisoformat(day)
        assert to_date[(key, "chat")] == before_to_date[(key, "chat")] + chat_late
        assert to_date[(key, "total")] == before_to_date[(key, "total")] + chat_late + summarise_late
        assert to_date[(key, "search")] == before_to_date[(key, "search")]
    assert project.run("run", "--changed")[1].strip() == "nothing to run: no day's inputs changed"
