"""Provider cost and usage exports → the lake's cost lines, usage lines, coverage and quarantine."""

import dagster as dg
import duckdb
import great_expectations.expectations as gxe

from pipelines.defs.ingest.accounting import accounting_check, accounting_metadata, accounting_spec
from pipelines.defs.quality import gate_specs, run_gates
from pipelines.lake.partitions import PARTITION_FILE, write_file, write_partition
from pipelines.models.engine import publish_lake_views
from pipelines.quality.engine import DAY_VARIABLE, Gate, Suite, rows_of_day, token_rules
from pipelines.resources.config import CostwatchConfig
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day
from pipelines.sources.billing.exports import CurrencyError, read_exports, tables

# Daily lake datasets: (table from the readers, what it is, the column that puts a row on a day).
DAILY_DATASETS = {
    "provider_cost_lines": (
        "cost_lines",
        "Billed charges from provider cost exports and invoices, in USD; "
        "one row per export record. Multi-day periods land on their last day.",
        "period_end",
    ),
    "provider_usage_lines": (
        "usage_lines",
        "Provider-reported token usage per day x model x project, "
        "normalised so input_tokens includes cache reads and writes.",
        "day",
    ),
    "provider_billing_coverage": (
        "coverage",
        "Days each provider's exports cover, empty buckets included: a covered day without lines was billed zero.",
        "day",
    ),
}
# Every run reads every export, so the quarantine is rewritten whole: records without a
# readable day (a broken file, a CSV row with a bad date) have no partition to go to.
QUARANTINE = "provider_quarantine"
EXPORT_QUARANTINE = "export_records_quarantined"
QUARANTINE_DESCRIPTION = (
    "Provider export records that could not be used, with the reason; all files, rewritten each run."
)

# The day's billed lines and provider token counts as written to the lake, checked by Great
# Expectations inside DuckDB. Exports write currencies in either case ('usd', 'USD').
GATES = [
    Suite(
        f"select *, upper(trim(currency)) as currency_code from provider_cost_lines "
        f"where day = getvariable('{DAY_VARIABLE}')",
        ("source_file", "record_ref"),
        (
            Gate(
                "known_currencies",
                "every billed amount is in USD or a currency with a rate in currency_rates",
                lambda config: [
                    gxe.ExpectColumnValuesToNotBeNull(column="currency_code"),
                    gxe.ExpectColumnValuesToBeInSet(
                        column="currency_code", value_set=sorted({"USD", *config.currency_rates})
                    ),
                ],
                blocking=True,
            ),
            Gate(
                "billed_usd_present",
                "every billed line carries its amount in USD",
                lambda config: [gxe.ExpectColumnValuesToNotBeNull(column="billed_usd")],
                blocking=True,
            ),
            # Credits and refunds are negative lines: legitimate, but a person should see them.
            Gate(
                "no_negative_charges",
                "billed lines are >= 0 USD (a negative line is a credit or refund to review)",
                lambda config: [gxe.ExpectColumnValuesToBeBetween(column="billed_usd", min_value=0)],
            ),
        ),
    ),
    Suite(
        rows_of_day("provider_usage_lines"),
        ("source_file", "record_ref"),
        (
            Gate(
                "usage_tokens_valid",
                "provider token counts >= 0; cache reads and writes are part of input_tokens",
                token_rules,
                blocking=True,
            ),
        ),
    ),
]


def build_provider_billing(config: CostwatchConfig, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="provider_billing",
        group_name="ingest",
        partitions_def=partitions,
        kinds={"parquet", "duckdb"},
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                EXPORT_QUARANTINE,
                asset="provider_billing",
                description="no provider export record was quarantined (a quarantined record is money not counted)",
            ),
            accounting_spec("provider_billing"),
            *gate_specs("provider_billing", GATES),
        ],
    )
    def provider_billing(
        context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource
    ):
        """One UTC day of provider billing: OpenAI Costs and Usage API pages, Anthropic cost and
        usage reports, invoice CSVs. Every configured export is read (they are small) and the
        day's records are written; money is converted to USD (Anthropic's cents included)."""
        config = costwatch.config
        day = partition_day(context)
        costs, usage = config.source_files("provider_costs"), config.source_files("provider_usage")
        files = costs + usage
        try:
            parsed = read_exports(files, config.currency_rates)
        except CurrencyError as error:
            raise dg.Failure(str(error)) from error
        by_name = tables(parsed)
        counts = {}
        with duckdb.connect() as scratch:
            for name, table in by_name.items():
                scratch.register(name, table)
            for dataset, (table_name, _, day_column) in DAILY_DATASETS.items():
                columns = "* exclude (day)" if day_column == "day" else "*"
                counts[dataset] = write_partition(
                    scratch,
                    f"select {columns} from {table_name} where {day_column} = $day",
                    config.lake_dir,
                    dataset,
                    day,
                    {"day": day},
                )
            quarantined = write_file(
                scratch,
                "select * from quarantine order by source_file, record_ref",
                config.lake_dir / QUARANTINE / PARTITION_FILE,
            )
            billed = scratch.execute(
                "select provider, sum(billed_usd)::double from cost_lines where period_end = $day group by 1 order by 1",
                {"day": day},
            ).fetchall()
        with warehouse.get_connection() as conn:
            publish_lake_views(
                conn,
                config.lake_dir,
                {dataset: description for dataset, (_, description, _) in DAILY_DATASETS.items()},
                {QUARANTINE: QUARANTINE_DESCRIPTION},
            )
            gates = list(run_gates(conn, GATES, config, day))
        source_of = {
            str(path): source
            for source, found in (("provider_costs", costs), ("provider_usage", usage))
            for path, _ in found
        }
        per_file = [{"source": source_of.get(row["source_file"]), **row} for row in parsed.per_file()]
        reasons: dict[str, int] = {}
        for row in parsed.quarantine:
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": counts["provider_cost_lines"],
                "usage_lines": counts["provider_usage_lines"],
                "quarantined_all_files": quarantined,
                "files_read": len(files),
                "billed_usd_by_provider": dg.MetadataValue.json({provider: round(usd, 6) for provider, usd in billed}),
                **accounting_metadata(per_file),
                "records_by_source": dg.MetadataValue.json(
                    {
                        source: {
                            key: sum(row[key] for row in per_file if row["source"] == source)
                            for key in ("records", "kept", "quarantined")
                        }
                        for source in ("provider_costs", "provider_usage")
                    }
                ),
            }
        )
        yield accounting_check(per_file)
        yield from gates
        yield dg.AssetCheckResult(
            check_name=EXPORT_QUARANTINE,
            passed=quarantined == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"quarantined": quarantined, "by_reason": dg.MetadataValue.json(reasons)},
        )

    return provider_billing
