"""Drift → outbox → Slack. Alerts are rows with stable ids; Slack sees each id once."""

import datetime as dt
import json

import dagster as dg
import duckdb

from pipelines.alerts.slack import SlackSettings, deliver, enqueue, ensure_outbox
from pipelines.resources.config import CostwatchConfig
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day

SLACK_DELIVERY = "alerts_delivered"
QUIET_DAYS = 3  # normal days in a row before an anomaly counts as resolved
DIMENSION_LABEL = {
    "total": "Total spend",
    "provider": "Provider",
    "model": "Model",
    "feature": "Feature",
    "user": "User",
    "gpu_pool_idle": "Idle GPU cost of pool",
}


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
    conn.execute(sql, params)
    names = [column[0] for column in conn.description]
    return [dict(zip(names, row)) for row in conn.fetchall()]


def _money(value) -> str:
    return f"${float(value):,.2f}"


def anomaly_alerts(conn: duckdb.DuckDBPyConnection, day: dt.date, link: str) -> list[dict]:
    """One alert per anomaly episode and severity reached: an open anomaly is not re-sent each
    day, an escalation is, and one recovery goes out after QUIET_DAYS normal days."""
    episodes = _rows(
        conn,
        """
        with flagged as (
            select day, dimension, key, severity,
                coalesce(day - lag(day) over (partition by dimension, key order by day), 99) as gap_days
            from fct_spend_anomalies where is_anomaly and day <= $day
        ),
        numbered as (
            -- An episode survives up to QUIET_DAYS - 1 normal days: a one-day dip in a lasting
            -- problem is not a recovery followed by a new alert.
            select *, sum(case when gap_days > $quiet_days then 1 else 0 end)
                over (partition by dimension, key order by day) as episode
            from flagged
        ),
        runs as (
            select dimension, key, episode, min(day) as episode_start, max(day) as last_day,
                max(case severity when 'critical' then 2 when 'warning' then 1 else 0 end) as worst
            from numbered group by all
        )
        select runs.*, latest.* exclude (day, dimension, key)
        from runs
        join fct_spend_anomalies as latest
            on latest.day = runs.last_day and latest.dimension = runs.dimension and latest.key = runs.key
        where runs.last_day = $day or runs.last_day = $day::date - $quiet_days
        """,
        {"day": day, "quiet_days": QUIET_DAYS},
    )
    alerts = []
    for episode in episodes:
        name = f"{DIMENSION_LABEL[episode['dimension']]} {episode['key']}"
        if episode["last_day"] == day:
            severity = "critical" if episode["worst"] == 2 else "warning"
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
        else:  # QUIET_DAYS normal days in a row: the episode is over
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
                                "value": str((episode["last_day"] - episode["episode_start"]).days + 1),
                            }
                        ],
                        "drivers": [],
                        "link": link,
                    },
                )
            )
    return alerts


def budget_alerts(conn: duckdb.DuckDBPyConnection, day: dt.date, link: str) -> list[dict]:
    """80% and 100% of a monthly budget, actual or forecast: once per month per budget and threshold."""
    alerts = []
    for row in _rows(
        conn, "select * from fct_budget_forecast where day = $day and threshold_crossed is not null", {"day": day}
    ):
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


def digest_alert(conn: duckdb.DuckDBPyConnection, day: dt.date, link: str) -> dict:
    """Once a day: spend vs a week before, top movers, savings, reconciliation, idle GPUs."""
    total, week_ago, savings = conn.execute(
        """
        select sum(cost_usd) filter (where day = $day), sum(cost_usd) filter (where day = $day::date - 7),
               sum(prompt_cache_savings_usd + gateway_cache_avoided_usd) filter (where day = $day)
        from fct_spend_by_feature_daily where day in ($day, $day::date - 7)
        """,
        {"day": day},
    ).fetchone()
    movers = conn.execute(
        """
        select feature, sum(cost_usd) filter (where day = $day) - coalesce(sum(cost_usd) filter (where day = $day::date - 7), 0)
        from fct_spend_by_feature_daily where day in ($day, $day::date - 7) group by feature
        order by abs(2) desc nulls last limit 3
        """,
        {"day": day},
    ).fetchall()
    (off,) = conn.execute(
        "select count(*) from fct_invoice_reconciliation where day = $day and status <> 'matched'", {"day": day}
    ).fetchone()
    (idle,) = conn.execute(
        "select sum(idle_cost_usd) from fct_gpu_utilization_daily where day = $day", {"day": day}
    ).fetchone()
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
                {"name": f"feature {feature}", "impact_usd": round(float(delta or 0), 2)} for feature, delta in movers
            ],
            "link": link,
        },
    )


def _alert(alert_id: str, kind: str, severity: str, payload: dict) -> dict:
    return {"alert_id": alert_id, "kind": kind, "severity": severity, "payload": payload}


def build_alerts_asset(config: CostwatchConfig, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="alerts_outbox",
        group_name="alerts",
        partitions_def=partitions,
        deps=[
            "fct_spend_anomalies",
            "fct_budget_forecast",
            "fct_spend_by_feature_daily",
            "fct_invoice_reconciliation",
            "fct_gpu_utilization_daily",
        ],
        kinds={"duckdb", "slack"},
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                SLACK_DELIVERY,
                asset="alerts_outbox",
                description="every alert due was posted to Slack (dry run: none is due); the ones that were not wait in "
                "alerts_outbox and go out with the next run",
            )
        ],
    )
    def alerts_outbox(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """The day's alerts (anomalies and their recoveries, budget thresholds, the daily digest)
        written to `alerts_outbox` under stable ids, then delivered to Slack; without Slack
        credentials they are printed and wait in the outbox (dry run)."""
        config = costwatch.config
        day = partition_day(context)
        link = f"{config.alerts.dagster_url.rstrip('/')}/assets/fct_spend_anomalies?partition={day}"
        settings = SlackSettings.from_env(config.alerts.slack_channel)
        now = dt.datetime.now(dt.timezone.utc)
        with warehouse.get_connection() as conn:
            ensure_outbox(conn)
            alerts = [*anomaly_alerts(conn, day, link), *budget_alerts(conn, day, link), digest_alert(conn, day, link)]
            # The digest goes out last: alerts of one run leave in created_at order.
            new = sum(
                enqueue(conn, created_at=now + dt.timedelta(microseconds=order), **alert)
                for order, alert in enumerate(alerts)
            )
            report = deliver(conn, settings, now=now)
        yield dg.MaterializeResult(
            metadata={
                "alerts_today": len(alerts),
                "new_in_outbox": new,
                "sent": dg.MetadataValue.json(report.sent),
                "held": dg.MetadataValue.json(report.held),
                "failed": dg.MetadataValue.json(report.failed),
                "dry_run": report.dry_run,
                "errors": dg.MetadataValue.json(report.errors),
                "stopped": report.stopped or "",
            }
        )
        # An outage is not a failed run (nothing is lost: the outbox keeps the alerts), but it
        # must show: a failed WARN check in the UI, and a line in `costwatch run`'s output.
        undelivered = [] if report.dry_run else [*report.held, *report.failed]
        yield dg.AssetCheckResult(
            check_name=SLACK_DELIVERY,
            passed=not undelivered,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "sent": len(report.sent),
                "undelivered": dg.MetadataValue.json(undelivered),
                "gave_up": dg.MetadataValue.json([] if report.dry_run else report.failed),
                "reason": report.stopped or next(iter(report.errors.values()), ""),
            },
        )

    return alerts_outbox
