"""Gateway request logs -> the lake's `gateway_requests`, `gateway_quarantine` and
`gateway_ingest_audit`: one Dagster asset per table, written by one step."""

import dagster as dg
import duckdb

from pipelines.defs.ingest.accounting import (
    accounting_check,
    accounting_metadata,
    accounting_spec,
    lake_gate_specs,
    run_lake_gates,
)
from pipelines.models.engine import publish_lake_views
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day
from pipelines.sources.gateway.day import DATASETS, DayIngest, ingest_day

REQUESTS, QUARANTINE, AUDIT = DATASETS


def build_gateway_ingest(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="gateway_logs",
        group_name="ingest",
        partitions_def=partitions,
        pool=WAREHOUSE_POOL,
        specs=[
            dg.AssetSpec(table, description=description, kinds={"parquet", "duckdb"})
            for table, description in DATASETS.items()
        ],
        check_specs=[
            # Inline rather than a .checks.yml gate: it compares what the step counted as read with
            # what it wrote, which no query over the written tables can see. On gateway_requests
            # and blocking: a lost record is a request the marts would silently not price.
            accounting_spec(REQUESTS),
            # Gates declared beside each table (sql/lake/<table>.checks.yml), checked after the write.
            *lake_gate_specs(list(DATASETS)),
        ],
    )
    def gateway_logs(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """Canonical gateway records of one UTC day, deduplicated by request_id, from every
        configured log file (late and early arrivals included). Bad records go to
        `gateway_quarantine` with their reason and verbatim text; per-file counts go to
        `gateway_ingest_audit`."""
        config = costwatch.config
        day = partition_day(context)
        files = config.source_files("gateway_logs")
        if not files:
            patterns = ", ".join(spec.path for spec in config.sources["gateway_logs"])
            raise dg.Failure(f"sources.gateway_logs matched no file ({patterns}); check the paths in {config.path}")
        with duckdb.connect() as scratch:
            result = ingest_day(scratch, config.lake_dir, files, day)
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake_dir, DATASETS)
            gates = list(run_lake_gates(conn, list(DATASETS), config, day))
        yield from gates
        yield accounting_check(_per_file(result), asset=REQUESTS)
        yield dg.MaterializeResult(asset_key=REQUESTS, metadata=_requests_metadata(result))
        yield dg.MaterializeResult(
            asset_key=QUARANTINE,
            metadata={
                "dagster/row_count": result.quarantined,
                "quarantine_by_reason": dg.MetadataValue.json(result.quarantine_by_reason),
            },
        )
        yield dg.MaterializeResult(asset_key=AUDIT, metadata={"dagster/row_count": len(result.per_file)})

    return gateway_logs


def _per_file(result: DayIngest) -> list[dict]:
    """The day's lines per file, as every ingest asset accounts for its records."""
    return [
        {
            "source_file": row["source_file"],
            "records": row["lines"],
            **{key: row[key] for key in ("kept", "quarantined", "duplicates")},
        }
        for row in result.per_file
    ]


def _requests_metadata(result: DayIngest) -> dict:
    return {
        "dagster/row_count": result.kept,
        "lines_read": result.lines,
        "quarantined": result.quarantined,
        "duplicates": result.duplicates,
        "conflicting_duplicates": result.conflicting_duplicates,
        "files_read": len(result.files_read),
        "files_skipped_by_manifest": result.files_skipped,
        # Days whose input files changed since they ran: `costwatch run --changed` re-runs them.
        "stale_days": dg.MetadataValue.json(result.stale_days),
        "quarantine_by_reason": dg.MetadataValue.json(result.quarantine_by_reason),
        **accounting_metadata(_per_file(result)),
    }
