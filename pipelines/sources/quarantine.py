"""One quarantine schema for every source: a record that could not be used, with its reason and
its verbatim text, so nothing is silently dropped and a person can find it in its file."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_format", pa.string()),
        ("source_file", pa.string()),
        # Where in the file, as a person would look for it: `line 12` (JSON lines), `row 12` (CSV,
        # the header is row 1), `[3]` (a JSON array's element), `data[0].results[3]` (JSON pages).
        ("record_ref", pa.string()),
        # The record's UTC day when it could be read, else NULL. Per-day quarantines (the
        # gateway's) carry it as their partition's day, so a record without a readable time has
        # the day it was counted on (see sources/gateway/validate.sql).
        ("day", pa.date32()),
        ("reason", pa.string()),
        ("raw", pa.string()),  # the record's verbatim text
    ]
)

QUARANTINE_DDL = (
    "(" + ", ".join(f"{f.name} {'date' if f.name == 'day' else 'varchar'}" for f in QUARANTINE_SCHEMA) + ")"
)


def quarantine_row(fmt: str, path: object, ref: str, day: dt.date | None, reason: str, raw: str) -> dict:
    return {"source_format": fmt, "source_file": str(path), "record_ref": ref, "day": day, "reason": reason, "raw": raw}


class CurrencyError(ValueError):
    """An amount in a currency with no rate in `currency_rates`: the run stops rather than
    count money in the wrong unit (the message names the file and the key to add)."""
