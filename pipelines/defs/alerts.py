"""Drift → outbox → Slack. Alerts are rows with stable ids; Slack sees each id once."""

import datetime as dt

import dagster as dg

from pipelines.alerts.compose import ALERT_SOURCES, day_alerts
from pipelines.alerts.outbox import oldest_postable_day
from pipelines.resources.slack import SlackSettings
from pipelines.resources.state import state_backend
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
                description="no alert waits undelivered: every alert due was posted to Slack; alerts that wait "
                "(Slack not configured, unreachable or refusing, or left by alerts.delivery_deadline_s) go out "
                "with the next run, or expire after alerts.max_age_days; uncertain ones (posted, answer lost) "
                "are looked up in the channel (bot token) or wait for `costwatch alerts mark-sent|resend` (webhook)",
                partitions_def=partitions,
            )
        ],
    )
    def alerts_outbox(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """Each day's alerts (anomalies and their recoveries, budget thresholds, the daily digest)
        written to `alerts_outbox` under stable ids, day after day as runs of single days would,
        then delivered to Slack once; without Slack credentials the run's alerts are printed and
        wait in the outbox (dry run). An alert of a day older than `alerts.max_age_days` is
        expired, never posted: one catch-up message counts those."""
        config = costwatch.config
        days = partition_days(context)
        settings = SlackSettings.from_env(config.alerts.slack_channel)
        now = dt.datetime.now(dt.timezone.utc)
        with warehouse.get_connection() as conn:
            # In the warehouse (embedded) or in Postgres (`state.backend`): pipelines/resources/state.py.
            outbox = state_backend(config).outbox(conn)
            outbox.ensure()
            by_day = {
                day: day_alerts(conn, day, config.alerts.dagster_url, min_monthly_usd=config.savings.min_monthly_usd)
                for day in days.days
            }
            # Oldest day first, each day's digest last: alerts of one run leave in created_at order.
            alerts = [alert for of_day in by_day.values() for alert in of_day]
            oldest_day = oldest_postable_day(now, config.alerts.max_age_days)
            new = sum(
                outbox.enqueue(created_at=now + dt.timedelta(microseconds=order), oldest_day=oldest_day, **alert)
                for order, alert in enumerate(alerts)
            )
            # Embedded: the record of what reached Slack lives beside the lake, not in the warehouse.
            report = outbox.deliver(
                settings,
                now=now,
                deadline_s=config.alerts.delivery_deadline_s,
                max_age_days=config.alerts.max_age_days,
                days=days.days,
            )
        yield dg.MaterializeResult(
            metadata={
                # Of every day of the run (one day: that day's).
                "alerts_today": len(alerts),
                "alerts_by_day": dg.MetadataValue.json({day.isoformat(): len(a) for day, a in by_day.items()}),
                "new_in_outbox": new,
                "sent": dg.MetadataValue.json(report.sent),
                "held": dg.MetadataValue.json(report.held),
                "failed": dg.MetadataValue.json(report.failed),
                # Left for the next run by the delivery deadline (alerts.delivery_deadline_s).
                "deferred": dg.MetadataValue.json(report.deferred),
                # Posted, answer lost: maybe in the channel (see README, Slack alerts).
                "uncertain": dg.MetadataValue.json(report.uncertain),
                "found_in_channel": dg.MetadataValue.json(report.confirmed),
                "already_sent": dg.MetadataValue.json(report.already_sent),
                "delivery_s": round(report.elapsed_s, 3),
                "dry_run": report.dry_run,
                "errors": dg.MetadataValue.json(report.errors),
                "stopped": report.stopped or "",
                "expired": report.expired,
                "caught_up": report.caught_up,
            }
        )
        # Undelivered alerts are not a failed run (nothing is lost: the outbox keeps them until
        # they expire), but they must show: a failed WARN check in the UI, and a line in
        # `costwatch run`'s output. A dry run delivers nothing: its waiting alerts count too.
        undelivered = [*report.held, *report.deferred, *report.uncertain, *report.failed]
        reason = report.stopped or next(iter(report.errors.values()), "")
        if report.dry_run and undelivered:
            reason = "Slack is not configured: set SLACK_BOT_TOKEN (with alerts.slack_channel) or SLACK_WEBHOOK_URL to post them"
        yield dg.AssetCheckResult(
            check_name=SLACK_DELIVERY,
            passed=not undelivered,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "sent": len(report.sent),
                "undelivered": len(undelivered),
                "undelivered_alerts": dg.MetadataValue.json(undelivered[:20]),
                "gave_up": dg.MetadataValue.json(report.failed),
                "deferred": len(report.deferred),
                "uncertain": dg.MetadataValue.json(report.uncertain),
                "expired": report.expired,
                "reason": reason,
            },
        )

    return alerts_outbox
