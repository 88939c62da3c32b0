"""The code location: it loads, every SQL file is an asset with the dependencies its SQL reads,
and every warehouse relation and column is documented for analysts."""

from __future__ import annotations

import dagster as dg
import pytest
from conftest import request

from pipelines.definitions import build_definitions
from pipelines.defs.schedules import DAILY_JOB
from pipelines.models.engine import SQL_DIR, load_models, tables_read

# The whole dependency map, written out: a new read in any SQL file must be added here on purpose.
EXPECTED_DEPS = {
    "price_catalog": set(),
    "gateway_requests": set(),
    "stg_gateway_requests": {"gateway_requests"},
    "stg_prices": {"price_catalog"},
    "fct_requests": {"stg_gateway_requests", "stg_prices"},
    "fct_spend_daily": {"fct_requests"},
    "fct_spend_by_feature_daily": {"fct_spend_daily"},
    "fct_spend_by_user_daily": {"fct_spend_daily"},
    "fct_cache_savings_daily": {"fct_requests"},
    "provider_billing": set(),
    "stg_provider_costs": {"provider_billing"},
    "stg_provider_usage": {"provider_billing"},
    "int_provider_calls_daily": {"fct_requests"},
    "fct_invoice_reconciliation": {"int_provider_calls_daily", "provider_billing", "stg_provider_costs"},
    "fct_token_reconciliation": {"int_provider_calls_daily", "stg_provider_usage"},
    "fct_price_findings": {"fct_invoice_reconciliation", "fct_token_reconciliation"},
    "fct_allocated_spend_daily": {"fct_spend_daily", "stg_provider_costs"},
    "pool_settings": set(),
    "gpu_billing": set(),
    "gpu_telemetry": set(),
    "stg_gpu_billing": {"gpu_billing"},
    "int_replica_activity_daily": {"fct_requests"},
    "fct_gpu_utilization_daily": {"stg_gpu_billing", "int_replica_activity_daily", "gpu_telemetry"},
    "int_selfhost_usage_daily": {"fct_requests"},
    "fct_gpu_cost_by_feature_daily": {"int_selfhost_usage_daily", "fct_gpu_utilization_daily"},
    "fct_selfhost_unit_cost_daily": {"int_selfhost_usage_daily", "fct_gpu_utilization_daily"},
    "fct_capacity_plan": {"fct_requests", "pool_settings", "stg_gpu_billing"},
    "budget_settings": set(),
    "fct_spend_anomalies": {"fct_spend_daily", "fct_gpu_utilization_daily"},
    "fct_budget_forecast": {"fct_spend_by_feature_daily", "budget_settings"},
    "alerts_outbox": {
        "fct_spend_anomalies",
        "fct_budget_forecast",
        "fct_spend_by_feature_daily",
        "fct_invoice_reconciliation",
        "fct_gpu_utilization_daily",
    },
    "fct_api_vs_selfhost": {
        "fct_selfhost_unit_cost_daily",
        "fct_gpu_utilization_daily",
        "fct_capacity_plan",
        "stg_gpu_billing",
        "pool_settings",
        "stg_prices",
    },
}


@pytest.fixture
def defs(project) -> dg.Definitions:
    project.write_config()
    return build_definitions(project.config_path)


def test_definitions_load_with_a_daily_job_and_schedule(defs):
    job = defs.resolve_job_def(DAILY_JOB)
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def(f"{DAILY_JOB}_schedule")
    assert schedule.cron_schedule == "15 6 * * *"
    assert schedule.execution_timezone in (None, "UTC")


def test_every_sql_file_is_an_asset_with_the_dependencies_it_reads(defs):
    graph = defs.resolve_asset_graph()
    deps = {
        key.to_user_string(): {parent.to_user_string() for parent in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert deps == EXPECTED_DEPS
    sql_files = {path.stem for path in SQL_DIR.rglob("*.sql") if path.parent.name != "macros"}
    assert sql_files == set(load_models()) and sql_files <= set(deps)


def test_daily_models_are_partitioned_and_views_are_not(defs):
    graph = defs.resolve_asset_graph()
    for name, model in load_models().items():
        assert graph.get(dg.AssetKey(name)).is_partitioned == model.daily, name


def test_tables_read_ignores_ctes_and_sees_joins():
    sql = "with a as (select * from x where day = $day) select * from a join y using (k) left join z on true"
    assert tables_read(sql) == ("x", "y", "z")


def test_every_warehouse_relation_and_column_is_commented(project):
    project.write_config()
    project.write_jsonl("calls.jsonl", [request("a", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens=5)])
    project.run_day("2026-11-20")
    missing_tables = project.query(
        "select table_name from duckdb_tables() where comment is null "
        "union all select view_name from duckdb_views() where not internal and comment is null"
    )
    assert missing_tables == []
    missing_columns = project.query(
        "select table_name || '.' || column_name from duckdb_columns() where not internal and comment is null "
        "order by 1"
    )
    assert missing_columns == []
