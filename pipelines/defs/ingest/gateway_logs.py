"""Gateway request logs -> the lake's `gateway_requests`, `gateway_quarantine` and
`gateway_ingest_audit`: one Dagster asset per table, written by one step."""

import dagster as dg
import duckdb

from pipelines.defs.ingest import GATEWAY_VIEWS
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
from pipelines.sources.gateway.day import DATASETS, DayIngest, ingest_days

REQUESTS, QUARANTINE, AUDIT = DATASETS


def build_gateway_ingest(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="gateway_logs",
        group_name="ingest",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        specs=[
            dg.AssetSpec(table, description=description, kinds={"parquet", "duckdb"})
            for table, description in DATASETS.items()
        ],
        check_specs=[
            # Inline rather than a .checks.yml gate: it compares what the step counted as read with
            # what it wrote, which no query over the written tables can see. On gateway_requests
            # and blocking: a lost record is a request the marts would silently not price.
            accounting_spec(REQUESTS, partitions),
            # Gates declared beside each table (sql/lake/<table>.checks.yml), checked after the write.
            *lake_gate_specs(list(DATASETS), partitions),
        ],
    )
    def gateway_logs(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """Canonical gateway records of each UTC day of the run, deduplicated by request_id per
        day, from every configured log file (late and early arrivals included; each file read
        once for the whole range). Bad records go to `gateway_quarantine` with their reason and
        verbatim text; per-file counts go to `gateway_ingest_audit`."""
        config = costwatch.config
        days = partition_days(context)
        files = config.source_files("gateway_logs")
        if not files:
            patterns = ", ".join(spec.path for spec in config.sources["gateway_logs"])
            raise dg.Failure(f"sources.gateway_logs matched no file ({patterns}); check the paths in {config.path}")
        with duckdb.connect() as scratch:
            results = ingest_days(
                scratch,
                config.lake_dir,
                files,
                days.days,
                max_line_bytes=config.inputs.max_line_bytes,
                verify_content=config.inputs.verify_content,
                store=state_backend(config).manifests(),
                lake=config.lake,
            )
        context.log.info(f"gateway logs {days}:\n" + "\n".join(map(_day_line, results)))
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake, *GATEWAY_VIEWS)
            gates = list(run_lake_gates(conn, list(DATASETS), config, days))
        yield from gates
        yield accounting_check(_per_file(results), asset=REQUESTS)
        # No partition named: each is recorded once per day of the range, with the range's
        # totals; `per_day` splits them by day.
        yield dg.MaterializeResult(asset_key=REQUESTS, metadata=_requests_metadata(results))
        yield dg.MaterializeResult(
            asset_key=QUARANTINE,
            metadata={
                "dagster/row_count": sum(result.quarantined for result in results),
                "quarantine_by_reason": dg.MetadataValue.json(_summed(r.quarantine_by_reason for r in results)),
            },
        )
        yield dg.MaterializeResult(
            asset_key=AUDIT, metadata={"dagster/row_count": sum(len(result.per_file) for result in results)}
        )

    return gateway_logs


def _per_file(results: list[DayIngest]) -> list[dict]:
    """Each day's lines per file, as every ingest asset accounts for its records: a row per day
    and file, so a day that does not add up is named even when the file's other days do."""
    return [
        {
            "source_file": row["source_file"],
            "day": result.day.isoformat(),
            "records": row["lines"],
            **{key: row[key] for key in ("kept", "quarantined", "duplicates")},
        }
        for result in results
        for row in result.per_file
    ]


def _per_file_over_range(results: list[DayIngest]) -> list[dict]:
    """The range's lines per file (its days summed), for the per-file table."""
    files: dict[str, dict] = {}
    for row in _per_file(results):
        total = files.setdefault(row["source_file"], dict.fromkeys(("records", "kept", "quarantined", "duplicates"), 0))
        for key in total:
            total[key] += row[key]
    return [{"source_file": name, **counts} for name, counts in files.items()]


def _summed(counts) -> dict[str, int]:
    total: dict[str, int] = {}
    for by_key in counts:
        for key, count in by_key.items():
            total[key] = total.get(key, 0) + count
    return dict(sorted(total.items()))


_DAY_COLUMNS = ("lines", "kept", "quarantined", "duplicates", "conflicting_duplicates")


def _day_counts(result: DayIngest) -> dict:
    return {
        **{column: getattr(result, column) for column in _DAY_COLUMNS},
        "files_read": len(result.files_read),
        "files_skipped_by_manifest": result.files_skipped,
    }


def _day_line(result: DayIngest) -> str:
    counts = _day_counts(result)
    return f"  {result.day}: " + ", ".join(
        f"{counts[key]} {key.replace('_', ' ')}" for key in (*_DAY_COLUMNS, "files_read")
    )


def _requests_metadata(results: list[DayIngest]) -> dict:
    per_day = {result.day.isoformat(): _day_counts(result) for result in results}
    return {
        "dagster/row_count": sum(result.kept for result in results),
        "days": f"{results[0].day}..{results[-1].day}" if len(results) > 1 else str(results[0].day),
        "lines_read": sum(result.lines for result in results),
        **{column: sum(getattr(result, column) for result in results) for column in _DAY_COLUMNS[2:]},
        "files_read": len({name for result in results for name in result.files_read}),
        "files_skipped_by_manifest": sum(result.files_skipped for result in results),  # file x day
        # Per day: `costwatch run` prints a line per day from it. (Recorded with each day's
        # materialization, so it grows with the square of a range: kept to counts.)
        "per_day": dg.MetadataValue.json(per_day),
        # Days whose input files changed since they ran: `costwatch run --changed` re-runs them.
        "stale_days": dg.MetadataValue.json(results[-1].stale_days),
        "quarantine_by_reason": dg.MetadataValue.json(_summed(result.quarantine_by_reason for result in results)),
        **accounting_metadata(_per_file_over_range(results)),
    }
