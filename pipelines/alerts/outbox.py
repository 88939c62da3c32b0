"""The `alerts_outbox` table: the contract between the alerts asset and Slack delivery.

The alerts asset decides *what* to say and enqueues it here under a stable `alert_id`; delivery
(`alerts/deliver.py`) posts the `pending` rows and commits each row's new status before
touching the next, so a crash mid-batch never re-posts an alert Slack already accepted. What
was sent is also kept outside the warehouse, in the delivery ledger (`alerts/ledger.py`), which
`reconcile` applies here: losing `warehouse.duckdb` never re-sends an alert.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple

import duckdb

from pipelines.alerts.render import render
from pipelines.lake.partitions import sql_string

# What an operator does about an alert that may or may not be in the channel.
SETTLE_HINT = (
    "run `costwatch alerts mark-sent ALERT_ID` (it is there) or `costwatch alerts resend ALERT_ID` "
    "(it is not: the next run posts it)"
)

OUTBOX_DDL = """
create table if not exists alerts_outbox (
    alert_id varchar primary key,
    kind varchar,
    severity varchar,
    created_at timestamptz,
    payload varchar,
    status varchar,
    attempts integer,
    sent_at timestamptz,
    last_error varchar
)
"""
# Columns added after the first release: a warehouse created before them gains them on the next run.
_ADDED_COLUMNS = {"day": "date", "caught_up_at": "timestamptz"}

_OUTBOX_COMMENTS = {
    "alert_id": "stable dedupe key: the same alert enqueued twice is one row, posted once",
    "kind": "what raised the alert (e.g. spend_anomaly, budget_forecast)",
    "severity": "how loud the alert is, as the alerts asset ranked it",
    "created_at": "when the alert was enqueued; delivery goes oldest first",
    "payload": "JSON text: title, text (plain fallback), fields [{label, value}], drivers [{name, impact_usd}], link",
    "status": "pending (waiting, or Slack not configured) / sent / failed (gave up after max_attempts) / "
    "expired (its day is older than alerts.max_age_days: never posted, counted in one catch-up message) / "
    "uncertain (posted, but the answer was lost: it may be in the channel; looked up in the channel's history "
    "before any new post, or, with a webhook, left for `costwatch alerts mark-sent|resend`)",
    "attempts": "posts tried so far, successful or not",
    "sent_at": "when Slack accepted the post (for an alert found in the channel's history: the message's time)",
    "last_error": "why the latest attempt failed or is uncertain (secrets redacted); null once sent",
    "day": "the day the alert is about (the partition that raised it)",
    "caught_up_at": "for an expired alert: when the catch-up message that counted it reached Slack",
}


class PendingAlert(NamedTuple):
    alert_id: str
    kind: str | None
    severity: str | None
    payload: str | None  # JSON text as stored; delivery parses and renders it
    attempts: int
    day: date | None  # NULL for an alert enqueued before the outbox had days
    status: str = "pending"  # or "uncertain": posted before, answer lost
    created_at: datetime | None = None


def ensure_outbox(conn: duckdb.DuckDBPyConnection) -> None:
    """Create `alerts_outbox` if missing and (re)document it. Idempotent."""
    conn.execute(OUTBOX_DDL)
    for column, kind in _ADDED_COLUMNS.items():
        conn.execute(f"alter table alerts_outbox add column if not exists {column} {kind}")  # noqa: S608 (column names and types are _ADDED_COLUMNS constants)
    # COMMENT ON takes a literal, not a parameter; the texts are this module's constants.
    conn.execute(
        "comment on table alerts_outbox is 'Alerts waiting for, or done with, Slack delivery; one row per alert_id'"
    )
    for column, text in _OUTBOX_COMMENTS.items():
        conn.execute(f"comment on column alerts_outbox.{column} is {sql_string(text)}")  # noqa: S608 (column names and texts are _OUTBOX_COMMENTS constants; text escaped by sql_string)


def enqueue(
    conn: duckdb.DuckDBPyConnection,
    *,
    alert_id: str,
    kind: str,
    severity: str,
    created_at: datetime,
    payload: dict,
    day: date,
    oldest_day: date,
) -> bool:
    """Add an alert unless its `alert_id` is already in the outbox; True when added. `pending`,
    or `expired` when its `day` is before `oldest_day` (see `oldest_postable_day`).

    An existing row is left alone whatever its status, so re-running the asset that raised the
    alert never re-sends it nor resets its attempts. The payload is rendered first, so a payload
    Slack could not show is refused here, in the producer, with the key that is wrong.
    """
    render(payload)
    rows = conn.execute(
        """
        insert into alerts_outbox (alert_id, kind, severity, created_at, payload, status, attempts, day)
        values (?, ?, ?, ?, ?, case when ?::date < ?::date then 'expired' else 'pending' end, 0, ?)
        on conflict (alert_id) do nothing
        returning alert_id
        """,
        [alert_id, kind, severity, created_at, json.dumps(payload), day, oldest_day, day],
    ).fetchall()
    return bool(rows)


def oldest_postable_day(now: datetime, max_age_days: int) -> date:
    """The oldest alert day still worth a message: `max_age_days` before today (UTC)."""
    return now.astimezone(timezone.utc).date() - timedelta(days=max_age_days)


def expire_stale(conn: duckdb.DuckDBPyConnection, oldest_day: date) -> int:
    """Pending alerts of days before `oldest_day` become `expired`; how many did."""
    rows = conn.execute(
        """
        update alerts_outbox set status = 'expired'
        -- An alert enqueued before the outbox had days: its enqueue day bounds its day.
        where status = 'pending' and coalesce(day, created_at::date) < ?
        returning alert_id
        """,
        [oldest_day],
    ).fetchall()
    return len(rows)


class Expired(NamedTuple):
    """Expired alerts no catch-up message has counted yet."""

    alert_ids: list[str]
    by_kind: dict[str, int]
    first_day: date | None
    last_day: date | None


def uncounted_expired(conn: duckdb.DuckDBPyConnection) -> Expired:
    rows = conn.execute(
        "select alert_id, kind, day from alerts_outbox where status = 'expired' and caught_up_at is null "
        "order by day, alert_id"
    ).fetchall()
    by_kind: dict[str, int] = {}
    for _, kind, _ in rows:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    days = [day for _, _, day in rows if day is not None]
    return Expired([alert_id for alert_id, _, _ in rows], by_kind, min(days, default=None), max(days, default=None))


def record_caught_up(conn: duckdb.DuckDBPyConnection, alert_ids: list[str], now: datetime) -> None:
    """The catch-up message counting these expired alerts reached Slack."""
    _commit(
        conn,
        "update alerts_outbox set caught_up_at = ? where alert_id in (select unnest(?::varchar[]))",
        [now, alert_ids],
    )


def pending_alerts(conn: duckdb.DuckDBPyConnection, *, uncertain: bool = False) -> list[PendingAlert]:
    """The alerts still to post, oldest first; with `uncertain`, the uncertain ones among them."""
    rows = conn.execute(
        """
        select alert_id, kind, severity, payload, coalesce(attempts, 0) as attempts, day, status, created_at
        from alerts_outbox
        where status = 'pending' or (status = 'uncertain' and ?)
        order by created_at nulls last, alert_id
        """,
        [uncertain],
    ).fetchall()
    return [PendingAlert(*row) for row in rows]


def uncertain_alerts(conn: duckdb.DuckDBPyConnection) -> list[PendingAlert]:
    return [alert for alert in pending_alerts(conn, uncertain=True) if alert.status == "uncertain"]


def alert_statuses(conn: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, bool]]:
    """Every alert's status, and for an expired one whether a catch-up message counted it."""
    rows = conn.execute("select alert_id, status, caught_up_at is not null from alerts_outbox").fetchall()
    return {alert_id: (status, counted) for alert_id, status, counted in rows}


def apply_ledger(
    conn: duckdb.DuckDBPyConnection,
    *,
    sent: dict[str, datetime],
    caught_up: list[str],
    uncertain: list[str],
    resend: list[str],
    now: datetime,
) -> None:
    """Bring the outbox in line with the delivery ledger, in one transaction: ids the ledger has
    as sent are `sent` (at the ledger's time), expired ids a catch-up counted are counted, pending
    ids it has as uncertain are `uncertain`, and uncertain ids an operator asked to resend are
    `pending` again."""
    conn.begin()
    try:
        conn.execute(
            """
            update alerts_outbox set status = 'sent', sent_at = coalesce(sent_at, ledger.at), last_error = null
            from (select unnest(?::varchar[]) as alert_id, unnest(?::timestamptz[]) as at) as ledger
            where alerts_outbox.alert_id = ledger.alert_id and status <> 'sent'
            """,
            [list(sent), list(sent.values())],
        )
        conn.execute(
            "update alerts_outbox set caught_up_at = ? "
            "where status = 'expired' and caught_up_at is null and alert_id in (select unnest(?::varchar[]))",
            [now, caught_up],
        )
        conn.execute(
            "update alerts_outbox set status = 'uncertain' "
            "where status = 'pending' and alert_id in (select unnest(?::varchar[]))",
            [uncertain],
        )
        conn.execute(
            "update alerts_outbox set status = 'pending' "
            "where status = 'uncertain' and alert_id in (select unnest(?::varchar[]))",
            [resend],
        )
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def require_autocommit(conn: duckdb.DuckDBPyConnection) -> None:
    # Each alert's outcome must be durable before the next post; inside a caller's transaction
    # it would not be, and a crash would re-send everything the batch had delivered.
    try:
        conn.begin()
    except duckdb.TransactionException:
        raise RuntimeError(
            "deliver: the connection is inside a transaction; commit it first (each alert is committed on its own)"
        ) from None
    conn.commit()


def record_sent(conn: duckdb.DuckDBPyConnection, alert_id: str, attempts: int, now: datetime) -> None:
    """Slack accepted the post: `sent`, committed before the next alert is touched."""
    _commit(
        conn,
        """
        update alerts_outbox
        set status = 'sent', sent_at = ?, attempts = ?, last_error = null
        where alert_id = ? and status in ('pending', 'uncertain')
        """,
        [now, attempts, alert_id],
    )


def record_uncertain(conn: duckdb.DuckDBPyConnection, alert_id: str, attempts: int, reason: str) -> None:
    """The post went out and its answer was lost: `uncertain`, never posted again unseen."""
    _commit(
        conn,
        """
        update alerts_outbox
        set status = 'uncertain', attempts = ?, last_error = ?
        where alert_id = ? and status in ('pending', 'uncertain')
        """,
        [attempts, reason[:1000], alert_id],
    )


def record_failure(conn: duckdb.DuckDBPyConnection, alert_id: str, attempts: int, status: str, reason: str) -> None:
    """A failed attempt: still `pending` or given up (`failed`), with its (redacted) reason."""
    _commit(
        conn,
        """
        update alerts_outbox
        set status = ?, attempts = ?, last_error = ?
        where alert_id = ? and status in ('pending', 'uncertain')
        """,
        [status, attempts, reason[:1000], alert_id],
    )


def _commit(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> None:
    conn.begin()
    try:
        conn.execute(sql, params)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
