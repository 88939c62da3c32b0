"""The run's last step: publish the warehouse for analysts (pipelines/lake/publish.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import dagster as dg

from pipelines.lake.publish import publish, publish_catalog
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource

PUBLISHED = "published_warehouse"


def build_publish_asset(upstream: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    """Depends on every other asset, so it runs once everything the run writes is written."""
    deps = sorted({key for asset in upstream for key in asset.keys}, key=lambda key: key.to_user_string())

    @dg.asset(
        name=PUBLISHED,
        group_name="published",
        deps=deps,
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description="The analysts' copy of the warehouse (data/published/warehouse.duckdb), replaced atomically "
        "when a run finishes: `costwatch query`, `costwatch shell`, the report and `duckdb -readonly` read it, "
        "so a read never waits for or fails on a run.",
    )
    def published_warehouse(costwatch: CostwatchConfigResource, warehouse: WarehouseResource):
        started = time.perf_counter()
        config = costwatch.config
        if warehouse.scratch:  # distributed: no run's database is the warehouse; views over the lake are
            path = publish_catalog(config.lake, config.warehouse_path)
        else:
            with warehouse.get_connection() as conn:
                path = publish(conn, config.warehouse_path)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "bytes": path.stat().st_size,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )

    return published_warehouse
