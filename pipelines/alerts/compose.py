"""The day's alerts, composed from the tables that decide them: rows in, outbox-ready alert dicts out.

What to alert about is decided in SQL (`sql/alerts/alert_anomaly_episodes.sql`, `fct_budget_forecast`,
`sql/alerts/fct_daily_digest.sql`); this module only words it. An alert is
`{alert_id, kind, severity, payload}`; the `alert_id` is stable, so the outbox sends each once:
an open anomaly is not re-sent each day, an escalation is, and one recovery goes out.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import duckdb

from pipelines.alerts.render import format_usd, week_change

ANOMALY_EPISODES = "alert_anomaly_episodes"
BUDGET_FORECAST = "fct_budget_forecast"
DAILY_DIGEST = "fct_daily_digest"
SAVINGS_FINDINGS = "fct_savings_opportunities"
# The relations the alerts are composed from: the alerts asset's deps, and nothing else is read.
ALERT_SOURCES = (ANOMALY_EPISODES, BUDGET_FORECAST, DAILY_DIGEST, SAVINGS_FINDINGS)

DIMENSION_LABEL = {
    "total": "Total spend",
    "provider": "Provider",
    "model": "Model",
    "feature": "Feature",
    "user": "User",
    "gpu_pool_idle": "Idle GPU cost of pool",
}


def day_alerts(
    conn: duckdb.DuckDBPyConnection, day: dt.date, dagster_url: str | None, *, min_monthly_usd: float
) -> list[dict]:
    """Every alert for `day`, in the order they should reach Slack: anomalies and recoveries,
    budget thresholds, savings findings of at least `min_monthly_usd` a month, then the digest
    (with the largest of them). Each links to its own asset's partition of `day` on
    `dagster_url` (no link when it is None)."""
    episodes = sorted(_day_rows(conn, ANOMALY_EPISODES, day), key=lambda row: (row["dimension"], row["key"]))
    budgets = sorted(
        (row for row in _day_rows(conn, BUDGET_FORECAST, day) if row["threshold_crossed"] is not None),
        key=lambda row: row["feature"],
    )
    digests = _day_rows(conn, DAILY_DIGEST, day)
    if len(digests) != 1:
        raise ValueError(f"{DAILY_DIGEST}: expected one row for {day}, found {len(digests)}; materialize it first")
    alerts = [
        *anomaly_alerts(episodes, day, details_link(dagster_url, "fct_spend_anomalies", day)),
        *budget_alerts(budgets, details_link(dagster_url, BUDGET_FORECAST, day)),
        *savings_alerts(
            _day_rows(conn, SAVINGS_FINDINGS, day), min_monthly_usd, details_link(dagster_url, SAVINGS_FINDINGS, day)
        ),
        digest_alert(
            digests[0], day, details_link(dagster_url, "fct_total_cost_daily", day), min_monthly_usd=min_monthly_usd
        ),
    ]
    return [alert | {"day": day} for alert in alerts]


def details_link(dagster_url: str | None, asset: str, day: dt.date) -> str | None:
    """The asset's partition of `day` in the Dagster UI at `dagster_url`; None without one."""
    if dagster_url is None:
        return None
    return f"{dagster_url.rstrip('/')}/assets/{asset}?view=partitions&partition={day}"


def _day_rows(conn: duckdb.DuckDBPyConnection, relation: str, day: dt.date) -> list[dict[str, Any]]:
    conn.execute(f"select * from {relation} where day = $day", {"day": day})  # noqa: S608 (relation from ALERT_SOURCES)
    names = [column[0] for column in conn.description]
    return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def _money(value: Any) -> str:
    """`$1,234.56`, `-$6.19`: the sign before the dollar sign."""
    return format_usd(float(value))


def anomaly_alerts(episodes: list[dict], day: dt.date, link: str | None) -> list[dict]:
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
                    "value": f"{_money(episode['impact_usd'])} ({(episode['impact_ratio'] or 0):+.0%})"
                    if episode["impact_ratio"] is not None
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
                            "value": ", ".join(
                                f"{mover['name']} ({format_usd(mover['delta_usd'], signed=True)})" for mover in movers
                            ),
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


def budget_alerts(budgets: list[dict], link: str | None) -> list[dict]:
    """80% and 100% of a monthly budget: "reached" once actual spend has, "forecast to reach" while
    only the month-end forecast has. Each once per month per budget, threshold and wording (a
    forecast crossing is followed by its own alert when spend actually gets there).
    `budgets` are `fct_budget_forecast` rows with a threshold crossed."""
    alerts = []
    for row in budgets:
        threshold = int(round(row["threshold_crossed"] * 100))
        reached = row["spend_to_budget_ratio"] >= row["threshold_crossed"]
        month = f"{row['month']:%B %Y}"
        if reached:
            title = f"Budget {row['feature']}: {threshold}% of {_money(row['budget_usd'])} reached for {month}"
        else:
            title = (
                f"Budget {row['feature']}: forecast to reach {threshold}% of {_money(row['budget_usd'])} "
                f"by the end of {month} ({row['spend_to_budget_ratio']:.0%} spent so far)"
            )
        alerts.append(
            _alert(
                f"budget:{row['feature']}:{row['month']}:{threshold}" + ("" if reached else ":forecast"),
                "budget",
                "critical" if threshold >= 100 and reached else "warning",
                {
                    "title": title,
                    "text": f"{row['feature']} has spent {_money(row['spend_to_date_usd'])} of {_money(row['budget_usd'])} "
                    f"this month and is forecast at {_money(row['forecast_month_end_usd'])}.",
                    "fields": [
                        {
                            "label": "Spent to date",
                            "value": f"{_money(row['spend_to_date_usd'])} ({row['spend_to_budget_ratio']:.0%})",
                        },
                        {
                            "label": "Forecast",
                            "value": f"{_money(row['forecast_month_end_usd'])} ({row['forecast_to_budget_ratio']:.0%})",
                        },
                    ],
                    "drivers": [],
                    "link": link,
                },
            )
        )
    return alerts


SAVINGS_IN_DIGEST = 3  # the digest's savings block: the largest findings, one line each
BASIS_LABEL = {"measured": "measured", "price_rule": "price rule", "upper_bound": "upper bound"}


def savings_lines(findings: list[dict] | None, min_monthly_usd: float) -> list[str]:
    """The digest's savings block: the largest findings of at least `min_monthly_usd` a month,
    one line each, the basis first (a measured waste and an upper bound are different kinds of
    dollars, so the lines are not added up)."""
    shown = [row for row in findings or [] if float(row["monthly_savings_usd"]) >= min_monthly_usd]
    lines = []
    for row in shown[:SAVINGS_IN_DIGEST]:
        target = f" -> {row['target']}" if row["target"] else ""
        lines.append(
            f"[{BASIS_LABEL.get(row['basis'], row['basis'])}] {row['feature']}: {row['kind']}, "
            f"{row['provider']}/{row['model']}{target}: {_money(row['monthly_savings_usd'])}/mo "
            f"({row['requests_affected']:,} calls)"
        )
    return lines


def savings_step(monthly_usd: float, min_monthly_usd: float) -> int:
    """The doubling a finding's monthly dollars have reached: 1 from `min_monthly_usd` (at least
    $1), 2 from twice it, 4, 8... A finding is posted once per step and basis."""
    base = max(min_monthly_usd, 1.0)
    return 1 << max(int(math.floor(math.log2(monthly_usd / base))), 0)


def savings_alerts(findings: list[dict], min_monthly_usd: float, link: str | None) -> list[dict]:
    """A savings finding of at least `min_monthly_usd` a month is posted once; again only when its
    monthly dollars reach the next doubling of the threshold (2x, 4x...) or its basis changes, so
    its id holds both: `savings:<finding_key>:<basis>:x<step>`. Ids follow from the numbers alone,
    so the delivery ledger keeps one from being posted twice even after the warehouse is rebuilt.
    A dismissed or done finding is never posted, nor an exposure row (no estimate)."""
    alerts = []
    for row in sorted(findings, key=lambda row: row["finding_key"]):
        if row["monthly_savings_usd"] is None:  # basis exposure: spend in scope, no saving to post
            continue
        monthly = float(row["monthly_savings_usd"])
        if row["status"] in ("dismissed", "done") or monthly < min_monthly_usd or monthly <= 0:
            continue
        step = savings_step(monthly, min_monthly_usd)
        basis = BASIS_LABEL.get(row["basis"], row["basis"])
        target = f" -> {row['target']}" if row["target"] else ""
        alerts.append(
            _alert(
                f"savings:{row['finding_key']}:{row['basis']}:x{step}",
                "savings_opportunity",
                "info",
                {
                    "title": f"[{basis}] {row['feature']}: {row['kind']} on {row['provider']}/{row['model']}{target}, "
                    f"{_money(monthly)}/mo",
                    "text": row["assumptions"],
                    "fields": [
                        {"label": f"Monthly ({row['window_days']}-day basis)", "value": f"{_money(monthly)}/mo"},
                        {"label": "In the window", "value": _money(row["estimated_savings_usd"])},
                        {
                            "label": "Calls",
                            "value": f"{row['requests_affected']:,} of {row['requests_in_scope']:,} in scope",
                        },
                        {"label": "Basis", "value": f"{basis} ({row['confidence']} confidence)"},
                        {"label": "Key", "value": row["finding_key"]},
                    ],
                    "link": link,
                },
            )
        )
    return alerts


def digest_alert(digest: dict, day: dt.date, link: str | None, *, min_monthly_usd: float) -> dict:
    """Once a day, from the `fct_daily_digest` row: the day's total cost (API + GPU busy and idle)
    against a week before, then API spend movers, caching savings, reconciliation, and the
    largest savings findings of at least `min_monthly_usd` a month."""
    total = float(digest["total_cost_usd"] or 0)
    week_ago = digest["week_ago_total_cost_usd"]
    api = float(digest["api_cost_usd"] or 0)
    busy, idle = float(digest["gpu_busy_cost_usd"] or 0), float(digest["gpu_idle_cost_usd"] or 0)
    savings = digest["caching_savings_usd"]
    off = digest["off_estimate_lines"]
    change = week_change(total, week_ago, day - dt.timedelta(days=7))
    gpu = f"{_money(busy + idle)} (busy {_money(busy)}, idle {_money(idle)})"
    findings = digest.get("findings") or []
    no_data = any(finding["finding"] == "no_gateway_data" for finding in findings)
    # The lists, each a field when it has lines: the day's data findings, then the savings block.
    lists = []
    if findings:
        lists.append({"label": "Findings", "value": "\n".join(f"• {finding['message']}" for finding in findings)})
    if savings_block := savings_lines(digest.get("savings_findings"), min_monthly_usd):
        window = digest["savings_findings"][0]["window_days"]
        lists.append(
            {
                "label": f"Savings ({window}-day basis, not additive)",
                "value": "\n".join(f"• {line}" for line in savings_block),
            }
        )
    return _alert(
        f"digest:{day}",
        "digest",
        "warning" if any(finding["severity"] == "warning" for finding in findings) else "info",
        {
            "title": f"LLM cost on {day}: {_money(total)} ({change})"
            + (": no gateway data, API calls unknown" if no_data else ""),
            "text": f"Total cost {_money(total)} ({change}): API {_money(api)}, self-hosted GPUs {gpu}; "
            f"caching saved {_money(savings or 0)}; {off} bill line(s) off their estimate.",
            "fields": [
                {"label": "Total cost", "value": f"{_money(total)} ({change})"},
                {"label": "API", "value": _money(api)},
                {"label": "GPU", "value": gpu},
                {"label": "Caching saved", "value": _money(savings or 0)},
                {"label": "Bill lines off estimate", "value": str(off)},
                *lists,
            ],
            "drivers": [
                {"name": f"feature {mover['feature']} (API)", "impact_usd": round(float(mover["delta_usd"] or 0), 2)}
                for mover in digest["top_movers"] or []
            ],
            "link": link,
        },
    )


def _alert(alert_id: str, kind: str, severity: str, payload: dict) -> dict:
    return {"alert_id": alert_id, "kind": kind, "severity": severity, "payload": payload}
