"""The alert outbox behind one small interface, whichever state backend holds it
(`state.backend`, pipelines/resources/state.py):

- `EmbeddedOutbox`: `alerts_outbox` in warehouse.duckdb, delivered by `alerts/deliver.py` with
  the delivery ledger beside the lake (one run at a time, under the project's run lock);
- `PostgresOutbox` (`alerts/outbox_postgres.py`): `costwatch.alerts_outbox`, each alert claimed
  with a row lock, so concurrent runs post it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import duckdb

from pipelines.alerts.deliver import DEFAULT_DEADLINE_S, DeliveryReport, deliver
from pipelines.alerts.ledger import DeliveryLedger, ledger_path
from pipelines.alerts.outbox import alert_statuses, enqueue, ensure_outbox
from pipelines.resources.slack import SlackSettings


class Outbox(Protocol):
    def ensure(self) -> None:
        """Create the outbox if missing. Idempotent."""
        ...

    def enqueue(
        self,
        *,
        alert_id: str,
        kind: str,
        severity: str,
        created_at: datetime,
        payload: dict,
        day: date,
        oldest_day: date,
    ) -> bool:
        """Add an alert unless its `alert_id` is there already (whatever its status); True when added."""
        ...

    def deliver(
        self,
        settings: SlackSettings,
        *,
        now: datetime,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_attempts: int = 5,
        max_age_days: int | None = None,
        days: Sequence[date] | None = None,
    ) -> DeliveryReport:
        """Post the pending alerts to Slack, each once; what failed or waits stays pending."""
        ...

    def statuses(self) -> dict[str, str]:
        """alert_id -> status (pending, sent, failed, expired, uncertain, posting)."""
        ...


class EmbeddedOutbox:
    """`alerts_outbox` in the warehouse (`conn`), its ledger in the lake's `_manifests`."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, lake_dir: Path):
        self.conn = conn
        self.ledger = ledger_path(lake_dir)

    def ensure(self) -> None:
        ensure_outbox(self.conn)

    def enqueue(self, **alert) -> bool:
        return enqueue(self.conn, **alert)

    def deliver(self, settings: SlackSettings, *, now: datetime, **options) -> DeliveryReport:
        with DeliveryLedger(self.ledger) as ledger:
            return deliver(self.conn, settings, now=now, ledger=ledger, **options)

    def statuses(self) -> dict[str, str]:
        return {alert_id: status for alert_id, (status, _) in alert_statuses(self.conn).items()}
