"""What the ingest assets share: where every input record went, per source file (the metadata
table and the blocking check), and the Great Expectations gates of the lake tables they write.
A record is kept, skipped for a stated reason (a FOCUS row that is not GPU spend), quarantined,
or dropped as a repeat delivery of a kept one (gateway logs); a file whose records do not add up
lost some."""

import datetime as dt
from collections.abc import Iterator, Sequence

import dagster as dg
import duckdb

from pipelines.defs.quality import gate_specs, run_gates
from pipelines.models.engine import DayRange
from pipelines.quality.checks import load_suites
from pipelines.report.tables import markdown_table
from pipelines.resources.config import CostwatchConfig

RECORDS_ACCOUNTED = "every_record_accounted_for"


def adds_up(row: dict) -> bool:
    return row["records"] == row["kept"] + row.get("skipped", 0) + row["quarantined"] + row.get("duplicates", 0)


def accounting_spec(asset: str, partitions: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    """On the asset key of the table the kept records went to."""
    return dg.AssetCheckSpec(
        RECORDS_ACCOUNTED,
        asset=asset,
        blocking=True,
        partitions_def=partitions,
        description="per source file: records read = kept + skipped (with a reason) + quarantined + duplicates",
    )


def accounting_check(rows: list[dict], asset: str | None = None) -> dg.AssetCheckResult:
    """ERROR when any file's records do not add up: downstream numbers would miss them. Rows
    may be per file and day (a range run): then the days that do not add up are named too."""
    broken_rows = [row for row in rows if not adds_up(row)]
    broken = list(dict.fromkeys(row["source_file"] for row in broken_rows))
    broken_days = sorted({row["day"] for row in broken_rows if "day" in row})
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=RECORDS_ACCOUNTED,
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "records": sum(row["records"] for row in rows),
            "kept": sum(row["kept"] for row in rows),
            "skipped": sum(row.get("skipped", 0) for row in rows),
            "quarantined": sum(row["quarantined"] for row in rows),
            "duplicates": sum(row.get("duplicates", 0) for row in rows),
            "files_not_adding_up": dg.MetadataValue.json(broken),
            **({"days_not_adding_up": dg.MetadataValue.json(broken_days)} if broken_days else {}),
        },
    )


def accounting_metadata(rows: list[dict]) -> dict:
    """Per source file, as a markdown table for people and as JSON keyed by file for tools."""
    table = markdown_table(
        ["file", "format", "records", "kept", "skipped", "quarantined", "duplicates", "adds up"],
        [
            (
                f"`{row['source_file']}`",
                row.get("source_format"),
                row["records"],
                row["kept"],
                _skipped(row),
                row["quarantined"],
                row.get("duplicates", 0),
                "yes" if adds_up(row) else "**NO**",
            )
            for row in rows
        ],
    )
    return {
        "records_read": sum(row["records"] for row in rows),
        "per_source": dg.MetadataValue.md(table),
        "per_source_counts": dg.MetadataValue.json(
            {row["source_file"]: {key: value for key, value in row.items() if key != "source_file"} for row in rows}
        ),
    }


def _skipped(row: dict) -> str:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in row.get("skipped_by_reason", {}).items())
    return f"{row.get('skipped', 0)} ({reasons})" if reasons else str(row.get("skipped", 0))


def lake_gate_specs(tables: Sequence[str], partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """The gates declared in `sql/lake/<table>.checks.yml`, each on its table's asset key."""
    return [spec for table in tables for spec in gate_specs(table, load_suites(table), partitions)]


def run_lake_gates(
    conn: duckdb.DuckDBPyConnection, tables: Sequence[str], config: CostwatchConfig, days: DayRange | dt.date
) -> Iterator[dg.AssetCheckResult]:
    """The gates' results over the run's days, each on its table's key (an asset that writes
    several tables must say which)."""
    for table in tables:
        for result in run_gates(conn, load_suites(table), config, days):
            yield result._replace(asset_key=dg.AssetKey(table))
