"""One UTC day of provider billing: every configured export read, the day's cost lines, usage
lines and coverage written as lake partitions, the quarantine of all files written whole."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lake.manifest import reading_input
from pipelines.lake.partitions import PARTITION_FILE, write_file, write_partition
from pipelines.lake.store import LakePath
from pipelines.sources import registry
from pipelines.sources.billing.common import COST_LINE_SCHEMA, USAGE_LINE_SCHEMA, Parsed
from pipelines.sources.quarantine import QUARANTINE_SCHEMA
from pipelines.sources.queries import load_queries

# The lake datasets this source writes, with what each holds (the lake view's comment).
DAILY_DATASETS = {
    "provider_cost_lines": "Billed charges from provider cost exports and invoices, in USD; "
    "one row per export record. Multi-day periods land on their last day.",
    "provider_usage_lines": "Provider-reported token usage per day x model x project, "
    "normalised so input_tokens includes cache reads and writes.",
    "provider_billing_coverage": "Days each provider's exports cover, empty buckets included: "
    "a covered day without lines was billed zero.",
}
QUARANTINE = "provider_quarantine"
QUARANTINE_DESCRIPTION = (
    "Provider export records that could not be used, with the reason; all files, rewritten each run."
)
SOURCES = ("provider_costs", "provider_usage")


def read_exports(files: list[tuple[Path, str]], rates: dict[str, float]) -> Parsed:
    """Every export, or InputUnavailable for the first one that cannot be read: a day billed
    without one of its exports would overwrite the day's lines with a smaller bill."""
    parsed = Parsed()
    for path, fmt in files:
        reader = registry.get(fmt)
        with reading_input(reader.source, path, fmt):
            reader.read(path, rates, parsed)
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


@dataclass
class BillingDay:
    """What one day's ingest wrote and where every record of every export went."""

    rows: dict[str, int]  # per lake dataset: rows written (the quarantine: of all files)
    files_read: int
    billed_usd_by_provider: dict[str, float]
    # Per source file: source, source_format, records, kept, quarantined.
    per_file: list[dict] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)

    def records_by_source(self) -> dict[str, dict[str, int]]:
        return {
            source: {
                key: sum(row[key] for row in self.per_file if row["source"] == source)
                for key in ("records", "kept", "quarantined")
            }
            for source in SOURCES
        }


def ingest_billing_day(
    files_by_source: dict[str, list[tuple[Path, str]]], rates: dict[str, float], lake_dir: LakePath, day: dt.date
) -> BillingDay:
    """`ingest_billing_days` of one day."""
    return ingest_billing_days(files_by_source, rates, lake_dir, [day])[day]


def ingest_billing_days(
    files_by_source: dict[str, list[tuple[Path, str]]], rates: dict[str, float], lake_dir: LakePath, days: list[dt.date]
) -> dict[dt.date, BillingDay]:
    """Read every export once (they are small), convert money to USD (Anthropic's cents included)
    and write each of `days`' partitions and the whole quarantine. Raises CurrencyError for an
    amount in a currency without a rate, before anything is written."""
    files = [found for source in SOURCES for found in files_by_source.get(source, [])]
    parsed = read_exports(files, rates)
    queries = load_queries(__package__, "day.sql")
    source_of = {str(path): source for source in SOURCES for path, _ in files_by_source.get(source, [])}
    per_file = [{"source": source_of.get(row["source_file"]), **row} for row in parsed.per_file()]
    reasons: dict[str, int] = {}
    for row in parsed.quarantine:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    written = {}
    with duckdb.connect() as scratch:
        for name, table in tables(parsed).items():
            scratch.register(name, table)
        quarantined = write_file(scratch, queries[QUARANTINE], lake_dir / QUARANTINE / PARTITION_FILE)
        for day in days:
            rows = {
                dataset: write_partition(scratch, queries[dataset], lake_dir, dataset, day, {"day": day})
                for dataset in DAILY_DATASETS
            }
            rows[QUARANTINE] = quarantined
            billed = scratch.execute(queries["billed_usd_by_provider"], {"day": day}).fetchall()
            written[day] = BillingDay(
                rows=rows,
                files_read=len(files),
                billed_usd_by_provider={provider: round(usd, 6) for provider, usd in billed},
                per_file=per_file,
                quarantine_reasons=reasons,
            )
    return written
