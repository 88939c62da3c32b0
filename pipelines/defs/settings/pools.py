"""Settings from the config that SQL models join, one asset per table: `pools`, `pool_load_tests`, `budgets`."""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa

from pipelines.defs.settings import SETTINGS_GROUP
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource
from pipelines.sources.load_tests import LOAD_TEST_SCHEMA, load_test_rows

POOLS_SCHEMA = pa.schema(
    [
        ("pool", pa.string()),
        ("gpu_type", pa.string()),
        ("latency_slo_s", pa.float64()),
        ("headroom", pa.float64()),
        ("warm_floor", pa.int64()),
        ("api_equivalent", pa.string()),
        ("scale_ahead", pa.bool_()),
        ("batch_window_s", pa.int64()),
        ("target_utilization", pa.float64()),
    ]
)


CANDIDATES_SCHEMA = pa.schema(
    [
        ("api_model", pa.string()),
        ("model", pa.string()),
        ("gpu_type", pa.string()),
        ("gpus_per_replica", pa.int64()),
        ("usd_per_gpu_hour", pa.decimal128(18, 6)),
        ("latency_slo_s", pa.float64()),
        ("headroom", pa.float64()),
        ("warm_floor", pa.int64()),
        ("ops_usd_per_month", pa.decimal128(18, 6)),
        ("margin", pa.float64()),
        ("quality_note", pa.string()),
    ]
)

POOLS_DESCRIPTION = "Self-hosted serving pools as configured."
CANDIDATES_DESCRIPTION = (
    "Open models to compare API models with (savings.selfhost_candidates), one row per API model family."
)
CANDIDATE_LOAD_TESTS_DESCRIPTION = (
    "Load tests of the self-host candidates: one row per batch size, its request latency and sustained rate."
)
LOAD_TESTS_DESCRIPTION = "Load tests per pool: one row per batch size, its request latency and sustained rate."
BUDGETS_DESCRIPTION = "Monthly budgets per feature from the config, USD."


def pools_table(config) -> pa.Table:
    """The `pools` rows: each configured pool's GPU, latency SLO, headroom, warm floor, API equivalent,
    whether its capacity schedule scales ahead, and how its batch work may be queued (window, utilization)."""
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
                "batch_window_s": spec.batch_window_s,
                "target_utilization": spec.target_utilization,
            }
            for spec in config.pools.values()
        ],
        schema=POOLS_SCHEMA,
    )


@dataclass(frozen=True)
class _CandidateLoadTest:
    """A candidate as load_test_rows reads a pool: a name (the API model family) and its CSV."""

    name: str
    load_test: Path


def candidates_table(config) -> pa.Table:
    """The `selfhost_candidates` rows: per API model family, the open model, its GPUs and price."""
    return pa.Table.from_pylist(
        [
            {
                "api_model": api_model,
                "model": spec.model,
                "gpu_type": spec.gpu_type,
                "gpus_per_replica": spec.gpus_per_replica,
                "usd_per_gpu_hour": Decimal(str(spec.usd_per_gpu_hour)),
                "latency_slo_s": spec.latency_slo_s,
                "headroom": spec.headroom,
                "warm_floor": spec.warm_floor,
                "ops_usd_per_month": Decimal(str(spec.ops_usd_per_month)),
                "margin": spec.margin,
                "quality_note": spec.quality_note,
            }
            for api_model, spec in config.savings.selfhost_candidates.items()
        ],
        schema=CANDIDATES_SCHEMA,
    )


@dg.multi_asset(
    name="pool_settings",
    group_name=SETTINGS_GROUP,
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec("pools", description=POOLS_DESCRIPTION, kinds={"duckdb"}),
        dg.AssetSpec("pool_load_tests", description=LOAD_TESTS_DESCRIPTION, kinds={"duckdb"}),
        dg.AssetSpec("selfhost_candidates", description=CANDIDATES_DESCRIPTION, kinds={"duckdb"}),
        dg.AssetSpec("selfhost_candidate_load_tests", description=CANDIDATE_LOAD_TESTS_DESCRIPTION, kinds={"duckdb"}),
    ],
)
def pool_settings(costwatch: CostwatchConfigResource, warehouse: WarehouseResource):
    """`pools` (each pool's GPU, latency SLO, headroom, warm floor and API equivalent from the
    config) and `pool_load_tests` (each configured load test: throughput and latency per batch
    size, in the batching-curve CSV format); `selfhost_candidates` and
    `selfhost_candidate_load_tests`, the same for savings.selfhost_candidates (keyed by API model)."""
    with warehouse.get_connection() as conn:
        rows = write_pool_settings(conn, costwatch.config, lake=warehouse.tables_lake)
    for table, count in rows.items():
        yield dg.MaterializeResult(asset_key=table, metadata={"dagster/row_count": count})


def write_pool_settings(conn, config, lake: Path | None = None) -> dict[str, int]:
    """Replace the four pool tables from the config (in the lake at `lake`: a distributed run);
    their row counts by table."""
    candidate_tests = [
        _CandidateLoadTest(api_model, spec.load_test) for api_model, spec in config.savings.selfhost_candidates.items()
    ]
    candidate_load_tests = load_test_rows(candidate_tests).rename_columns(["api_model", *LOAD_TEST_SCHEMA.names[1:]])
    return {
        "pools": replace_table(conn, "pools", pools_table(config), POOLS_DESCRIPTION, lake_dir=lake),
        "pool_load_tests": replace_table(
            conn, "pool_load_tests", load_test_rows(config.pools.values()), LOAD_TESTS_DESCRIPTION, lake_dir=lake
        ),
        "selfhost_candidates": replace_table(
            conn, "selfhost_candidates", candidates_table(config), CANDIDATES_DESCRIPTION, lake_dir=lake
        ),
        "selfhost_candidate_load_tests": replace_table(
            conn,
            "selfhost_candidate_load_tests",
            candidate_load_tests,
            CANDIDATE_LOAD_TESTS_DESCRIPTION,
            lake_dir=lake,
        ),
    }


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
        rows = replace_table(conn, "budgets", budgets, BUDGETS_DESCRIPTION, lake_dir=warehouse.tables_lake)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})
