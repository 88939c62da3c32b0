"""Slack delivery settings: every environment variable Slack delivery reads is read here.

Secrets never come from costwatch.yaml. The mode follows from the environment:
- `web_api`: `SLACK_BOT_TOKEN` + `alerts.slack_channel`, posted with `chat.postMessage`;
- `webhook`: `SLACK_WEBHOOK_URL` (an Incoming Webhook posts to its own channel);
- `dry_run`: neither; alerts are printed and stay `pending` until credentials exist.
`SLACK_API_URL` points the Web API client elsewhere (tests use a local server).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from pipelines.resources.config import ConfigError

DEFAULT_API_URL = "https://slack.com/api/"
REDACTED = "[redacted]"
Mode = Literal["web_api", "webhook", "dry_run"]


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
            if not is_http_url(api_url):
                raise ConfigError(
                    f"SLACK_API_URL: {api_url!r} is not an http(s) URL; unset it to use {DEFAULT_API_URL}"
                )
            return cls(mode="web_api", channel=channel, token=token, api_url=api_url)
        if webhook_url:
            if not is_http_url(webhook_url):
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


def is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
