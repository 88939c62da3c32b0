"""The price catalog: every configured LiteLLM-format catalog version plus local overrides."""

import dagster as dg
import pyarrow.compute as pc

from pipelines.defs.settings import SETTINGS_GROUP
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource
from pipelines.sources.prices import load_rules, price_rows


@dg.asset(group_name=SETTINGS_GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def price_catalog(costwatch: CostwatchConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Resolved prices (USD per token, per call or per search) by model key, service tier, context
    tier and component, with effective dates, from the configured catalogs, the dated price rules and
    the overrides. Rebuilt on every run, so a changed catalog re-prices the days run after it; an
    unchanged catalog's resolution is read back from `<data_dir>/cache` (keyed by its bytes)."""
    config = costwatch.config
    rows = price_rows(config, cache_dir=config.data_dir / "cache")
    with warehouse.get_connection() as conn:
        replace_table(
            conn,
            "price_catalog",
            rows,
            "Resolved prices as configured: every catalog version (price rules applied) and override.",
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.num_rows,
            "catalog_versions": dg.MetadataValue.md(
                "\n".join(f"- `{v.catalog.name}` from {v.effective_from}" for v in config.price_versions)
            ),
            "overrides": len(config.price_overrides),
            "price_rules_as_of": str(load_rules()[0]),
            "rule_filled_rows": pc.sum(pc.starts_with(rows["price_source"], "rule:")).as_py() or 0,
        }
    )
