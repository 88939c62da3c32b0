"""Settings from the config that SQL models join: pools, their load tests, budgets."""

import dagster as dg
import pyarrow as pa

from pipelines.models.engine import comment_relation
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource

POOLS_SCHEMA = pa.schema(
    [
        ("pool", pa.string()),
        ("gpu_type", pa.string()),
        ("latency_slo_s", pa.float64()),
        ("headroom", pa.float64()),
        ("warm_floor", pa.int64()),
        ("api_equivalent", pa.string()),
    ]
)


@dg.asset(group_name="pools", kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def pool_settings(costwatch: CostwatchConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """`pools` (each pool's GPU, latency SLO, headroom, warm floor and API equivalent from the
    config) and `pool_load_tests` (each configured load test: throughput and latency per batch
    size, in the batching-curve CSV format)."""
    config = costwatch.config
    pools = pa.Table.from_pylist(
        [
            {
                "pool": spec.name,
                "gpu_type": spec.gpu_type,
                "latency_slo_s": spec.latency_slo_s,
                "headroom": spec.headroom,
                "warm_floor": spec.warm_floor,
                "api_equivalent": spec.api_equivalent,
            }
            for spec in config.pools.values()
        ],
        schema=POOLS_SCHEMA,
    )
    load_tests = [(spec.name, str(spec.load_test)) for spec in config.pools.values() if spec.load_test]
    with warehouse.get_connection() as conn:
        conn.register("pool_rows", pools)
        conn.execute("create or replace table pools as select * from pool_rows")
        conn.unregister("pool_rows")
        comment_relation(conn, "pools", "table", "Self-hosted serving pools as configured.")
        conn.execute(
            "create or replace table pool_load_tests (pool varchar, batch_size integer, request_latency_s double, "
            "requests_per_s double, prompt_tokens integer, output_tokens integer)"
        )
        for pool, path in load_tests:
            conn.execute(
                "insert into pool_load_tests select $pool, batch_size::int, request_latency_s::double, "
                "requests_per_s::double, prompt_tokens::int, output_tokens::int from read_csv($path, header = true)",
                {"pool": pool, "path": path},
            )
        comment_relation(
            conn,
            "pool_load_tests",
            "table",
            "Load tests per pool: one row per batch size, its request latency and sustained rate.",
        )
        rows = conn.execute("select count(*) from pool_load_tests").fetchone()[0]
    return dg.MaterializeResult(metadata={"pools": pools.num_rows, "load_test_rows": rows})


@dg.asset(group_name="pools", kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def budget_settings(costwatch: CostwatchConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """`budgets`: each feature's monthly budget in USD, from the config."""
    budgets = pa.table(
        {
            "feature": pa.array(list(costwatch.config.budgets), pa.string()),
            "budget_usd": pa.array(list(costwatch.config.budgets.values()), pa.float64()),
        }
    )
    with warehouse.get_connection() as conn:
        conn.register("budget_rows", budgets)
        conn.execute("create or replace table budgets as select * from budget_rows")
        conn.unregister("budget_rows")
        comment_relation(conn, "budgets", "table", "Monthly budgets per feature from the config, USD.")
    return dg.MaterializeResult(metadata={"budgets": budgets.num_rows})
