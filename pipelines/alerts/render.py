"""An alert payload as Slack shows it: Block Kit blocks plus the plain text Slack notifies with.

A payload is a JSON object: `title`, `text` (plain fallback), `fields` [{label, value}],
`drivers` [{name, impact_usd}] and `link`. Text is escaped for mrkdwn and clipped to Slack's limits.
"""

from __future__ import annotations

import math
from typing import Any

from pipelines.resources.slack import is_http_url

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_FIELD_CHARS = 2000
_FIELDS_PER_SECTION = 10
_DRIVERS_SHOWN = 10
_TEXT_CHARS = 4000  # Slack truncates longer top-level text; a notification needs far less


# How loud an alert is, shown before its title in the header and the notification text.
SEVERITY_LABEL = {"critical": "🔴 Critical", "warning": "🟠 Warning", "info": "🔵 Info"}


def render(payload: dict, severity: str | None = None) -> tuple[str, list[dict]]:
    """Block Kit blocks for an alert payload, and the plain fallback text Slack notifies with.

    Header (severity and title), a section of fields, a section of drivers with their dollar
    impact, and a context line with the link when there is one. Raises ValueError naming the bad
    payload key.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"payload: expected a JSON object, got {type(payload).__name__}")
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("payload.title: required, a non-empty string")
    text = payload.get("text") or title
    if not isinstance(text, str):
        raise ValueError("payload.text: expected a string")

    if severity:
        label = SEVERITY_LABEL.get(severity, severity.capitalize())
        title, text = f"{label}: {title.strip()}", f"{label}: {text}"
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
        if not isinstance(link, str) or not is_http_url(link):
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


def week_change(total: float, week_ago: float | None, week_day: object) -> str:
    """`+42% vs 2026-10-13, +$63.00`: a cost against the same day a week before (one decimal under
    10%, so a small move does not read as 0%); without a cost that day, says so."""
    if not week_ago:
        return f"no cost on {week_day} to compare"
    change = float(total) / float(week_ago) - 1
    percent = f"{change:+.1%}" if abs(change) < 0.1 else f"{change:+.0%}"
    return f"{percent} vs {week_day}, {format_usd(float(total) - float(week_ago), signed=True)}"


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
