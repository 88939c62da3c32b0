"""Settings from the config that SQL models join, one asset per table: `pools`, `pool_load_tests`, `budgets`."""

import dagster as dg
import pyarrow as pa

from pipelines.defs.settings import SETTINGS_GROUP
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource
from pipelines.sources.load_tests import load_test_rows

POOLS_SCHEMA = pa.schema(
    [
        ("pool", pa.string()),
        ("gpu_type", pa.string()),
        ("latency_slo_s", pa.float64()),
        ("headroom", pa.float64()),
        ("warm_floor", pa.int64()),
        ("api_equivalent", pa.string()),
        ("scale_ahead", pa.bool_()),
    ]
)


POOLS_DESCRIPTION = "Self-hosted serving pools as configured."
LOAD_TESTS_DESCRIPTION = "Load tests per pool: one row per batch size, its request latency and sustained rate."
BUDGETS_DESCRIPTION = "Monthly budgets per feature from the config, USD."


def pools_table(config) -> pa.Table:
    """The `pools` rows: each configured pool's GPU, latency SLO, headroom, warm floor, API equivalent
    and whether its capacity schedule scales ahead."""
    return pa.Table.from_pylist(
        [
            {
                "pool": spec.name,
                "gpu_type": spec.gpu_type,
                "latency_slo_s": spec.latency_slo_s,
                "headroom": spec.headroom,
                "warm_floor": spec.warm_floor,
                "api_equivalent": spec.api_equivalent,
                "scale_ahead": spec.scale_ahead,
            }
            for spec in config.pools.values()
        ],
        schema=POOLS_SCHEMA,
    )


@dg.multi_asset(
    name="pool_settings",
    group_name=SETTINGS_GROUP,
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec("pools", description=POOLS_DESCRIPTION, kinds={"duckdb"}),
        dg.AssetSpec("pool_load_tests", description=LOAD_TESTS_DESCRIPTION, kinds={"duckdb"}),
    ],
)
def pool_settings(costwatch: CostwatchConfigResource, warehouse: WarehouseResource):
    """`pools` (each pool's GPU, latency SLO, headroom, warm floor and API equivalent from the
    config) and `pool_load_tests` (each configured load test: throughput and latency per batch
    size, in the batching-curve CSV format)."""
    config = costwatch.config
    pools = pools_table(config)
    with warehouse.get_connection() as conn:
        pool_rows = replace_table(conn, "pools", pools, POOLS_DESCRIPTION)
        load_test_rows_written = replace_table(
            conn, "pool_load_tests", load_test_rows(config.pools.values()), LOAD_TESTS_DESCRIPTION
        )
    yield dg.MaterializeResult(asset_key="pools", metadata={"dagster/row_count": pool_rows})
    yield dg.MaterializeResult(asset_key="pool_load_tests", metadata={"dagster/row_count": load_test_rows_written})


@dg.asset(
    name="budgets", description=BUDGETS_DESCRIPTION, group_name=SETTINGS_GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL
)
def budget_settings(costwatch: CostwatchConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """`budgets`: each feature's monthly budget in USD, from the config."""
    budgets = pa.table(
        {
            "feature": pa.array(list(costwatch.config.budgets), pa.string()),
            "budget_usd": pa.array(list(costwatch.config.budgets.values()), pa.float64()),
        }
    )
    with warehouse.get_connection() as conn:
        rows = replace_table(conn, "budgets", budgets, BUDGETS_DESCRIPTION)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})
