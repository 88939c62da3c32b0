"""State backends (`state.backend`): the input manifest and the alert outbox, embedded (JSON file,
DuckDB outbox) and in Postgres, under concurrent runs.

Real services, nothing mocked: Postgres and the Slack-compatible server of tests/slack_server.py
(driven by slack-sdk's own client). Postgres comes from `.ci/services.sh`, which `make test`
sources; run alone: `bash .ci/services.sh .venv/bin/python -m pytest tests/test_state_backends.py`.
Each test keys its rows by its own lake folder (`scope`), so tests share one database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import logging
import multiprocessing
import os
import threading
from pathlib import Path

import duckdb
import psycopg2
import pytest
import yaml
from conftest import CATALOG, PG_URL_ENV, request
from slack_server import SlackTestServer
from slack_server import channel_id as slack_channel_id

from pipelines import cli
from pipelines.alerts.outbox import oldest_postable_day
from pipelines.alerts.outbox_postgres import PostgresOutbox
from pipelines.lake.fingerprints import day_fingerprints
from pipelines.lake.lock import project_lock
from pipelines.lake.manifest import InputManifest, JsonManifestStore, PendingDays, file_state
from pipelines.lake.manifest_postgres import PostgresDaySettings, PostgresManifestStore, PostgresPendingDays
from pipelines.resources.config import ConfigError, load_config
from pipelines.resources.slack import SlackSettings
from pipelines.resources.state import PostgresDatabase, StateUnavailable, state_backend
from pipelines.sources.gateway.day import MANIFEST_NAME, ingest_days

pytestmark = pytest.mark.distributed

URL_ENV = PG_URL_ENV
K = 6  # concurrent runs
FIRST = dt.date(2026, 10, 1)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(K)]
TOKEN = "xoxb-test-state-backends"
CHANNEL = "#llm-cost"
NOW = dt.datetime(2026, 10, 8, 7, 0, tzinfo=dt.timezone.utc)
ALERT_DAY = dt.date(2026, 10, 7)


@pytest.fixture(scope="module")
def database(pg_url) -> PostgresDatabase:
    database = PostgresDatabase(pg_url, url_env=URL_ENV)
    database.ensure_schema()
    return database


def store_for(backend: str, database: PostgresDatabase | None, lake: Path):
    if backend == "embedded":
        return JsonManifestStore(lake)
    return PostgresManifestStore(database, str(lake))


def canonical(request_id: str, day: dt.date) -> dict:
    return {
        "request_id": request_id,
        "ts": f"{day.isoformat()}T12:00:00Z",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 100,
        "output_tokens": 10,
    }


# --------------------------------------------------------------------------- the manifest


def test_concurrent_day_ingests_keep_every_day_in_postgres(tmp_path, database):
    """K gateway ingests of K different days at once (the real `ingest_days`, each with its own
    DuckDB connection and its own manifest load) against one Postgres manifest: every day and
    every file is recorded, as the JSON file did not (a day lost in 3 of 3 parallel runs)."""
    lake = tmp_path / "lake"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    # File n holds day n and day n+1 (the last only its own): what each file holds, worked out here.
    held: dict[str, list[str]] = {}
    for n, day in enumerate(DAYS):
        days = [day] if n == K - 1 else [day, DAYS[n + 1]]
        path = inputs / f"gateway_{n}.jsonl"
        path.write_text("".join(json.dumps(canonical(f"r{n}-{d}", d)) + "\n" for d in days))
        held[str(path)] = [d.isoformat() for d in days]
    files = [(Path(path), "canonical") for path in sorted(held)]
    barrier = threading.Barrier(K)
    errors: list[BaseException] = []

    def ingest(day: dt.date) -> None:
        try:
            barrier.wait(timeout=30)
            with duckdb.connect() as conn:
                ingest_days(conn, lake, files, [day], store=PostgresManifestStore(database, str(lake)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=ingest, args=(day,)) for day in DAYS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    manifest = InputManifest(lake, MANIFEST_NAME, store=PostgresManifestStore(database, str(lake)))
    assert manifest.ingested == {day.isoformat() for day in DAYS}
    assert {path: record["days"] for path, record in manifest.files.items()} == {
        path: sorted(days) for path, days in held.items()
    }
    assert manifest.stale == set()
    for day in DAYS:
        assert (lake / "gateway_requests" / f"day={day.isoformat()}").is_dir()


def _record_day(lake: str, data_dir: str, n: int, locked: bool, barrier) -> None:
    """One run's manifest update: load, learn its own file, mark its day, save (in its own process)."""
    day = DAYS[n]
    state = {"size": n, "mtime_ns": n, "ctime_ns": n, "inode": n, "sha256": f"{n:064x}", "hashed_at_ns": 10**19}

    def record(wait_for_all: bool) -> None:
        manifest = InputManifest(Path(lake), "gateway_logs")
        if wait_for_all:
            barrier.wait(timeout=30)  # every process has loaded before any saves: the race, every time
        manifest.learn(f"file_{n}", state, "canonical", [day.isoformat()])
        manifest.mark_ingested(day)
        manifest.save()

    if locked:
        barrier.wait(timeout=30)
        with project_lock(Path(data_dir), command=f"test {n}", wait_s=60):
            record(wait_for_all=False)
    else:
        record(wait_for_all=True)


@pytest.mark.parametrize("locked", [False, True], ids=["no_lock", "run_lock"])
def test_the_json_manifest_keeps_every_day_only_under_the_run_lock(tmp_path, locked):
    """The embedded JSON manifest is replaced whole: K processes that all load it before any saves
    keep one day (the measured defect); under the project's run lock, which every embedded run
    holds (WarehouseResource), they take turns and keep all K."""
    data_dir = tmp_path / "data"
    lake = data_dir / "lake"
    lake.mkdir(parents=True)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(K)
    processes = [
        context.Process(target=_record_day, args=(str(lake), str(data_dir), n, locked, barrier)) for n in range(K)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0] * K
    manifest = InputManifest(lake, "gateway_logs")
    if locked:
        assert manifest.ingested == {day.isoformat() for day in DAYS}
        assert set(manifest.files) == {f"file_{n}" for n in range(K)}
    else:
        assert len(manifest.ingested) < K  # lost updates: the last save wins
        assert len(manifest.files) == len(manifest.ingested)


@pytest.mark.parametrize("backend", ["embedded", "postgres"])
def test_a_late_file_marks_exactly_its_ingested_days_stale(tmp_path, backend, pg_url):
    """Same semantics on both backends: a file that appears late marks the ingested days it holds
    stale (not days never ingested, not other days); a changed file the days it holds or held; a
    vanished file the days it held; ingesting a day clears its mark."""
    database = PostgresDatabase(pg_url) if backend == "postgres" else None
    lake = tmp_path / "lake"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    day = [d.isoformat() for d in DAYS]

    def write(name: str, text: str) -> Path:
        path = inputs / name
        path.write_text(text)
        return path

    def open_manifest() -> InputManifest:
        return InputManifest(lake, "gateway_logs", store=store_for(backend, database, lake))

    def learn(manifest: InputManifest, path: Path, days: list[str]) -> None:
        state = manifest.observe(str(path), path, file_state(path))
        manifest.learn(str(path), state, "canonical", days)

    first, second = write("a.jsonl", "a\n"), write("b.jsonl", "b\n")
    manifest = open_manifest()
    learn(manifest, first, [day[0], day[1]])
    learn(manifest, second, [day[2]])
    for d in DAYS[:4]:  # day 3 is ingested though no file holds it (yet)
        manifest.mark_ingested(d)
    manifest.save()
    assert open_manifest().stale == set()

    late = write("late.jsonl", "late\n")
    manifest = open_manifest()
    learn(manifest, late, [day[1], day[3], day[5]])  # day 5 was never ingested
    manifest.save()
    assert open_manifest().stale == {day[1], day[3]}

    manifest = open_manifest()
    manifest.mark_ingested(DAYS[1])
    manifest.save()
    assert open_manifest().stale == {day[3]}

    write("b.jsonl", "b, changed\n")  # now holds day 4 instead of day 2
    manifest = open_manifest()
    learn(manifest, second, [day[4]])
    manifest.save()
    assert open_manifest().stale == {day[2], day[3]}  # day 4 was never ingested

    first.unlink()
    manifest = open_manifest()
    manifest.forget_missing({str(second), str(late)})
    manifest.save()
    reopened = open_manifest()
    assert reopened.stale == {day[0], day[1], day[2], day[3]}
    assert set(reopened.files) == {str(second), str(late)}
    assert reopened.ingested == {day[0], day[1], day[2], day[3]}


def test_a_day_stays_stale_when_another_run_marks_it_after_this_one_loaded(tmp_path, database):
    """Postgres: run A loads, run B learns a changed file holding A's day and saves, then A marks
    the day ingested. A may have read the old bytes, so the mark stays (the day runs again)."""
    lake = tmp_path / "lake"
    state = {"size": 1, "mtime_ns": 1, "ctime_ns": 1, "inode": 1, "sha256": "1" * 64, "hashed_at_ns": 10**19}
    setup = InputManifest(lake, "gateway_logs", store=PostgresManifestStore(database, str(lake)))
    setup.learn("f", state, "canonical", [DAYS[0].isoformat()])
    setup.mark_ingested(DAYS[0])
    setup.save()
    run_a = InputManifest(lake, "gateway_logs", store=PostgresManifestStore(database, str(lake)))
    run_b = InputManifest(lake, "gateway_logs", store=PostgresManifestStore(database, str(lake)))
    run_b.learn("f", {**state, "size": 2, "sha256": "2" * 64}, "canonical", [DAYS[0].isoformat()])
    run_b.save()
    run_a.mark_ingested(DAYS[0])
    run_a.save()
    assert run_a.stale == {DAYS[0].isoformat()}
    run_c = InputManifest(lake, "gateway_logs", store=PostgresManifestStore(database, str(lake)))
    run_c.mark_ingested(DAYS[0])  # loaded after the mark: clears it
    run_c.save()
    assert run_c.stale == set()


# --------------------------------------------------------------------------- the outbox


@pytest.fixture
def slack_server():
    server = SlackTestServer(token=TOKEN, lifetime_s=60)
    server.start()
    yield server
    server.stop()


def web_api(server: SlackTestServer) -> SlackSettings:
    settings = SlackSettings.from_env(CHANNEL, environ={"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": server.api_url})
    return dataclasses.replace(settings, retry_backoff_s=0.01, max_retries=0)


def enqueue_alerts(outbox: PostgresOutbox, count: int) -> list[str]:
    outbox.ensure()
    ids = [f"spend_anomaly:{ALERT_DAY}:feature:{n:02d}" for n in range(count)]
    for n, alert_id in enumerate(ids):
        added = outbox.enqueue(
            alert_id=alert_id,
            kind="spend_anomaly",
            severity="warning",
            created_at=NOW - dt.timedelta(minutes=count - n),
            payload={"title": f"Spend up on feature {n}", "text": f"feature {n} spent more", "fields": []},
            day=ALERT_DAY,
            oldest_day=oldest_postable_day(NOW, 2),
        )
        assert added
    assert not outbox.enqueue(  # the same id again: left alone
        alert_id=ids[0],
        kind="spend_anomaly",
        severity="warning",
        created_at=NOW,
        payload={"title": "again", "text": "again", "fields": []},
        day=ALERT_DAY,
        oldest_day=oldest_postable_day(NOW, 2),
    )
    return ids


def deliver_concurrently(database, scope: str, settings: SlackSettings, deliverers: int = 2, on_start=None) -> list:
    barrier = threading.Barrier(deliverers)
    reports: list = [None] * deliverers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            outbox = PostgresOutbox(database, scope)  # its own connections, as another run's would be
            barrier.wait(timeout=30)
            reports[index] = outbox.deliver(settings, now=NOW, deadline_s=30)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(deliverers)]
    for thread in threads:
        thread.start()
    if on_start is not None:
        on_start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return reports


def test_two_concurrent_deliverers_post_each_alert_once(tmp_path, database, slack_server):
    scope = str(tmp_path / "lake")
    ids = enqueue_alerts(PostgresOutbox(database, scope), 8)
    slack_server.hold()  # park posts, to see both deliverers with a post in flight at once

    def both_in_flight() -> None:
        for _ in range(200):
            if slack_server.waiting == 2:
                break
            threading.Event().wait(0.05)
        in_flight.append(slack_server.waiting)
        slack_server.release()

    in_flight: list[int] = []
    first, second = deliver_concurrently(database, scope, web_api(slack_server), on_start=both_in_flight)
    assert in_flight == [2]  # two claims held at once: the deliverers did overlap
    assert slack_server.copies() == {alert_id: 1 for alert_id in ids}
    assert set(first.sent).isdisjoint(second.sent) and sorted(first.sent + second.sent) == ids
    assert first.sent and second.sent
    assert PostgresOutbox(database, scope).statuses() == {alert_id: "sent" for alert_id in ids}
    # Again: nothing is pending, nothing is posted.
    again = deliver_concurrently(database, scope, web_api(slack_server))
    assert [report.sent for report in again] == [[], []]
    assert len(slack_server.messages) == len(ids)


def test_slack_down_keeps_alerts_pending_then_each_goes_once(tmp_path, database, slack_server):
    scope = str(tmp_path / "lake")
    ids = enqueue_alerts(PostgresOutbox(database, scope), 5)
    settings = web_api(slack_server)
    slack_server.stop()  # refused connections from here
    reports = deliver_concurrently(database, scope, settings)
    assert [report.sent for report in reports] == [[], []]
    assert all(report.stopped for report in reports)
    assert PostgresOutbox(database, scope).statuses() == {alert_id: "pending" for alert_id in ids}
    with database.transaction() as cursor:
        cursor.execute("select coalesce(sum(attempts), 0) from costwatch.alerts_outbox where scope = %s", [scope])
        (attempts,) = cursor.fetchone()
    assert attempts <= 2  # one tried post per deliverer; the rest wait with attempts unspent

    slack_server.start()  # same port
    deliver_concurrently(database, scope, settings)
    assert slack_server.copies() == {alert_id: 1 for alert_id in ids}
    assert PostgresOutbox(database, scope).statuses() == {alert_id: "sent" for alert_id in ids}


def test_a_post_interrupted_mid_flight_becomes_uncertain_not_reposted(tmp_path, database, slack_server):
    """A `posting` row whose claimer is gone (no session holds its lock) was maybe posted: the
    next delivery reports it uncertain and does not post it; a live claim is left alone."""
    scope = str(tmp_path / "lake")
    dead, live, waiting = enqueue_alerts(PostgresOutbox(database, scope), 3)
    holder = psycopg2.connect(os.environ[URL_ENV].replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with holder.cursor() as cursor:  # a live claimer: holds the claim's advisory lock
            cursor.execute("select pg_advisory_lock(hashtextextended(%s, 0))", [f"{scope}/{live}"])
        holder.commit()
        with database.transaction() as cursor:
            cursor.execute(
                "update costwatch.alerts_outbox set status = 'posting' where scope = %s and alert_id in (%s, %s)",
                [scope, dead, live],
            )
        report = PostgresOutbox(database, scope).deliver(web_api(slack_server), now=NOW)
        statuses = PostgresOutbox(database, scope).statuses()
    finally:
        holder.close()
    assert statuses == {dead: "uncertain", live: "posting", waiting: "sent"}
    assert report.sent == [waiting] and dead in report.uncertain
    assert slack_server.copies() == {waiting: 1}


def test_uncertain_alerts_are_looked_up_in_the_channel_found_ones_not_posted_again(tmp_path, database, slack_server):
    """A bot token and the channel's ID: the next delivery reads the channel's history. An alert
    whose answer was lost is there: recorded sent, not posted again. One whose claimer died
    before posting is not: posted again, once. With the channel given by name, they wait."""
    scope = str(tmp_path / "lake")
    in_channel, never_posted, waiting = enqueue_alerts(PostgresOutbox(database, scope), 3)
    by_id = dataclasses.replace(web_api(slack_server), channel=slack_channel_id(CHANNEL))
    slack_server.misbehave_next("drop")  # accepted, then the connection is cut: the answer is lost
    first = PostgresOutbox(database, scope).deliver(by_id, now=NOW)
    assert first.uncertain == [in_channel] and first.sent == []
    with database.transaction() as cursor:  # claimed by a deliverer that died before it posted
        cursor.execute(
            "update costwatch.alerts_outbox set status = 'posting' where scope = %s and alert_id = %s",
            [scope, never_posted],
        )
    by_name = PostgresOutbox(database, scope).deliver(dataclasses.replace(by_id, channel=CHANNEL), now=NOW)
    assert sorted(by_name.uncertain) == sorted([in_channel, never_posted]) and by_name.sent == [waiting]
    assert "set it to the channel's ID" in by_name.errors[in_channel]

    second = PostgresOutbox(database, scope).deliver(by_id, now=NOW)
    assert second.confirmed == [in_channel]
    assert second.sent == [never_posted] and second.uncertain == []
    assert slack_server.copies() == {in_channel: 1, never_posted: 1, waiting: 1}
    assert PostgresOutbox(database, scope).statuses() == dict.fromkeys([in_channel, never_posted, waiting], "sent")


def test_an_operator_settles_uncertain_alerts_in_postgres(
    tmp_path, database, slack_server, pg_url, monkeypatch, capsys
):
    """`costwatch alerts` lists the outbox's uncertain rows; `mark-sent` makes one sent (never
    posted), `resend` makes one pending (the next delivery posts it once); an alert that is not
    uncertain, or not in the outbox, is refused and nothing changes."""
    monkeypatch.setenv(URL_ENV, pg_url)
    config_path = write_config(tmp_path, {"backend": "postgres", "url_env": URL_ENV})
    scope = state_backend(load_config(config_path)).scope
    there, lost, delivered = enqueue_alerts(PostgresOutbox(database, scope), 3)
    with database.transaction() as cursor:  # claimed by a deliverer that died mid-post
        cursor.execute(
            "update costwatch.alerts_outbox set status = 'posting' where scope = %s and alert_id in (%s, %s)",
            [scope, there, lost],
        )
    PostgresOutbox(database, scope).deliver(web_api(slack_server), now=NOW)
    assert PostgresOutbox(database, scope).statuses() == {there: "uncertain", lost: "uncertain", delivered: "sent"}

    def costwatch(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--config", str(config_path), "alerts", *args])
        printed = capsys.readouterr()
        return code, printed.out, printed.err

    code, out, _ = costwatch()
    assert code == 0 and "2 alert(s) may or may not be in Slack" in out and there in out and lost in out
    code, _, err = costwatch("resend", lost, delivered)
    assert code == 1 and f"alert {delivered!r} is not uncertain (sent)" in err
    code, _, err = costwatch("mark-sent", "no-such-alert")
    assert code == 1 and "'no-such-alert' is not uncertain (not in the outbox)" in err
    assert PostgresOutbox(database, scope).statuses()[lost] == "uncertain"  # the refused command changed nothing
    assert costwatch("mark-sent", there)[0] == 0
    assert costwatch("resend", lost)[0] == 0
    assert PostgresOutbox(database, scope).statuses() == {there: "sent", lost: "pending", delivered: "sent"}
    report = PostgresOutbox(database, scope).deliver(web_api(slack_server), now=NOW)
    assert report.sent == [lost]
    assert slack_server.copies() == {delivered: 1, lost: 1}  # the one marked sent never posted
    assert "no uncertain alert" in costwatch()[1]


# --------------------------------------------------------------------------- config and secrets


def write_config(tmp_path: Path, state: dict | None) -> Path:
    (tmp_path / "inputs").mkdir(exist_ok=True)
    config = {
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
        "prices": {"catalog": str(CATALOG)},
    }
    if state is not None:
        config["state"] = state
    path = tmp_path / "costwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_state_backend_is_chosen_by_config_and_its_url_only_by_the_environment(tmp_path, pg_url):
    assert state_backend(load_config(write_config(tmp_path, None)), environ={}).backend == "embedded"
    config = load_config(write_config(tmp_path, {"backend": "postgres", "url_env": "MY_STATE_URL"}))
    backend = state_backend(config, environ={"MY_STATE_URL": pg_url})
    assert backend.backend == "postgres" and pg_url not in repr(backend) and pg_url not in repr(backend.database)
    with pytest.raises(ConfigError, match=r"MY_STATE_URL \(state.url_env\) is not set; export it"):
        state_backend(config, environ={})
    with pytest.raises(ConfigError, match="state.url: connection strings are read only from the environment") as err:
        load_config(write_config(tmp_path, {"backend": "postgres", "url": pg_url}))
    assert pg_url not in str(err.value)
    with pytest.raises(ConfigError, match=r"state.backend: 'postgresql' is not a state backend; use embedded"):
        load_config(write_config(tmp_path, {"backend": "postgresql"}))
    with pytest.raises(ConfigError, match=r"state.url_env: not an environment variable name") as err:
        load_config(write_config(tmp_path, {"backend": "postgres", "url_env": pg_url}))
    assert pg_url not in str(err.value)


def test_hosts_of_one_object_store_lake_share_its_state_rows(tmp_path, database, pg_url):
    """Two hosts of one project, each with its own local folder, their lake on S3: the manifest
    one marks is the other's (rows keyed by the lake's URI, not by a host's path). A local lake
    keys by its folder, so two projects on one machine stay apart."""
    environ = {URL_ENV: pg_url}
    hosts = []
    uri = f"s3://team-bucket/{tmp_path.name}"  # a prefix of this test's own: rows of earlier runs stay apart
    for host, lake in (("a", f"{uri}/"), ("b", uri)):
        (tmp_path / host).mkdir()
        path = write_config(tmp_path / host, {"backend": "postgres", "url_env": URL_ENV})
        path.write_text(path.read_text() + f"storage: {{lake: '{lake}'}}\n")
        hosts.append(state_backend(load_config(path), environ=environ))
    assert hosts[0].lake_dir != hosts[1].lake_dir
    assert hosts[0].scope == hosts[1].scope == uri
    manifest = InputManifest(hosts[0].lake_dir, "gateway_logs", store=hosts[0].manifests())
    manifest.mark_ingested(DAYS[0])
    manifest.save()
    assert InputManifest(hosts[1].lake_dir, "gateway_logs", store=hosts[1].manifests()).ingested == {
        DAYS[0].isoformat()
    }
    path = write_config(tmp_path / "a", {"backend": "postgres", "url_env": URL_ENV})
    local = state_backend(load_config(path), environ=environ)
    assert local.scope == str(tmp_path / "a" / "data" / "lake")
    assert InputManifest(local.lake_dir, "gateway_logs", store=local.manifests()).ingested == set()


def test_no_connection_string_in_logs_errors_or_rows(tmp_path, pg_url, slack_server, capsys):
    """The URL never reaches a log record, printed output, an error or a row, and a password in it
    is redacted from connection errors."""
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        rows = _use_the_postgres_state(tmp_path, pg_url, slack_server)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert len(rows) == 1 + 1 + 1 + 2
    assert "alert spend_anomaly:" in logs.getvalue()  # the records were captured
    dsn = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    printed = capsys.readouterr()
    assert "[slack dry run]" in printed.out
    for text in (logs.getvalue(), printed.out, printed.err, *rows):
        assert pg_url not in text and dsn not in text

    secret = "s3cret-state-password"
    unreachable = pg_url.replace("costwatch@", f"costwatch:{secret}@").rsplit(":", 1)[0] + ":1/costwatch"
    with pytest.raises(StateUnavailable) as err:
        PostgresDatabase(unreachable, url_env="MY_STATE_URL").ensure_schema()
    assert "MY_STATE_URL" in str(err.value) and secret not in str(err.value) and unreachable not in str(err.value)


def _use_the_postgres_state(tmp_path: Path, pg_url: str, slack_server: SlackTestServer) -> list[str]:
    """Manifest and outbox work against Postgres; every row of this scope, as text."""
    lake = tmp_path / "lake"
    scope = str(lake)
    database = PostgresDatabase(pg_url, url_env=URL_ENV)  # logged from the start: its own schema check too
    manifest = InputManifest(lake, "gateway_logs", store=PostgresManifestStore(database, scope))
    path = tmp_path / "a.jsonl"
    path.write_text("a\n")
    manifest.learn(str(path), manifest.observe(str(path), path, file_state(path)), "canonical", [DAYS[0].isoformat()])
    manifest.mark_ingested(DAYS[0])
    manifest.save()
    outbox = PostgresOutbox(database, scope)
    enqueue_alerts(outbox, 2)
    outbox.deliver(SlackSettings.from_env(CHANNEL, environ={}), now=NOW)  # dry run: prints them
    outbox.deliver(web_api(slack_server), now=NOW)

    with database.transaction() as cursor:
        rows = []
        for table in ("manifests", "input_files", "ingested_days", "alerts_outbox"):
            cursor.execute(f"select t::text from costwatch.{table} as t where scope = %s", [scope])  # noqa: S608 (table names are this test's constants)
            rows.extend(text for (text,) in cursor.fetchall())
    return rows


# --------------------------------------------------------------------------- the daily run


def test_the_daily_run_on_postgres_state_keeps_manifest_and_outbox_there(project, pg_url, monkeypatch):
    """The real job with `state.backend: postgres`: the gateway manifest and the alerts are rows
    in Postgres (no JSON manifest, no outbox in the warehouse), each alert posted once, and the
    URL in no event of the run. (One run: a run costs ~10 s here; re-runs are the unit tests' job.)"""
    day = "2026-10-20"
    server = SlackTestServer(token=TOKEN, lifetime_s=120).start()
    try:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", server.api_url)
        alerts = {"min_impact_usd": 50, "min_impact_pct": 0.2, "slack_channel": CHANNEL, "max_age_days": 36500}
        project.write_config(alerts=alerts, budgets={"chat": 0.001}, state={"backend": "postgres", "url_env": URL_ENV})
        project.write_jsonl(
            "logs.jsonl",
            [request("a", f"{day}T10:00:00Z", "gpt-4o", feature="chat", input_tokens=1000, output_tokens=100)],
        )
        result = project.run_day(day)
        messages = list(server.messages)
    finally:
        server.stop()
    scope = str(project.lake)
    database = PostgresDatabase(pg_url)
    with database.transaction() as cursor:
        cursor.execute(
            "select manifest, day::text, stale_at is null from costwatch.ingested_days where scope = %s", [scope]
        )
        days = set(cursor.fetchall())
        cursor.execute("select alert_id, status from costwatch.alerts_outbox where scope = %s", [scope])
        outbox = dict(cursor.fetchall())
    assert ("gateway_logs", day, True) in days
    assert not (project.lake / "_manifests" / "gateway_logs.json").exists()
    # The digest, and chat's budget crossing 100 % (its $0.001 budget against $0.0035 spent).
    expected = {f"digest:{day}", "budget:chat:2026-10-01:100", "budget:total:2026-10-01:100"}
    assert outbox == {alert_id: "sent" for alert_id in expected}
    assert sorted(message.alert_id for message in messages) == sorted(expected)
    assert project.query("select table_name from information_schema.tables where table_name = 'alerts_outbox'") == []
    metadata = result.asset_materializations_for_node("alerts_outbox")[0].metadata
    assert sorted(metadata["sent"].value) == sorted(expected)
    events = str([event.event_specific_data for event in result.all_events])
    assert pg_url not in events and pg_url.replace("postgresql+psycopg2://", "postgresql://") not in events


def test_pending_days_of_two_interleaved_runs_are_all_kept_in_postgres_not_in_json(tmp_path, database):
    """Two runs load the pending days, then each adds its own and the first finishes its own: the
    JSON file keeps only what the last writer held in memory; Postgres rows keep each change."""
    lake = tmp_path / "lake"
    first, second = DAYS[0], DAYS[1]
    json_a, json_b = PendingDays(lake), PendingDays(lake)
    rows_a, rows_b = PostgresPendingDays(database, str(lake)), PostgresPendingDays(database, str(lake))
    for run_a, run_b in ((json_a, json_b), (rows_a, rows_b)):
        run_a.add([first])
        run_b.add([second])
    assert PendingDays(lake).days == {second}  # the first run's day lost: b wrote its whole set
    assert PostgresPendingDays(database, str(lake)).days == {first, second}
    rows_a.done([first])
    assert PostgresPendingDays(database, str(lake)).days == {second}


def test_costwatch_run_keeps_its_pending_days_and_day_fingerprints_in_postgres(project, pg_url, monkeypatch):
    """With the Postgres state, `costwatch run` records the days it sets out to compute, and the
    fingerprint of prices and settings each day was computed under, as rows (any host of the
    project sees them), not in the lake's JSON files; `run --changed` reads them back."""
    day = dt.date(2026, 10, 20)
    monkeypatch.setenv("DAGSTER_HOME", str(project.root / "dagster_home"))
    monkeypatch.setenv(URL_ENV, pg_url)
    state = {"backend": "postgres", "url_env": URL_ENV}
    project.write_config(state=state)
    project.write_jsonl(
        "logs.jsonl", [request("a", f"{day}T10:00:00Z", "gpt-4o", input_tokens=1000, output_tokens=100)]
    )
    database, scope = PostgresDatabase(pg_url), str(project.lake)
    elsewhere = dt.date(2026, 10, 2)  # a day another host's run left unfinished
    PostgresPendingDays(database, scope).add([elsewhere])

    def costwatch(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["--config", str(project.config_path), *args])
        return code, out.getvalue()

    code, out = costwatch("run", "--date", str(day))
    assert code == 0, out
    assert PostgresPendingDays(database, scope).days == {elsewhere}  # this run's day done, the other's kept
    fingerprint = day_fingerprints(load_config(project.config_path), [day])[day]
    assert PostgresDaySettings(database, scope).days == {day: fingerprint}
    assert not (project.lake / "_manifests" / "pending_days.json").exists()
    assert not (project.lake / "_manifests" / "day_settings.json").exists()

    PostgresPendingDays(database, scope).done([elsewhere])
    assert costwatch("run", "--changed")[1].strip() == "nothing to run: no day's inputs changed"
    project.write_config(state=state, budgets={"chat": 10})  # a mart-shaping setting: the day's marts change
    assert PostgresDaySettings(database, scope).changed(day_fingerprints(load_config(project.config_path), [day])) == [
        day
    ]
    code, out = costwatch("run", "--changed")
    assert code == 0, out
    assert f"re-running {day} (prices or mart settings changed since they ran)" in out
    assert PostgresDaySettings(database, scope).days == {
        day: day_fingerprints(load_config(project.config_path), [day])[day]
    }
