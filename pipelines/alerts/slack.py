"""Deliver the `alerts_outbox` to Slack: each alert once, oldest first, secrets kept out of sight.

The outbox is the contract between the alerts asset (which decides *what* to say) and Slack
(which may be down, rate-limited or not configured at all). An alert is a row with a stable
`alert_id`; `deliver` posts every `pending` row and commits its new status before touching the
next, so a crash mid-batch never re-posts an alert Slack already accepted.

Delivery modes, chosen from the environment (secrets never come from costwatch.yaml):
- `web_api`: `SLACK_BOT_TOKEN` + `alerts.slack_channel`, posted with `chat.postMessage`;
- `webhook`: `SLACK_WEBHOOK_URL` (an Incoming Webhook posts to its own channel);
- `dry_run`: neither; alerts are printed and stay `pending` until credentials exist.

The one duplicate window left is the one no client can close: Slack accepted a post but the
answer was lost (connection dropped while reading, or the process died before the commit).
That attempt counts as failed and the alert is posted again on the next run. Every post carries
`metadata.event_payload.alert_id`, so such a twin can be recognised in the channel.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.client import HTTPException
from typing import Any, Literal
from urllib.error import URLError
from urllib.parse import urlsplit

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

from pipelines.lake.partitions import sql_string
from pipelines.resources.config import ConfigError

logger = logging.getLogger(__name__)

# The logger handed to slack-sdk's clients. The SDK writes request URLs into its messages
# (a webhook URL *is* its secret), so while `deliver` runs this logger carries a filter that
# blanks the current secrets out of every record before any handler sees it.
_SDK_LOGGER = logging.getLogger(f"{__name__}.sdk")

DEFAULT_API_URL = "https://slack.com/api/"
REDACTED = "[redacted]"
Mode = Literal["web_api", "webhook", "dry_run"]

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

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_FIELD_CHARS = 2000
_FIELDS_PER_SECTION = 10
_DRIVERS_SHOWN = 10
_TEXT_CHARS = 4000  # Slack truncates longer top-level text; a notification needs far less


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SlackSettings:
    """How alerts leave the outbox. Build it with `from_env`; its repr never shows a secret."""

    mode: Mode
    channel: str | None = None  # alerts.slack_channel; Web API only (a webhook owns its channel)
    token: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL  # SLACK_API_URL: tests point it at a local server
    max_retries: int = 2  # per post, shared by the 429, 5xx and connect retry handlers
    retry_backoff_s: float = 0.5  # 5xx / connect backoff: ~backoff x 2^retry; 429 waits Retry-After
    timeout_s: int = 10  # per HTTP request

    def __post_init__(self) -> None:
        if self.mode == "web_api" and not (self.token and self.channel):
            raise ConfigError("SlackSettings: web_api mode needs a bot token and a channel; use SlackSettings.from_env")
        if self.mode == "webhook" and not self.webhook_url:
            raise ConfigError("SlackSettings: webhook mode needs a webhook URL; use SlackSettings.from_env")
        if self.max_retries < 0 or self.retry_backoff_s < 0 or self.timeout_s <= 0:
            raise ConfigError("SlackSettings: max_retries and retry_backoff_s must be >= 0, timeout_s > 0")

    @classmethod
    def from_env(cls, channel: str | None, environ: Mapping[str, str] = os.environ) -> SlackSettings:
        """Web API when `SLACK_BOT_TOKEN` is set, else webhook when `SLACK_WEBHOOK_URL` is, else dry run.

        `channel` is `alerts.slack_channel` from costwatch.yaml. Blank variables count as unset.
        """
        token = (environ.get("SLACK_BOT_TOKEN") or "").strip()
        webhook_url = (environ.get("SLACK_WEBHOOK_URL") or "").strip()
        api_url = (environ.get("SLACK_API_URL") or "").strip() or DEFAULT_API_URL
        channel = (channel or "").strip() or None
        if token:
            if channel is None:
                raise ConfigError(
                    "alerts.slack_channel: SLACK_BOT_TOKEN is set, so alerts post with chat.postMessage "
                    'and need a channel; set alerts.slack_channel in costwatch.yaml (e.g. "#llm-cost"), '
                    "or unset SLACK_BOT_TOKEN and set SLACK_WEBHOOK_URL instead"
                )
            if not _is_http_url(api_url):
                raise ConfigError(
                    f"SLACK_API_URL: {api_url!r} is not an http(s) URL; unset it to use {DEFAULT_API_URL}"
                )
            return cls(mode="web_api", channel=channel, token=token, api_url=api_url)
        if webhook_url:
            if not _is_http_url(webhook_url):
                # The value is the secret, so the message does not quote it.
                raise ConfigError(
                    "SLACK_WEBHOOK_URL: not an http(s) URL (value not shown); set it to the Incoming "
                    "Webhook URL from your Slack app, https://hooks.slack.com/services/..."
                )
            return cls(mode="webhook", channel=channel, webhook_url=webhook_url)
        return cls(mode="dry_run", channel=channel)

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry_run"

    def redact(self, text: str) -> str:
        """`text` with the token and the webhook URL (and its secret path) replaced by [redacted]."""
        for secret in self._secrets():
            text = text.replace(secret, REDACTED)
        return text

    def _secrets(self) -> list[str]:
        secrets = {s for s in (self.token, self.webhook_url) if s}
        if self.webhook_url:
            # The path (/services/T.../B.../XXXX) is the secret part; errors may quote it alone.
            # Short pieces are skipped: blanking "/" or "hook" everywhere would garble messages.
            path = urlsplit(self.webhook_url).path
            secrets |= {p for p in (path, path.rstrip("/").rsplit("/", 1)[-1]) if len(p) >= 8}
        # Longest first, so a URL is blanked whole rather than leaving its host around a hole.
        return sorted(secrets, key=len, reverse=True)


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# --------------------------------------------------------------------------- outbox table

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

_OUTBOX_COMMENTS = {
    "alert_id": "stable dedupe key: the same alert enqueued twice is one row, posted once",
    "kind": "what raised the alert (e.g. spend_anomaly, budget_forecast)",
    "severity": "how loud the alert is, as the alerts asset ranked it",
    "created_at": "when the alert was enqueued; delivery goes oldest first",
    "payload": "JSON text: title, text (plain fallback), fields [{label, value}], drivers [{name, impact_usd}], link",
    "status": "pending (waiting, or Slack not configured) / sent / failed (gave up after max_attempts)",
    "attempts": "posts tried so far, successful or not",
    "sent_at": "when Slack accepted the post",
    "last_error": "why the latest attempt failed (secrets redacted); null once sent",
}


def ensure_outbox(conn: duckdb.DuckDBPyConnection) -> None:
    """Create `alerts_outbox` if missing and (re)document it. Idempotent."""
    conn.execute(OUTBOX_DDL)
    # COMMENT ON takes a literal, not a parameter; the texts are this module's constants.
    conn.execute(
        "comment on table alerts_outbox is 'Alerts waiting for, or done with, Slack delivery; one row per alert_id'"
    )
    for column, text in _OUTBOX_COMMENTS.items():
        conn.execute(f"comment on column alerts_outbox.{column} is {sql_string(text)}")


def enqueue(
    conn: duckdb.DuckDBPyConnection,
    *,
    alert_id: str,
    kind: str,
    severity: str,
    created_at: datetime,
    payload: dict,
) -> bool:
    """Add a `pending` alert unless its `alert_id` is already in the outbox; True when added.

    An existing row is left alone whatever its status, so re-running the asset that raised the
    alert never re-sends it nor resets its attempts. The payload is rendered first, so a payload
    Slack could not show is refused here, in the producer, with the key that is wrong.
    """
    render(payload)
    rows = conn.execute(
        """
        insert into alerts_outbox (alert_id, kind, severity, created_at, payload, status, attempts)
        values (?, ?, ?, ?, ?, 'pending', 0)
        on conflict (alert_id) do nothing
        returning alert_id
        """,
        [alert_id, kind, severity, created_at, json.dumps(payload)],
    ).fetchall()
    return bool(rows)


# --------------------------------------------------------------------------- rendering


def render(payload: dict) -> tuple[str, list[dict]]:
    """Block Kit blocks for an alert payload, and the plain fallback text Slack notifies with.

    Header (title), a section of fields, a section of drivers with their dollar impact, and a
    context line with the link when there is one. Raises ValueError naming the bad payload key.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"payload: expected a JSON object, got {type(payload).__name__}")
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("payload.title: required, a non-empty string")
    text = payload.get("text") or title
    if not isinstance(text, str):
        raise ValueError("payload.text: expected a string")

    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title.strip(), _HEADER_CHARS)}}
    ]

    fields = [_field_text(item, index) for index, item in enumerate(_list(payload, "fields"))]
    for start in range(0, len(fields), _FIELDS_PER_SECTION):
        chunk = fields[start : start + _FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in chunk]})

    drivers = [_driver_line(item, index) for index, item in enumerate(_list(payload, "drivers"))]
    if drivers:
        lines = drivers[:_DRIVERS_SHOWN]
        if len(drivers) > _DRIVERS_SHOWN:
            lines.append(f"…and {len(drivers) - _DRIVERS_SHOWN} more")
        body = "*Drivers*\n" + "\n".join(lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(body, _SECTION_CHARS)}})

    link = payload.get("link")
    if link is not None:
        if not isinstance(link, str) or not _is_http_url(link):
            raise ValueError("payload.link: expected an http(s) URL or null")
        # <, > and | end a mrkdwn link early; a URL carries them percent-encoded.
        safe = link.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{safe}|Open details>"}]})

    return _clip(_escape(text), _TEXT_CHARS), blocks


def _list(payload: dict, key: str) -> list:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"payload.{key}: expected a list")
    return value


def _field_text(item: Any, index: int) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("label"), str):
        raise ValueError(f'payload.fields[{index}]: expected {{"label": str, "value": str}}')
    value = item.get("value")
    if value is None or isinstance(value, (dict, list)):
        raise ValueError(f"payload.fields[{index}].value: expected a string")
    return _clip(f"*{_escape(item['label'])}*\n{_escape(str(value))}", _FIELD_CHARS)


def _driver_line(item: Any, index: int) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ValueError(f'payload.drivers[{index}]: expected {{"name": str, "impact_usd": number}}')
    impact_usd = item.get("impact_usd")
    if isinstance(impact_usd, bool) or not isinstance(impact_usd, (int, float)) or not math.isfinite(impact_usd):
        raise ValueError(f"payload.drivers[{index}].impact_usd: expected a finite number (USD)")
    return f"• {_escape(item['name'])}: {format_usd(impact_usd, signed=True)}"


def format_usd(amount_usd: float, *, signed: bool = False) -> str:
    """`$1,234.56`; with `signed`, `+$1,234.56` / `-$1,234.56` (an impact, not a balance)."""
    rounded = round(float(amount_usd), 2)
    sign = "-" if rounded < 0 else ("+" if signed and rounded > 0 else "")
    return f"{sign}${abs(rounded):,.2f}"


def _escape(text: str) -> str:
    # Slack treats &, < and > as control characters in mrkdwn and top-level text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarise_blocks(blocks: list[dict]) -> str:
    """One line naming each block, e.g. `header, section (3 fields), section (drivers), context`."""
    parts = []
    for block in blocks:
        kind = block["type"]
        if kind == "section" and "fields" in block:
            parts.append(f"section ({len(block['fields'])} fields)")
        elif kind == "section":
            first_line = block["text"]["text"].split("\n", 1)[0].strip("*")
            parts.append(f"section ({first_line.lower()})")
        else:
            parts.append(kind)
    return ", ".join(parts)


# --------------------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    """What one `deliver` call did. Alert ids only: no message text, no secrets."""

    sent: list[str] = field(default_factory=list)  # accepted by Slack in this call
    held: list[str] = field(default_factory=list)  # still pending: retry left, batch stopped, or dry run
    failed: list[str] = field(default_factory=list)  # became `failed` in this call
    dry_run: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # alert_id -> this call's error (redacted)
    stopped: str | None = None  # why the batch stopped early (Slack unreachable or misconfigured)


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
) -> DeliveryReport:
    """Post every `pending` alert, oldest first, committing each alert's outcome before the next.

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

    pending = conn.execute(
        """
        select alert_id, kind, severity, payload, coalesce(attempts, 0) as attempts
        from alerts_outbox
        where status = 'pending'
        order by created_at nulls last, alert_id
        """
    ).fetchall()
    report = DeliveryReport(dry_run=settings.dry_run)
    if settings.dry_run:
        for alert_id, kind, severity, payload, _ in pending:
            _print_dry_run(alert_id, kind, severity, payload, settings.channel)
            report.held.append(alert_id)
        return report
    if not pending:
        return report

    _require_autocommit(conn)
    with _sdk_logs_redacted(settings):
        post = _poster(settings)
        for position, (alert_id, kind, severity, payload, attempts) in enumerate(pending):
            try:
                text, blocks = render(_load_payload(payload))
            except ValueError as err:
                reason = settings.redact(f"payload: {err}")
                _record_failure(conn, alert_id, attempts + 1, "failed", reason)
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
                _record_failure(conn, alert_id, attempts + 1, "failed" if gave_up else "pending", failure.reason)
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
                    rest = [row[0] for row in pending[position + 1 :]]
                    report.held.extend(rest)
                    report.stopped = failure.reason
                    if rest:
                        logger.warning("stopped after alert %s; %d alerts wait for the next run", alert_id, len(rest))
                    break
            else:
                _record_sent(conn, alert_id, attempts + 1, now)
                report.sent.append(alert_id)
                logger.info("alert %s sent to Slack (%s)", alert_id, settings.mode)
    return report


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
        _, blocks = render(content)
    except ValueError as err:
        print(f"  payload cannot be rendered: {err}")
        return
    print(f"  {content['title']}")
    print(f"  {content.get('text') or content['title']}")
    print(f"  blocks: {summarise_blocks(blocks)}")


def _require_autocommit(conn: duckdb.DuckDBPyConnection) -> None:
    # Each alert's outcome must be durable before the next post; inside a caller's transaction
    # it would not be, and a crash would re-send everything the batch had delivered.
    try:
        conn.begin()
    except duckdb.TransactionException:
        raise RuntimeError(
            "deliver: the connection is inside a transaction; commit it first (each alert is committed on its own)"
        ) from None
    conn.commit()


def _record_sent(conn: duckdb.DuckDBPyConnection, alert_id: str, attempts: int, now: datetime) -> None:
    _commit(
        conn,
        """
        update alerts_outbox
        set status = 'sent', sent_at = ?, attempts = ?, last_error = null
        where alert_id = ? and status = 'pending'
        """,
        [now, attempts, alert_id],
    )


def _record_failure(conn: duckdb.DuckDBPyConnection, alert_id: str, attempts: int, status: str, reason: str) -> None:
    _commit(
        conn,
        """
        update alerts_outbox
        set status = ?, attempts = ?, last_error = ?
        where alert_id = ? and status = 'pending'
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
