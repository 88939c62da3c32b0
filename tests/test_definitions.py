"""The code location: it loads, every SQL file is an asset with the dependencies its SQL reads,
and every warehouse relation and column is documented for analysts."""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg
import pytest
from conftest import REPO, request

from pipelines.definitions import build_definitions
from pipelines.defs.schedules import DAILY_JOB
from pipelines.models.engine import SQL_DIR, load_models, tables_read
from pipelines.resources.instance import open_instance

# The whole dependency map, written out: a new read in any SQL file must be added here on purpose.
# Every asset is keyed by the relation it writes: an ingest or settings asset writing several
# tables is one key per table (a multi_asset), so a model's deps are exactly the relations it reads.
EXPECTED_DEPS = {
    # settings (costwatch.yaml)
    "price_catalog": set(),
    "pools": set(),
    "pool_load_tests": set(),
    "selfhost_candidates": set(),
    "selfhost_candidate_load_tests": set(),
    "budgets": set(),
    "savings_findings_state": set(),
    # ingest (the lake)
    "gateway_requests": set(),
    "gateway_quarantine": set(),
    "gateway_ingest_audit": set(),
    "provider_cost_lines": set(),
    "provider_usage_lines": set(),
    "provider_billing_coverage": set(),
    "provider_quarantine": set(),
    "gpu_billing_lines": set(),
    "gpu_billing_quarantine": set(),
    "gpu_busy_telemetry": set(),
    # SQL models
    "stg_gateway_requests": {"gateway_requests"},
    "stg_prices": {"price_catalog"},
    "fct_requests": {"stg_gateway_requests", "stg_prices"},
    "fct_spend_daily": {"fct_requests"},
    "fct_spend_by_feature_daily": {"fct_spend_daily"},
    "fct_spend_by_user_daily": {"fct_spend_daily"},
    "fct_cache_savings_daily": {"fct_requests"},
    "stg_provider_costs": {"provider_cost_lines"},
    "stg_provider_usage": {"provider_usage_lines"},
    "int_provider_calls_daily": {"fct_requests"},
    "fct_invoice_reconciliation": {"int_provider_calls_daily", "provider_billing_coverage", "stg_provider_costs"},
    "fct_token_reconciliation": {"int_provider_calls_daily", "stg_provider_usage"},
    "fct_price_findings": {"fct_invoice_reconciliation", "fct_token_reconciliation"},
    "fct_allocated_spend_daily": {"fct_spend_daily", "stg_provider_costs"},
    "stg_gpu_billing": {"gpu_billing_lines"},
    "int_replica_activity_daily": {"fct_requests"},
    "fct_gpu_utilization_daily": {"stg_gpu_billing", "int_replica_activity_daily", "gpu_busy_telemetry"},
    "int_selfhost_usage_daily": {"fct_requests"},
    "fct_gpu_cost_by_feature_daily": {"int_selfhost_usage_daily", "fct_gpu_utilization_daily"},
    "fct_selfhost_unit_cost_daily": {"int_selfhost_usage_daily", "fct_gpu_utilization_daily"},
    "fct_capacity_plan": {"fct_requests", "pools", "pool_load_tests", "stg_gpu_billing"},
    "fct_spend_anomalies": {"fct_spend_daily", "fct_gpu_utilization_daily"},
    "fct_budget_forecast": {"fct_spend_by_feature_daily", "budgets"},
    "alert_anomaly_episodes": {"fct_spend_anomalies"},
    "fct_total_cost_daily": {
        "fct_spend_daily",
        "fct_allocated_spend_daily",
        "fct_gpu_cost_by_feature_daily",
        "fct_gpu_utilization_daily",
    },
    "fct_data_findings": {"gateway_ingest_audit", "fct_spend_daily", "stg_provider_costs"},
    "fct_daily_digest": {
        "fct_spend_by_feature_daily",
        "fct_invoice_reconciliation",
        "fct_total_cost_daily",
        "fct_data_findings",
        "fct_gpu_utilization_daily",
        "fct_savings_opportunities",
    },
    "alerts_outbox": {
        "alert_anomaly_episodes",
        "fct_budget_forecast",
        "fct_daily_digest",
        "fct_savings_opportunities",
    },
    "fct_api_vs_selfhost": {
        "fct_selfhost_unit_cost_daily",
        "fct_gpu_utilization_daily",
        "fct_capacity_plan",
        "stg_gpu_billing",
        "pools",
        "pool_load_tests",
        "stg_prices",
    },
    # A savings lever prices calls again through the price_calls macro, which reads the prices.
    "int_billed_calls": {"fct_requests"},
    "int_batch_calls": {"int_billed_calls", "stg_prices"},
    "fct_batch_opportunity_daily": {"int_batch_calls"},
    "int_token_efficiency_calls": {"int_billed_calls", "stg_prices"},
    "fct_token_efficiency_daily": {"int_billed_calls", "int_token_efficiency_calls", "stg_prices"},
    # The cache simulation and the model-fit repricing per call; their marts add those rows up.
    "int_prompt_cache_calls": {"int_billed_calls", "stg_prices"},
    "fct_prompt_cache_opportunity_daily": {"int_prompt_cache_calls", "int_billed_calls", "stg_prices"},
    "int_model_fit_calls": {"int_billed_calls", "stg_prices"},
    "fct_model_fit_daily": {"int_model_fit_calls", "int_billed_calls"},
    "fct_savings_overlap_daily": {
        "int_token_efficiency_calls",
        "int_model_fit_calls",
        "int_prompt_cache_calls",
        "int_batch_calls",
    },
    "fct_capacity_schedule_hourly": {"fct_requests", "fct_capacity_plan", "pools", "stg_gpu_billing"},
    "int_api_demand_hourly": {"int_billed_calls", "selfhost_candidates"},
    "fct_selfhost_trigger": {"int_api_demand_hourly", "selfhost_candidates", "selfhost_candidate_load_tests"},
    "fct_savings_opportunities": {
        "fct_token_efficiency_daily",
        "fct_model_fit_daily",
        "fct_batch_opportunity_daily",
        "fct_prompt_cache_opportunity_daily",
        "fct_capacity_schedule_hourly",
        "fct_selfhost_trigger",
        "fct_savings_overlap_daily",
        "savings_findings_state",
    },
    "fct_savings_realized": {"savings_findings_state", "fct_savings_opportunities", "fct_token_efficiency_daily"},
}
# The run's last step reads every other asset: it publishes the warehouse once all are written.
EXPECTED_DEPS["published_warehouse"] = set(EXPECTED_DEPS)

# Dagster UI groups: where each asset is shown.
EXPECTED_GROUPS = {
    "settings": {
        "price_catalog",
        "pools",
        "pool_load_tests",
        "selfhost_candidates",
        "selfhost_candidate_load_tests",
        "budgets",
        "savings_findings_state",
    },
    "ingest": {
        "gateway_requests",
        "gateway_quarantine",
        "gateway_ingest_audit",
        "provider_cost_lines",
        "provider_usage_lines",
        "provider_billing_coverage",
        "provider_quarantine",
        "gpu_billing_lines",
        "gpu_billing_quarantine",
        "gpu_busy_telemetry",
    },
    "savings": {
        "int_batch_calls",
        "fct_batch_opportunity_daily",
        "int_token_efficiency_calls",
        "fct_token_efficiency_daily",
        "fct_savings_overlap_daily",
        "int_prompt_cache_calls",
        "fct_prompt_cache_opportunity_daily",
        "int_model_fit_calls",
        "fct_model_fit_daily",
        "fct_capacity_schedule_hourly",
        "int_api_demand_hourly",
        "fct_selfhost_trigger",
        "fct_savings_opportunities",
        "fct_savings_realized",
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
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING  # no one has to remember to switch it on
    assert schedule.execution_timezone in (None, "UTC")


def test_every_sql_file_is_an_asset_with_the_dependencies_it_reads(defs):
    graph = defs.resolve_asset_graph()
    deps = {
        key.to_user_string(): {parent.to_user_string() for parent in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert deps == EXPECTED_DEPS
    not_models = (SQL_DIR / "macros", SQL_DIR / "reports")
    sql_files = {path.stem for path in SQL_DIR.rglob("*.sql") if not set(not_models) & set(path.parents)}
    assert sql_files == set(load_models()) and sql_files <= set(deps)


def test_assets_are_grouped_by_where_their_tables_come_from(defs):
    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    for group, assets in EXPECTED_GROUPS.items():
        assert groups[group] == assets, group
    # A SQL model is shown in its folder's group (staging, intermediate, marts, savings, alerts).
    for name, model in load_models().items():
        assert name in groups[model.layer], name


def test_a_read_no_asset_produces_fails_at_load_time(monkeypatch, tmp_path):
    from pipelines.defs import models as model_defs
    from pipelines.models.engine import load_models as load

    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "fct_orphan.sql").write_text(
        "/* reads a table nothing writes\nmaterialized: table\ngrain: n\n*/\nselect count(*) as n from missing_table"
    )
    monkeypatch.setattr(model_defs, "load_models", lambda: load.__wrapped__(tmp_path))
    with pytest.raises(ValueError, match=r"fct_orphan.sql: reads \['missing_table'\], which no asset produces"):
        model_defs.build_model_assets(dg.DailyPartitionsDefinition(start_date="2026-10-01"), [])


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


def test_the_configs_owners_are_on_every_asset(project):
    project.write_config(owners=["team:llm-platform", "alice@example.com"])
    specs = list(build_definitions(project.config_path).resolve_all_asset_specs())
    assert len(specs) > 40
    assert {tuple(spec.owners) for spec in specs} == {("team:llm-platform", "alice@example.com")}
    # None by default: costwatch does not guess who owns a deployment.
    project.write_config()
    assert all(not spec.owners for spec in build_definitions(project.config_path).resolve_all_asset_specs())


def test_a_dagster_home_costwatch_creates_has_the_repository_settings(tmp_path, monkeypatch):
    """`dagster_home/dagster.yaml` and what costwatch writes into a home it finds missing agree,
    the `warehouse` pool's one-step limit above all."""
    import yaml

    from pipelines.resources.instance import dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "gone" / "dagster_home"))
    home = dagster_home(tmp_path / "costwatch.yaml")
    assert home == tmp_path / "gone" / "dagster_home"
    written = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    shipped = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8"))
    assert written == shipped
    with open_instance(home) as instance:
        assert instance.event_log_storage.get_concurrency_info("warehouse").limit == 1


def test_the_pooled_sqlite_storage_keeps_dagsters_own_files(project, tmp_path, monkeypatch):
    """The shipped dagster.yaml's storage (one connection pool per SQLite file) writes the files
    Dagster's own SQLite storage reads: a run of the daily job, read back through a plain
    `storage: sqlite:` instance over the same home, has the same events and materializations.
    An instance built for one home while $DAGSTER_HOME names another is refused with the fix."""
    from pipelines.resources.dagster_storage import PooledSqliteEventLogStorage, PooledSqliteRunStorage

    assert isinstance(project.instance.event_log_storage, PooledSqliteEventLogStorage)
    assert isinstance(project.instance.run_storage, PooledSqliteRunStorage)
    project.write_config()
    project.write_jsonl("day.jsonl", [request("a", "2026-10-01T10:00:00Z", "gpt-4o", input_tokens=100)])
    result = project.run_day("2026-10-01")
    pooled = {
        "events": [e.dagster_event_type for e in project.instance.all_logs(result.run_id)],
        "assets": sorted(key.to_user_string() for key in project.instance.get_asset_keys()),
    }
    home = project.root / "dagster_home"
    plain = {"storage": {"sqlite": {"base_dir": str(home)}}}
    (tmp_path / "plain").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "plain"), overrides=plain) as dagster_own:
        assert type(dagster_own.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert dagster_own.get_run_by_id(result.run_id).is_success
        assert [e.dagster_event_type for e in dagster_own.all_logs(result.run_id)] == pooled["events"]
        assert sorted(key.to_user_string() for key in dagster_own.get_asset_keys()) == pooled["assets"]
    assert len(pooled["events"]) > 100 and "fct_total_cost_daily" in pooled["assets"]

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(RuntimeError, match=f"set DAGSTER_HOME={home}"):
        dg.DagsterInstance.from_config(str(home))


def _header_lookback(name: str) -> tuple[int, bool]:
    """A model's `lookback:` header, read here with a regex (not the engine's parser): (days, month-to-date)."""
    (path,) = SQL_DIR.rglob(f"{name}.sql")
    match = re.search(r"^lookback:\s*(.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    parts = [part.strip() for part in match.group(1).split(",")] if match else []
    return max((int(part) for part in parts if part.isdigit()), default=0), "month" in parts


def test_window_marts_declare_their_look_back_as_partition_mappings(defs):
    """A daily model that reads N days before its own maps each day to the N days before it of every
    daily input (month-to-date: the 30 days before the 31st); a model without a window maps a day to
    itself. Asserted on the upstream days Dagster computes for one day of each mart."""
    graph = defs.resolve_asset_graph()
    day = dt.date(2026, 12, 1)
    checked = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is None or key.to_user_string() not in load_models():
            continue
        days, month = _header_lookback(key.to_user_string())
        back = max(days, 30 if month else 0)
        for parent in node.parent_keys:
            if graph.get(parent).partitions_def is None:
                continue
            mapping = graph.get_partition_mapping(key, parent)
            upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
                node.partitions_def.subset_with_partition_keys([day.isoformat()]),
                node.partitions_def,
                graph.get(parent).partitions_def,
            ).partitions_subset.get_partition_keys()
            expected = [(day - dt.timedelta(days=offset)).isoformat() for offset in range(back, -1, -1)]
            assert sorted(upstream) == expected, (key, parent)
            checked.add((key.to_user_string(), back))
    # The two windows the issue names: 28 days of spend for anomalies; month-to-date and 6 days for budgets.
    assert ("fct_spend_anomalies", 28) in checked and ("fct_budget_forecast", 30) in checked
    assert any(back == 0 for _, back in checked)
