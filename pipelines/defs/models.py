"""Every `sql/` file becomes an asset here, and only here."""

from collections.abc import Sequence

import dagster as dg

from pipelines.defs.quality import gate_specs, run_gates
from pipelines.models.engine import SQL_DIR, DayRange, SqlModel, load_models, pseudonym_parameters, run_model
from pipelines.models.relations import column_schema, daily_totals, money_totals, preview
from pipelines.quality.checks import load_metadata, load_suites, query_row
from pipelines.quality.engine import day_cursor
from pipelines.report.tables import markdown_table
from pipelines.resources.warehouse import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    CostwatchConfigResource,
    WarehouseResource,
    partition_days,
    run_days,
)


def build_model_assets(
    partitions: dg.PartitionsDefinition, sources: Sequence[dg.AssetsDefinition]
) -> list[dg.AssetsDefinition]:
    """One asset per SQL model. Every asset is keyed by the relation it writes (`sources`: the
    ingest and settings assets), so a model's deps are the relations its SQL reads. A read that
    no asset produces is an error here, not a failure at run time."""
    models = load_models()
    produced = {key.to_user_string() for asset in sources for key in asset.keys} | set(models)
    daily = {key.to_user_string() for asset in sources if asset.partitions_def for key in asset.keys}
    daily |= {name for name, model in models.items() if model.daily}
    assets = []
    for model in models.values():
        unknown = set(model.reads) - produced
        if unknown:
            raise ValueError(f"{model.path}: reads {sorted(unknown)}, which no asset produces")
        assets.append(_model_asset(model, partitions if model.daily else None, _deps(model, daily)))
    return assets


def _deps(model: SqlModel, daily: set[str]) -> list[dg.AssetDep]:
    """The relations a model reads. A daily model with a look-back reads each daily input over its
    window, declared as a partition mapping: the UI marks a day of it stale when a day of its window
    changes, and an asset backfill in runs of single days runs it only once every day of its window
    is materialized. A month-to-date window maps to the longest month's 30 days before (a mapping
    has fixed offsets), so it names a superset of what the day reads."""
    back = model.lookback.days_back if model.daily and model.lookback else 0
    if not back:
        return [dg.AssetDep(name) for name in sorted(model.reads)]
    window = dg.TimeWindowPartitionMapping(start_offset=-back, allow_nonexistent_upstream_partitions=True)
    return [dg.AssetDep(name, partition_mapping=window if name in daily else None) for name in sorted(model.reads)]


def _model_asset(
    model: SqlModel, partitions: dg.PartitionsDefinition | None, deps: list[dg.AssetDep]
) -> dg.AssetsDefinition:
    suites = load_suites(model.name)
    extra_metadata = load_metadata(model.name)  # SQL whose one row adds to the materialization's metadata

    @dg.asset(
        name=model.name,
        description=model.description,
        group_name=model.layer,
        deps=deps,
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN if partitions else None,
        kinds={"duckdb", "sql"} | ({"parquet"} if model.materialized == "daily_parquet" else set()),
        pool=WAREHOUSE_POOL,
        check_specs=gate_specs(model.name, suites, partitions),
        metadata={"materialized": model.materialized, "sql_file": f"sql/{model.path.relative_to(SQL_DIR)}"},
    )
    def sql_model(context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource):
        config = costwatch.config
        # A daily model computes the run's whole range of days in one statement (run_model).
        days = partition_days(context) if model.daily else None
        with warehouse.get_connection() as conn:
            rows = run_model(conn, model, config.lake, days, model_settings(config), in_lake=warehouse.scratch)
            metadata = {
                "dagster/row_count": rows,
                # The UI's column table: types from the warehouse, descriptions from the model header and columns.yml.
                "dagster/column_schema": dg.TableSchema(
                    columns=[
                        dg.TableColumn(name, kind, description=comment)
                        for name, kind, comment in column_schema(conn, model)
                    ]
                ),
                **money_totals(conn, model, days),
            }
            if days is not None:
                metadata.update(_per_day(context, conn, model, days))
            if extra_metadata:
                with day_cursor(conn, days) as cursor:
                    metadata.update(query_row(cursor, extra_metadata))
            if rows:
                metadata["preview"] = dg.MetadataValue.md(markdown_table(*preview(conn, model, days)))
            # An unpartitioned model's gates judge the rows of the run's days (its bills' periods
            # that overlap them), so a line off the estimate months ago does not fail every run.
            results = list(run_gates(conn, suites, config, days if model.daily else run_days(context)))
        # No partition named: Dagster records this materialization once per day of the range.
        yield dg.MaterializeResult(metadata=metadata)
        yield from results

    return sql_model


def _per_day(context: dg.AssetExecutionContext, conn, model: SqlModel, days: DayRange) -> dict:
    """Each day's rows and money, logged as one event (a line per day: a range run's progress,
    day by day). Not metadata: a range run records its metadata once per day of the range, so a
    per-day table there grows with the square of the range (a year: 133k entries per model).
    The row count and totals in the metadata are the range's."""
    totals = daily_totals(conn, model, days)
    lines = [_day_line(day.isoformat(), totals.get(day, {"rows": 0})) for day in days.days]
    context.log.info(f"{model.name} {days}:\n" + "\n".join(lines))
    return {"days": str(days)}


def _day_line(day: str, values: dict) -> str:
    money = ", ".join(f"{name.removeprefix('total_')} {value:,.6f}" for name, value in values.items() if name != "rows")
    return f"  {day}: {values['rows']} rows" + (f"; {money}" if money else "")


def model_settings(config) -> dict[str, object]:
    """Config values SQL models may read as `$name` parameters."""
    return {
        "tolerance_pct": config.reconciliation.tolerance_pct,
        "tolerance_usd": config.reconciliation.tolerance_usd,
        "token_tolerance_pct": config.reconciliation.token_tolerance_pct,
        "min_impact_usd": config.alerts.min_impact_usd,
        "min_impact_pct": config.alerts.min_impact_pct,
        "max_unpriced_share": config.checks.max_unpriced_share,
        "window_days": config.savings.window_days,
        "duplicate_window_s": config.savings.duplicate_window_s,
        "truncation_retry_window_s": config.savings.truncation_retry_window_s,
        "gateway_cache_ttl_s": config.savings.gateway_cache_ttl_s,
        "routes": config.savings.routes_json,
        "evals": config.savings.evals_json,
        "service_accounts": config.savings.service_accounts_json,
        "easy_max_input_tokens": config.savings.easy.max_input_tokens,
        "easy_max_output_tokens": config.savings.easy.max_output_tokens,
        **pseudonym_parameters(config),  # privacy.pseudonymise_user_id: the key's pads, from the environment
    }
