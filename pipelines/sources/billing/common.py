"""What every provider export reader shares: the cost-line and usage-line schemas, the
per-file record accounting (`Parsed`), and the field readers that turn one JSON or CSV record
into typed values or a `BadRecord` whose message is the quarantine reason.

The invoice is the truth for money; exports are how it arrives. Each format module knows its
source's units and token semantics and converts them to costwatch's:

- money in USD as exact decimals (Anthropic's cost report is in **cents**, as a decimal string);
- `input_tokens` counts ALL prompt tokens, cache reads and writes included (OpenAI's usage
  already does; Anthropic's `uncached_input_tokens` excludes both, so they are added back);
- the price dimensions a bill is split by, where the export carries them: `service_tier`
  (standard, batch, flex, priority) and `long_context` (the line is billed at the model's
  long-context rate: OpenAI's `, long context` line items, Anthropic's `200k-1M` context window).
  NULL means the export did not say, and reconciliation then adds that dimension up.

A record that cannot be read is quarantined with its reason; a currency other than USD with no
configured rate stops the run (`CurrencyError`) naming the file and the record, because guessing
a rate would make every number after it wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.sources.quarantine import CurrencyError, quarantine_row
from pipelines.sources.values import NotADecimal, to_decimal

MONEY = pa.decimal128(18, 10)  # USD; exports carry sub-cent amounts
MONEY_STEP = Decimal("1e-10")
QUANTITY = pa.decimal128(38, 9)  # OpenAI sends quantity as a JSON number; kept as the digits it wrote

COST_LINE_SCHEMA = pa.schema(
    [
        ("source_format", pa.string()),
        ("source_file", pa.string()),
        ("record_ref", pa.string()),  # where in the file: data[i].results[j], or CSV row number
        ("provider", pa.string()),
        ("period_start", pa.date32()),  # first UTC day billed
        ("period_end", pa.date32()),  # last UTC day billed, inclusive
        ("line_item", pa.string()),
        ("model", pa.string()),  # NULL for a line item that is not per-model token usage
        ("token_type", pa.string()),  # input, cached_input, cache_write, output; NULL if not tokens
        ("cost_type", pa.string()),  # tokens, or what else was billed (fine_tuning, web_search, ...)
        ("project", pa.string()),  # OpenAI project_id / Anthropic workspace_id
        ("invoice_id", pa.string()),
        ("currency", pa.string()),  # as the export gave it
        ("amount_original", pa.string()),  # as the export gave it, in its unit (Anthropic: cents)
        ("billed_usd", MONEY),
        ("service_tier", pa.string()),  # standard, batch, flex, priority; NULL if the export does not say
        ("long_context", pa.bool_()),  # billed at the long-context rate; NULL if the export does not say
        ("context_window", pa.string()),  # as the export gave it (Anthropic: 0-200k, 200k-1M)
        ("modality", pa.string()),  # text, audio, image where the line item names it; else NULL
        ("quantity", QUANTITY),  # what was billed, in quantity_unit (OpenAI: tokens for token lines)
        ("quantity_unit", pa.string()),
    ]
)

USAGE_LINE_SCHEMA = pa.schema(
    [
        ("source_format", pa.string()),
        ("source_file", pa.string()),
        ("record_ref", pa.string()),
        ("provider", pa.string()),
        ("day", pa.date32()),
        ("model", pa.string()),
        ("project", pa.string()),
        ("batch", pa.bool_()),
        ("requests", pa.int64()),  # NULL where the export does not count requests (Anthropic)
        ("input_tokens", pa.int64()),  # ALL prompt tokens, cache reads and writes included
        ("cached_input_tokens", pa.int64()),
        ("cache_creation_input_tokens", pa.int64()),  # all cache writes, 5-minute and 1-hour
        ("output_tokens", pa.int64()),
        ("cache_creation_1h_input_tokens", pa.int64()),  # the 1-hour share of the writes; NULL if not reported
        ("audio_input_tokens", pa.int64()),  # inside input_tokens; NULL if not reported
        ("audio_output_tokens", pa.int64()),  # inside output_tokens; NULL if not reported
        ("web_search_requests", pa.int64()),  # server-side web searches (calls, not tokens); NULL if not reported
        ("service_tier", pa.string()),  # standard, batch, flex, priority; NULL if the export does not say
        ("long_context", pa.bool_()),  # NULL if the export does not say
        ("context_window", pa.string()),  # as the export gave it
    ]
)


class BadRecord(ValueError):
    """One record cannot be used; its message is the quarantine reason."""


@dataclass
class Parsed:
    cost_lines: list[dict] = field(default_factory=list)
    usage_lines: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    # (provider, day) pairs an export covers, empty buckets included: a covered day without a
    # line is a day billed at zero, not a day whose bill has not arrived.
    covered_days: set[tuple[str, dt.date]] = field(default_factory=set)
    # Per source file: the records met in it (a result of a bucket, a bucket or a file that could
    # not be split into results, a CSV row), counted when met and before deciding where each
    # goes, so `read = kept + quarantined` is a check and not an identity.
    records_read: dict[str, int] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)

    def met(self, path: Path) -> None:
        self.records_read[str(path)] = self.records_read.get(str(path), 0) + 1

    def per_file(self) -> list[dict]:
        """Per source file: records read, kept (cost and usage lines) and quarantined."""
        counts = {
            name: {
                "source_file": name,
                "source_format": self.formats[name],
                "records": read,
                "kept": 0,
                "quarantined": 0,
            }
            for name, read in self.records_read.items()
        }
        for line in self.cost_lines + self.usage_lines:
            counts[line["source_file"]]["kept"] += 1
        for row in self.quarantine:
            counts[row["source_file"]]["quarantined"] += 1
        return [counts[name] for name in sorted(counts)]


def decimal_field(value: Any, what: str) -> Decimal:
    try:
        return to_decimal(value)
    except NotADecimal as error:
        raise BadRecord(f"{'missing' if error.missing else 'bad'}_{what}") from None


INT64_MAX = 2**63 - 1
MAX_USD = Decimal("1e8")  # MONEY holds 8 digits before the point


def token_count(record: dict, key: str, *, default: int | None = 0) -> int | None:
    value = record.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"bad_type:{key}")
    if value < 0:
        raise BadRecord(f"negative:{key}")
    if value > INT64_MAX:
        raise BadRecord(f"out_of_range:{key}")
    return value


def flag_field(record: dict, key: str) -> bool:
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise BadRecord(f"bad_type:{key}")


# The tier words exports use, as costwatch's service tiers (CONTRACT: standard, batch, flex,
# priority). OpenAI says `default`/`auto`; Anthropic's usage report has `flex_discount` and
# `priority_on_demand`. A word not here is kept as written (lower case), so it shows up as its
# own tier in reconciliation instead of being folded into one it may not be.
SERVICE_TIERS = {
    "standard": "standard",
    "default": "standard",
    "auto": "standard",
    "on_demand": "standard",
    "batch": "batch",
    "flex": "flex",
    "flex_discount": "flex",
    "priority": "priority",
    "priority_on_demand": "priority",
}


def service_tier_field(record: dict, key: str = "service_tier") -> str | None:
    word = text_field(record, key)
    if word is None or not word.strip():
        return None
    word = word.strip().lower()
    return SERVICE_TIERS.get(word, word)


# Anthropic's context windows: the second is billed at the long-context rate.
CONTEXT_WINDOWS = {"0-200k": False, "200k-1m": True}


def long_context_of(context_window: str | None) -> bool | None:
    """Whether an Anthropic `context_window` is the long-context one; NULL when absent. A window
    not known here is a bad record: guessing would put its money on the wrong rate."""
    if context_window is None:
        return None
    window = context_window.strip().lower()
    if window not in CONTEXT_WINDOWS:
        raise BadRecord("unknown_context_window")
    return CONTEXT_WINDOWS[window]


def quantity_field(record: dict, key: str = "quantity") -> Decimal | None:
    value = record.get(key)
    if value is None:
        return None
    quantity = decimal_field(value, key)
    if abs(quantity) >= Decimal("1e18"):  # keeps the 9-decimal quantize inside Decimal's 28 digits
        raise BadRecord(f"out_of_range:{key}")
    return quantity.quantize(Decimal("1e-9"))


def text_field(record: dict, key: str) -> str | None:
    """A text field: a string, or absent. A number, list or object there is a bad record, not a
    value to stringify (it would also break the Arrow table every line lands in)."""
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(f"bad_type:{key}")


def to_usd(amount: Decimal, currency: Any, rates: dict[str, float], where: str) -> Decimal:
    """USD for an amount in `currency`. A code that is no currency code at all (a cut CSV
    row's "US") is a bad record; a real code without a configured rate stops the run."""
    if currency is not None and not isinstance(currency, str):
        raise BadRecord("bad_type:currency")
    code = (currency or "").strip().upper()
    if not code:
        raise BadRecord("missing_currency")
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise BadRecord("bad_currency")
    if code != "USD" and code not in rates:
        raise CurrencyError(
            f"{where}: amount in {code} and no rate for it; add currency_rates: {{{code}: <USD per {code}>}} "
            "to the config"
        )
    usd = amount if code == "USD" else amount * to_decimal(rates[code])
    if abs(usd) >= MAX_USD:
        raise BadRecord("amount_out_of_range")
    return usd.quantize(MONEY_STEP)


def day_of(value: Any, what: str) -> dt.date:
    """A bucket boundary: unix seconds (OpenAI) or RFC 3339 (Anthropic), as a UTC day."""
    if isinstance(value, bool):
        raise BadRecord(f"bad_{what}")
    try:
        if isinstance(value, (int, float)):  # NaN, infinities and years past 9999 raise
            return dt.datetime.fromtimestamp(value, dt.timezone.utc).date()
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(dt.timezone.utc)
            return parsed.date()
    except (ValueError, OverflowError, OSError):
        raise BadRecord(f"bad_{what}") from None
    raise BadRecord(f"missing_{what}")


def buckets_of(document: Any) -> list:
    """The `data` list of a page, or of every page when a file holds a list of pages."""
    pages = document if isinstance(document, list) else [document]
    buckets = []
    for page in pages:
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise BadRecord("not_a_page")
        buckets.extend(page["data"])
    return buckets


def each_result(path: Path, fmt: str, parsed: Parsed, provider: str, start_key: str, end_key: str):
    """Yield (day, result, record_ref) for every result of every daily bucket, quarantining the
    buckets and results that cannot be placed on a day. A file that cannot be split into
    buckets is one record; so is a bucket that cannot be split into results."""
    parsed.formats[str(path)] = fmt
    parsed.records_read.setdefault(str(path), 0)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        buckets = buckets_of(document)
    except (ValueError, RecursionError, BadRecord) as error:
        if isinstance(error, BadRecord):
            reason = str(error)
        elif isinstance(error, UnicodeDecodeError):
            reason = "not_utf8"
        else:  # RecursionError: nested deeper than Python's parser goes
            reason = "bad_json" if isinstance(error, ValueError) else "bad_json:nested too deep"
        parsed.met(path)
        parsed.quarantine.append(
            quarantine_row(fmt, path, "file", None, reason, path.read_text(encoding="utf-8", errors="replace")[:10_000])
        )
        return
    for index, bucket in enumerate(buckets):
        ref = f"data[{index}]"
        try:
            if not isinstance(bucket, dict):
                raise BadRecord("bucket_not_an_object")
            day = day_of(bucket.get(start_key), start_key)
            end = day_of(bucket.get(end_key), end_key) if bucket.get(end_key) is not None else day
            if (end - day).days > 1:
                raise BadRecord("bucket_wider_than_a_day")
            results = bucket.get("results")
            if results is None:
                results = []
            if not isinstance(results, list):
                raise BadRecord("results_not_a_list")
        except BadRecord as error:
            parsed.met(path)
            parsed.quarantine.append(quarantine_row(fmt, path, ref, None, str(error), json.dumps(bucket)[:10_000]))
            continue
        parsed.covered_days.add((provider, day))
        for position, result in enumerate(results):
            parsed.met(path)
            if not isinstance(result, dict):
                parsed.quarantine.append(
                    quarantine_row(
                        fmt, path, f"{ref}.results[{position}]", day, "result_not_an_object", json.dumps(result)
                    )
                )
                continue
            yield day, result, f"{ref}.results[{position}]"
