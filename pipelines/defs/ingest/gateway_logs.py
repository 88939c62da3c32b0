"""Gateway request logs → the lake's `gateway_requests`, `gateway_quarantine` and audit partitions."""

import dagster as dg
import duckdb

from pipelines.defs.quality import gate_specs, run_gates
from pipelines.models.engine import publish_lake_views
from pipelines.quality.engine import Gate, Suite, rows_of_day, token_rules, unique_keys
from pipelines.resources.config import CostwatchConfig
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day
from pipelines.sources.gateway.ingest import ingest_day

QUARANTINE_SHARE = "quarantine_share"
DUPLICATE_SHARE = "duplicate_share"
LINES_ACCOUNTED = "every_line_accounted_for"

# The lake datasets this asset writes, each exposed in the warehouse as a view over every day.
LAKE_DATASETS = {
    "gateway_requests": "Canonical gateway records as ingested, one row per request_id (first delivery); "
    "a view over the lake's per-day Parquet.",
    "gateway_quarantine": "Input records that broke a rule, with the reason and the verbatim text; "
    "a view over the lake's per-day Parquet.",
    "gateway_ingest_audit": "Where every input record went, per day x file: lines = kept + quarantined + duplicates.",
}


# The lake's day as written, checked by Great Expectations inside DuckDB: what ingest promises
# of every kept record (a reader bug or a hand-edited partition breaks it; pricing would not).
GATES = [
    Suite(
        rows_of_day("gateway_requests"),
        ("request_id", "source_file", "line_no"),
        (
            Gate(
                "request_ids_unique",
                "one row per request_id in the day's partition (first delivery kept)",
                unique_keys("request_id"),
                blocking=True,
            ),
            Gate(
                "cached_within_input",
                "token counts >= 0; cache reads and writes are part of input_tokens",
                token_rules,
                blocking=True,
            ),
        ),
    )
]


def build_gateway_ingest(config: CostwatchConfig, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="gateway_requests",
        group_name="ingest",
        partitions_def=partitions,
        kinds={"parquet", "duckdb"},
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                LINES_ACCOUNTED,
                asset="gateway_requests",
                blocking=True,
                description="lines read = kept + quarantined + duplicate deliveries",
            ),
            dg.AssetCheckSpec(
                QUARANTINE_SHARE,
                asset="gateway_requests",
                description="share of the day's lines quarantined stays under checks.max_quarantine_share",
            ),
            dg.AssetCheckSpec(
                DUPLICATE_SHARE,
                asset="gateway_requests",
                description="share of duplicate deliveries stays under checks.max_duplicate_share",
            ),
            *gate_specs("gateway_requests", GATES),
        ],
    )
    def gateway_requests(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """Canonical gateway records of one UTC day, deduplicated by request_id, from every
        configured log file (late and early arrivals included). Bad records go to
        `gateway_quarantine` with their reason and verbatim line; per-file counts go to
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
            publish_lake_views(conn, config.lake_dir, LAKE_DATASETS)
            gates = list(run_gates(conn, GATES, config, day))
        yield from gates

        thresholds = config.checks
        lines = max(result.lines, 1)
        accounted = result.kept + result.quarantined + result.duplicates
        files_not_adding_up = [
            row["source_file"]
            for row in result.per_file
            if row["lines"] != row["kept"] + row["quarantined"] + row["duplicates"]
        ]
        yield dg.AssetCheckResult(
            check_name=LINES_ACCOUNTED,
            passed=accounted == result.lines and not files_not_adding_up,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "lines": result.lines,
                "kept": result.kept,
                "quarantined": result.quarantined,
                "duplicates": result.duplicates,
                "files_not_adding_up": dg.MetadataValue.json(files_not_adding_up),
            },
        )
        yield dg.AssetCheckResult(
            check_name=QUARANTINE_SHARE,
            passed=result.quarantined / lines <= thresholds.max_quarantine_share,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quarantined": result.quarantined,
                "share": result.quarantined / lines,
                "threshold": thresholds.max_quarantine_share,
                "by_reason": dg.MetadataValue.json(result.quarantine_by_reason),
            },
        )
        yield dg.AssetCheckResult(
            check_name=DUPLICATE_SHARE,
            passed=result.duplicates / lines <= thresholds.max_duplicate_share,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "duplicates": result.duplicates,
                "share": result.duplicates / lines,
                "conflicting_duplicates": result.conflicting_duplicates,
                "threshold": thresholds.max_duplicate_share,
            },
        )
        per_file = "\n".join(
            f"| `{row['source_file']}` | {row['lines']} | {row['kept']} | {row['quarantined']} | {row['duplicates']} |"
            for row in result.per_file
        )
        yield dg.MaterializeResult(
            metadata={
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
                "per_file": dg.MetadataValue.md(
                    "| file | lines | kept | quarantined | duplicates |\n|---|---|---|---|---|\n" + per_file
                ),
                # The same per source file, keyed by file, for tools.
                "per_source_counts": dg.MetadataValue.json(
                    {
                        row["source_file"]: {key: row[key] for key in ("lines", "kept", "quarantined", "duplicates")}
                        for row in result.per_file
                    }
                ),
            }
        )

    return gateway_requests
