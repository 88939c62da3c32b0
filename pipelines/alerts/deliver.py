"""Deliver the `alerts_outbox` to Slack with slack-sdk: each alert once, oldest first, within a deadline, secrets kept out of sight.

`deliver` posts every `pending` row and commits its new status before touching the next. The
mode (Web API, Incoming Webhook, dry run) comes from `SlackSettings` (pipelines/resources/slack.py).

**One wall-clock deadline per batch** (`alerts.delivery_deadline_s`). Each HTTP request runs
with a socket timeout of the time left *and* a watchdog that shuts its connection when the
deadline passes, so a server that drips its answer a byte at a time cannot hold the run (a
socket timeout alone is per read). A `Retry-After` longer than the time left is not slept: the
batch stops there. Alerts the deadline leaves are `deferred`: still pending, attempts unspent.

**Uncertain posts.** When a post went out and its answer was lost (timeout or watchdog while
waiting for it, connection dropped, a 200 with cut JSON, a 200 that is not Slack's answer such
as a proxy's HTML page), Slack may have accepted it. The alert becomes `uncertain` and the batch
stops (the rest stay pending). With a bot token, the next delivery looks the alert up in the
channel's history (`conversations.history`, `include_all_metadata`: every post carries
`metadata.event_payload.alert_id`) from just before its first attempt: found, it is recorded
as sent without a new post; not found, it is posted again. A webhook cannot read the channel:
its uncertain alerts are reported and wait for an operator (`costwatch alerts mark-sent|resend`).

**The ledger.** Each post is written to the delivery ledger (`alerts/ledger.py`, outside the
warehouse) as `posting` before it goes out, and its outcome is written there before the outbox
row; before each batch the outbox is brought in line with the ledger. So a lost warehouse never
re-sends an alert, and no duplicate window is left with a bot token: a run killed between a
post and its record leaves the alert `posting`, which the next delivery treats as uncertain and
looks up. With a webhook that alert is reported uncertain, for an operator to settle.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import random
import socket
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.client import HTTPException
from typing import Any
from urllib.error import HTTPError, URLError

import duckdb
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    Jitter,
    RetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest as RetryHttpRequest
from slack_sdk.http_retry.response import HttpResponse as RetryHttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient
from slack_sdk.webhook.webhook_response import WebhookResponse

from pipelines.alerts.ledger import DeliveryLedger
from pipelines.alerts.outbox import (
    Expired,
    PendingAlert,
    alert_statuses,
    apply_ledger,
    expire_stale,
    oldest_postable_day,
    pending_alerts,
    record_caught_up,
    record_failure,
    record_sent,
    record_uncertain,
    require_autocommit,
    uncounted_expired,
)
from pipelines.alerts.render import render, summarise_blocks
from pipelines.resources.slack import SlackSettings

logger = logging.getLogger(__name__)

# The logger handed to slack-sdk's clients. The SDK writes request URLs into its messages
# (a webhook URL *is* its secret), so while `deliver` runs this logger carries a filter that
# blanks the current secrets out of every record before any handler sees it.
_SDK_LOGGER = logging.getLogger(f"{__name__}.sdk")

DEFAULT_DEADLINE_S = 60.0  # alerts.delivery_deadline_s
# Less time left than this and a request is not started: it could not finish.
_MIN_REQUEST_S = 0.05
# The history is read from this long before an uncertain post's first attempt (clock skew).
_LOOKUP_MARGIN = timedelta(minutes=2)
_LOOKUP_PAGE = 200
_ALERT_EVENT = "costwatch_alert"

# Web API error codes that say the credentials or the channel are wrong: every later alert
# would fail the same way, so the batch stops instead of spending their attempts.
_CONFIGURATION_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "ekm_access_denied",
        "team_access_not_granted",
        "org_login_required",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
    }
)
# Incoming Webhook statuses with the same meaning (no_service, action_prohibited, archived).
_WEBHOOK_CONFIGURATION_STATUSES = frozenset({401, 403, 404, 410})
# What slack-sdk puts in `error` when the body of a Web API answer is not JSON.
_SDK_NON_JSON = "Received a response in a non-JSON format"


@dataclass
class DeliveryReport:
    """What one `deliver` call did. Alert ids only: no message text, no secrets."""

    sent: list[str] = field(default_factory=list)  # accepted by Slack in this call
    held: list[str] = field(default_factory=list)  # still pending: retry left, batch stopped, or dry run
    failed: list[str] = field(default_factory=list)  # became `failed` in this call
    deferred: list[str] = field(default_factory=list)  # still pending: the deadline came first (attempts unspent)
    uncertain: list[str] = field(default_factory=list)  # may be in the channel: answer lost, not posted again
    confirmed: list[str] = field(default_factory=list)  # were uncertain, found in the channel: now sent
    already_sent: list[str] = field(default_factory=list)  # the ledger had them as sent: not posted
    dry_run: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # alert_id -> this call's error (redacted)
    stopped: str | None = None  # why the batch stopped early (Slack unreachable, misconfigured, deadline)
    expired: int = 0  # pending alerts this call found too old to post (alerts.max_age_days)
    caught_up: int = 0  # expired alerts the one catch-up message of this call counted
    deadline_s: float = DEFAULT_DEADLINE_S
    elapsed_s: float = 0.0  # wall time of the call


class _PostFailed(Exception):
    """A post that did not land. `reason` is already redacted."""

    def __init__(self, reason: str, *, stops_batch: bool):
        super().__init__(reason)
        self.reason = reason
        self.stops_batch = stops_batch  # True when the next alert would fail the same way


class _PostUncertain(Exception):
    """A post that went out and whose answer was lost: Slack may have accepted it. Stops the batch."""

    def __init__(self, reason: str, *, at_deadline: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.at_deadline = at_deadline  # cut by the deadline: the alerts after it are deferred


class _Deferred(Exception):
    """The deadline came before the post could be made (or answered `Retry-After` beyond it)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Posted:
    channel_id: str | None  # Web API: the ID Slack answered with
    ts: str | None


def deliver(
    conn: duckdb.DuckDBPyConnection,
    settings: SlackSettings,
    *,
    now: datetime,
    ledger: DeliveryLedger,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_attempts: int = 5,
    max_age_days: int | None = None,
    days: Sequence[date] | None = None,
) -> DeliveryReport:
    """Post every `pending` alert, oldest first, committing each alert's outcome (ledger, then
    outbox) before the next, and return within `deadline_s` seconds of wall time.

    First the outbox is brought in line with the `ledger`: ids it holds as sent are `sent`
    (`already_sent`), never posted again. With `max_age_days`, pending alerts of days older than
    that (before today, UTC) are expired, and the expired alerts no message has counted yet are
    summed up in one catch-up message posted before the rest.

    Success: `sent`, `sent_at = now`, attempts + 1. Failure after slack-sdk's retries (429 with
    Retry-After, 500/503, refused connection): attempts + 1 and `last_error`; the alert stays
    `pending` for the next call, or becomes `failed` once it has had `max_attempts`. When Slack
    is unreachable or refuses the credentials, the batch stops there and the remaining alerts
    wait untouched (their attempts are not spent). A lost answer makes the alert `uncertain`
    and stops the batch (see the module docstring). When the deadline comes, the remaining
    alerts are `deferred`. A payload that cannot be rendered is `failed` at once. Dry run prints
    each pending alert and changes nothing but the ledger reconciliation.

    `conn` must not be inside a transaction: each alert's update is committed on its own.
    """
    if now.tzinfo is None:
        raise ValueError(
            "now: pass a timezone-aware datetime (sent_at is timestamptz), e.g. datetime.now(timezone.utc)"
        )
    if max_attempts < 1:
        raise ValueError("max_attempts: must be >= 1")
    if not deadline_s > 0:
        raise ValueError("deadline_s: must be > 0")
    deadline = _Deadline(deadline_s)
    report = DeliveryReport(dry_run=settings.dry_run, deadline_s=deadline_s)
    try:
        _deliver(conn, settings, report, deadline, now=now, ledger=ledger, max_attempts=max_attempts,
                 max_age_days=max_age_days, days=days)  # fmt: skip
    finally:
        report.elapsed_s = deadline.elapsed()
    return report


def _deliver(
    conn: duckdb.DuckDBPyConnection,
    settings: SlackSettings,
    report: DeliveryReport,
    deadline: _Deadline,
    *,
    now: datetime,
    ledger: DeliveryLedger,
    max_attempts: int,
    max_age_days: int | None,
    days: Sequence[date] | None,
) -> None:
    require_autocommit(conn)  # each outcome, and the reconciliation, is committed on its own
    report.already_sent = _reconcile(conn, ledger, now)
    if max_age_days is not None:
        report.expired = expire_stale(conn, oldest_postable_day(now, max_age_days))
    pending = pending_alerts(conn, uncertain=True)
    waiting = [alert for alert in pending if alert.status == "pending"]
    uncertain = [alert for alert in pending if alert.status == "uncertain"]
    if settings.dry_run:
        shown = [alert for alert in waiting if days is None or alert.day in days]
        for alert in shown:
            _print_dry_run(alert.alert_id, alert.kind, alert.severity, alert.payload, settings.channel)
        if len(shown) < len(waiting):
            print(
                f"[slack dry run] {len(waiting) - len(shown)} more pending alert(s) of other days wait in alerts_outbox"
            )
        expired = uncounted_expired(conn)
        if expired.alert_ids:
            print(f"[slack dry run] {_catch_up_title(expired, max_age_days)}: never posted")
        report.held.extend(alert.alert_id for alert in waiting)
        report.uncertain.extend(alert.alert_id for alert in uncertain)
        return
    expired = uncounted_expired(conn)
    if not pending and not expired.alert_ids:
        return

    with _sdk_logs_redacted(settings):
        slack = _Slack(settings, deadline)
        if expired.alert_ids:
            try:
                text, blocks = render(_catch_up_payload(expired, max_age_days), "info")
                slack.post(
                    text,
                    blocks,
                    {"event_type": "costwatch_catch_up", "event_payload": {"alerts": len(expired.alert_ids)}},
                )
            except (_PostFailed, _Deferred) as failure:
                report.errors["catch-up"] = failure.reason
                logger.warning("catch-up message not sent: %s", failure.reason)
                if isinstance(failure, _Deferred) or failure.stops_batch:
                    (report.deferred if isinstance(failure, _Deferred) else report.held).extend(
                        alert.alert_id for alert in waiting
                    )
                    report.uncertain.extend(alert.alert_id for alert in uncertain)
                    report.stopped = failure.reason
                    return
            except _PostUncertain as failure:
                # A second catch-up message would be noise, a missing one harmless: counted as posted.
                ledger.record_many(expired.alert_ids, "caught_up", at=now, detail=failure.reason)
                record_caught_up(conn, expired.alert_ids, now)
                report.errors["catch-up"] = failure.reason
                report.held.extend(alert.alert_id for alert in waiting)
                report.uncertain.extend(alert.alert_id for alert in uncertain)
                report.stopped = failure.reason
                return
            else:
                ledger.record_many(expired.alert_ids, "caught_up", at=now)
                record_caught_up(conn, expired.alert_ids, now)
                report.caught_up = len(expired.alert_ids)
        _post_in_order(conn, settings, slack, report, pending, now=now, ledger=ledger, max_attempts=max_attempts)


def _post_in_order(
    conn: duckdb.DuckDBPyConnection,
    settings: SlackSettings,
    slack: _Slack,
    report: DeliveryReport,
    pending: list[PendingAlert],
    *,
    now: datetime,
    ledger: DeliveryLedger,
    max_attempts: int,
) -> None:
    uncertain = [alert for alert in pending if alert.status == "uncertain"]
    if settings.mode == "webhook":
        # A webhook cannot read the channel: an uncertain alert waits for an operator.
        report.uncertain.extend(alert.alert_id for alert in uncertain)
        for alert in uncertain:
            report.errors[alert.alert_id] = (
                "uncertain: a webhook cannot read the channel; look for it there, then run "
                f"`costwatch alerts mark-sent {alert.alert_id}` (it is there) or `costwatch alerts resend {alert.alert_id}`"
            )
        uncertain = []
    to_look_up = {alert.alert_id: alert for alert in uncertain}
    queue = deque(alert for alert in pending if alert.status == "pending" or alert.alert_id in to_look_up)

    def stop(reason: str, *, rest_deferred: bool) -> None:
        rest = [alert.alert_id for alert in queue if alert.alert_id not in to_look_up]
        (report.deferred if rest_deferred else report.held).extend(rest)
        report.uncertain.extend(to_look_up)
        report.stopped = reason
        if rest:
            logger.warning("delivery stopped (%s); %d alert(s) wait for the next run", reason, len(rest))

    def settle() -> bool:
        """Look the uncertain alerts up in the channel: found ones are recorded sent and leave the
        queue, the others stay in it to be posted again. False: the batch stops."""
        channel_id = slack.channel_id(ledger)
        if channel_id is None:
            return True  # learnt from the first accepted post; until then they are not posted
        try:
            found = slack.find_alerts(channel_id, set(to_look_up), _lookup_since(ledger, list(to_look_up.values())))
        except _Deferred as deferral:
            stop(deferral.reason, rest_deferred=True)
            return False
        except _LookupFailed as failure:
            for alert_id in to_look_up:
                report.errors[alert_id] = failure.reason
            if failure.stops_batch:
                stop(failure.reason, rest_deferred=False)
                return False
            # The channel cannot be read (a scope is missing): they stay uncertain, the rest go out.
            found = {}
            report.uncertain.extend(to_look_up)
            unread = set(to_look_up)
        else:
            unread = set()
        for alert_id, ts in found.items():
            at = datetime.fromtimestamp(float(ts), timezone.utc)
            ledger.record(alert_id, "sent", at=at, message_ts=ts, detail="found in the channel's history")
            record_sent(conn, alert_id, to_look_up[alert_id].attempts, at)
            report.confirmed.append(alert_id)
            logger.info("alert %s was in the channel already (ts %s): recorded as sent, not posted again", alert_id, ts)
        kept = [alert for alert in queue if alert.alert_id not in found and alert.alert_id not in unread]
        queue.clear()
        queue.extend(kept)
        to_look_up.clear()
        return True

    if to_look_up and not settle():
        return
    while queue:
        alert = queue.popleft()
        if alert.alert_id in to_look_up:  # not looked up yet: the channel's ID is not known
            queue.append(alert)
            if all(other.alert_id in to_look_up for other in queue):
                break
            continue
        try:
            text, blocks = render(_load_payload(alert.payload), alert.severity)
        except ValueError as err:
            reason = settings.redact(f"payload: {err}")
            record_failure(conn, alert.alert_id, alert.attempts + 1, "failed", reason)
            report.failed.append(alert.alert_id)
            report.errors[alert.alert_id] = reason
            logger.error("alert %s cannot be rendered, marked failed: %s", alert.alert_id, reason)
            continue

        metadata = {
            "event_type": _ALERT_EVENT,
            "event_payload": {
                k: v
                for k, v in {"alert_id": alert.alert_id, "kind": alert.kind, "severity": alert.severity}.items()
                if v is not None
            },
        }
        first_attempt_at = datetime.now(timezone.utc)  # Slack's clock, for a later history lookup
        # Written before the post: were the run killed before the outcome is recorded, the next
        # delivery finds the alert `posting` and treats it as uncertain instead of posting it blind.
        ledger.record(alert.alert_id, "posting", at=now, first_attempt_at=first_attempt_at)
        try:
            posted = slack.post(text, blocks, metadata)
        except _Deferred as deferral:
            ledger.forget(alert.alert_id)
            queue.appendleft(alert)
            stop(deferral.reason, rest_deferred=True)
            return
        except _PostUncertain as lost:
            ledger.record(alert.alert_id, "uncertain", at=now, first_attempt_at=first_attempt_at, detail=lost.reason)
            record_uncertain(conn, alert.alert_id, alert.attempts + 1, lost.reason)
            report.uncertain.append(alert.alert_id)
            report.errors[alert.alert_id] = lost.reason
            logger.warning("alert %s may be in Slack or not (%s): not posted again unseen", alert.alert_id, lost.reason)
            stop(lost.reason, rest_deferred=lost.at_deadline)
            return
        except _PostFailed as failure:
            ledger.forget(alert.alert_id)
            gave_up = alert.attempts + 1 >= max_attempts
            record_failure(conn, alert.alert_id, alert.attempts + 1, "failed" if gave_up else "pending", failure.reason)
            (report.failed if gave_up else report.held).append(alert.alert_id)
            report.errors[alert.alert_id] = failure.reason
            logger.warning(
                "alert %s not sent (attempt %d of %d%s): %s",
                alert.alert_id,
                alert.attempts + 1,
                max_attempts,
                ", giving up" if gave_up else "",
                failure.reason,
            )
            if failure.stops_batch:
                stop(failure.reason, rest_deferred=False)
                return
            continue
        ledger.record(alert.alert_id, "sent", at=now, message_ts=posted.ts)
        record_sent(conn, alert.alert_id, alert.attempts + 1, now)
        report.sent.append(alert.alert_id)
        logger.info("alert %s sent to Slack (%s)", alert.alert_id, settings.mode)
        if posted.channel_id and settings.channel and ledger.channel_id(settings.channel) != posted.channel_id:
            ledger.remember_channel(settings.channel, posted.channel_id)
        if to_look_up and not settle():  # the channel's ID is known now
            return
    for alert_id in to_look_up:
        report.uncertain.append(alert_id)
        report.errors[alert_id] = (
            "uncertain: not looked up yet, as the channel's ID is not known (it is learnt from the first accepted "
            "post); set alerts.slack_channel to the channel's ID (C...) to look it up at once"
        )


def _lookup_since(ledger: DeliveryLedger, alerts: list[PendingAlert]) -> datetime:
    entries = ledger.statuses(alert.alert_id for alert in alerts)
    starts = []
    for alert in alerts:
        entry = entries.get(alert.alert_id)
        start = entry.first_attempt_at if entry and entry.first_attempt_at else alert.created_at
        starts.append(start or datetime.now(timezone.utc) - timedelta(days=30))
    return min(starts) - _LOOKUP_MARGIN


def _reconcile(conn: duckdb.DuckDBPyConnection, ledger: DeliveryLedger, now: datetime) -> list[str]:
    """Outbox and ledger agree before a batch: the ledger learns the outbox's sent ids (a ledger
    started after alerts were sent), the outbox takes the ledger's word for the rest. Returns the
    ids the ledger knew as sent that the outbox still had to send."""
    outbox = alert_statuses(conn)
    entries = ledger.statuses()
    ledger.add_missing(
        [a for a, (status, _) in outbox.items() if status == "sent" and a not in entries], "sent", at=now
    )
    for alert_id, (status, _) in outbox.items():
        if status == "uncertain" and alert_id not in entries:
            ledger.record(alert_id, "uncertain", at=now, detail="from alerts_outbox")
    sent = {
        alert_id: entry.recorded_at
        for alert_id, entry in entries.items()
        if entry.status == "sent" and alert_id in outbox and outbox[alert_id][0] != "sent"
    }
    caught_up = [a for a, e in entries.items() if e.status == "caught_up" and outbox.get(a) == ("expired", False)]
    # `posting`: a run stopped between a post and its outcome. Slack may have it.
    interrupted = [a for a, e in entries.items() if e.status == "posting"]
    if interrupted:
        ledger.record_many(interrupted, "uncertain", at=now, detail="the run stopped while posting it")
        logger.warning("%d alert(s) were being posted when a run stopped: uncertain", len(interrupted))
    uncertain = [
        a for a, e in entries.items() if e.status in ("uncertain", "posting") and outbox.get(a, ("",))[0] == "pending"
    ]
    resend = [a for a, e in entries.items() if e.status == "resend" and outbox.get(a, ("",))[0] == "uncertain"]
    if sent or caught_up or uncertain or resend:
        apply_ledger(conn, sent=sent, caught_up=caught_up, uncertain=uncertain, resend=resend, now=now)
    already = [a for a in sent if outbox[a][0] in ("pending", "uncertain")]
    if already:
        logger.info("%d alert(s) the delivery ledger has as sent: not posted again", len(already))
    return sorted(already)


_EXPIRED_HINT = (
    "They stay in alerts_outbox with status 'expired': "
    "costwatch query \"select day, kind, payload from alerts_outbox where status = 'expired'\""
)


def _catch_up_title(expired: Expired, max_age_days: int | None) -> str:
    span = (
        f"{expired.first_day} to {expired.last_day}"
        if expired.first_day != expired.last_day
        else f"{expired.first_day}"
    )
    age = f" (older than alerts.max_age_days = {max_age_days})" if max_age_days is not None else ""
    return f"{len(expired.alert_ids)} alert(s) of {span} expired{age}"


def _catch_up_payload(expired: Expired, max_age_days: int | None) -> dict:
    """The one message that stands for alerts too old to post one by one."""
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(expired.by_kind.items()))
    return {
        "title": f"Catch-up: {len(expired.alert_ids)} older alert(s) not posted",
        "text": f"{_catch_up_title(expired, max_age_days)}: {kinds}. {_EXPIRED_HINT}",
        "fields": [{"label": kind, "value": str(count)} for kind, count in sorted(expired.by_kind.items())],
        "drivers": [],
        "link": None,
    }


def _load_payload(payload: Any) -> Any:
    if not isinstance(payload, str):
        raise ValueError(f"expected JSON text, got {type(payload).__name__}")
    try:
        return json.loads(payload)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err})") from None


def _print_dry_run(alert_id: str, kind: Any, severity: Any, payload: Any, channel: str | None) -> None:
    where = f" to {channel}" if channel else ""
    print(
        f"[slack dry run] alert {alert_id} ({severity} {kind}) not posted{where}: set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL"
    )
    try:
        content = _load_payload(payload)
        text, blocks = render(content, severity)
    except ValueError as err:
        print(f"  payload cannot be rendered: {err}")
        return
    print(f"  {blocks[0]['text']['text']}")
    print(f"  {text}")
    print(f"  blocks: {summarise_blocks(blocks)}")


# --------------------------------------------------------------------------- the deadline


class _Deadline:
    """The batch's wall-clock budget (monotonic clock)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._start = time.monotonic()
        self._end = self._start + seconds
        # Set by the rate-limit handler when Slack asks for a wait longer than the time left.
        self.deferral: str | None = None

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def exhausted(self) -> str:
        return f"the delivery deadline (alerts.delivery_deadline_s = {self.seconds:g} s) has passed"


class _DeadlineReached(Exception):
    """The watchdog cut a request at the deadline; `sent`: the request had gone out whole."""

    def __init__(self, sent: bool):
        super().__init__("cut at the delivery deadline" + (" while waiting for the answer" if sent else ""))
        self.sent = sent


class _Exchange:
    """One HTTP request and its answer, bounded by the deadline as a whole.

    urllib's timeout applies to each socket operation, so an answer dripping a byte at a time
    never trips it. Here every connection the request opens gets a socket timeout of the time
    left, and a timer shuts the connection down when the deadline comes, which ends whatever
    read or write is blocked on it."""

    def __init__(self, deadline: _Deadline, timeout_s: float):
        remaining = deadline.remaining()
        if remaining <= _MIN_REQUEST_S:
            raise _DeadlineReached(sent=False)
        self.timeout = min(timeout_s, remaining)
        self._deadline = deadline
        self.cut = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(remaining, self._cut)
        self._timer.daemon = True

    def connection(self, kind: type[http.client.HTTPConnection]) -> Callable[..., http.client.HTTPConnection]:
        """A factory for urllib's `do_open` whose connections hand their sockets to this exchange."""

        def connect(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            conn = kind(host, **kwargs)
            open_socket = conn._create_connection  # socket.create_connection, kept as an attribute by http.client

            def create_watched(*args: Any, **kw: Any) -> socket.socket:
                return self._watch(open_socket(*args, **kw))  # the TCP socket, before any TLS handshake

            def connect_watched() -> None:
                kind.connect(conn)
                # Under TLS, the wrapped socket: a new object on the same descriptor. It must be
                # held here: once the answer's headers are read, http.client drops `conn.sock`
                # and only the response's file still reads from it.
                self._watch(conn.sock)

            conn._create_connection = create_watched
            conn.connect = connect_watched  # type: ignore[method-assign]
            return conn

        return connect

    def _watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self.cut:
                _shutdown(sock)
        return sock

    def _cut(self) -> None:
        with self._lock:
            self.cut = True
            for sock in self._sockets:
                _shutdown(sock)

    def _at_deadline(self) -> bool:
        """Whether the deadline ended the request: the timer cut it, or the socket timeout (set to
        the time left) fired first - on a busy machine the timer's thread may run late."""
        return self.cut or self._deadline.remaining() <= 0

    def open(self, req: urllib.request.Request, ssl_context: Any, proxy: str | None) -> tuple[Any, bytes]:
        """Send `req`; (the response, its whole body), or raise. HTTPError carries its body read."""
        handlers: list[urllib.request.BaseHandler] = [_BoundHTTPHandler(self), _BoundHTTPSHandler(self, ssl_context)]
        if proxy:
            handlers.insert(0, urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        opener = urllib.request.build_opener(*handlers)
        self._timer.start()
        try:
            try:
                response = opener.open(req, timeout=self.timeout)
                body = response.read()
            except HTTPError as error:
                # Read the error's body here, inside the deadline, not later in slack-sdk.
                body = error.read()
                self._timer.cancel()
                if self.cut:
                    raise _DeadlineReached(sent=True) from None
                raise HTTPError(error.url, error.code, error.msg, error.hdrs, io.BytesIO(body)) from None
            except URLError:
                # urllib raises URLError when connecting or sending failed: the request never went out whole.
                if self._at_deadline():
                    raise _DeadlineReached(sent=False) from None
                raise
            except Exception:
                if self._at_deadline():
                    raise _DeadlineReached(sent=True) from None
                raise
            self._timer.cancel()
            if self.cut:  # a close-delimited answer ends early without an error when cut
                raise _DeadlineReached(sent=True)
            return response, body
        finally:
            self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    """End every read and write blocked on `sock`, in any thread. The plain socket's shutdown,
    also under TLS: it acts on the descriptor without touching the TLS object a read is using."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or the TCP socket a TLS wrap took over


class _BoundHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, exchange: _Exchange):
        super().__init__()
        self._exchange = exchange

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._exchange.connection(http.client.HTTPConnection), req)


class _BoundHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, exchange: _Exchange, context: Any):
        super().__init__(context=context)
        self._exchange = exchange

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._exchange.connection(http.client.HTTPSConnection), req, context=self._context)


# slack-sdk's clients send one HTTP exchange through these methods (retries and parsing stay
# theirs); the overrides run it through an `_Exchange`. tests/test_slack_misbehaviour.py fails
# if a slack-sdk release stops calling them (a dripping server then holds the batch).
class _BoundWebClient(WebClient):
    def __init__(self, *, deadline: _Deadline, **kwargs: Any):
        super().__init__(**kwargs)
        self._deadline = deadline

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        if not url.lower().startswith("http"):
            raise SlackRequestError(f"Invalid URL detected: {url}")
        response, body = _Exchange(self._deadline, self.timeout).open(req, self.ssl, self.proxy)
        charset = response.headers.get_content_charset() or "utf-8"
        return {"status": response.code, "headers": response.headers, "body": body.decode(charset)}


class _BoundWebhookClient(WebhookClient):
    def __init__(self, *, deadline: _Deadline, **kwargs: Any):
        super().__init__(**kwargs)
        self._deadline = deadline

    def _perform_http_request_internal(self, url: str, req: urllib.request.Request) -> WebhookResponse:
        if not url.lower().startswith("http"):
            raise SlackRequestError(f"Invalid URL detected: {url}")
        response, body = _Exchange(self._deadline, self.timeout).open(req, self.ssl, self.proxy)
        charset = response.headers.get_content_charset() or "utf-8"
        return WebhookResponse(
            url=url, status_code=response.status, body=body.decode(charset), headers=response.headers
        )


# --------------------------------------------------------------------------- retries within the deadline


class _ScaledJitter(Jitter):
    """Up to +50% of the interval, so a zero backoff (tests) really is zero.

    slack-sdk's RandomJitter adds up to a whole second to every wait, whatever the backoff.
    """

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 2)


class _WaitWithinDeadline(RetryHandler):
    """A retry whose wait (and the request after it) fits in the time left; the wait is capped to it."""

    deadline: _Deadline
    _next_wait: float = 0.0

    def can_retry(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super().can_retry(state=state, request=request, response=response, error=error):
            return False
        wait = self._wait(state, response)
        if wait + _MIN_REQUEST_S >= self.deadline.remaining():
            self._out_of_time(wait)
            return False
        self._next_wait = wait
        return True

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        time.sleep(max(0.0, min(self._next_wait, self.deadline.remaining())))
        state.increment_current_attempt()

    def _wait(self, state: RetryState, response: RetryHttpResponse | None) -> float:
        return self.interval_calculator.calculate_sleep_duration(state.current_attempt)

    def _out_of_time(self, wait: float) -> None:
        pass  # the failure the retry would have answered stands


class _ConnectRetry(_WaitWithinDeadline, ConnectionErrorRetryHandler):
    def __init__(self, deadline: _Deadline, **kwargs: Any):
        super().__init__(**kwargs)
        self.deadline = deadline


class _ServerErrorRetry(_WaitWithinDeadline, ServerErrorRetryHandler):
    def __init__(self, deadline: _Deadline, **kwargs: Any):
        super().__init__(**kwargs)
        self.deadline = deadline


class _RateLimitRetry(_WaitWithinDeadline):
    """429: waits `Retry-After` exactly (no jitter) when it fits in the time left; else the batch
    is deferred at once rather than sleeping past the deadline (slack-sdk's own handler sleeps
    whatever the header says)."""

    def __init__(self, deadline: _Deadline, max_retry_count: int):
        super().__init__(max_retry_count=max_retry_count)
        self.deadline = deadline

    def _can_retry(self, *, state: RetryState, request: RetryHttpRequest, response: RetryHttpResponse | None = None,
                   error: Exception | None = None) -> bool:  # fmt: skip
        return response is not None and response.status_code == 429

    def _wait(self, state: RetryState, response: RetryHttpResponse | None) -> float:
        return _retry_after(response)

    def _out_of_time(self, wait: float) -> None:
        self.deadline.deferral = (
            f"Slack answered 429 with Retry-After {wait:g} s, more than the {max(0.0, self.deadline.remaining()):.1f} s "
            f"left of alerts.delivery_deadline_s ({self.deadline.seconds:g} s): deferred to the next run"
        )


def _retry_after(response: RetryHttpResponse | None) -> float:
    for name, values in (response.headers if response is not None else {}).items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break  # an HTTP date, or garbage: wait the default second
    return 1.0


def _retry_handlers(settings: SlackSettings, deadline: _Deadline) -> list[RetryHandler]:
    interval = BackoffRetryIntervalCalculator(backoff_factor=settings.retry_backoff_s, jitter=_ScaledJitter())
    return [
        # URLError only: urllib raises it when connecting or sending fails, before Slack could
        # have acted. A dropped connection while reading the answer (RemoteDisconnected,
        # ConnectionResetError) may follow a post Slack accepted: that post is uncertain.
        _ConnectRetry(
            deadline, max_retry_count=settings.max_retries, interval_calculator=interval, error_types=[URLError]
        ),  # fmt: skip
        _RateLimitRetry(deadline, max_retry_count=settings.max_retries),
        _ServerErrorRetry(deadline, max_retry_count=settings.max_retries, interval_calculator=interval),  # 500, 503
    ]


# --------------------------------------------------------------------------- posting and looking up


class _LookupFailed(Exception):
    def __init__(self, reason: str, *, stops_batch: bool):
        super().__init__(reason)
        self.reason = reason
        self.stops_batch = stops_batch


class _Slack:
    """Posts (and, with a bot token, reads the channel) through deadline-bound slack-sdk clients."""

    def __init__(self, settings: SlackSettings, deadline: _Deadline):
        self.settings = settings
        self.deadline = deadline
        handlers = _retry_handlers(settings, deadline)
        common = {
            "timeout": settings.timeout_s,
            "logger": _SDK_LOGGER,
            "retry_handlers": handlers,
            "deadline": deadline,
        }
        if settings.mode == "web_api":
            self._web = _BoundWebClient(token=settings.token, base_url=settings.api_url, **common)
        else:
            self._hook = _BoundWebhookClient(url=settings.webhook_url, **common)

    def post(self, text: str, blocks: list[dict], metadata: dict) -> _Posted:
        """Post one message; raise _PostFailed, _PostUncertain or _Deferred (reasons redacted)."""
        if self.deadline.remaining() <= _MIN_REQUEST_S:
            raise _Deferred(self.deadline.exhausted())
        self.deadline.deferral = None
        if self.settings.mode == "web_api":
            return self._post_web_api(text, blocks, metadata)
        return self._post_webhook(text, blocks, metadata)

    def _post_web_api(self, text: str, blocks: list[dict], metadata: dict) -> _Posted:
        settings = self.settings
        try:
            response = self._web.chat_postMessage(
                channel=settings.channel,
                text=text,
                blocks=blocks,
                metadata=metadata,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as err:
            status = err.response.status_code
            data = err.response.data
            if status == 429 and self.deadline.deferral:
                raise _Deferred(self.deadline.deferral) from None
            if not _is_slack_answer(data):
                shown = settings.redact(" ".join(str(data.get("error", "") if isinstance(data, dict) else "").split()))
                if status == 200:
                    raise _PostUncertain(
                        f"chat.postMessage: HTTP 200 that is not Slack's answer ({shown[:200]})"
                    ) from None
                raise _PostFailed(f"chat.postMessage: HTTP {status}, not Slack's answer ({shown[:200]})",
                                  stops_batch=True) from None  # fmt: skip
            code = str(data.get("error"))
            reason = settings.redact(f"chat.postMessage: {code} (HTTP {status})")
            raise _PostFailed(
                reason[:500], stops_batch=status == 429 or status >= 500 or code in _CONFIGURATION_ERRORS
            ) from None
        except Exception as err:
            raise self._transport(err, "chat.postMessage") from None
        return _Posted(channel_id=response.get("channel"), ts=response.get("ts"))

    def _post_webhook(self, text: str, blocks: list[dict], metadata: dict) -> _Posted:
        settings = self.settings
        try:
            response = self._hook.send(
                text=text, blocks=blocks, metadata=metadata, unfurl_links=False, unfurl_media=False
            )
        except Exception as err:
            raise self._transport(err, "webhook") from None
        body = " ".join((response.body or "").split())
        # WebhookClient answers 429/5xx with a response (after its retries) instead of raising.
        if response.status_code == 200 and body == "ok":
            return _Posted(channel_id=None, ts=None)
        status = response.status_code
        if status == 429 and self.deadline.deferral:
            raise _Deferred(self.deadline.deferral)
        if status == 200:  # Slack's webhooks answer a post they took with exactly "ok"
            raise _PostUncertain(settings.redact(f"webhook: HTTP 200 that is not Slack's answer: {body[:200]}"))
        raise _PostFailed(
            settings.redact(f"webhook: HTTP {status}: {body[:200]}"),
            stops_batch=status == 429 or status >= 500 or status in _WEBHOOK_CONFIGURATION_STATUSES,
        )

    def _transport(self, err: Exception, what: str) -> Exception:
        reason = self.settings.redact(f"{what}: {type(err).__name__}: {err}")[:500]
        if isinstance(err, _DeadlineReached):
            if err.sent:
                return _PostUncertain(
                    f"{what}: sent, but no answer within alerts.delivery_deadline_s ({self.deadline.seconds:g} s)",
                    at_deadline=True,
                )
            return _Deferred(self.deadline.exhausted())
        if isinstance(err, URLError) and not isinstance(err, HTTPError):
            # Refused, unreachable, or failed while sending: Slack never had the whole request.
            return _PostFailed(reason, stops_batch=True)
        if isinstance(err, (OSError, HTTPException, ValueError)):
            # Timed out or dropped while waiting for the answer, or an answer cut short (bad JSON).
            return _PostUncertain(f"{reason} (answer lost after sending)")
        return _PostFailed(reason, stops_batch=False)

    # ---- reading the channel (Web API)

    def channel_id(self, ledger: DeliveryLedger) -> str | None:
        return channel_id_of(self.settings.channel) or ledger.channel_id(self.settings.channel or "")

    def find_alerts(self, channel_id: str, alert_ids: set[str], since: datetime) -> dict[str, str]:
        """Which of `alert_ids` the channel holds since `since`: alert_id -> the message's ts."""
        found: dict[str, str] = {}
        cursor: str | None = None
        while True:
            if self.deadline.remaining() <= _MIN_REQUEST_S:
                raise _Deferred(self.deadline.exhausted())
            self.deadline.deferral = None
            try:
                page = self._web.conversations_history(
                    channel=channel_id,
                    oldest=f"{since.timestamp():.6f}",
                    limit=_LOOKUP_PAGE,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            except SlackApiError as err:
                status, data = err.response.status_code, err.response.data
                if status == 429 and self.deadline.deferral:
                    raise _Deferred(self.deadline.deferral) from None
                code = str(data.get("error")) if isinstance(data, dict) else "unexpected response"
                reason = self.settings.redact(f"conversations.history: {code} (HTTP {status})")[:300]
                if _is_slack_answer(data) and status == 200:
                    # Slack refuses the read (missing_scope, not_in_channel): nothing to retry.
                    raise _LookupFailed(
                        f"uncertain, cannot be looked up: {reason}; give the bot the channels:history scope "
                        "(groups:history for a private channel), or look for it in the channel and run "
                        "`costwatch alerts mark-sent ID` or `costwatch alerts resend ID`",
                        stops_batch=False,
                    ) from None
                raise _LookupFailed(f"uncertain, lookup failed: {reason}", stops_batch=True) from None
            except Exception as err:
                failure = self._transport(err, "conversations.history")
                if isinstance(failure, _Deferred):
                    raise failure from None
                raise _LookupFailed(f"uncertain, lookup failed: {failure}", stops_batch=True) from None
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                alert_id = payload.get("alert_id")
                if meta.get("event_type") == _ALERT_EVENT and alert_id in alert_ids:
                    found.setdefault(alert_id, str(message.get("ts")))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None or len(found) == len(alert_ids):
                return found


def channel_id_of(channel: str | None) -> str | None:
    """`alerts.slack_channel` when it is a channel's ID (C..., G...), else None (a name)."""
    channel = channel or ""
    return channel if channel[:1] in ("C", "G") and channel.isalnum() and channel.isupper() else None


def _is_slack_answer(data: Any) -> bool:
    """A Web API body Slack wrote: a JSON object with a boolean `ok` (not slack-sdk's stand-in for a non-JSON body)."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("ok"), bool)
        and not str(data.get("error", "")).startswith(_SDK_NON_JSON)
    )


# --------------------------------------------------------------------------- redaction


class _RedactSecrets(logging.Filter):
    def __init__(self, redact: Callable[[str], str]):
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


@contextmanager
def _sdk_logs_redacted(settings: SlackSettings) -> Iterator[None]:
    redactor = _RedactSecrets(settings.redact)
    _SDK_LOGGER.addFilter(redactor)
    try:
        yield
    finally:
        _SDK_LOGGER.removeFilter(redactor)
