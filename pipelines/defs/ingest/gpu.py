"""GPU-hour billing → the lake's `gpu_billing_lines` and `gpu_billing_quarantine`; GPU telemetry →
`gpu_busy_telemetry` (per-replica busy time). One asset per table."""

import dagster as dg

from pipelines.defs.ingest.accounting import (
    accounting_check,
    accounting_metadata,
    accounting_spec,
    lake_gate_specs,
    run_lake_gates,
)
from pipelines.models.engine import publish_lake_views
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day
from pipelines.sources.gpu.day import (
    BILLING_DATASET,
    BILLING_DESCRIPTION,
    QUARANTINE,
    QUARANTINE_DESCRIPTION,
    TELEMETRY_DATASET,
    TELEMETRY_DESCRIPTION,
    ingest_gpu_billing_day,
    ingest_gpu_telemetry_day,
)
from pipelines.sources.quarantine import CurrencyError

UNCOMMITTED_COST_MISMATCH = "uncommitted_effective_cost_equals_billed"


def build_gpu_billing(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="gpu_billing",
        group_name="ingest",
        partitions_def=partitions,
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
            ),
            accounting_spec(BILLING_DATASET),
            *lake_gate_specs([BILLING_DATASET]),
        ],
    )
    def gpu_billing(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """One UTC day of GPU-hour billing from FOCUS exports and GPU-hours CSVs, mapped to
        serving pools by the `gpu.pool_tag` tag (untagged GPU spend stays visible as `untagged`)."""
        config = costwatch.config
        day = partition_day(context)
        try:
            written = ingest_gpu_billing_day(
                config.source_files("gpu_billing"),
                config.currency_rates,
                config.gpu.pool_tag,
                config.gpu.replica_tag,
                config.gpu.instance_types,
                config.lake_dir,
                day,
            )
        except CurrencyError as error:
            raise dg.Failure(str(error)) from error
        with warehouse.get_connection() as conn:
            publish_lake_views(
                conn, config.lake_dir, {BILLING_DATASET: BILLING_DESCRIPTION}, {QUARANTINE: QUARANTINE_DESCRIPTION}
            )
            gates = list(run_lake_gates(conn, [BILLING_DATASET], config, day))
        per_file = written.per_file()
        mismatch = written.uncommitted_cost_mismatch
        yield dg.MaterializeResult(
            asset_key=BILLING_DATASET,
            metadata={
                "dagster/row_count": written.rows,
                "gpu_hours_by_pool": dg.MetadataValue.json(written.gpu_hours_by_pool),
                "billed_usd_by_pool": dg.MetadataValue.json(written.billed_usd_by_pool),
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
        pool=WAREHOUSE_POOL,
        specs=[dg.AssetSpec(TELEMETRY_DATASET, description=TELEMETRY_DESCRIPTION, kinds={"parquet", "duckdb"})],
    )
    def gpu_telemetry(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """GPU busy time per replica and UTC day from nvidia-smi logs or DCGM exporter samples
        (utilization weighted by the sampling interval). Only files that can hold the day are opened (input manifest)."""
        config = costwatch.config
        written = ingest_gpu_telemetry_day(
            config.source_entries("gpu_telemetry"), config.lake_dir, partition_day(context)
        )
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake_dir, {TELEMETRY_DATASET: TELEMETRY_DESCRIPTION})
        return dg.MaterializeResult(
            asset_key=TELEMETRY_DATASET,
            metadata={
                "dagster/row_count": written.rows,
                "files_read": written.files_read,
                "busy_gpu_hours": written.busy_gpu_hours,
                "sampled_gpu_hours": written.sampled_gpu_hours,
                "stale_days": dg.MetadataValue.json(written.stale_days),
            },
        )

    return gpu_telemetry
