"""Slack delivery of the alerts outbox: real slack-sdk clients, a real local Slack server, a real DuckDB file.

Nothing is mocked: the clients speak HTTP to tests/slack_server.py on 127.0.0.1, and the
outbox lives in a DuckDB file in tmp_path, reopened from disk where durability matters.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from slack_sdk.http_retry import ConnectionErrorRetryHandler
from slack_server import SlackTestServer

from pipelines.alerts import deliver as delivery
from pipelines.alerts.deliver import deliver as deliver_with_ledger
from pipelines.alerts.ledger import DeliveryLedger
from pipelines.alerts.outbox import enqueue, ensure_outbox, oldest_postable_day
from pipelines.alerts.render import format_usd, render
from pipelines.resources.config import ConfigError
from pipelines.resources.slack import DEFAULT_API_URL, SlackSettings

TOKEN = "xoxb-planted-secret-123"
WEBHOOK_ID = "T0PLANTED/B0PLANTED/planted-webhook-secret-456"
CHANNEL = "#llm-cost"
NOW = datetime(2026, 11, 28, 7, 30, tzinfo=timezone.utc)
CREATED = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
DAY = date(2026, 11, 27)  # the day the alerts are about: yesterday at NOW

PAYLOAD = {
    "title": "chat spend up 42% on 2026-11-27",
    "text": "chat spent $4,174.56 on 2026-11-27, $1,234.56 (42%) above the expected $2,940.00",
    "fields": [
        {"label": "Actual", "value": "$4,174.56"},
        {"label": "Expected", "value": "$2,940.00"},
        {"label": "Impact", "value": "+$1,234.56 (42%)"},
    ],
    "drivers": [{"name": "model gpt-4o", "impact_usd": 1010.25}, {"name": "user u-17", "impact_usd": -75.5}],
    "link": "http://127.0.0.1:3000/assets/fct_spend_anomalies",
}

# What render(PAYLOAD) must produce, written out by hand.
PAYLOAD_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "chat spend up 42% on 2026-11-27"}},
    {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*Actual*\n$4,174.56"},
            {"type": "mrkdwn", "text": "*Expected*\n$2,940.00"},
            {"type": "mrkdwn", "text": "*Impact*\n+$1,234.56 (42%)"},
        ],
    },
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Drivers*\n• model gpt-4o: +$1,010.25\n• user u-17: -$75.50"},
    },
    {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "<http://127.0.0.1:3000/assets/fct_spend_anomalies|Open details>"}],
    },
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def slack_server():
    server = SlackTestServer(token=TOKEN, webhook_ids=(WEBHOOK_ID,), lifetime_s=60)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outbox(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_outbox(conn)
    yield conn
    conn.close()


def deliver(conn, settings, **kwargs):
    """`deliver` with the ledger that lives beside the test's warehouse file (as the lake's does)."""
    [(warehouse,)] = conn.execute("select path from duckdb_databases() where database_name = 'warehouse'").fetchall()
    with DeliveryLedger(Path(warehouse).parent / "ledger.sqlite3") as ledger:
        return deliver_with_ledger(conn, settings, ledger=ledger, **kwargs)


def settings_for(server: SlackTestServer, mode: str, *, token: str = TOKEN) -> SlackSettings:
    environ = (
        {"SLACK_BOT_TOKEN": token, "SLACK_API_URL": server.api_url}
        if mode == "web_api"
        else {"SLACK_WEBHOOK_URL": server.webhook_url(WEBHOOK_ID)}
    )
    settings = SlackSettings.from_env(CHANNEL, environ=environ)
    assert settings.mode == mode
    # Tiny backoff for 5xx and refused connections; 429 still waits its Retry-After.
    return dataclasses.replace(settings, retry_backoff_s=0.01)


def add_alert(conn, alert_id: str, *, minutes: int = 0, title: str | None = None) -> None:
    payload = dict(PAYLOAD, title=title or f"{PAYLOAD['title']} ({alert_id})")
    added = enqueue(
        conn,
        alert_id=alert_id,
        kind="spend_anomaly",
        severity="warning",
        created_at=CREATED + timedelta(minutes=minutes),
        payload=payload,
        day=DAY,
        oldest_day=oldest_postable_day(NOW, 2),
    )
    assert added


def rows(conn) -> dict[str, dict]:
    """The outbox as another connection sees it: committed rows only, what survives a crash."""
    with conn.cursor() as other:
        other.execute("select alert_id, status, attempts, sent_at, last_error from alerts_outbox order by created_at")
        names = [d[0] for d in other.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in other.fetchall()}


BOTH_MODES = pytest.mark.parametrize("mode", ["web_api", "webhook"])


# --------------------------------------------------------------------------- render


def test_render_builds_header_fields_drivers_and_link():
    text, blocks = render(PAYLOAD)
    assert text == PAYLOAD["text"]
    assert blocks == PAYLOAD_BLOCKS


def test_render_escapes_mrkdwn_and_drops_missing_parts():
    text, blocks = render(
        {"title": "R&D <spend>", "fields": [{"label": "a<b", "value": "x & y"}], "drivers": [], "link": None}
    )
    assert text == "R&amp;D &lt;spend&gt;"  # no text: the title is the fallback
    assert blocks == [
        {"type": "header", "text": {"type": "plain_text", "text": "R&D <spend>"}},  # plain_text: no escaping
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*a&lt;b*\nx &amp; y"}]},
    ]


def test_render_caps_drivers_and_splits_fields_at_slack_limits():
    payload = {
        "title": "t",
        "fields": [{"label": f"f{i}", "value": str(i)} for i in range(12)],
        "drivers": [{"name": f"d{i}", "impact_usd": i} for i in range(13)],
    }
    _, blocks = render(payload)
    assert [len(b.get("fields", [])) for b in blocks if b["type"] == "section"] == [10, 2, 0]
    driver_lines = blocks[-1]["text"]["text"].split("\n")
    assert driver_lines[1:3] == ["• d0: $0.00", "• d1: +$1.00"]
    assert driver_lines[-1] == "…and 3 more"
    assert len(driver_lines) == 1 + 10 + 1


@pytest.mark.parametrize(
    "payload, key",
    [
        ({"text": "no title"}, "payload.title"),
        ({"title": "t", "fields": [{"value": "1"}]}, "payload.fields[0]"),
        ({"title": "t", "drivers": [{"name": "x", "impact_usd": "12"}]}, "payload.drivers[0].impact_usd"),
        ({"title": "t", "link": "javascript:alert(1)"}, "payload.link"),
        ({"title": "t", "fields": {"label": "a"}}, "payload.fields"),
    ],
)
def test_render_names_the_bad_payload_key(payload, key):
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        render(payload)


@pytest.mark.parametrize(
    "amount, signed, expected",
    [(1234.565, False, "$1,234.57"), (-75.5, True, "-$75.50"), (0.001, True, "$0.00"), (3, True, "+$3.00")],
)
def test_format_usd(amount, signed, expected):
    assert format_usd(amount, signed=signed) == expected


# --------------------------------------------------------------------------- settings


def test_settings_pick_the_mode_from_the_environment():
    web = SlackSettings.from_env(
        CHANNEL,
        environ={
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/planted-hook-secret",
        },
    )
    assert (web.mode, web.channel, web.api_url) == ("web_api", CHANNEL, DEFAULT_API_URL)  # the token wins
    hook = SlackSettings.from_env(
        None, environ={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/planted-hook-secret"}
    )
    assert hook.mode == "webhook"
    dry = SlackSettings.from_env(CHANNEL, environ={"SLACK_BOT_TOKEN": "  ", "SLACK_WEBHOOK_URL": ""})
    assert dry.dry_run and dry.mode == "dry_run"
    for settings in (web, hook):
        assert TOKEN not in repr(settings) and TOKEN not in str(settings)
        assert "planted-hook-secret" not in repr(settings)


def test_bot_token_without_channel_names_the_config_key():
    with pytest.raises(ConfigError, match=r"alerts\.slack_channel") as raised:
        SlackSettings.from_env(None, environ={"SLACK_BOT_TOKEN": TOKEN})
    assert TOKEN not in str(raised.value)


def test_bad_webhook_url_error_does_not_quote_it():
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_URL") as raised:
        SlackSettings.from_env(None, environ={"SLACK_WEBHOOK_URL": "hooks.slack.com/services/planted-hook-secret"})
    assert "planted-hook-secret" not in str(raised.value)


# --------------------------------------------------------------------------- delivery


@BOTH_MODES
def test_post_succeeds_once_with_the_blocks(mode, slack_server, outbox):
    add_alert(outbox, "a1", title=PAYLOAD["title"])
    report = deliver(outbox, settings_for(slack_server, mode), now=NOW)

    assert (report.sent, report.held, report.failed, report.dry_run, report.stopped) == (["a1"], [], [], False, None)
    [message] = slack_server.messages
    # The alert's severity leads the header and the notification text.
    header = {"type": "header", "text": {"type": "plain_text", "text": "🟠 Warning: chat spend up 42% on 2026-11-27"}}
    assert message.blocks == [header, *PAYLOAD_BLOCKS[1:]]
    assert message.text == "🟠 Warning: " + PAYLOAD["text"]
    assert message.channel == (CHANNEL if mode == "web_api" else None)
    assert message.metadata == {
        "event_type": "costwatch_alert",
        "event_payload": {"alert_id": "a1", "kind": "spend_anomaly", "severity": "warning"},
    }
    assert rows(outbox)["a1"] == {"alert_id": "a1", "status": "sent", "attempts": 1, "sent_at": NOW, "last_error": None}


@BOTH_MODES
def test_rerun_sends_nothing_new(mode, slack_server, outbox):
    settings = settings_for(slack_server, mode)
    add_alert(outbox, "a1")
    assert deliver(outbox, settings, now=NOW).sent == ["a1"]

    again = deliver(outbox, settings, now=NOW + timedelta(hours=1))
    assert (again.sent, again.held, again.failed) == ([], [], [])
    # Re-enqueueing a sent alert (the alerts asset re-run for the same day) changes nothing.
    assert (
        enqueue(
            outbox,
            alert_id="a1",
            kind="spend_anomaly",
            severity="warning",
            created_at=CREATED,
            payload=PAYLOAD,
            day=DAY,
            oldest_day=DAY,
        )
        is False
    )
    assert deliver(outbox, settings, now=NOW + timedelta(hours=2)).sent == []

    assert len(slack_server.messages) == 1 and len(slack_server.requests) == 1
    assert rows(outbox)["a1"]["sent_at"] == NOW


@BOTH_MODES
def test_rate_limit_is_waited_out_and_delivered_once(mode, slack_server, outbox):
    add_alert(outbox, "a1")
    slack_server.fail_next(1, status=429, retry_after=1)
    started = time.monotonic()
    report = deliver(outbox, settings_for(slack_server, mode), now=NOW)

    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert report.sent == ["a1"]
    assert [r.status for r in slack_server.requests] == [429, 200]
    assert len(slack_server.messages) == 1
    assert rows(outbox)["a1"]["attempts"] == 1


@BOTH_MODES
def test_server_errors_are_retried_and_delivered_once(mode, slack_server, outbox):
    add_alert(outbox, "a1")
    slack_server.fail_next(2, status=500)
    report = deliver(outbox, settings_for(slack_server, mode), now=NOW)

    assert report.sent == ["a1"]
    assert [r.status for r in slack_server.requests] == [500, 500, 200]
    assert len(slack_server.messages) == 1
    assert rows(outbox)["a1"]["status"] == "sent"


@BOTH_MODES
def test_refused_connection_keeps_alerts_pending_until_slack_is_back(mode, slack_server, outbox):
    settings = settings_for(slack_server, mode)
    add_alert(outbox, "older", minutes=0)
    add_alert(outbox, "newer", minutes=5)
    slack_server.stop()

    down = deliver(outbox, settings, now=NOW)
    assert (down.sent, down.held, down.failed) == ([], ["older", "newer"], [])
    assert "Connection refused" in down.stopped
    after_down = rows(outbox)
    assert after_down["older"]["status"] == "pending" and after_down["older"]["attempts"] == 1
    assert "Connection refused" in after_down["older"]["last_error"]
    # Slack was unreachable: the batch stopped rather than spend the newer alert's attempts.
    assert (after_down["newer"]["attempts"], after_down["newer"]["last_error"]) == (0, None)

    slack_server.start()  # same port
    back = deliver(outbox, settings, now=NOW + timedelta(hours=1))
    assert back.sent == ["older", "newer"]  # oldest first
    assert [m.metadata["event_payload"]["alert_id"] for m in slack_server.messages] == ["older", "newer"]
    after_back = rows(outbox)
    assert after_back["older"] == {
        "alert_id": "older",
        "status": "sent",
        "attempts": 2,
        "sent_at": NOW + timedelta(hours=1),
        "last_error": None,
    }
    assert after_back["newer"]["attempts"] == 1

    assert deliver(outbox, settings, now=NOW + timedelta(hours=2)).sent == []
    assert len(slack_server.messages) == 2


@BOTH_MODES
def test_refused_connection_is_retried_within_the_call(mode, slack_server, outbox, monkeypatch):
    # Slack comes back exactly when the client's connect-retry handler has seen the refusal and
    # is about to wait: no timer, so the test holds however slow the machine is.
    refusals = []
    real_handlers = delivery._retry_handlers

    def handlers_that_restart_slack(settings, deadline):
        handlers = real_handlers(settings, deadline)
        (connect,) = [h for h in handlers if isinstance(h, ConnectionErrorRetryHandler)]
        wait = connect.prepare_for_next_attempt

        def restart_then_wait(**kwargs):
            refusals.append(kwargs["error"])
            slack_server.start()  # same port
            wait(**kwargs)

        connect.prepare_for_next_attempt = restart_then_wait
        return handlers

    monkeypatch.setattr(delivery, "_retry_handlers", handlers_that_restart_slack)
    settings = settings_for(slack_server, mode)
    add_alert(outbox, "a1")
    slack_server.stop()
    report = deliver(outbox, settings, now=NOW)

    assert len(refusals) == 1 and "Connection refused" in str(refusals[0])
    assert report.sent == ["a1"]
    assert len(slack_server.messages) == 1
    assert rows(outbox)["a1"]["attempts"] == 1


def test_each_alert_is_committed_before_the_next_is_posted(slack_server, outbox):
    add_alert(outbox, "a1", minutes=0)
    add_alert(outbox, "a2", minutes=1)
    observer = outbox.cursor()  # another connection: sees committed rows only
    slack_server.hold()
    slack_server.admit(1)
    reports = []
    worker = threading.Thread(
        target=lambda: reports.append(deliver(outbox, settings_for(slack_server, "webhook"), now=NOW))
    )
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not (len(slack_server.messages) == 1 and slack_server.waiting == 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slack_server.waiting == 1, "the second post never reached the server"
        # a1 is in Slack and a2's post is in flight: were the process to die now, a1 is safe.
        status = dict(observer.execute("select alert_id, status from alerts_outbox").fetchall())
        assert status == {"a1": "sent", "a2": "pending"}
    finally:
        slack_server.admit(1)
        worker.join(timeout=10)
    assert reports[0].sent == ["a1", "a2"]
    observer.close()


@BOTH_MODES
def test_alert_fails_after_max_attempts(mode, slack_server, outbox):
    settings = settings_for(slack_server, mode)  # max_retries=2: three requests per attempt
    add_alert(outbox, "a1")
    slack_server.fail_next(6, status=500)

    first = deliver(outbox, settings, now=NOW, max_attempts=2)
    assert (first.sent, first.held, first.failed) == ([], ["a1"], [])
    row = rows(outbox)["a1"]
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "500" in row["last_error"]

    second = deliver(outbox, settings, now=NOW + timedelta(hours=1), max_attempts=2)
    assert (second.sent, second.held, second.failed) == ([], [], ["a1"])
    assert (rows(outbox)["a1"]["status"], rows(outbox)["a1"]["attempts"]) == ("failed", 2)

    third = deliver(outbox, settings, now=NOW + timedelta(hours=2), max_attempts=2)
    assert (third.sent, third.held, third.failed) == ([], [], [])
    assert len(slack_server.requests) == 6 and slack_server.messages == []


def test_rejected_credentials_stop_the_batch(slack_server, outbox):
    wrong = "xoxb-planted-wrong-999"
    add_alert(outbox, "a1", minutes=0)
    add_alert(outbox, "a2", minutes=1)
    report = deliver(outbox, settings_for(slack_server, "web_api", token=wrong), now=NOW)

    assert (report.sent, report.held, report.stopped) == ([], ["a1", "a2"], "chat.postMessage: invalid_auth (HTTP 200)")
    after = rows(outbox)
    assert (after["a1"]["attempts"], after["a1"]["last_error"]) == (1, "chat.postMessage: invalid_auth (HTTP 200)")
    assert (after["a2"]["attempts"], after["a2"]["status"]) == (0, "pending")
    assert len(slack_server.requests) == 1  # not retried, and a2 was not tried


def test_unrenderable_payload_fails_at_once_and_the_rest_go_out(slack_server, outbox):
    outbox.execute(
        "insert into alerts_outbox values (?, 'spend_anomaly', 'warning', ?, ?, 'pending', 0, null, null, null, null)",
        ["broken", CREATED, '{"text": "no title"}'],
    )
    add_alert(outbox, "a1", minutes=1)
    report = deliver(outbox, settings_for(slack_server, "webhook"), now=NOW)

    assert (report.sent, report.failed) == (["a1"], ["broken"])
    assert rows(outbox)["broken"]["status"] == "failed"
    assert rows(outbox)["broken"]["last_error"].startswith("payload: payload.title")
    assert len(slack_server.messages) == 1


def test_dry_run_prints_and_keeps_alerts_pending(slack_server, outbox, capsys):
    add_alert(outbox, "a1", title=PAYLOAD["title"])
    settings = SlackSettings.from_env(CHANNEL, environ={})
    report = deliver(outbox, settings, now=NOW)

    assert (report.dry_run, report.sent, report.held, report.failed) == (True, [], ["a1"], [])
    out = capsys.readouterr().out
    assert "[slack dry run] alert a1 (warning spend_anomaly) not posted to #llm-cost" in out
    assert PAYLOAD["title"] in out and PAYLOAD["text"] in out
    assert "blocks: header, section (3 fields), section (drivers), context" in out
    assert rows(outbox)["a1"] == {
        "alert_id": "a1",
        "status": "pending",
        "attempts": 0,
        "sent_at": None,
        "last_error": None,
    }
    assert slack_server.requests == []


def test_deliver_refuses_an_open_transaction(slack_server, outbox):
    add_alert(outbox, "a1")
    outbox.begin()
    with pytest.raises(RuntimeError, match="inside a transaction"):
        deliver(outbox, settings_for(slack_server, "webhook"), now=NOW)
    outbox.rollback()
    assert slack_server.requests == []


def test_outbox_is_documented_and_ensure_is_idempotent(outbox):
    ensure_outbox(outbox)
    undocumented = outbox.execute(
        "select column_name from duckdb_columns() where table_name = 'alerts_outbox' and comment is null"
    ).fetchall()
    assert undocumented == []


# --------------------------------------------------------------------------- secrets


@BOTH_MODES
def test_secrets_appear_nowhere(mode, slack_server, outbox, capsys, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)  # the SDK logs request URLs at DEBUG and INFO
    settings = settings_for(slack_server, mode)
    reports = []

    add_alert(outbox, "ok", minutes=0)
    reports.append(deliver(outbox, settings, now=NOW))
    add_alert(outbox, "retried", minutes=1)
    slack_server.fail_next(1, status=500)
    reports.append(deliver(outbox, settings, now=NOW))
    add_alert(outbox, "refused", minutes=2)
    slack_server.stop()
    reports.append(deliver(outbox, settings, now=NOW))
    slack_server.start()
    slack_server.fail_next(3, status=500)
    reports.append(deliver(outbox, settings, now=NOW, max_attempts=2))
    assert [r.sent for r in reports] == [["ok"], ["retried"], [], []]
    assert reports[-1].failed == ["refused"]

    captured = capsys.readouterr()
    table = outbox.execute("select * from alerts_outbox").fetchall()
    logged = [record.getMessage() for record in caplog.records]
    assert any("Sending a request" in message for message in logged), "the SDK's debug logs were not captured"
    places = {
        "stdout": captured.out,
        "stderr": captured.err,
        "log records": "\n".join(logged),
        "log text": caplog.text,
        "reports": repr(reports),
        "settings": repr(settings) + str(settings),
        "outbox table": repr(table),
        # The delivery ledger beside the warehouse, its write-ahead log included.
        "ledger": "".join(f.read_bytes().decode("latin-1") for f in sorted(tmp_path.glob("ledger.sqlite3*"))),
    }
    assert "retried" in places["ledger"], "the ledger was not read"
    secrets = [TOKEN, slack_server.webhook_url(WEBHOOK_ID), WEBHOOK_ID, "planted-webhook-secret-456"]
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into {place}"
    if mode == "webhook":
        # The SDK does write the webhook URL into its log messages; the filter blanked it.
        assert any("[redacted]" in message for message in logged)


# --------------------------------------------------------------------------- staleness cut-off


def _backlog(conn, first: date, days: int) -> list[str]:
    """One pending alert a day, each enqueued while it was fresh (as dry runs leave them)."""
    ids = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        ids.append(f"digest:{day}")
        assert enqueue(
            conn,
            alert_id=ids[-1],
            kind="digest",
            severity="info",
            created_at=CREATED + timedelta(minutes=offset),
            payload=dict(PAYLOAD, title=f"LLM cost on {day}"),
            day=day,
            oldest_day=day,
        )
    return ids


@BOTH_MODES
def test_a_first_connect_posts_one_catch_up_and_only_the_fresh_alerts(mode, slack_server, outbox):
    # 45 days of alerts waited while Slack was not configured: 10-14 .. 11-27. At NOW (11-28) with
    # max_age_days 2, days 11-26 and 11-27 are fresh; the 43 days 10-14 .. 11-25 are stale.
    ids = _backlog(outbox, date(2026, 10, 14), 45)
    report = deliver(outbox, settings_for(slack_server, mode), now=NOW, max_age_days=2)

    assert report.sent == ["digest:2026-11-26", "digest:2026-11-27"]
    assert (report.expired, report.caught_up) == (43, 43)
    catch_up, *posted = slack_server.messages
    assert len(posted) == 2
    assert [message.blocks[0]["text"]["text"] for message in posted] == [
        "🔵 Info: LLM cost on 2026-11-26",
        "🔵 Info: LLM cost on 2026-11-27",
    ]
    assert catch_up.blocks[0]["text"]["text"] == "🔵 Info: Catch-up: 43 older alert(s) not posted"
    assert "43 alert(s) of 2026-10-14 to 2026-11-25 expired (older than alerts.max_age_days = 2)" in catch_up.text
    statuses = rows(outbox)
    assert [statuses[alert_id]["status"] for alert_id in ids] == ["expired"] * 43 + ["sent"] * 2
    assert all(statuses[alert_id]["sent_at"] is None for alert_id in ids[:43])

    # The next run has nothing to catch up on, and nothing new to send.
    again = deliver(outbox, settings_for(slack_server, mode), now=NOW + timedelta(hours=1), max_age_days=2)
    assert (again.sent, again.expired, again.caught_up) == ([], 0, 0)
    assert len(slack_server.messages) == 3


def test_alerts_expired_during_dry_runs_are_counted_once_on_connect(slack_server, outbox, capsys):
    _backlog(outbox, date(2026, 11, 20), 8)  # 11-20 .. 11-27
    dry = deliver(outbox, SlackSettings.from_env(CHANNEL, environ={}), now=NOW, max_age_days=2)
    # 11-20 .. 11-25 expire in the dry run; 11-26 and 11-27 wait.
    assert (dry.expired, dry.held) == (6, ["digest:2026-11-26", "digest:2026-11-27"])
    assert "6 alert(s) of 2026-11-20 to 2026-11-25 expired" in capsys.readouterr().out
    assert slack_server.requests == []

    report = deliver(outbox, settings_for(slack_server, "webhook"), now=NOW, max_age_days=2)
    assert (report.sent, report.caught_up) == (["digest:2026-11-26", "digest:2026-11-27"], 6)
    assert [m.blocks[0]["text"]["text"] for m in slack_server.messages][0].endswith(
        "Catch-up: 6 older alert(s) not posted"
    )
    assert len(slack_server.messages) == 3


def test_an_alert_of_a_stale_day_is_enqueued_expired(outbox):
    assert enqueue(
        outbox,
        alert_id="old",
        kind="digest",
        severity="info",
        created_at=CREATED,
        payload=PAYLOAD,
        day=date(2026, 11, 1),
        oldest_day=oldest_postable_day(NOW, 2),  # 11-26
    )
    assert rows(outbox)["old"]["status"] == "expired"
    assert oldest_postable_day(NOW, 2) == date(2026, 11, 26)
    assert oldest_postable_day(datetime(2026, 11, 28, 1, 0, tzinfo=timezone(timedelta(hours=5))), 0) == date(
        2026, 11, 27
    )  # 01:00 at UTC+5 is still 11-27 in UTC


def test_a_dry_run_prints_only_the_alerts_of_its_days(outbox, capsys):
    _backlog(outbox, date(2026, 11, 26), 2)
    report = deliver(
        outbox, SlackSettings.from_env(CHANNEL, environ={}), now=NOW, max_age_days=2, days=[date(2026, 11, 27)]
    )
    out = capsys.readouterr().out
    assert "alert digest:2026-11-27" in out and "digest:2026-11-26" not in out
    assert "1 more pending alert(s) of other days wait in alerts_outbox" in out
    assert report.held == ["digest:2026-11-26", "digest:2026-11-27"]
