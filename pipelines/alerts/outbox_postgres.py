"""The alert outbox in Postgres (`state.backend: postgres`): `costwatch.alerts_outbox`, one row per
(project scope, alert_id), delivered by any number of concurrent runs, each alert posted once.

**Claims.** A deliverer takes the oldest pending alert no one else holds with
`SELECT ... FOR UPDATE SKIP LOCKED`, marks it `posting` and takes a session advisory lock on it,
in one transaction; then it posts, and commits the outcome (`sent`; `pending` or `failed` with
the reason; `uncertain` when the answer was lost) before it claims the next. A concurrent
deliverer skips locked rows and never sees a `posting` row as pending, so no alert is posted by
two runs. The advisory lock lives as long as the claimer's connection: a `posting` row whose
lock is free belongs to a deliverer that died mid-post, and becomes `uncertain` (it may be in
the channel; it is reported and not posted again unseen), as the embedded ledger's `posting`
entries do.

The outbox row is the durable record here (the database is not rebuilt from the lake, unlike
`warehouse.duckdb`), so no separate ledger is kept. With a bot token and the channel given by
its ID, a delivery looks the uncertain alerts up in the channel's history (found: `sent`; not
found: posted again); otherwise an operator settles them on their rows (`costwatch alerts
mark-sent|resend`: `settle`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from pipelines.alerts.deliver import (
    _ALERT_EVENT,
    _LOOKUP_MARGIN,
    DEFAULT_DEADLINE_S,
    DeliveryReport,
    _catch_up_payload,
    _Deadline,
    _Deferred,
    _load_payload,
    _LookupFailed,
    _PostFailed,
    _PostUncertain,
    _print_dry_run,
    _sdk_logs_redacted,
    _Slack,
    channel_id_of,
)
from pipelines.alerts.outbox import SETTLE_HINT, Expired, PendingAlert, oldest_postable_day
from pipelines.alerts.render import render
from pipelines.resources.slack import SlackSettings

if TYPE_CHECKING:
    from pipelines.resources.state import PostgresDatabase

logger = logging.getLogger(__name__)

_COLUMNS = "alert_id, kind, severity, payload, attempts, day, status, created_at"
_INTERRUPTED = (
    "interrupted mid-post (the run that claimed it ended before recording the answer): it may be in the "
    "channel; not posted again unseen"
)


class PostgresOutbox:
    def __init__(self, database: PostgresDatabase, scope: str):
        self.database = database
        self.scope = scope

    def ensure(self) -> None:
        self.database.ensure_schema()

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
        """As `outbox.enqueue`: added `pending` (or `expired` before `oldest_day`) unless the id is there."""
        render(payload)
        with self.database.transaction() as cursor:
            cursor.execute(
                """
                insert into costwatch.alerts_outbox
                    (scope, alert_id, kind, severity, created_at, payload, status, attempts, day)
                values (%s, %s, %s, %s, %s, %s, case when %s::date < %s::date then 'expired' else 'pending' end, 0, %s)
                on conflict (scope, alert_id) do nothing
                returning alert_id
                """,
                [self.scope, alert_id, kind, severity, created_at, json.dumps(payload), day, oldest_day, day],
            )
            return cursor.fetchone() is not None

    def statuses(self) -> dict[str, str]:
        with self.database.transaction() as cursor:
            cursor.execute("select alert_id, status from costwatch.alerts_outbox where scope = %s", [self.scope])
            return dict(cursor.fetchall())

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
        """Post every pending alert this call can claim, oldest first, each outcome committed before
        the next claim, within `deadline_s`. Outcomes and report as `deliver.deliver`'s: Slack down or
        refusing stops the batch and the rest stay pending, attempts unspent."""
        if now.tzinfo is None:
            raise ValueError("now: pass a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
        if max_attempts < 1:
            raise ValueError("max_attempts: must be >= 1")
        if not deadline_s > 0:
            raise ValueError("deadline_s: must be > 0")
        self.ensure()
        deadline = _Deadline(deadline_s)
        report = DeliveryReport(dry_run=settings.dry_run, deadline_s=deadline_s)
        conn = self.database.connect()
        try:
            self._deliver(conn, settings, report, deadline, now=now, max_attempts=max_attempts,
                          max_age_days=max_age_days, days=days)  # fmt: skip
        finally:
            conn.rollback()
            conn.close()  # ends the session: any advisory lock still held goes with it
            report.elapsed_s = deadline.elapsed()
        return report

    def uncertain(self) -> list[tuple[str, datetime | None, str | None]]:
        """The alerts posted whose answer was lost: (alert_id, claimed at, why), oldest first."""
        with self.database.transaction() as cursor:
            cursor.execute(
                "select alert_id, claimed_at, last_error from costwatch.alerts_outbox"
                " where scope = %s and status = 'uncertain' order by claimed_at nulls first, alert_id",
                [self.scope],
            )
            return list(cursor.fetchall())

    def settle(self, alert_ids: Sequence[str], verb: str, *, now: datetime) -> dict[str, str]:
        """An operator's word on uncertain alerts, in one transaction: `mark-sent` (it is in the
        channel: `sent`, never posted) or `resend` (it is not: `pending`, posted by the next run).
        Nothing changes when one of them is not uncertain; returns those with their status
        ('not in the outbox' for an unknown id), empty when all were settled."""
        if verb not in ("mark-sent", "resend"):
            raise ValueError(f"settle: {verb!r} is not mark-sent or resend")
        with self.database.transaction() as cursor:
            cursor.execute(
                "select alert_id, status from costwatch.alerts_outbox where scope = %s and alert_id = any(%s)"
                " for update",
                [self.scope, list(alert_ids)],
            )
            known = dict(cursor.fetchall())
            wrong = {
                alert_id: known.get(alert_id, "not in the outbox")
                for alert_id in alert_ids
                if known.get(alert_id) != "uncertain"
            }
            if wrong:
                return wrong
            if verb == "mark-sent":
                cursor.execute(
                    "update costwatch.alerts_outbox set status = 'sent', sent_at = %s,"
                    " last_error = 'marked sent by an operator' where scope = %s and alert_id = any(%s)",
                    [now, self.scope, list(alert_ids)],
                )
            else:
                cursor.execute(
                    "update costwatch.alerts_outbox set status = 'pending', last_error = 'to post again (operator)'"
                    " where scope = %s and alert_id = any(%s)",
                    [self.scope, list(alert_ids)],
                )
        return {}

    # ---- one batch

    def _deliver(self, conn, settings, report, deadline, *, now, max_attempts, max_age_days, days) -> None:
        self._settle_interrupted(conn)
        if max_age_days is not None:
            expired = self._run(
                conn,
                "update costwatch.alerts_outbox set status = 'expired' where scope = %s and status = 'pending' "
                "and coalesce(day, created_at::date) < %s returning alert_id",
                [self.scope, oldest_postable_day(now, max_age_days)],
            )
            report.expired = len(expired)
        if settings.dry_run:
            self._keep_uncertain(conn, report, "uncertain: may be in the channel; not posted again unseen")
            waiting = [PendingAlert(*row) for row in self._run(conn, self._select("pending"), [self.scope])]
            for alert in waiting:
                if days is None or alert.day in days:
                    _print_dry_run(alert.alert_id, alert.kind, alert.severity, alert.payload, settings.channel)
            report.held.extend(alert.alert_id for alert in waiting)
            return
        with _sdk_logs_redacted(settings):
            slack = _Slack(settings, deadline)
            if not self._catch_up(conn, slack, report, now, max_age_days):
                return
            if not self._look_up_uncertain(conn, slack, settings, report):
                return
            tried: list[str] = []
            while (alert := self._claim(conn, tried)) is not None:
                tried.append(alert.alert_id)
                if not self._post(conn, slack, settings, report, alert, now=now, max_attempts=max_attempts):
                    return

    def _post(self, conn, slack, settings, report, alert: PendingAlert, *, now, max_attempts) -> bool:
        """Post one claimed alert and record its outcome; False when the batch stops."""
        attempts = alert.attempts + 1
        try:
            text, blocks = render(_load_payload(alert.payload), alert.severity)
        except ValueError as err:
            reason = settings.redact(f"payload: {err}")
            self._settle(conn, alert, "failed", attempts, reason)
            report.failed.append(alert.alert_id)
            report.errors[alert.alert_id] = reason
            return True
        payload = {"alert_id": alert.alert_id, "kind": alert.kind, "severity": alert.severity}
        metadata = {"event_type": _ALERT_EVENT, "event_payload": {k: v for k, v in payload.items() if v is not None}}
        try:
            slack.post(text, blocks, metadata)
        except _Deferred as deferral:
            self._settle(conn, alert, "pending", alert.attempts, None)
            self._stop(conn, report, deferral.reason, [alert.alert_id], report.deferred)
            return False
        except _PostUncertain as lost:
            self._settle(conn, alert, "uncertain", attempts, lost.reason)
            report.uncertain.append(alert.alert_id)
            report.errors[alert.alert_id] = lost.reason
            self._stop(conn, report, lost.reason, [], report.deferred if lost.at_deadline else report.held)
            return False
        except _PostFailed as failure:
            gave_up = attempts >= max_attempts
            self._settle(conn, alert, "failed" if gave_up else "pending", attempts, failure.reason)
            report.errors[alert.alert_id] = failure.reason
            logger.warning("alert %s not sent (attempt %d of %d): %s", alert.alert_id, attempts, max_attempts,
                           failure.reason)  # fmt: skip
            if gave_up:
                report.failed.append(alert.alert_id)
            if failure.stops_batch:
                self._stop(conn, report, failure.reason, [] if gave_up else [alert.alert_id], report.held)
                return False
            if not gave_up:
                report.held.append(alert.alert_id)
            return True
        self._settle(conn, alert, "sent", attempts, None, sent_at=now)
        report.sent.append(alert.alert_id)
        logger.info("alert %s sent to Slack (%s)", alert.alert_id, settings.mode)
        return True

    def _stop(self, conn, report: DeliveryReport, reason: str, first: list[str], into: list[str]) -> None:
        """The batch stops: `first` and every alert still pending wait for the next run (`into`)."""
        rest = [row[0] for row in self._run(conn, self._select("pending"), [self.scope])]
        into.extend(dict.fromkeys([*first, *rest]))
        report.stopped = reason
        logger.warning("delivery stopped (%s); %d alert(s) wait for the next run", reason, len(into))

    def _keep_uncertain(self, conn, report: DeliveryReport, reason: str) -> list[str]:
        """Report the uncertain alerts as such, with `reason`; returns their ids."""
        uncertain = [row[0] for row in self._run(conn, self._select("uncertain"), [self.scope])]
        report.uncertain.extend(uncertain)
        for alert_id in uncertain:
            report.errors[alert_id] = reason
        return uncertain

    def _look_up_uncertain(self, conn, slack: _Slack, settings: SlackSettings, report: DeliveryReport) -> bool:
        """The uncertain alerts looked up in the channel's history (a bot token, and the channel
        given by its ID): found ones become `sent`, the others `pending`, posted again by this
        batch. Each change is made only from `uncertain`, so concurrent deliverers agree. A
        webhook cannot read the channel: they wait for an operator. False when the batch stops."""
        rows = self._run(
            conn,
            "select alert_id, coalesce(claimed_at, created_at) from costwatch.alerts_outbox "
            "where scope = %s and status = 'uncertain'",
            [self.scope],
        )
        if not rows:
            return True
        channel_id = channel_id_of(settings.channel)
        if settings.mode == "webhook" or channel_id is None:
            why = "a webhook cannot read the channel" if settings.mode == "webhook" else (
                "alerts.slack_channel is a name: set it to the channel's ID (C...) to look it up"
            )  # fmt: skip
            self._keep_uncertain(conn, report, f"uncertain: {why}; look for it there, then {SETTLE_HINT}")
            return True
        ids = {alert_id for alert_id, _ in rows}
        since = min((at for _, at in rows if at is not None), default=datetime.now(timezone.utc)) - _LOOKUP_MARGIN
        try:
            found = slack.find_alerts(channel_id, ids, since)
        except _Deferred as deferral:
            report.uncertain.extend(sorted(ids))
            self._stop(conn, report, deferral.reason, [], report.deferred)
            return False
        except _LookupFailed as failure:
            report.uncertain.extend(sorted(ids))
            report.errors.update(dict.fromkeys(ids, failure.reason))
            if failure.stops_batch:
                self._stop(conn, report, failure.reason, [], report.held)
                return False
            return True  # a scope is missing: they stay uncertain, the rest go out
        for alert_id, ts in sorted(found.items()):
            confirmed = self._run(
                conn,
                "update costwatch.alerts_outbox set status = 'sent', sent_at = %s, last_error = %s "
                "where scope = %s and alert_id = %s and status = 'uncertain' returning alert_id",
                [
                    datetime.fromtimestamp(float(ts), timezone.utc),
                    "found in the channel's history",
                    self.scope,
                    alert_id,
                ],
            )
            if confirmed:
                report.confirmed.append(alert_id)
                logger.info(
                    "alert %s was in the channel already (ts %s): recorded as sent, not posted again", alert_id, ts
                )
        self._run(
            conn,
            "update costwatch.alerts_outbox set status = 'pending', last_error = %s "
            "where scope = %s and alert_id = any(%s) and status = 'uncertain' returning alert_id",
            ["not found in the channel's history: posted again", self.scope, sorted(ids - set(found))],
        )
        return True

    def _catch_up(self, conn, slack: _Slack, report: DeliveryReport, now: datetime, max_age_days) -> bool:
        """One message counting the expired alerts no message counted yet, claimed by setting their
        `caught_up_at` first (a concurrent run finds none left); a post that did not land gives them
        back. False when the batch stops."""
        rows = self._run(
            conn,
            "update costwatch.alerts_outbox set caught_up_at = %s where scope = %s and status = 'expired' "
            "and caught_up_at is null returning alert_id, kind, day",
            [now, self.scope],
        )
        if not rows:
            return True
        rows.sort(key=lambda row: (row[2] or date.min, row[0]))
        by_kind: dict[str, int] = {}
        for _, kind, _ in rows:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        known = [day for _, _, day in rows if day is not None]
        expired = Expired([row[0] for row in rows], by_kind, min(known, default=None), max(known, default=None))
        try:
            text, blocks = render(_catch_up_payload(expired, max_age_days), "info")
            slack.post(text, blocks, {"event_type": "costwatch_catch_up", "event_payload": {"alerts": len(rows)}})
        except (_PostFailed, _Deferred) as failure:
            self._run(
                conn,
                "update costwatch.alerts_outbox set caught_up_at = null where scope = %s and alert_id = any(%s) "
                "returning alert_id",
                [self.scope, expired.alert_ids],
            )
            report.errors["catch-up"] = failure.reason
            if isinstance(failure, _Deferred) or failure.stops_batch:
                into = report.deferred if isinstance(failure, _Deferred) else report.held
                self._stop(conn, report, failure.reason, [], into)
                return False
            return True
        except _PostUncertain as failure:
            # A second catch-up message would be noise, a missing one harmless: counted as posted.
            report.errors["catch-up"] = failure.reason
            self._stop(conn, report, failure.reason, [], report.held)
            return False
        report.caught_up = len(rows)
        return True

    # ---- claims and outcomes, each its own transaction

    def _claim(self, conn, tried: list[str]) -> PendingAlert | None:
        skipped = list(tried)
        while True:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"""
                    select {_COLUMNS} from costwatch.alerts_outbox
                    where scope = %s and status = 'pending' and not (alert_id = any(%s::text[]))
                    order by created_at nulls last, alert_id
                    limit 1
                    for update skip locked
                    """,  # noqa: S608 (_COLUMNS is this module's constant)
                    [self.scope, skipped],
                )
                row = cursor.fetchone()
                if row is None:
                    conn.rollback()
                    return None
                # Taken apart from the select: a function in its select list may run for every row
                # the sort reads, not only the one returned.
                cursor.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", [self._lock_name(row[0])])
                if not cursor.fetchone()[0]:  # a deliverer settling interrupted posts holds it this instant
                    conn.rollback()
                    skipped.append(row[0])
                    continue
                cursor.execute(
                    "update costwatch.alerts_outbox set status = 'posting', claimed_at = clock_timestamp() "
                    "where scope = %s and alert_id = %s",
                    [self.scope, row[0]],
                )
            conn.commit()
            return PendingAlert(*row)

    def _settle(self, conn, alert: PendingAlert, status: str, attempts: int, reason: str | None, *, sent_at=None):
        with conn.cursor() as cursor:
            cursor.execute(
                """
                update costwatch.alerts_outbox
                set status = %s, attempts = %s, last_error = %s, sent_at = coalesce(%s, sent_at)
                where scope = %s and alert_id = %s and status = 'posting'
                """,
                [status, attempts, reason[:1000] if reason else None, sent_at, self.scope, alert.alert_id],
            )
        conn.commit()
        with conn.cursor() as cursor:
            cursor.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", [self._lock_name(alert.alert_id)])
        conn.commit()

    def _settle_interrupted(self, conn) -> None:
        """`posting` rows whose claimer is gone (their advisory lock is free) become `uncertain`."""
        posting = self._run(
            conn, "select alert_id from costwatch.alerts_outbox where scope = %s and status = 'posting'", [self.scope]
        )
        for (alert_id,) in posting:
            with conn.cursor() as cursor:
                cursor.execute("select pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [self._lock_name(alert_id)])
                if cursor.fetchone()[0]:
                    cursor.execute(
                        "update costwatch.alerts_outbox set status = 'uncertain', last_error = %s "
                        "where scope = %s and alert_id = %s and status = 'posting'",
                        [_INTERRUPTED, self.scope, alert_id],
                    )
            conn.commit()  # releases the transaction's lock

    def _lock_name(self, alert_id: str) -> str:
        """What the claim's session advisory lock is keyed on (hashed by Postgres): scope and alert."""
        return f"{self.scope}/{alert_id}"

    @staticmethod
    def _select(status: str) -> str:
        return (
            f"select {_COLUMNS} from costwatch.alerts_outbox where scope = %s and status = '{status}' "  # noqa: S608 (_COLUMNS is a constant; status one of this module's literals)
            "order by created_at nulls last, alert_id"
        )

    @staticmethod
    def _run(conn, sql: str, params: list) -> list[tuple]:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        conn.commit()
        return rows
