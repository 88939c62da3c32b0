"""The price catalog: every configured LiteLLM-format catalog version plus local overrides."""

import datetime as dt

import dagster as dg
import pyarrow.compute as pc

from pipelines.defs.settings import SETTINGS_GROUP
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource
from pipelines.sources.prices import load_rules, price_rows

RULES_FRESH = "price_rules_fresh"
RULES_MAX_AGE_DAYS = 90  # providers change their price pages monthly; a quarter unreviewed is stale


def rules_freshness(as_of: dt.date, today: dt.date) -> dg.AssetCheckResult:
    """WARN when the dated price rules (batch, cache and tier prices the catalog lacks, which the
    savings findings price with) were last reviewed against their sources over 90 days ago."""
    age = (today - as_of).days
    return dg.AssetCheckResult(
        check_name=RULES_FRESH,
        passed=age <= RULES_MAX_AGE_DAYS,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"price rules reviewed on {as_of}, {age} day(s) ago"
        + (
            ""
            if age <= RULES_MAX_AGE_DAYS
            else f": over {RULES_MAX_AGE_DAYS}; re-check each rule's source in pipelines/sources/price_rules.yml "
            "and update its as_of"
        ),
        metadata={"as_of": str(as_of), "age_days": age, "max_age_days": RULES_MAX_AGE_DAYS},
    )


@dg.asset(
    group_name=SETTINGS_GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            RULES_FRESH,
            asset="price_catalog",
            description=f"the dated price rules were reviewed against their sources in the last "
            f"{RULES_MAX_AGE_DAYS} days (WARN: provider price rules change monthly)",
        )
    ],
)
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
            lake_dir=warehouse.tables_lake,
        )
    rules_as_of = load_rules()[0]
    return dg.MaterializeResult(
        check_results=[rules_freshness(rules_as_of, dt.datetime.now(dt.timezone.utc).date())],
        metadata={
            "dagster/row_count": rows.num_rows,
            "catalog_versions": dg.MetadataValue.md(
                "\n".join(f"- `{v.catalog.name}` from {v.effective_from}" for v in config.price_versions)
            ),
            "overrides": len(config.price_overrides),
            "price_rules_as_of": str(rules_as_of),
            "rule_filled_rows": pc.sum(pc.starts_with(rows["price_source"], "rule:")).as_py() or 0,
        },
    )
