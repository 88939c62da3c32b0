"""Slack misbehaving: a dripping answer, a lost answer, a proxy page, a huge Retry-After, a lost warehouse.

Real slack-sdk clients speak HTTP to tests/slack_server.py on 127.0.0.1, which accepts a post
and then loses its answer in each of the ways measured in production. What must hold: no batch
outlives its deadline (plus a small margin), and after the next delivery every alert is in the
channel exactly once (bot token), or is reported uncertain and never re-posted unseen (webhook).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest
import yaml
from conftest import CATALOG, REPO
from slack_sdk import WebClient
from slack_server import SlackTestServer

from pipelines.alerts import deliver as delivery
from pipelines.alerts.deliver import deliver
from pipelines.alerts.ledger import DeliveryLedger, LedgerError, ledger_path, ledger_problem
from pipelines.alerts.outbox import enqueue, ensure_outbox, oldest_postable_day
from pipelines.cli import main
from pipelines.resources.config import load_config
from pipelines.resources.slack import SlackSettings

TOKEN = "xoxb-planted-secret-789"
WEBHOOK_ID = "T0PLANTED/B0PLANTED/planted-webhook-secret-012"
CHANNEL = "#llm-cost"
NOW = datetime(2026, 11, 28, 7, 30, tzinfo=timezone.utc)
DAY = date(2026, 11, 27)
DEADLINE_S = 2.0
# What a batch may take beyond its deadline: the watchdog's wake-up, closing a socket, one
# commit, on a machine shared with other test runs.
MARGIN_S = 1.0
# The server drips one byte every 3 s, as measured in production: each read succeeds long
# before the 10 s socket timeout, and even a webhook's "ok" takes longer than the deadline.
DRIP_INTERVAL_S = 3.0
LOST_ANSWERS = ("drip", "drop", "truncated", "html")


@pytest.fixture
def slack():
    server = SlackTestServer(token=TOKEN, webhook_ids=(WEBHOOK_ID,), lifetime_s=60)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def config_path(tmp_path):
    """A costwatch.yaml whose data_dir holds the lake (and so the ledger) these tests deliver with."""
    (tmp_path / "inputs").mkdir()
    config = {
        "data_dir": "data",
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
        "prices": {"catalog": str(CATALOG)},
    }
    path = tmp_path / "costwatch.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def lake(config_path):
    return load_config(config_path).lake_dir


@pytest.fixture
def warehouse(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_outbox(conn)
    yield conn
    conn.close()


def settings_for(server: SlackTestServer, mode: str) -> SlackSettings:
    environ = (
        {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": server.api_url}
        if mode == "web_api"
        else {"SLACK_WEBHOOK_URL": server.webhook_url(WEBHOOK_ID)}
    )
    return dataclasses.replace(SlackSettings.from_env(CHANNEL, environ=environ), retry_backoff_s=0.01)


def enqueue_alerts(conn, alert_ids: list[str]) -> None:
    for order, alert_id in enumerate(alert_ids):
        enqueue(
            conn,
            alert_id=alert_id,
            kind="spend_anomaly",
            severity="warning",
            created_at=NOW - timedelta(hours=1) + timedelta(minutes=order),
            payload={"title": f"chat spend up ({alert_id})", "text": f"alert {alert_id}"},
            day=DAY,
            oldest_day=oldest_postable_day(NOW, 2),
        )


def timed_delivery(conn, settings, lake, *, deadline_s: float = DEADLINE_S, **kwargs):
    started = time.monotonic()
    with DeliveryLedger(ledger_path(lake)) as ledger:
        report = deliver(conn, settings, now=NOW, ledger=ledger, deadline_s=deadline_s, **kwargs)
    return report, time.monotonic() - started


def statuses(conn) -> dict[str, str]:
    return dict(conn.execute("select alert_id, status from alerts_outbox order by alert_id").fetchall())


# --------------------------------------------------------------------------- bot token: exactly once


@pytest.mark.parametrize("channel_known", [True, False], ids=["channel-id-known", "first-post-ever"])
@pytest.mark.parametrize("kind", LOST_ANSWERS)
def test_a_lost_answer_is_looked_up_and_every_alert_lands_exactly_once(kind, channel_known, slack, warehouse, lake):
    settings = settings_for(slack, "web_api")
    # With a0 first, its answer teaches the channel's ID before a1's is lost; without it, the
    # next delivery learns the ID from its first accepted post and looks a1 up then.
    ids = ["a0", "a1", "a2", "a3"] if channel_known else ["a1", "a2", "a3"]
    enqueue_alerts(warehouse, ids)
    lost = ids.index("a1")
    slack.misbehave_next(kind, after=lost, drip_interval_s=DRIP_INTERVAL_S)

    first, elapsed = timed_delivery(warehouse, settings, lake)

    assert elapsed < DEADLINE_S + MARGIN_S, f"{kind}: the batch took {elapsed:.2f} s"
    assert first.sent == ids[:lost]
    assert first.uncertain == ["a1"]
    # The batch stopped at the lost answer; a drip cut by the deadline defers the rest.
    rest = (first.deferred, first.held) if kind == "drip" else (first.held, first.deferred)
    assert rest == (ids[lost + 1 :], [])
    assert first.failed == []
    assert len(slack.requests) == lost + 1  # a1 went out once; nothing after it was tried
    assert statuses(warehouse)["a1"] == "uncertain"

    second, elapsed = timed_delivery(warehouse, settings, lake)

    assert elapsed < DEADLINE_S + MARGIN_S
    assert second.confirmed == ["a1"]  # found in conversations.history, not posted again
    assert second.sent == ids[lost + 1 :]
    assert slack.copies() == dict.fromkeys(ids, 1)
    assert set(statuses(warehouse).values()) == {"sent"}


@pytest.mark.parametrize("mode", ["web_api", "webhook"])
def test_the_deadline_cuts_a_dripping_answer_over_tls_too(mode, tmp_path, lake, monkeypatch):
    """Slack is https: the watchdog must reach the socket under the TLS layer."""
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the clients' default context trusts it
    with SlackTestServer(token=TOKEN, webhook_ids=(WEBHOOK_ID,), lifetime_s=30, tls=(str(cert), str(key))) as server:
        assert server.api_url.startswith("https://")
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
            ensure_outbox(conn)
            enqueue_alerts(conn, ["a0", "a1"])
            server.misbehave_next("drip", after=1, drip_interval_s=DRIP_INTERVAL_S)
            report, elapsed = timed_delivery(conn, settings_for(server, mode), lake)
        assert elapsed < DEADLINE_S + MARGIN_S
        assert (report.sent, report.uncertain) == (["a0"], ["a1"])


def self_signed_certificate(folder) -> tuple:
    """A certificate for 127.0.0.1 and its key (cryptography comes with great_expectations)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_the_history_lookup_follows_the_cursor_across_pages(slack, warehouse, lake, monkeypatch):
    monkeypatch.setattr(delivery, "_LOOKUP_PAGE", 1)  # one message a page
    settings = settings_for(slack, "web_api")
    enqueue_alerts(warehouse, ["a0", "a1", "a2"])
    slack.misbehave_next("drop", after=1)
    timed_delivery(warehouse, settings, lake)  # a0 sent, a1 uncertain
    # People talk in the channel afterwards: the history, newest first, has a1 behind them.
    chatter = WebClient(token=TOKEN, base_url=slack.api_url)
    for n in range(3):
        chatter.chat_postMessage(channel=CHANNEL, text=f"looking into it ({n})")
    newest_first = [m.alert_id for m in sorted(slack.messages, key=lambda m: float(m.ts), reverse=True)]
    before = sum(r.path.endswith("conversations.history") for r in slack.requests)

    second, _ = timed_delivery(warehouse, settings, lake)

    assert (second.confirmed, second.sent) == (["a1"], ["a2"])
    pages = sum(r.path.endswith("conversations.history") for r in slack.requests) - before
    assert pages == newest_first.index("a1") + 1  # read page by page until a1 was found
    assert slack.copies() == {"a0": 1, "a1": 1, "a2": 1}


def test_without_the_history_scope_an_uncertain_alert_waits_and_the_rest_go_out(slack, warehouse, lake):
    settings = settings_for(slack, "web_api")
    enqueue_alerts(warehouse, ["a0", "a1", "a2"])
    slack.misbehave_next("drop", after=1)
    timed_delivery(warehouse, settings, lake)  # a0 sent, a1 uncertain, a2 held
    slack.history_scope = False

    second, _ = timed_delivery(warehouse, settings, lake)

    assert (second.sent, second.uncertain, second.confirmed) == (["a2"], ["a1"], [])
    assert "conversations.history: missing_scope" in second.errors["a1"]
    assert "channels:history" in second.errors["a1"]
    assert statuses(warehouse) == {"a0": "sent", "a1": "uncertain", "a2": "sent"}
    assert slack.copies() == {"a0": 1, "a1": 1, "a2": 1}  # a1 was not posted blind


def test_a_post_lost_before_slack_took_it_is_posted_again_after_the_lookup(slack, warehouse, lake):
    """The client cannot tell a post lost on the way from an answer lost on the way back; the
    lookup can: not in the channel, so it is posted again (and only then)."""
    settings = settings_for(slack, "web_api")
    enqueue_alerts(warehouse, ["a0", "a1", "a2"])
    slack.misbehave_next("vanish", after=1)

    first, _ = timed_delivery(warehouse, settings, lake)
    assert (first.sent, first.uncertain) == (["a0"], ["a1"])
    assert slack.copies() == {"a0": 1}

    second, _ = timed_delivery(warehouse, settings, lake)
    assert (second.confirmed, second.sent) == ([], ["a1", "a2"])
    assert slack.copies() == {"a0": 1, "a1": 1, "a2": 1}


_DELIVER_IN_A_CHILD = """
import sys, duckdb
from datetime import datetime, timezone
from pathlib import Path
from pipelines.alerts.deliver import deliver
from pipelines.alerts.ledger import DeliveryLedger
from pipelines.resources.slack import SlackSettings
warehouse, ledger_file, api_url, token, channel = sys.argv[1:]
settings = SlackSettings.from_env(channel, environ={"SLACK_BOT_TOKEN": token, "SLACK_API_URL": api_url})
with duckdb.connect(warehouse) as conn, DeliveryLedger(Path(ledger_file)) as ledger:
    deliver(conn, settings, now=datetime.now(timezone.utc), ledger=ledger, deadline_s=30)
"""


def test_a_run_killed_mid_post_leaves_the_alert_uncertain_and_it_is_looked_up(slack, tmp_path, lake):
    """The process dies after the post left and before its outcome was recorded: the ledger's
    `posting` entry, written before the post, makes the next delivery look it up instead of
    posting it blind."""
    settings = settings_for(slack, "web_api")
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_outbox(conn)
        enqueue_alerts(conn, ["a0"])
        timed_delivery(conn, settings, lake)  # teaches the channel's ID
        enqueue_alerts(conn, ["a1", "a2"])
    slack.hold()
    child = subprocess.Popen(
        [sys.executable, "-c", _DELIVER_IN_A_CHILD, str(path), str(ledger_path(lake)), slack.api_url, TOKEN, CHANNEL],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        waited = time.monotonic() + 30
        while slack.waiting == 0 and child.poll() is None and time.monotonic() < waited:
            time.sleep(0.02)
        assert slack.waiting == 1, "the child never posted"
        child.kill()  # SIGKILL: no handler, no finally
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    slack.release()  # the post the child sent is taken now: a1 is in the channel
    waited = time.monotonic() + 5
    while "a1" not in slack.copies() and time.monotonic() < waited:
        time.sleep(0.02)
    assert slack.copies() == {"a0": 1, "a1": 1}

    with duckdb.connect(str(path)) as conn:
        assert statuses(conn) == {"a0": "sent", "a1": "pending", "a2": "pending"}  # the outbox never knew
        after, _ = timed_delivery(conn, settings, lake)
        assert (after.confirmed, after.sent) == (["a1"], ["a2"])
        assert set(statuses(conn).values()) == {"sent"}
    assert slack.copies() == {"a0": 1, "a1": 1, "a2": 1}


# --------------------------------------------------------------------------- webhook: reported, not re-posted


@pytest.mark.parametrize("kind", LOST_ANSWERS)
def test_a_webhook_reports_uncertain_alerts_and_never_reposts_them(kind, slack, warehouse, lake):
    settings = settings_for(slack, "webhook")
    enqueue_alerts(warehouse, ["a1", "a2", "a3"])
    slack.misbehave_next(kind, drip_interval_s=DRIP_INTERVAL_S)

    first, elapsed = timed_delivery(warehouse, settings, lake)
    assert elapsed < DEADLINE_S + MARGIN_S
    assert (first.sent, first.uncertain) == ([], ["a1"])
    assert (first.deferred if kind == "drip" else first.held) == ["a2", "a3"]

    second, _ = timed_delivery(warehouse, settings, lake)
    assert (second.sent, second.uncertain) == (["a2", "a3"], ["a1"])
    assert "costwatch alerts mark-sent a1" in second.errors["a1"]
    assert slack.copies() == {"a1": 1, "a2": 1, "a3": 1}
    assert statuses(warehouse) == {"a1": "uncertain", "a2": "sent", "a3": "sent"}


def test_an_operator_settles_uncertain_webhook_alerts_with_the_cli(slack, warehouse, lake, config_path, capsys):
    settings = settings_for(slack, "webhook")
    enqueue_alerts(warehouse, ["seen", "missing"])
    slack.misbehave_next("drop")
    timed_delivery(warehouse, settings, lake)  # "seen" is in the channel, uncertain; "missing" held
    slack.misbehave_next("vanish")  # "missing" is lost on the way: the channel never gets it
    timed_delivery(warehouse, settings, lake)
    assert statuses(warehouse) == {"missing": "uncertain", "seen": "uncertain"}
    capsys.readouterr()

    assert main(["--config", str(config_path), "alerts"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("2 alert(s) may or may not be in Slack")
    assert "\n  seen  first tried " in listing and "\n  missing  first tried " in listing
    assert main(["alerts", "mark-sent", "seen", "--config", str(config_path)]) == 0
    assert main(["--config", str(config_path), "alerts", "resend", "missing"]) == 0
    assert main(["--config", str(config_path), "alerts", "resend", "seen"]) == 1  # settled already
    assert "alert 'seen' is not uncertain (sent)" in capsys.readouterr().err

    third, _ = timed_delivery(warehouse, settings, lake)

    assert (third.already_sent, third.sent, third.uncertain) == (["seen"], ["missing"], [])
    assert statuses(warehouse) == {"missing": "sent", "seen": "sent"}
    assert slack.copies() == {"seen": 1, "missing": 1}
    assert main(["--config", str(config_path), "alerts"]) == 0
    assert capsys.readouterr().out.startswith("no uncertain alert")


# --------------------------------------------------------------------------- the deadline


@pytest.mark.parametrize("mode", ["web_api", "webhook"])
def test_a_retry_after_beyond_the_deadline_defers_without_sleeping(mode, slack, warehouse, lake):
    settings = settings_for(slack, mode)
    enqueue_alerts(warehouse, ["a1", "a2"])
    slack.fail_next(1, status=429, retry_after=3600)

    first, elapsed = timed_delivery(warehouse, settings, lake)

    assert elapsed < 0.5 * DEADLINE_S  # no sleep at all, let alone an hour
    assert (first.sent, first.deferred, first.failed, first.uncertain) == ([], ["a1", "a2"], [], [])
    assert "Retry-After 3600 s" in first.stopped
    attempts = dict(warehouse.execute("select alert_id, attempts from alerts_outbox").fetchall())
    assert attempts == {"a1": 0, "a2": 0}  # deferred is not failed: no attempt spent

    second, _ = timed_delivery(warehouse, settings, lake)
    assert second.sent == ["a1", "a2"]
    assert slack.copies() == {"a1": 1, "a2": 1}


@pytest.mark.parametrize("mode", ["web_api", "webhook"])
def test_a_retry_after_within_the_deadline_is_honoured(mode, slack, warehouse, lake):
    settings = settings_for(slack, mode)
    enqueue_alerts(warehouse, ["a1"])
    slack.fail_next(1, status=429, retry_after=1)

    report, elapsed = timed_delivery(warehouse, settings, lake, deadline_s=3.0)

    assert 1.0 <= elapsed < 3.0
    assert report.sent == ["a1"]
    assert [r.status for r in slack.requests] == [429, 200]


def test_alerts_left_at_the_deadline_are_deferred_not_failed(slack, warehouse, lake):
    """Slack answers each post after ~1 s; a 2.5 s deadline lets two through, cuts the third while
    it waits for its answer (uncertain) and defers the other two, untouched."""
    settings = settings_for(slack, "web_api")
    ids = [f"a{i}" for i in range(5)]
    enqueue_alerts(warehouse, ids)
    slack.hold()

    def answer_one_a_second():
        for _ in range(3):
            time.sleep(1.0)
            slack.admit(1)

    gatekeeper = threading.Thread(target=answer_one_a_second, daemon=True)
    gatekeeper.start()
    report, elapsed = timed_delivery(warehouse, settings, lake, deadline_s=2.5)
    gatekeeper.join(timeout=5)
    slack.release()

    assert elapsed < 2.5 + MARGIN_S
    assert (report.sent, report.uncertain, report.deferred, report.failed) == (ids[:2], ids[2:3], ids[3:], [])
    attempts = dict(warehouse.execute("select alert_id, attempts from alerts_outbox").fetchall())
    assert [attempts[a] for a in ids] == [1, 1, 1, 0, 0]

    # The cut request reached the server after the client gave up; the lookup finds it there.
    waited = time.monotonic() + 5
    while "a2" not in slack.copies() and time.monotonic() < waited:
        time.sleep(0.05)
    second, _ = timed_delivery(warehouse, settings, lake)
    assert (second.confirmed, second.sent) == (["a2"], ids[3:])
    assert slack.copies() == dict.fromkeys(ids, 1)


class _LateTimer:
    """A watchdog timer whose thread never gets to run: a machine too busy to schedule it."""

    def __init__(self, interval, function):
        self.daemon = True

    def start(self):
        pass

    def cancel(self):
        pass


def test_a_socket_timeout_at_the_deadline_defers_the_rest_even_when_the_watchdog_is_late(
    slack, warehouse, lake, monkeypatch
):
    """Each request's socket timeout is the time left, so on a busy machine it can fire before the
    watchdog's timer: the request is still cut by the deadline (uncertain: it went out), and the
    alerts after it are deferred, not held as if Slack had misbehaved."""
    monkeypatch.setattr(delivery.threading, "Timer", _LateTimer)
    settings = settings_for(slack, "web_api")
    ids = ["a0", "a1", "a2"]
    enqueue_alerts(warehouse, ids)
    slack.hold()  # no answer, ever: only the socket timeout ends the wait

    report, elapsed = timed_delivery(warehouse, settings, lake, deadline_s=1.5)
    slack.release()

    assert 1.5 <= elapsed < 1.5 + MARGIN_S
    assert (report.sent, report.uncertain, report.deferred, report.held) == ([], ["a0"], ["a1", "a2"], [])
    assert "no answer within alerts.delivery_deadline_s (1.5 s)" in report.errors["a0"]


# --------------------------------------------------------------------------- the ledger


@pytest.mark.parametrize("mode", ["web_api", "webhook"])
def test_a_lost_warehouse_never_resends_what_the_ledger_has(mode, slack, tmp_path, lake):
    settings = settings_for(slack, mode)
    ids = ["digest:2026-11-27", "budget:chat:2026-11-01:100", "anomaly:feature:chat:2026-11-27:warning"]
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        ensure_outbox(conn)
        enqueue_alerts(conn, ids)
        first, _ = timed_delivery(conn, settings, lake)
    assert first.sent == ids
    path.unlink()  # the warehouse is gone; history is re-run from the lake

    with duckdb.connect(str(path)) as conn:
        ensure_outbox(conn)
        enqueue_alerts(conn, [*ids, "digest:2026-11-28"])
        again, _ = timed_delivery(conn, settings, lake)
        assert (again.already_sent, again.sent) == (sorted(ids), ["digest:2026-11-28"])
        assert set(statuses(conn).values()) == {"sent"}
    assert slack.copies() == dict.fromkeys([*ids, "digest:2026-11-28"], 1)


def test_the_ledger_learns_what_an_older_outbox_sent(slack, warehouse, lake):
    """A project upgraded to the ledger: its outbox's sent rows seed it on the first delivery."""
    enqueue_alerts(warehouse, ["old"])
    warehouse.execute("update alerts_outbox set status = 'sent', sent_at = ?", [NOW])
    timed_delivery(warehouse, settings_for(slack, "webhook"), lake)
    with DeliveryLedger(ledger_path(lake)) as ledger:
        assert ledger.sent_ids() == {"old"}


def test_an_unreadable_ledger_fails_with_one_line_naming_the_file_and_the_fix(
    slack, warehouse, lake, config_path, capsys
):
    path = ledger_path(lake)
    assert ledger_problem(path) is None  # absent: the first delivery creates it
    timed_delivery(warehouse, settings_for(slack, "webhook"), lake)
    assert ledger_problem(path) is None
    path.write_bytes(b"this is not a ledger\n" * 400)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)

    with pytest.raises(LedgerError) as raised:
        timed_delivery(warehouse, settings_for(slack, "webhook"), lake)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not a readable alerts delivery ledger")
    assert f"restore {path} from a backup" in message and "move it aside" in message
    assert ledger_problem(path) == message
    assert main(["--config", str(config_path), "alerts"]) == 1
    assert capsys.readouterr().err == f"costwatch: {message}\n"
