"""Provider cost and usage exports → normalised cost lines and usage lines, or quarantine rows.

The invoice is the truth for money; these exports are how it arrives. Each reader knows its
source's units and token semantics and converts them to costwatch's:

- money in USD as exact decimals (Anthropic's cost report is in **cents**, as a decimal string);
- `input_tokens` counts ALL prompt tokens, cache reads and writes included (OpenAI's usage
  already does; Anthropic's `uncached_input_tokens` excludes both, so they are added back).

A record that cannot be read is quarantined with its reason; a currency other than USD with no
configured rate stops the run with an error naming the file and the record, because guessing
a rate would make every number after it wrong.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.lake.manifest import reading_input
from pipelines.sources import registry
from pipelines.sources.records import read_file_bytes, text_record
from pipelines.sources.registry import register

MONEY = pa.decimal128(18, 10)  # USD; exports carry sub-cent amounts
_MONEY_STEP = Decimal("1e-10")

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
        ("cache_creation_input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_format", pa.string()),
        ("source_file", pa.string()),
        ("record_ref", pa.string()),
        ("day", pa.date32()),  # the bucket's day when known, else NULL
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)

OPENAI_TOKEN_KINDS = {"input": "input", "cached input": "cached_input", "output": "output"}
ANTHROPIC_TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cached_input",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write",
    "output_tokens": "output",
}


class CurrencyError(ValueError):
    """A non-USD amount with no rate in `currency_rates`."""


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


def _decimal(value: Any, what: str) -> Decimal:
    if value is None or isinstance(value, bool):
        raise BadRecord(f"missing_{what}")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise BadRecord(f"bad_{what}") from None
    if not amount.is_finite():
        raise BadRecord(f"bad_{what}")
    return amount


INT64_MAX = 2**63 - 1
MAX_USD = Decimal("1e8")  # MONEY holds 8 digits before the point


def _tokens(record: dict, key: str, *, default: int | None = 0) -> int | None:
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


def _flag(record: dict, key: str) -> bool:
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise BadRecord(f"bad_type:{key}")


def _text(record: dict, key: str) -> str | None:
    """A text field: a string, or absent. A number, list or object there is a bad record, not a
    value to stringify (it would also break the Arrow table every line lands in)."""
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(f"bad_type:{key}")


def _to_usd(amount: Decimal, currency: Any, rates: dict[str, float], where: str) -> Decimal:
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
    usd = amount if code == "USD" else amount * Decimal(repr(rates[code]))
    if abs(usd) >= MAX_USD:
        raise BadRecord("amount_out_of_range")
    return usd.quantize(_MONEY_STEP)


def _day_of(value: Any, what: str) -> dt.date:
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


def _buckets(document: Any) -> list:
    """The `data` list of a page, or of every page when a file holds a list of pages."""
    pages = document if isinstance(document, list) else [document]
    buckets = []
    for page in pages:
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise BadRecord("not_a_page")
        buckets.extend(page["data"])
    return buckets


def _each_result(path: Path, fmt: str, parsed: Parsed, provider: str, start_key: str, end_key: str):
    """Yield (day, result, record_ref) for every result of every daily bucket, quarantining the
    buckets and results that cannot be placed on a day. A file that cannot be split into
    buckets is one record; so is a bucket that cannot be split into results."""
    parsed.formats[str(path)] = fmt
    parsed.records_read.setdefault(str(path), 0)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        buckets = _buckets(document)
    except (ValueError, RecursionError, BadRecord) as error:
        if isinstance(error, BadRecord):
            reason = str(error)
        elif isinstance(error, UnicodeDecodeError):
            reason = "not_utf8"
        else:  # RecursionError: nested deeper than Python's parser goes
            reason = "bad_json" if isinstance(error, ValueError) else "bad_json:nested too deep"
        parsed.met(path)
        parsed.quarantine.append(
            _bad(fmt, path, "file", None, reason, path.read_text(encoding="utf-8", errors="replace")[:10_000])
        )
        return
    for index, bucket in enumerate(buckets):
        ref = f"data[{index}]"
        try:
            if not isinstance(bucket, dict):
                raise BadRecord("bucket_not_an_object")
            day = _day_of(bucket.get(start_key), start_key)
            end = _day_of(bucket.get(end_key), end_key) if bucket.get(end_key) is not None else day
            if (end - day).days > 1:
                raise BadRecord("bucket_wider_than_a_day")
            results = bucket.get("results")
            if results is None:
                results = []
            if not isinstance(results, list):
                raise BadRecord("results_not_a_list")
        except BadRecord as error:
            parsed.met(path)
            parsed.quarantine.append(_bad(fmt, path, ref, None, str(error), json.dumps(bucket)[:10_000]))
            continue
        parsed.covered_days.add((provider, day))
        for position, result in enumerate(results):
            parsed.met(path)
            if not isinstance(result, dict):
                parsed.quarantine.append(
                    _bad(fmt, path, f"{ref}.results[{position}]", day, "result_not_an_object", json.dumps(result))
                )
                continue
            yield day, result, f"{ref}.results[{position}]"


def _bad(fmt: str, path: Path, ref: str, day: dt.date | None, reason: str, raw: str) -> dict:
    return {"source_format": fmt, "source_file": str(path), "record_ref": ref, "day": day, "reason": reason, "raw": raw}


def read_openai_costs(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """OpenAI Costs API pages. `amount.value` is USD (a number or a decimal string);
    `line_item` is `"<model>, <input|cached input|output>"` for token usage, anything else for
    other charges (fine-tuning, tools), or NULL when the costs were not grouped by line item."""
    fmt = "openai_costs"
    for day, result, ref in _each_result(path, fmt, parsed, "openai", "start_time", "end_time"):
        try:
            amount = result.get("amount")
            if not isinstance(amount, dict):
                raise BadRecord("missing_amount")
            value = _decimal(amount.get("value"), "amount")
            line_item = _text(result, "line_item")
            model, token_type, cost_type = None, None, "tokens" if line_item is None else "other"
            if isinstance(line_item, str) and ", " in line_item:
                head, tail = line_item.rsplit(", ", 1)
                if tail.strip().lower() in OPENAI_TOKEN_KINDS:
                    model, token_type, cost_type = head.strip(), OPENAI_TOKEN_KINDS[tail.strip().lower()], "tokens"
            parsed.cost_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "openai",
                    "period_start": day,
                    "period_end": day,
                    "line_item": line_item or "total",
                    "model": model,
                    "token_type": token_type,
                    "cost_type": cost_type,
                    "project": _text(result, "project_id"),
                    "invoice_id": None,
                    "currency": amount.get("currency"),
                    "amount_original": str(amount.get("value")),
                    "billed_usd": _to_usd(value, amount.get("currency"), rates, f"{path} {ref}"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(_bad(fmt, path, ref, day, str(error), json.dumps(result)))


def read_anthropic_cost_report(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """Anthropic Admin API cost report. `amount` is a decimal string in CENTS of `currency`."""
    fmt = "anthropic_cost_report"
    for day, result, ref in _each_result(path, fmt, parsed, "anthropic", "starting_at", "ending_at"):
        try:
            cents = _decimal(result.get("amount"), "amount")
            cost_type = _text(result, "cost_type") or "tokens"
            token_type = ANTHROPIC_TOKEN_TYPES.get(_text(result, "token_type") or "")
            if cost_type == "tokens" and token_type is None and result.get("token_type") is not None:
                raise BadRecord("unknown_token_type")
            model = _text(result, "model")
            line_item = _text(result, "description") or " ".join(
                part for part in (model, cost_type, result.get("token_type")) if part
            )
            parsed.cost_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "anthropic",
                    "period_start": day,
                    "period_end": day,
                    "line_item": line_item,
                    "model": model,
                    "token_type": token_type,
                    "cost_type": cost_type,
                    "project": _text(result, "workspace_id"),
                    "invoice_id": None,
                    "currency": result.get("currency"),
                    "amount_original": str(result.get("amount")),
                    "billed_usd": _to_usd(cents / 100, result.get("currency"), rates, f"{path} {ref}"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(_bad(fmt, path, ref, day, str(error), json.dumps(result)))


def read_openai_usage(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """OpenAI Usage API completions pages: `input_tokens` already includes `input_cached_tokens`."""
    fmt = "openai_usage"
    for day, result, ref in _each_result(path, fmt, parsed, "openai", "start_time", "end_time"):
        try:
            input_tokens = _tokens(result, "input_tokens")
            cached = _tokens(result, "input_cached_tokens")
            if cached > input_tokens:
                raise BadRecord("cached_exceeds_input")
            parsed.usage_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "openai",
                    "day": day,
                    "model": _text(result, "model"),
                    "project": _text(result, "project_id"),
                    "batch": _flag(result, "batch"),
                    "requests": _tokens(result, "num_model_requests", default=None),
                    "input_tokens": input_tokens,
                    "cached_input_tokens": cached,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": _tokens(result, "output_tokens"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(_bad(fmt, path, ref, day, str(error), json.dumps(result)))


def read_anthropic_usage_report(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """Anthropic usage report (messages). Its `uncached_input_tokens` EXCLUDES cache reads and
    cache writes; the canonical input_tokens adds them back."""
    fmt = "anthropic_usage_report"
    for day, result, ref in _each_result(path, fmt, parsed, "anthropic", "starting_at", "ending_at"):
        try:
            creation = result.get("cache_creation") or {}
            if not isinstance(creation, dict):
                raise BadRecord("bad_type:cache_creation")
            writes = _tokens(creation, "ephemeral_5m_input_tokens") + _tokens(creation, "ephemeral_1h_input_tokens")
            reads = _tokens(result, "cache_read_input_tokens")
            input_tokens = _tokens(result, "uncached_input_tokens") + reads + writes
            if input_tokens > INT64_MAX:
                raise BadRecord("out_of_range:input_tokens")
            parsed.usage_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": "anthropic",
                    "day": day,
                    "model": _text(result, "model"),
                    "project": _text(result, "workspace_id"),
                    "batch": result.get("service_tier") == "batch",
                    "requests": None,
                    "input_tokens": input_tokens,
                    "cached_input_tokens": reads,
                    "cache_creation_input_tokens": writes,
                    "output_tokens": _tokens(result, "output_tokens"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(_bad(fmt, path, ref, day, str(error), json.dumps(result)))


INVOICE_COLUMNS = ("invoice_id", "provider", "period_start", "period_end", "line_item", "model", "amount", "currency")


def read_invoice_csv(path: Path, rates: dict[str, float], parsed: Parsed) -> None:
    """The generic invoice CSV: one charge per row over a period (a day, a month, ...)."""
    fmt = "invoice_csv"
    parsed.formats[str(path)] = fmt
    parsed.records_read.setdefault(str(path), 0)
    data, damage = read_file_bytes(path)
    # surrogateescape: a row holding bytes that are not UTF-8 is found and set aside, not garbled.
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [column.strip().lower() for column in next(reader, [])]
    missing = [column for column in INVOICE_COLUMNS if column not in header]
    if missing:  # without its columns the file is one record, and a bad one
        parsed.met(path)
        raw, _ = text_record(",".join(header))
        parsed.quarantine.append(_bad(fmt, path, "header", None, f"missing_columns:{','.join(missing)}", raw))
        return
    number = 1
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        ref = f"row {number}"
        if not any(cell.strip() for cell in row):
            continue
        parsed.met(path)
        raw, not_utf8 = text_record(",".join(row))
        try:
            if not_utf8:
                raise BadRecord(not_utf8)
            if len(row) != len(header):
                raise BadRecord(f"ragged_row:{len(row)}_fields_for_{len(header)}_columns")
            record = {name: cell.strip() for name, cell in zip(header, row)}
            start = _day_of(record["period_start"], "period_start")
            end = _day_of(record["period_end"], "period_end")
            if end < start:
                raise BadRecord("period_end_before_start")
            if not record["provider"]:
                raise BadRecord("missing_provider")
            amount = _decimal(record["amount"] or None, "amount")
            parsed.cost_lines.append(
                {
                    "source_format": fmt,
                    "source_file": str(path),
                    "record_ref": ref,
                    "provider": record["provider"].lower(),
                    "period_start": start,
                    "period_end": end,
                    "line_item": record["line_item"] or "total",
                    "model": record["model"] or None,
                    "token_type": None,
                    "cost_type": "tokens" if record["model"] else "other",
                    "project": None,
                    "invoice_id": record["invoice_id"] or None,
                    "currency": record["currency"],
                    "amount_original": record["amount"],
                    "billed_usd": _to_usd(amount, record["currency"], rates, f"{path} {ref}"),
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(_bad(fmt, path, ref, None, str(error), raw))
    if damage:  # a gzip stream cut short: the rows before the damage are read, the damage is a record
        parsed.met(path)
        parsed.quarantine.append(_bad(fmt, path, f"row {number + 1}", None, damage, ""))


READERS = {
    "openai_costs": read_openai_costs,
    "anthropic_cost_report": read_anthropic_cost_report,
    "invoice_csv": read_invoice_csv,
    "openai_usage": read_openai_usage,
    "anthropic_usage_report": read_anthropic_usage_report,
}

_DESCRIPTIONS = {
    "openai_costs": "OpenAI Costs API pages (organization/costs), daily buckets",
    "anthropic_cost_report": "Anthropic Admin API cost_report pages (amounts in cents)",
    "invoice_csv": "a generic invoice CSV (invoice_id, provider, period_start, period_end, line_item, model, amount, currency)",
    "openai_usage": "OpenAI Usage API completions pages (organization/usage/completions)",
    "anthropic_usage_report": "Anthropic Admin API usage_report/messages pages",
}
for _name, _reader in READERS.items():
    register(_name, "provider_usage" if "usage" in _name else "provider_costs", _reader, _DESCRIPTIONS[_name])


def read_exports(files: list[tuple[Path, str]], rates: dict[str, float]) -> Parsed:
    """Every export, or InputUnavailable for the first one that cannot be read: a day billed
    without one of its exports would overwrite the day's lines with a smaller bill."""
    parsed = Parsed()
    for path, fmt in files:
        with reading_input(registry.get(fmt).source, path, fmt):
            READERS[fmt](path, rates, parsed)
    return parsed


def tables(parsed: Parsed) -> dict[str, pa.Table]:
    return {
        "cost_lines": pa.Table.from_pylist(parsed.cost_lines, schema=COST_LINE_SCHEMA),
        "usage_lines": pa.Table.from_pylist(parsed.usage_lines, schema=USAGE_LINE_SCHEMA),
        "quarantine": pa.Table.from_pylist(parsed.quarantine, schema=QUARANTINE_SCHEMA),
        "coverage": pa.Table.from_pylist(
            [{"provider": provider, "day": day} for provider, day in sorted(parsed.covered_days)],
            schema=pa.schema([("provider", pa.string()), ("day", pa.date32())]),
        ),
    }
