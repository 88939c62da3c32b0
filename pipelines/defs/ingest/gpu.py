"""GPU-hour billing → the lake's `gpu_billing_lines` and `gpu_billing_quarantine`; GPU telemetry →
`gpu_busy_telemetry` (per-replica busy time). One asset per table."""

import dagster as dg

from pipelines.defs.ingest import GPU_BILLING_VIEWS, GPU_TELEMETRY_VIEWS
from pipelines.defs.ingest.accounting import (
    accounting_check,
    accounting_metadata,
    accounting_spec,
    lake_gate_specs,
    run_lake_gates,
)
from pipelines.models.engine import publish_lake_views
from pipelines.resources.state import state_backend
from pipelines.resources.warehouse import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    CostwatchConfigResource,
    WarehouseResource,
    partition_days,
)
from pipelines.sources.gpu.day import (
    BILLING_DATASET,
    BILLING_DESCRIPTION,
    QUARANTINE,
    QUARANTINE_DESCRIPTION,
    TELEMETRY_DATASET,
    TELEMETRY_DESCRIPTION,
    ingest_gpu_billing_days,
    ingest_gpu_telemetry_days,
)
from pipelines.sources.quarantine import CurrencyError

UNCOMMITTED_COST_MISMATCH = "uncommitted_effective_cost_equals_billed"


def build_gpu_billing(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="gpu_billing",
        group_name="ingest",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        specs=[
            dg.AssetSpec(BILLING_DATASET, description=BILLING_DESCRIPTION, kinds={"parquet", "duckdb"}),
            dg.AssetSpec(QUARANTINE, description=QUARANTINE_DESCRIPTION, kinds={"parquet", "duckdb"}),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                UNCOMMITTED_COST_MISMATCH,
                asset=BILLING_DATASET,
                description=(
                    "FOCUS GPU usage rows no commitment discount covers have EffectiveCost = BilledCost "
                    "(nothing is amortized into them); a difference is an export error, and GPU cost "
                    "(EffectiveCost) then differs from cash. Covered rows (BilledCost 0) are the spec."
                ),
                partitions_def=partitions,
            ),
            accounting_spec(BILLING_DATASET, partitions),
            *lake_gate_specs([BILLING_DATASET], partitions),
        ],
    )
    def gpu_billing(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """Each UTC day of the run's GPU-hour billing from FOCUS exports and GPU-hours CSVs, mapped
        to serving pools by the `gpu.pool_tag` tag (untagged GPU spend stays visible as `untagged`)."""
        config = costwatch.config
        days = partition_days(context)
        try:
            # Every file read once for the range, then each day written.
            by_day = ingest_gpu_billing_days(
                config.source_files("gpu_billing"),
                config.currency_rates,
                config.gpu.pool_tag,
                config.gpu.replica_tag,
                config.gpu.instance_types,
                config.lake,
                days.days,
            )
        except CurrencyError as error:
            raise dg.Failure(str(error)) from error
        written = by_day[days.end]  # file counts, mismatches and the quarantine are of every file: the same each day
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake, *GPU_BILLING_VIEWS)
            gates = list(run_lake_gates(conn, [BILLING_DATASET], config, days))
        per_file = written.per_file()
        mismatch = written.uncommitted_cost_mismatch
        per_day = {
            day.isoformat(): {
                "rows": day_written.rows,
                "gpu_hours_by_pool": day_written.gpu_hours_by_pool,
                "billed_usd_by_pool": day_written.billed_usd_by_pool,
            }
            for day, day_written in by_day.items()
        }
        context.log.info(
            f"GPU billing {days}:\n"
            + "\n".join(
                f"  {day}: {counts['rows']} lines, "
                + (
                    ", ".join(f"{pool} {hours:,.1f} GPU-h" for pool, hours in counts["gpu_hours_by_pool"].items())
                    or "no GPU-hours"
                )
                for day, counts in per_day.items()
            )
        )
        yield dg.MaterializeResult(
            asset_key=BILLING_DATASET,
            metadata={
                "dagster/row_count": sum(day_written.rows for day_written in by_day.values()),
                "days": str(days),
                "gpu_hours_by_pool": dg.MetadataValue.json(_summed((w.gpu_hours_by_pool for w in by_day.values()), 4)),
                "billed_usd_by_pool": dg.MetadataValue.json(
                    _summed((w.billed_usd_by_pool for w in by_day.values()), 6)
                ),
                "non_gpu_rows_skipped": sum(row["skipped"] for row in per_file),
                **accounting_metadata(per_file),
            },
        )
        # Every file's quarantine: the row count is of all files, not of the day.
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"dagster/row_count": written.quarantined})
        yield accounting_check(per_file, BILLING_DATASET)
        yield from gates
        yield dg.AssetCheckResult(
            asset_key=BILLING_DATASET,
            check_name=UNCOMMITTED_COST_MISMATCH,
            passed=not mismatch,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": len(mismatch), "sample": dg.MetadataValue.json(mismatch[:10])},
        )

    return gpu_billing


def build_gpu_telemetry(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="gpu_telemetry",
        group_name="ingest",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        specs=[dg.AssetSpec(TELEMETRY_DATASET, description=TELEMETRY_DESCRIPTION, kinds={"parquet", "duckdb"})],
    )
    def gpu_telemetry(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """GPU busy time per replica and UTC day from nvidia-smi logs or DCGM exporter samples
        (utilization weighted by the sampling interval), for each day of the run. Only files that
        can hold a day are opened for it (input manifest)."""
        config = costwatch.config
        days = partition_days(context)
        by_day = ingest_gpu_telemetry_days(
            config.source_entries("gpu_telemetry"),
            config.lake_dir,
            days.days,
            config.inputs.verify_content,
            store=state_backend(config).manifests(),
            lake=config.lake,
        )
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake, *GPU_TELEMETRY_VIEWS)
        per_day = {
            day.isoformat(): {
                "rows": written.rows,
                "files_read": written.files_read,
                "busy_gpu_hours": written.busy_gpu_hours,
                "sampled_gpu_hours": written.sampled_gpu_hours,
            }
            for day, written in by_day.items()
        }
        context.log.info(
            f"GPU telemetry {days}:\n"
            + "\n".join(
                f"  {day}: {counts['rows']} replicas, {counts['busy_gpu_hours']:,.1f} busy of "
                f"{counts['sampled_gpu_hours']:,.1f} sampled GPU-h"
                for day, counts in per_day.items()
            )
        )
        return dg.MaterializeResult(
            asset_key=TELEMETRY_DATASET,
            metadata={
                "dagster/row_count": sum(written.rows for written in by_day.values()),
                "days": str(days),
                "files_read": max(written.files_read for written in by_day.values()),
                "busy_gpu_hours": round(sum(written.busy_gpu_hours for written in by_day.values()), 4),
                "sampled_gpu_hours": round(sum(written.sampled_gpu_hours for written in by_day.values()), 4),
                "stale_days": dg.MetadataValue.json(by_day[days.end].stale_days),
            },
        )

    return gpu_telemetry


def _summed(by_pool, digits: int) -> dict[str, float]:
    """Per pool, the sum over the run's days."""
    total: dict[str, float] = {}
    for values in by_pool:
        for pool, value in values.items():
            total[pool] = total.get(pool, 0.0) + value
    return {pool: round(value, digits) for pool, value in sorted(total.items())}
