"""Every `sql/` file becomes an asset here, and only here."""

import dagster as dg

from pipelines.defs.model_checks import METADATA, SUITES
from pipelines.defs.quality import gate_specs, run_gates
from pipelines.models.engine import SqlModel, load_models, pseudonym_parameters, run_model
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource, partition_day


def build_model_assets(
    partitions: dg.PartitionsDefinition, source_relations: dict[str, str]
) -> list[dg.AssetsDefinition]:
    """One asset per SQL model; its deps are the assets that produce the relations its SQL
    reads (`source_relations` maps each relation an ingest asset writes to that asset). A read
    that nothing produces is an error here, not a failure at run time."""
    models = load_models()
    producers = {**source_relations, **{name: name for name in models}}
    assets = []
    for model in models.values():
        unknown = set(model.reads) - set(producers)
        if unknown:
            raise ValueError(f"{model.path}: reads {sorted(unknown)}, which no asset produces")
        deps = sorted({producers[relation] for relation in model.reads})
        assets.append(_model_asset(model, partitions if model.daily else None, deps))
    return assets


def _model_asset(model: SqlModel, partitions: dg.PartitionsDefinition | None, deps: list[str]) -> dg.AssetsDefinition:
    suites = SUITES.get(model.name, [])

    @dg.asset(
        name=model.name,
        description=model.description,
        group_name=model.layer,
        deps=deps,
        partitions_def=partitions,
        kinds={"duckdb", "sql"} | ({"parquet"} if model.materialized == "daily_parquet" else set()),
        pool=WAREHOUSE_POOL,
        check_specs=gate_specs(model.name, suites),
        metadata={"materialized": model.materialized, "sql_file": str(model.path.relative_to(model.path.parents[2]))},
    )
    def sql_model(context: dg.AssetExecutionContext, costwatch: CostwatchConfigResource, warehouse: WarehouseResource):
        config = costwatch.config
        day = partition_day(context) if model.daily else None
        with warehouse.get_connection() as conn:
            rows = run_model(conn, model, config.lake_dir, day, model_settings(config))
            metadata = {"dagster/row_count": rows, **_money_totals(conn, model, day)}
            if model.name in METADATA:
                metadata.update(METADATA[model.name](conn, day))
            if rows:
                metadata["preview"] = dg.MetadataValue.md(_preview(conn, model, day))
            results = list(run_gates(conn, suites, config, day))
        yield dg.MaterializeResult(metadata=metadata)
        yield from results

    return sql_model


def model_settings(config) -> dict[str, object]:
    """Config values SQL models may read as `$name` parameters."""
    return {
        "tolerance_pct": config.reconciliation.tolerance_pct,
        "tolerance_usd": config.reconciliation.tolerance_usd,
        "token_tolerance_pct": config.reconciliation.token_tolerance_pct,
        "min_impact_usd": config.alerts.min_impact_usd,
        "min_impact_pct": config.alerts.min_impact_pct,
        **pseudonym_parameters(config),  # privacy.pseudonymise_user_id: the key's pads, from the environment
    }


def _day_filter(model: SqlModel) -> str:
    return "where day = $day" if model.daily else ""


def _money_totals(conn, model: SqlModel, day) -> dict[str, float]:
    money = [
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns where table_name = $name and column_name like '%\\_usd' escape '\\'",
            {"name": model.name},
        ).fetchall()
    ]
    if not money:
        return {}
    sums = ", ".join(f"sum({column})::double" for column in money)
    values = conn.execute(
        f"select {sums} from {model.name} {_day_filter(model)}", {"day": day} if model.daily else {}
    ).fetchone()
    return {f"total_{column}": round(value or 0.0, 6) for column, value in zip(money, values)}


def _preview(conn, model: SqlModel, day) -> str:
    rows = conn.execute(
        f"select * from {model.name} {_day_filter(model)} limit 10", {"day": day} if model.daily else {}
    ).fetchall()
    columns = [description[0] for description in conn.description]
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    lines = ["| " + " | ".join("" if value is None else str(value) for value in row) + " |" for row in rows]
    return "\n".join([header, *lines])
