"""The price catalog: every configured LiteLLM-format catalog version plus local overrides."""

import dagster as dg

from pipelines.defs.settings import SETTINGS_GROUP
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource
from pipelines.sources.prices import price_rows


@dg.asset(group_name=SETTINGS_GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def price_catalog(costwatch: CostwatchConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Token prices (USD per token) by model key and effective date, from the configured catalogs
    and overrides. Re-read on every run, so a changed catalog re-prices the days run after it."""
    config = costwatch.config
    rows = price_rows(config)
    with warehouse.get_connection() as conn:
        replace_table(
            conn, "price_catalog", rows, "Price rows as configured: every catalog version and override, USD per token."
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.num_rows,
            "catalog_versions": dg.MetadataValue.md(
                "\n".join(f"- `{v.catalog.name}` from {v.effective_from}" for v in config.price_versions)
            ),
            "overrides": len(config.price_overrides),
        }
    )
