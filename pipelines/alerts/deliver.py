"""Deliver the `alerts_outbox` to Slack with slack-sdk: each alert once, oldest first, secrets kept out of sight.

`deliver` posts every `pending` row and commits its new status before touching the next. The
mode (Web API, Incoming Webhook, dry run) comes from `SlackSettings` (pipelines/resources/slack.py).

The one duplicate window left is the one no client can close: Slack accepted a post but the
answer was lost (connection dropped while reading, or the process died before the commit).
That attempt counts as failed and the alert is posted again on the next run. Every post carries
`metadata.event_payload.alert_id`, so such a twin can be recognised in the channel.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

import duckdb
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    Jitter,
    RateLimitErrorRetryHandler,
    RetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from pipelines.alerts.outbox import (
    Expired,
    expire_stale,
    oldest_postable_day,
    pending_alerts,
    record_caught_up,
    record_failure,
    record_sent,
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


@dataclass
class DeliveryReport:
    """What one `deliver` call did. Alert ids only: no message text, no secrets."""

    sent: list[str] = field(default_factory=list)  # accepted by Slack in this call
    held: list[str] = field(default_factory=list)  # still pending: retry left, batch stopped, or dry run
    failed: list[str] = field(default_factory=list)  # became `failed` in this call
    dry_run: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # alert_id -> this call's error (redacted)
    stopped: str | None = None  # why the batch stopped early (Slack unreachable or misconfigured)
    expired: int = 0  # pending alerts this call found too old to post (alerts.max_age_days)
    caught_up: int = 0  # expired alerts the one catch-up message of this call counted


class _PostFailed(Exception):
    """A post that did not land. `reason` is already redacted."""

    def __init__(self, reason: str, *, stops_batch: bool):
        super().__init__(reason)
        self.reason = reason
        self.stops_batch = stops_batch  # True when the next alert would fail the same way


def deliver(
    conn: duckdb.DuckDBPyConnection,
    settings: SlackSettings,
    *,
    now: datetime,
    max_attempts: int = 5,
    max_age_days: int | None = None,
    days: Sequence[date] | None = None,
) -> DeliveryReport:
    """Post every `pending` alert, oldest first, committing each alert's outcome before the next.

    With `max_age_days`, pending alerts of days older than that (before today, UTC) are expired
    first, and the expired alerts no message has counted yet are summed up in one catch-up message
    posted before the rest: a first connect after a long dry run, or a backfill, posts at most one
    message about the past instead of every old alert.

    Success: `sent`, `sent_at = now`, attempts + 1. Failure after slack-sdk's retries (429 with
    Retry-After, 500/503, refused connection): attempts + 1 and `last_error`; the alert stays
    `pending` for the next call, or becomes `failed` once it has had `max_attempts`. When Slack
    is unreachable or refuses the credentials, the batch stops there and the remaining alerts
    wait untouched (their attempts are not spent). A payload that cannot be rendered is `failed`
    at once: retrying cannot fix it. Dry run prints each pending alert and changes nothing.

    `conn` must not be inside a transaction: each alert's update is committed on its own.
    """
    if now.tzinfo is None:
        raise ValueError(
            "now: pass a timezone-aware datetime (sent_at is timestamptz), e.g. datetime.now(timezone.utc)"
        )
    if max_attempts < 1:
        raise ValueError("max_attempts: must be >= 1")

    report = DeliveryReport(dry_run=settings.dry_run)
    if max_age_days is not None:
        report.expired = expire_stale(conn, oldest_postable_day(now, max_age_days))
    pending = pending_alerts(conn)
    if settings.dry_run:
        shown = [alert for alert in pending if days is None or alert.day in days]
        for alert in shown:
            _print_dry_run(alert.alert_id, alert.kind, alert.severity, alert.payload, settings.channel)
        if len(shown) < len(pending):
            print(
                f"[slack dry run] {len(pending) - len(shown)} more pending alert(s) of other days wait in alerts_outbox"
            )
        expired = uncounted_expired(conn)
        if expired.alert_ids:
            print(f"[slack dry run] {_catch_up_title(expired, max_age_days)}: never posted")
        report.held.extend(alert.alert_id for alert in pending)
        return report
    expired = uncounted_expired(conn)
    if not pending and not expired.alert_ids:
        return report

    require_autocommit(conn)
    with _sdk_logs_redacted(settings):
        post = _poster(settings)
        if expired.alert_ids:
            try:
                text, blocks = render(_catch_up_payload(expired, max_age_days), "info")
                post(
                    text,
                    blocks,
                    {"event_type": "costwatch_catch_up", "event_payload": {"alerts": len(expired.alert_ids)}},
                )
            except _PostFailed as failure:
                report.errors["catch-up"] = failure.reason
                logger.warning("catch-up message not sent: %s", failure.reason)
                if failure.stops_batch:
                    report.held.extend(alert.alert_id for alert in pending)
                    report.stopped = failure.reason
                    return report
            else:
                record_caught_up(conn, expired.alert_ids, now)
                report.caught_up = len(expired.alert_ids)
        for position, (alert_id, kind, severity, payload, attempts, _day) in enumerate(pending):
            try:
                text, blocks = render(_load_payload(payload), severity)
            except ValueError as err:
                reason = settings.redact(f"payload: {err}")
                record_failure(conn, alert_id, attempts + 1, "failed", reason)
                report.failed.append(alert_id)
                report.errors[alert_id] = reason
                logger.error("alert %s cannot be rendered, marked failed: %s", alert_id, reason)
                continue

            metadata = {
                "event_type": "costwatch_alert",
                "event_payload": {
                    k: v for k, v in {"alert_id": alert_id, "kind": kind, "severity": severity}.items() if v is not None
                },
            }
            try:
                post(text, blocks, metadata)
            except _PostFailed as failure:
                gave_up = attempts + 1 >= max_attempts
                record_failure(conn, alert_id, attempts + 1, "failed" if gave_up else "pending", failure.reason)
                (report.failed if gave_up else report.held).append(alert_id)
                report.errors[alert_id] = failure.reason
                logger.warning(
                    "alert %s not sent (attempt %d of %d%s): %s",
                    alert_id,
                    attempts + 1,
                    max_attempts,
                    ", giving up" if gave_up else "",
                    failure.reason,
                )
                if failure.stops_batch:
                    rest = [alert.alert_id for alert in pending[position + 1 :]]
                    report.held.extend(rest)
                    report.stopped = failure.reason
                    if rest:
                        logger.warning("stopped after alert %s; %d alerts wait for the next run", alert_id, len(rest))
                    break
            else:
                record_sent(conn, alert_id, attempts + 1, now)
                report.sent.append(alert_id)
                logger.info("alert %s sent to Slack (%s)", alert_id, settings.mode)
    return report


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


# --------------------------------------------------------------------------- posting


class _ScaledJitter(Jitter):
    """Up to +50% of the interval, so a zero backoff (tests) really is zero.

    slack-sdk's RandomJitter adds up to a whole second to every wait, whatever the backoff.
    """

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 2)


def _retry_handlers(settings: SlackSettings) -> list[RetryHandler]:
    interval = BackoffRetryIntervalCalculator(backoff_factor=settings.retry_backoff_s, jitter=_ScaledJitter())
    return [
        # URLError only: urllib raises it when connecting or sending fails, before Slack could
        # have acted. A dropped connection while reading the answer (RemoteDisconnected,
        # ConnectionResetError) may follow a post Slack accepted, so it is not retried here;
        # it counts as a failed attempt instead.
        ConnectionErrorRetryHandler(
            max_retry_count=settings.max_retries, interval_calculator=interval, error_types=[URLError]
        ),
        RateLimitErrorRetryHandler(max_retry_count=settings.max_retries),  # sleeps Retry-After
        ServerErrorRetryHandler(max_retry_count=settings.max_retries, interval_calculator=interval),  # 500, 503
    ]


def _poster(settings: SlackSettings) -> Callable[[str, list[dict], dict], None]:
    """A function that posts one message or raises _PostFailed with a redacted reason."""
    handlers = _retry_handlers(settings)
    if settings.mode == "web_api":
        client = WebClient(
            token=settings.token,
            base_url=settings.api_url,
            timeout=settings.timeout_s,
            logger=_SDK_LOGGER,
            retry_handlers=handlers,
        )

        def post_web_api(text: str, blocks: list[dict], metadata: dict) -> None:
            try:
                client.chat_postMessage(
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
                code = str(data.get("error")) if isinstance(data, dict) else "unexpected response"
                reason = settings.redact(f"chat.postMessage: {code} (HTTP {status})")
                raise _PostFailed(
                    reason[:500], stops_batch=status == 429 or status >= 500 or code in _CONFIGURATION_ERRORS
                ) from None
            except Exception as err:
                raise _transport_failure(settings, err) from None

        return post_web_api

    client_hook = WebhookClient(
        url=settings.webhook_url, timeout=settings.timeout_s, logger=_SDK_LOGGER, retry_handlers=handlers
    )

    def post_webhook(text: str, blocks: list[dict], metadata: dict) -> None:
        try:
            response = client_hook.send(
                text=text, blocks=blocks, metadata=metadata, unfurl_links=False, unfurl_media=False
            )
        except Exception as err:
            raise _transport_failure(settings, err) from None
        # WebhookClient answers 429/5xx with a response (after its retries) instead of raising.
        if response.status_code != 200:
            status = response.status_code
            body = " ".join((response.body or "").split())[:200]
            raise _PostFailed(
                settings.redact(f"webhook: HTTP {status}: {body}"),
                stops_batch=status == 429 or status >= 500 or status in _WEBHOOK_CONFIGURATION_STATUSES,
            )

    return post_webhook


def _transport_failure(settings: SlackSettings, err: Exception) -> _PostFailed:
    # Refused, timed out, reset: Slack is unreachable, the next alert would fare no better.
    unreachable = isinstance(err, (OSError, HTTPException))
    return _PostFailed(settings.redact(f"{type(err).__name__}: {err}")[:500], stops_batch=unreachable)


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
