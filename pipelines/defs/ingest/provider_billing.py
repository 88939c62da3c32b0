"""Provider cost and usage exports → the lake's `provider_cost_lines`, `provider_usage_lines`,
`provider_billing_coverage` and `provider_quarantine`: one asset per table, written together."""

import dagster as dg

from pipelines.defs.ingest import BILLING_VIEWS
from pipelines.defs.ingest.accounting import (
    accounting_check,
    accounting_metadata,
    accounting_spec,
    lake_gate_specs,
    run_lake_gates,
)
from pipelines.models.engine import publish_lake_views
from pipelines.resources.warehouse import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    CostwatchConfigResource,
    WarehouseResource,
    partition_days,
)
from pipelines.sources.billing.day import DAILY_DATASETS, QUARANTINE, QUARANTINE_DESCRIPTION, ingest_billing_days
from pipelines.sources.quarantine import CurrencyError

COST_LINES, USAGE_LINES, COVERAGE = DAILY_DATASETS
EXPORT_QUARANTINE = "export_records_quarantined"


def build_provider_billing(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="provider_billing",
        group_name="ingest",
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        specs=[
            *(
                dg.AssetSpec(dataset, description=description, kinds={"parquet", "duckdb"})
                for dataset, description in DAILY_DATASETS.items()
            ),
            dg.AssetSpec(QUARANTINE, description=QUARANTINE_DESCRIPTION, kinds={"parquet", "duckdb"}),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                EXPORT_QUARANTINE,
                asset=QUARANTINE,
                description="no provider export record was quarantined (a quarantined record is money not counted)",
                partitions_def=partitions,
            ),
            accounting_spec(COST_LINES, partitions),
            *lake_gate_specs(DAILY_DATASETS, partitions),
        ],
    )
    def provider_billing(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """Each UTC day of the run's provider billing: OpenAI Costs and Usage API pages, Anthropic
        cost and usage reports, invoice CSVs. Every configured export is read (they are small) and
        each day's records are written; money is converted to USD (Anthropic's cents included)."""
        config = costwatch.config
        days = partition_days(context)
        files = {source: config.source_files(source) for source in ("provider_costs", "provider_usage")}
        try:
            # Every export read once for the range, then each day written.
            by_day = ingest_billing_days(files, config.currency_rates, config.lake, days.days)
        except CurrencyError as error:
            raise dg.Failure(str(error)) from error
        written = by_day[days.end]  # file counts and the quarantine are of every file: the same each day
        with warehouse.get_connection() as conn:
            publish_lake_views(conn, config.lake, *BILLING_VIEWS)
            gates = list(run_lake_gates(conn, DAILY_DATASETS, config, days))
        per_day = {
            day.isoformat(): {
                **{dataset: day_written.rows[dataset] for dataset in DAILY_DATASETS},
                "billed_usd_by_provider": day_written.billed_usd_by_provider,
            }
            for day, day_written in by_day.items()
        }
        context.log.info(
            f"provider billing {days}:\n"
            + "\n".join(
                f"  {day}: {counts[COST_LINES]} cost lines, {counts[USAGE_LINES]} usage lines, billed "
                + (", ".join(f"{p} {usd:,.2f}" for p, usd in counts["billed_usd_by_provider"].items()) or "nothing")
                for day, counts in per_day.items()
            )
        )

        def rows(dataset: str) -> int:
            return sum(day_written.rows[dataset] for day_written in by_day.values())

        billed: dict[str, float] = {}
        for day_written in by_day.values():
            for provider, usd in day_written.billed_usd_by_provider.items():
                billed[provider] = round(billed.get(provider, 0.0) + usd, 6)
        yield dg.MaterializeResult(
            asset_key=COST_LINES,
            metadata={
                "dagster/row_count": rows(COST_LINES),
                "days": str(days),
                "files_read": written.files_read,
                "billed_usd_by_provider": dg.MetadataValue.json(dict(sorted(billed.items()))),
                **accounting_metadata(written.per_file),
                "records_by_source": dg.MetadataValue.json(written.records_by_source()),
            },
        )
        yield dg.MaterializeResult(asset_key=USAGE_LINES, metadata={"dagster/row_count": rows(USAGE_LINES)})
        yield dg.MaterializeResult(asset_key=COVERAGE, metadata={"dagster/row_count": rows(COVERAGE)})
        # Every file's quarantine: the row count is of all files, not of the day.
        yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={"dagster/row_count": written.rows[QUARANTINE]})
        yield accounting_check(written.per_file, COST_LINES)
        yield from gates
        yield dg.AssetCheckResult(
            asset_key=QUARANTINE,
            check_name=EXPORT_QUARANTINE,
            passed=written.rows[QUARANTINE] == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quarantined": written.rows[QUARANTINE],
                "by_reason": dg.MetadataValue.json(written.quarantine_reasons),
            },
        )

    return provider_billing
