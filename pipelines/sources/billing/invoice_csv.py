"""The generic invoice CSV -> cost lines: one charge per row over a period (a day, a month, ...)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pipelines.sources.billing.common import (
    BadRecord,
    Parsed,
    day_of,
    decimal_field,
    to_usd,
)
from pipelines.sources.quarantine import quarantine_row
from pipelines.sources.records import read_file_bytes, text_record
from pipelines.sources.registry import register

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
        parsed.quarantine.append(quarantine_row(fmt, path, "header", None, f"missing_columns:{','.join(missing)}", raw))
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
            record = {name: cell.strip() for name, cell in zip(header, row, strict=True)}
            start = day_of(record["period_start"], "period_start")
            end = day_of(record["period_end"], "period_end")
            if end < start:
                raise BadRecord("period_end_before_start")
            if not record["provider"]:
                raise BadRecord("missing_provider")
            amount = decimal_field(record["amount"] or None, "amount")
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
                    "billed_usd": to_usd(amount, record["currency"], rates, f"{path} {ref}"),
                    # An invoice row names no tier or context window: reconciliation adds them up.
                    "service_tier": None,
                    "long_context": None,
                    "context_window": None,
                    "modality": None,
                    "quantity": None,
                    "quantity_unit": None,
                }
            )
        except BadRecord as error:
            parsed.quarantine.append(quarantine_row(fmt, path, ref, None, str(error), raw))
    if damage:  # a gzip stream cut short: the rows before the damage are read, the damage is a record
        parsed.met(path)
        parsed.quarantine.append(quarantine_row(fmt, path, f"row {number + 1}", None, damage, ""))


register(
    "invoice_csv",
    "provider_costs",
    read_invoice_csv,
    "a generic invoice CSV (invoice_id, provider, period_start, period_end, line_item, model, amount, currency)",
)
