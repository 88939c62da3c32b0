"""The day's alerts, composed from the tables that decide them: rows in, outbox-ready alert dicts out.

What to alert about is decided in SQL (`sql/alerts/alert_anomaly_episodes.sql`, `fct_budget_forecast`,
`sql/alerts/fct_daily_digest.sql`); this module only words it. An alert is
`{alert_id, kind, severity, payload}`; the `alert_id` is stable, so the outbox sends each once:
an open anomaly is not re-sent each day, an escalation is, and one recovery goes out.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

ANOMALY_EPISODES = "alert_anomaly_episodes"
BUDGET_FORECAST = "fct_budget_forecast"
DAILY_DIGEST = "fct_daily_digest"
# The relations the alerts are composed from: the alerts asset's deps, and nothing else is read.
ALERT_SOURCES = (ANOMALY_EPISODES, BUDGET_FORECAST, DAILY_DIGEST)

DIMENSION_LABEL = {
    "total": "Total spend",
    "provider": "Provider",
    "model": "Model",
    "feature": "Feature",
    "user": "User",
    "gpu_pool_idle": "Idle GPU cost of pool",
}


def day_alerts(conn: duckdb.DuckDBPyConnection, day: dt.date, link: str) -> list[dict]:
    """Every alert for `day`, in the order they should reach Slack: anomalies and recoveries,
    budget thresholds, then the digest."""
    episodes = sorted(_day_rows(conn, ANOMALY_EPISODES, day), key=lambda row: (row["dimension"], row["key"]))
    budgets = sorted(
        (row for row in _day_rows(conn, BUDGET_FORECAST, day) if row["threshold_crossed"] is not None),
        key=lambda row: row["feature"],
    )
    digests = _day_rows(conn, DAILY_DIGEST, day)
    if len(digests) != 1:
        raise ValueError(f"{DAILY_DIGEST}: expected one row for {day}, found {len(digests)}; materialize it first")
    return [*anomaly_alerts(episodes, day, link), *budget_alerts(budgets, link), digest_alert(digests[0], day, link)]


def details_link(dagster_url: str, day: dt.date) -> str:
    """Where an alert's reader finds the day's anomalies in the Dagster UI."""
    return f"{dagster_url.rstrip('/')}/assets/fct_spend_anomalies?partition={day}"


def _day_rows(conn: duckdb.DuckDBPyConnection, relation: str, day: dt.date) -> list[dict[str, Any]]:
    conn.execute(f"select * from {relation} where day = $day", {"day": day})  # noqa: S608 (relation from ALERT_SOURCES)
    names = [column[0] for column in conn.description]
    return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def _money(value: Any) -> str:
    return f"${float(value):,.2f}"


def anomaly_alerts(episodes: list[dict], day: dt.date, link: str) -> list[dict]:
    """One alert per `alert_anomaly_episodes` row: an open episode at its worst severity so far,
    or its recovery."""
    alerts = []
    for episode in episodes:
        name = f"{DIMENSION_LABEL[episode['dimension']]} {episode['key']}"
        if episode["episode_state"] == "open":
            severity = episode["worst_severity"]
            drivers = json.loads(episode["drivers"])
            lines = [
                {"name": driver.removesuffix("_usd").replace("_", " "), "impact_usd": round(value, 2)}
                for driver, value in sorted(drivers.items(), key=lambda item: -abs(item[1] or 0))
                if value is not None
            ]
            fields = [
                {"label": "Actual", "value": _money(episode["actual_usd"])},
                {"label": "Expected", "value": _money(episode["expected_usd"])},
                {
                    "label": "Impact",
                    "value": f"{_money(episode['impact_usd'])} ({(episode['impact_pct'] or 0):+.0%})"
                    if episode["impact_pct"] is not None
                    else _money(episode["impact_usd"]),
                },
                {"label": "Top driver", "value": episode["top_driver"].replace("_", " ")},
                {"label": "Since", "value": str(episode["episode_start"])},
            ]
            for label, column in (("Top users", "top_users"), ("Top models", "top_models")):
                movers = json.loads(episode[column] or "null") or []
                if movers:
                    fields.append(
                        {
                            "label": label,
                            "value": ", ".join(f"{mover['name']} ({mover['delta_usd']:+,.2f})" for mover in movers),
                        }
                    )
            alerts.append(
                _alert(
                    f"anomaly:{episode['dimension']}:{episode['key']}:{episode['episode_start']}:{severity}",
                    "anomaly",
                    severity,
                    {
                        "title": f"{name}: spend {'up' if episode['impact_usd'] > 0 else 'down'} "
                        f"{_money(abs(episode['impact_usd']))} on {day}",
                        "text": f"{name} spent {_money(episode['actual_usd'])} on {day}, expected "
                        f"{_money(episode['expected_usd'])}; top driver: {episode['top_driver']}",
                        "fields": fields,
                        "drivers": lines,
                        "link": link,
                    },
                )
            )
        else:  # recovered: QUIET_DAYS normal days in a row, the episode is over
            alerts.append(
                _alert(
                    f"recovery:{episode['dimension']}:{episode['key']}:{episode['episode_start']}",
                    "recovery",
                    "info",
                    {
                        "title": f"{name} is back to normal on {day}",
                        "text": f"{name}'s spend anomaly that started {episode['episode_start']} has cleared on {day}.",
                        "fields": [
                            {
                                "label": "Anomalous days",
                                "value": str((episode["last_anomaly_day"] - episode["episode_start"]).days + 1),
                            }
                        ],
                        "drivers": [],
                        "link": link,
                    },
                )
            )
    return alerts


def budget_alerts(budgets: list[dict], link: str) -> list[dict]:
    """80% and 100% of a monthly budget, actual or forecast: once per month per budget and threshold.
    `budgets` are `fct_budget_forecast` rows with a threshold crossed."""
    alerts = []
    for row in budgets:
        threshold = int(round(row["threshold_crossed"] * 100))
        alerts.append(
            _alert(
                f"budget:{row['feature']}:{row['month']}:{threshold}",
                "budget",
                "critical" if threshold >= 100 else "warning",
                {
                    "title": f"Budget {row['feature']}: {threshold}% of {_money(row['budget_usd'])} reached for {row['month']:%B %Y}",
                    "text": f"{row['feature']} has spent {_money(row['spend_to_date_usd'])} of {_money(row['budget_usd'])} "
                    f"this month and is forecast at {_money(row['forecast_month_end_usd'])}.",
                    "fields": [
                        {
                            "label": "Spent to date",
                            "value": f"{_money(row['spend_to_date_usd'])} ({row['pct_of_budget']:.0%})",
                        },
                        {
                            "label": "Forecast",
                            "value": f"{_money(row['forecast_month_end_usd'])} ({row['forecast_pct_of_budget']:.0%})",
                        },
                    ],
                    "drivers": [],
                    "link": link,
                },
            )
        )
    return alerts


def digest_alert(digest: dict, day: dt.date, link: str) -> dict:
    """Once a day, from the `fct_daily_digest` row: spend vs a week before, top movers, savings,
    reconciliation, idle GPUs."""
    total = digest["spend_usd"]
    week_ago = digest["week_ago_spend_usd"]
    savings = digest["caching_savings_usd"]
    off = digest["off_estimate_lines"]
    idle = digest["idle_gpu_cost_usd"]
    change = (
        f"{(float(total) / float(week_ago) - 1):+.0%} vs {day - dt.timedelta(days=7)}"
        if total and week_ago
        else "no spend a week before"
    )
    return _alert(
        f"digest:{day}",
        "digest",
        "info",
        {
            "title": f"LLM spend on {day}: {_money(total or 0)}",
            "text": f"API spend {_money(total or 0)} ({change}); caching saved {_money(savings or 0)}; "
            f"{off} bill line(s) off their estimate; idle GPUs cost {_money(idle or 0)}.",
            "fields": [
                {"label": "Spend", "value": f"{_money(total or 0)} ({change})"},
                {"label": "Caching saved", "value": _money(savings or 0)},
                {"label": "Bill lines off estimate", "value": str(off)},
                {"label": "Idle GPU cost", "value": _money(idle or 0)},
            ],
            "drivers": [
                {"name": f"feature {mover['feature']}", "impact_usd": round(float(mover["delta_usd"] or 0), 2)}
                for mover in digest["top_movers"] or []
            ],
            "link": link,
        },
    )


def _alert(alert_id: str, kind: str, severity: str, payload: dict) -> dict:
    return {"alert_id": alert_id, "kind": kind, "severity": severity, "payload": payload}
