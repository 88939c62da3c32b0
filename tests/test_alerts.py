"""The alerts asset end to end: the daily run fills the outbox and slack-sdk's real client posts
to a Slack-compatible server on 127.0.0.1; re-runs and outages never send an alert twice."""

from __future__ import annotations

import pytest
from conftest import request
from slack_server import SlackTestServer

from pipelines.alerts.ledger import DeliveryLedger, ledger_path

TOKEN = "xoxb-planted-secret-456"
DAY = "2026-10-20"


@pytest.fixture
def slack(monkeypatch):
    server = SlackTestServer(token=TOKEN, lifetime_s=120)
    server.start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_API_URL", server.api_url)
    yield server
    server.stop()


def configured(project, **alerts):
    # DAY is a fixed past day: alerts about it stay postable only with a cut-off that reaches it.
    alerts = {"min_impact_usd": 50, "min_impact_pct": 0.2, "slack_channel": "#llm-cost", "max_age_days": 36500} | alerts
    project.write_config(alerts=alerts, budgets={"chat": 0.001})
    project.write_jsonl(
        "logs.jsonl", [request("a", f"{DAY}T10:00:00Z", "gpt-4o", feature="chat", input_tokens=1000, output_tokens=100)]
    )


def outbox(project):
    return {row["alert_id"]: row for row in project.query_dicts("select * from alerts_outbox")}


def test_the_daily_run_posts_its_alerts_once(project, slack):
    configured(project)
    result = project.run_day(DAY)
    alerts = outbox(project)
    # The digest, and chat's budget crossing 100 % (its $0.001 budget against $0.0035 spent).
    assert set(alerts) == {f"digest:{DAY}", "budget:chat:2026-10-01:100", "budget:total:2026-10-01:100"}
    assert {row["status"] for row in alerts.values()} == {"sent"}
    assert len(slack.messages) == 3
    metadata = result.asset_materializations_for_node("alerts_outbox")[0].metadata
    assert sorted(metadata["sent"].value) == sorted(alerts)
    assert (metadata["deferred"].value, metadata["uncertain"].value) == ([], [])
    assert 0 < metadata["delivery_s"].value < 60  # alerts.delivery_deadline_s, the default
    # What reached Slack is also recorded beside the lake, outside the warehouse.
    with DeliveryLedger(ledger_path(project.lake)) as ledger:
        assert ledger.sent_ids() == set(alerts)

    project.run_day(DAY)  # re-running the day sends nothing new
    assert len(slack.messages) == 3


def test_slack_down_keeps_alerts_pending_until_the_next_run(project, slack):
    configured(project)
    slack.stop()
    result = project.run_day(DAY)
    assert result.success  # an outage is not a failed run
    assert {row["status"] for row in outbox(project).values()} == {"pending"}
    slack.start()
    project.run_day(DAY)
    alerts = outbox(project)
    assert {row["status"] for row in alerts.values()} == {"sent"}
    assert len(slack.messages) == len(alerts) == 3


def test_the_token_never_reaches_the_warehouse_or_run_metadata(project, slack):
    configured(project)
    slack.stop()  # an error path: the failure text is recorded
    result = project.run_day(DAY)
    dumped = str(project.query("select * from alerts_outbox")) + str(
        [event.event_specific_data for event in result.all_events]
    )
    assert TOKEN not in dumped
    # The first alert's failed attempt is recorded; the rest wait untouched for the next run.
    errors = [row["last_error"] for row in outbox(project).values() if row["last_error"]]
    assert len(errors) == 1 and TOKEN not in errors[0]


def test_a_backfill_of_old_days_posts_one_catch_up_instead_of_its_alerts(project, slack):
    """With the default cut-off (2 days), DAY is long past: its 3 alerts are expired, never posted,
    and one catch-up message counts them. A re-run posts nothing more."""
    configured(project, max_age_days=2)
    result = project.run_day(DAY)
    alerts = outbox(project)
    assert {row["status"] for row in alerts.values()} == {"expired"}
    [catch_up] = slack.messages
    assert catch_up.blocks[0]["text"]["text"] == "🔵 Info: Catch-up: 3 older alert(s) not posted"
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "alerts_delivered"]
    assert check.passed  # nothing waits undelivered
    project.run_day(DAY)
    assert len(slack.messages) == 1


def test_a_dry_run_with_alerts_waiting_warns(project, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    configured(project)
    result = project.run_day(DAY)
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "alerts_delivered"]
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["undelivered"].value == 3
    assert check.metadata["reason"].value.startswith("Slack is not configured")
