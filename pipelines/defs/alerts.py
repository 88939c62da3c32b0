"""Drift → outbox → Slack. Alerts are rows with stable ids; Slack sees each id once."""

import datetime as dt

import dagster as dg

from pipelines.alerts.compose import ALERT_SOURCES, day_alerts, details_link
from pipelines.alerts.deliver import deliver
from pipelines.alerts.outbox import enqueue, ensure_outbox
from pipelines.resources.slack import SlackSettings
from pipelines.resources.warehouse import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    CostwatchConfigResource,
    WarehouseResource,
    partition_days,
)

SLACK_DELIVERY = "alerts_delivered"


def build_alerts_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="alerts_outbox",
        group_name="alerts",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        deps=list(ALERT_SOURCES),
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
        """Each day's alerts (anomalies and their recoveries, budget thresholds, the daily digest)
        written to `alerts_outbox` under stable ids, day after day as runs of single days would,
        then delivered to Slack once; without Slack credentials they are printed and wait in the
        outbox (dry run)."""
        config = costwatch.config
        days = partition_days(context)
        settings = SlackSettings.from_env(config.alerts.slack_channel)
        now = dt.datetime.now(dt.timezone.utc)
        with warehouse.get_connection() as conn:
            ensure_outbox(conn)
            by_day = {day: day_alerts(conn, day, details_link(config.alerts.dagster_url, day)) for day in days.days}
            # Oldest day first, each day's digest last: alerts of one run leave in created_at order.
            alerts = [alert for of_day in by_day.values() for alert in of_day]
            new = sum(
                enqueue(conn, created_at=now + dt.timedelta(microseconds=order), **alert)
                for order, alert in enumerate(alerts)
            )
            report = deliver(conn, settings, now=now)
        yield dg.MaterializeResult(
            metadata={
                # Of every day of the run (one day: that day's).
                "alerts_today": len(alerts),
                "alerts_by_day": dg.MetadataValue.json({day.isoformat(): len(a) for day, a in by_day.items()}),
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
