"""One UTC day of GPU billing (every configured FOCUS export and GPU-hours CSV) and of GPU
telemetry (nvidia-smi logs, DCGM samples) into the lake."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.lake.manifest import InputManifest, ManifestStore, file_state
from pipelines.lake.partitions import PARTITION_FILE, write_file, write_partition
from pipelines.lake.store import LakePath
from pipelines.resources.config import SourceSpec
from pipelines.sources import registry
from pipelines.sources.gpu.common import GpuBilling, load_instance_types
from pipelines.sources.quarantine import QUARANTINE_DDL
from pipelines.sources.queries import load_queries

BILLING_DATASET = "gpu_billing_lines"
BILLING_DESCRIPTION = (
    "GPU instance usage per billing row: pool, replica, instance hours x GPUs per instance "
    "= GPU-hours, and its cost in USD. Rows that are not GPU spend are not kept."
)
QUARANTINE = "gpu_billing_quarantine"
QUARANTINE_DESCRIPTION = "GPU billing rows that could not be used, with the reason; all files, rewritten each run."
TELEMETRY_DATASET = "gpu_busy_telemetry"
TELEMETRY_DESCRIPTION = "Per replica and day, GPU-hours sampled by telemetry and the busy share of them."


def _queries() -> dict[str, str]:
    return load_queries(__package__, "day.sql")


def telemetry_busy_sql() -> str:
    """Per replica, sampled and busy GPU-hours of the day `$day` over the relation `samples`."""
    return load_queries(__package__, "telemetry_busy.sql")["telemetry_busy"]


@dataclass
class GpuBillingDay:
    """What one day's GPU billing ingest wrote, and where every record of every file went."""

    rows: int  # GPU lines of the day
    quarantined: int  # quarantine rows of all files
    files: list[GpuBilling] = field(default_factory=list)
    gpu_hours_by_pool: dict[str, float] = field(default_factory=dict)
    billed_usd_by_pool: dict[str, float] = field(default_factory=dict)

    @property
    def uncommitted_cost_mismatch(self) -> list[dict]:
        return [row for stat in self.files for row in stat.uncommitted_cost_mismatch]

    def per_file(self) -> list[dict]:
        return [
            {
                "source_file": stat.source_file,
                "source_format": stat.source_format,
                "records": stat.records,
                "kept": stat.gpu_rows,
                "skipped": stat.non_gpu_rows,
                "quarantined": stat.quarantined,
                "skipped_by_reason": stat.skipped_by_reason,
            }
            for stat in self.files
        ]


def ingest_gpu_billing_day(
    files: list[tuple[Path, str]],
    rates: dict[str, float],
    pool_tag: str,
    replica_tag: str,
    instance_types: Path | None,
    lake_dir: LakePath,
    day: dt.date,
) -> GpuBillingDay:
    """`ingest_gpu_billing_days` of one day."""
    return ingest_gpu_billing_days(files, rates, pool_tag, replica_tag, instance_types, lake_dir, [day])[day]


def ingest_gpu_billing_days(
    files: list[tuple[Path, str]],
    rates: dict[str, float],
    pool_tag: str,
    replica_tag: str,
    instance_types: Path | None,
    lake_dir: LakePath,
    days: list[dt.date],
) -> dict[dt.date, GpuBillingDay]:
    """Read every GPU billing file once (each is read whole: a month's export holds every day),
    write each of `days`' GPU lines and the quarantine of all files. Raises CurrencyError for a
    currency without a rate, before anything is written."""
    queries = _queries()
    stats = []
    written = {}
    with duckdb.connect() as scratch:
        scratch.execute("set TimeZone = 'UTC'")
        load_instance_types(scratch, instance_types)
        scratch.execute(queries["lines"])
        # The one quarantine schema every source writes (sources/quarantine.py).
        scratch.execute(f"create temp table quarantine {QUARANTINE_DDL}")  # noqa: S608 (column list from QUARANTINE_SCHEMA)
        for path, fmt in files:
            stats.append(registry.get(fmt).read(scratch, path, rates, pool_tag, replica_tag))
            scratch.execute(queries["gather_lines"])
            scratch.execute(queries["gather_quarantine"])
        quarantined = write_file(scratch, queries[QUARANTINE], lake_dir / QUARANTINE / PARTITION_FILE)
        for day in days:
            rows = write_partition(scratch, queries[BILLING_DATASET], lake_dir, BILLING_DATASET, day, {"day": day})
            by_pool = scratch.execute(queries["by_pool"], {"day": day}).fetchall()
            written[day] = GpuBillingDay(
                rows=rows,
                quarantined=quarantined,
                files=stats,
                gpu_hours_by_pool={pool: round(hours, 4) for pool, hours, _ in by_pool},
                billed_usd_by_pool={pool: round(usd, 6) for pool, _, usd in by_pool},
            )
    return written


@dataclass
class TelemetryDay:
    rows: int  # replicas with samples on the day
    files_read: int
    busy_gpu_hours: float
    sampled_gpu_hours: float
    stale_days: list[str]  # days ingested before a file that holds them changed


def ingest_gpu_telemetry_day(files: list[tuple[Path, SourceSpec]], lake_dir: Path, day: dt.date) -> TelemetryDay:
    """`ingest_gpu_telemetry_days` of one day."""
    return ingest_gpu_telemetry_days(files, lake_dir, [day])[day]


def ingest_gpu_telemetry_days(
    files: list[tuple[Path, SourceSpec]],
    lake_dir: Path,
    days: list[dt.date],
    verify_content: str = "on_change",
    store: ManifestStore | None = None,
    lake: LakePath | None = None,
) -> dict[dt.date, TelemetryDay]:
    """GPU busy time per replica for each of `days` (utilization weighted by the sampling
    interval), from each file with the config entry that lists it (its format, and the time zone
    of a format that writes local time). Only files that can hold one of the days are opened (the
    input manifest remembers each file's days, and a file's content tells a changed file:
    `verify_content`, InputManifest, kept in `store`: the lake's JSON file unless given), each once
    for all of them. The partitions go to `lake` (`lake_dir`, where the manifest is, unless given)."""
    queries = _queries()
    manifest = InputManifest(lake_dir, "gpu_telemetry", verify_content, store)
    manifest.forget_missing({str(path) for path, _ in files})
    wanted = {day.isoformat() for day in days}
    read: dict[str, int] = {}  # day -> files read that hold it
    written = {}
    with duckdb.connect() as scratch:
        scratch.execute("set TimeZone = 'UTC'")
        scratch.execute(queries["samples"])
        for path, spec in files:
            fmt = registry.get(spec.format)
            state = file_state(path)
            if fmt.local_timestamps and spec.timezone != "UTC":
                # The days a local-time log holds depend on its zone: read in another, it is another file.
                state["timezone"] = spec.timezone
            state = manifest.observe(str(path), path, state)
            if not any(manifest.may_hold(str(path), state, day) for day in days):
                continue
            if fmt.local_timestamps:
                fmt.read(scratch, path, spec.timezone)
            else:
                fmt.read(scratch, path)
            held = [d.isoformat() for (d,) in scratch.execute(queries["file_days"]).fetchall()]
            manifest.learn(str(path), state, spec.format, held)
            if wanted.intersection(held):
                scratch.execute(queries["gather_samples"])
                for day in wanted.intersection(held):
                    read[day] = read.get(day, 0) + 1
        for day in days:
            scratch.execute(f"create or replace temp table busy as {telemetry_busy_sql()}", {"day": day})  # noqa: S608 (SQL from telemetry_busy.sql)
            rows = write_partition(scratch, queries["busy"], lake_dir if lake is None else lake, TELEMETRY_DATASET, day)
            busy, sampled = scratch.execute(queries["busy_totals"]).fetchone()
            manifest.mark_ingested(day)
            written[day] = TelemetryDay(
                rows=rows,
                files_read=read.get(day.isoformat(), 0),
                busy_gpu_hours=round(busy or 0.0, 4),
                sampled_gpu_hours=round(sampled or 0.0, 4),
                stale_days=[],
            )
    manifest.save()
    for day_written in written.values():
        day_written.stale_days = sorted(manifest.stale)
    return written
