"""GPU-hour billing and GPU telemetry → the lake's GPU lines and per-replica busy time."""

import dagster as dg
import duckdb
import great_expectations.expectations as gxe

from pipelines.defs.ingest.accounting import accounting_check, accounting_metadata, accounting_spec
from pipelines.defs.quality import gate_specs, run_gates
from pipelines.lake.manifest import InputManifest, file_state
from pipelines.lake.partitions import PARTITION_FILE, write_file, write_partition
from pipelines.models.engine import publish_lake_views
from pipelines.quality.engine import Gate, Suite, rows_of_day
from pipelines.resources.config import CostwatchConfig
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day
from pipelines.sources.gpu.readers import (
    GPU_LINES_DDL,
    QUARANTINE_DDL,
    TELEMETRY_READERS,
    GpuCurrencyError,
    load_instance_types,
    read_focus,
    read_gpu_hours_csv,
    telemetry_busy_sql,
)

BILLING_DATASETS = {
    "gpu_billing_lines": "GPU instance usage per billing row: pool, replica, instance hours x GPUs per instance "
    "= GPU-hours, and its cost in USD. Rows that are not GPU spend are not kept.",
}
GPU_QUARANTINE = "gpu_billing_quarantine"
GPU_QUARANTINE_DESCRIPTION = "GPU billing rows that could not be used, with the reason; all files, rewritten each run."
TELEMETRY_DATASET = "gpu_busy_telemetry"
TELEMETRY_DESCRIPTION = "Per replica and day, GPU-hours sampled by telemetry and the busy share of them."
EFFECTIVE_ABOVE_BILLED = "effective_cost_not_above_billed"
# The day's GPU lines as written to the lake, checked by Great Expectations inside DuckDB.
GATES = [
    Suite(
        rows_of_day("gpu_billing_lines"),
        ("source_file", "record_ref"),
        (
            Gate(
                "gpu_hours_and_cost_valid",
                "GPU count >= 1; instance hours, GPU-hours and billed USD >= 0 and present",
                lambda config: [
                    gxe.ExpectColumnValuesToBeBetween(column="gpu_count", min_value=1),
                    *(
                        expectation
                        for column in ("instance_hours", "gpu_hours", "billed_usd")
                        for expectation in (
                            gxe.ExpectColumnValuesToNotBeNull(column=column),
                            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0),
                        )
                    ),
                ],
                blocking=True,
            ),
        ),
    )
]


def build_gpu_billing(config: CostwatchConfig, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="gpu_billing",
        group_name="ingest",
        partitions_def=partitions,
        kinds={"parquet", "duckdb"},
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                EFFECTIVE_ABOVE_BILLED,
                asset="gpu_billing",
                description="no GPU row's EffectiveCost (after discounts) exceeds its BilledCost: a data error in the export",
            ),
            accounting_spec("gpu_billing"),
            *gate_specs("gpu_billing", GATES),
        ],
    )
    def gpu_billing(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """One UTC day of GPU-hour billing from FOCUS exports and GPU-hours CSVs, mapped to
        serving pools by the `gpu.pool_tag` tag (untagged GPU spend stays visible as `untagged`)."""
        config = costwatch.config
        day = partition_day(context)
        files = config.source_files("gpu_billing")
        stats = []
        with duckdb.connect() as scratch:
            scratch.execute("set TimeZone = 'UTC'")
            load_instance_types(scratch, config.gpu.instance_types)
            tables = []
            try:
                for index, (path, fmt) in enumerate(files):
                    table = f"billing_{index}"
                    if fmt == "focus":
                        stats.append(
                            read_focus(
                                scratch, path, config.currency_rates, config.gpu.pool_tag, config.gpu.replica_tag, table
                            )
                        )
                    else:
                        stats.append(read_gpu_hours_csv(scratch, path, config.currency_rates, table))
                    tables.append(table)
            except GpuCurrencyError as error:
                raise dg.Failure(str(error)) from error
            scratch.execute(f"create temp table lines {GPU_LINES_DDL}")
            scratch.execute(f"create temp table quarantine {QUARANTINE_DDL}")
            for table in tables:
                scratch.execute(f"insert into lines by name select * from {table}")
                scratch.execute(f"insert into quarantine by name select * from {table}_quarantine")
            rows = write_partition(
                scratch,
                "select * exclude (day) from lines where day = $day",
                config.lake_dir,
                "gpu_billing_lines",
                day,
                {"day": day},
            )
            quarantined = write_file(
                scratch,
                "select * from quarantine order by source_file, record_ref",
                config.lake_dir / GPU_QUARANTINE / PARTITION_FILE,
            )
            by_pool = scratch.execute(
                "select pool, sum(gpu_hours), sum(billed_usd)::double from lines where day = $day group by 1 order by 1",
                {"day": day},
            ).fetchall()
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake_dir, BILLING_DATASETS, {GPU_QUARANTINE: GPU_QUARANTINE_DESCRIPTION})
            gates = list(run_gates(conn, GATES, config, day))
        above = [row for stat in stats for row in stat.effective_above_billed if row]
        per_file = [
            {
                "source_file": stat.source_file,
                "source_format": stat.source_format,
                "records": stat.records,
                "kept": stat.gpu_rows,
                "skipped": stat.non_gpu_rows,
                "quarantined": stat.quarantined,
                "skipped_by_reason": stat.skipped_by_reason,
            }
            for stat in stats
        ]
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "gpu_hours_by_pool": dg.MetadataValue.json({pool: round(hours, 4) for pool, hours, _ in by_pool}),
                "billed_usd_by_pool": dg.MetadataValue.json({pool: round(usd, 6) for pool, _, usd in by_pool}),
                "non_gpu_rows_skipped": sum(stat.non_gpu_rows for stat in stats),
                "quarantined_all_files": quarantined,
                **accounting_metadata(per_file),
            }
        )
        yield accounting_check(per_file)
        yield from gates
        yield dg.AssetCheckResult(
            check_name=EFFECTIVE_ABOVE_BILLED,
            passed=not above,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": len(above), "sample": dg.MetadataValue.json(above[:10])},
        )

    return gpu_billing


def build_gpu_telemetry(config: CostwatchConfig, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="gpu_telemetry",
        group_name="ingest",
        partitions_def=partitions,
        kinds={"parquet", "duckdb"},
        pool=WAREHOUSE_POOL,
    )
    def gpu_telemetry(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """GPU busy time per replica and UTC day from nvidia-smi logs or DCGM exporter samples
        (utilization weighted by the sampling interval). Only files that can hold the day are opened (input manifest)."""
        config = costwatch.config
        day = partition_day(context)
        manifest = InputManifest(config.lake_dir, "gpu_telemetry")
        files = config.source_files("gpu_telemetry")
        manifest.forget_missing({str(path) for path, _ in files})
        read = []
        with duckdb.connect() as scratch:
            scratch.execute("set TimeZone = 'UTC'")
            scratch.execute(
                "create temp table samples (replica_id varchar, gpu varchar, ts timestamp, utilization double)"
            )
            for path, fmt in files:
                state = file_state(path)
                if not manifest.may_hold(str(path), state, day):
                    continue
                TELEMETRY_READERS[fmt](scratch, path, "file_samples")
                days = [
                    d.isoformat()
                    for (d,) in scratch.execute(
                        "select distinct ts::date from file_samples where ts is not null order by 1"
                    ).fetchall()
                ]
                manifest.learn(str(path), state, fmt, days)
                if day.isoformat() in days:
                    scratch.execute("insert into samples select * from file_samples")
                    read.append(str(path))
            scratch.execute(f"create temp table busy as {telemetry_busy_sql('samples')}", {"day": day})
            rows = write_partition(scratch, "select * from busy", config.lake_dir, TELEMETRY_DATASET, day)
            busy = scratch.execute("select sum(busy_gpu_hours), sum(sampled_gpu_hours) from busy").fetchone()
        manifest.mark_ingested(day)
        manifest.save()
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake_dir, {TELEMETRY_DATASET: TELEMETRY_DESCRIPTION})
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "files_read": len(read),
                "busy_gpu_hours": round(busy[0] or 0.0, 4),
                "sampled_gpu_hours": round(busy[1] or 0.0, 4),
                "stale_days": dg.MetadataValue.json(sorted(manifest.stale)),
            }
        )

    return gpu_telemetry
