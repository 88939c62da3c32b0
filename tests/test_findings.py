"""A day with no gateway data, and calls no price covers, are findings a person sees: a failed WARN
check, a line in `costwatch run`'s output with the fix, and the digest (tests/test_alert_models.py)."""

from __future__ import annotations

from conftest import request

from pipelines.cli import main as costwatch

DAY = "2026-10-20"
EMPTY_DAY = "2026-10-21"


def test_a_day_without_gateway_input_fails_its_check_and_the_cli_says_why(project, monkeypatch, capsys):
    project.write_config()
    project.write_jsonl("logs.jsonl", [request("a", f"{DAY}T10:00:00Z", "gpt-4o", feature="chat")])
    monkeypatch.setenv("DAGSTER_HOME", str(project.root / "dagster_home"))

    result = project.run_day(EMPTY_DAY)
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "gateway_data_arrived"]
    assert not check.passed and check.severity.value == "WARN"
    [message] = check.metadata["findings"].value
    assert message.startswith(f"No gateway log line was read for {EMPTY_DAY}")

    assert costwatch(["run", "--config", str(project.config_path), "--date", EMPTY_DAY]) == 0  # a WARN, not a failure
    out = capsys.readouterr().out
    assert f"warning: No gateway log line was read for {EMPTY_DAY}" in out
    assert f"run `costwatch run --date {EMPTY_DAY}` again" in out

    # The day with input: no such finding, the check holds.
    result = project.run_day(DAY)
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "gateway_data_arrived"]
    assert check.passed


def test_unpriced_calls_are_a_finding_with_the_fix(project):
    project.write_config()
    project.write_jsonl(
        "logs.jsonl",
        [
            request("a", f"{DAY}T10:00:00Z", "gpt-4o", feature="chat"),
            request("b", f"{DAY}T10:01:00Z", "no-such-model-9", provider="openai", feature="chat"),
            request("c", f"{DAY}T10:02:00Z", "no-such-model-9", provider="openai", feature="chat"),
        ],
    )
    project.run_day(DAY)
    [finding] = project.query_dicts("select * from fct_data_findings where day = $day", {"day": DAY})
    # 2 of the day's 3 API calls have no price: 0.67 of them, above checks.max_unpriced_share (0.01).
    assert (finding["finding"], finding["subject"], finding["requests"]) == (
        "unpriced_model",
        "openai/no-such-model-9",
        2,
    )
    assert abs(finding["share"] - 2 / 3) < 1e-12 and finding["severity"] == "warning"
    assert "prices.overrides" in finding["message"]


def test_a_model_materialization_shows_its_columns_with_types_and_descriptions(project):
    project.write_config()
    project.write_jsonl("logs.jsonl", [request("a", f"{DAY}T10:00:00Z", "gpt-4o", feature="chat")])
    result = project.run_day(DAY)
    [materialization] = [
        m for m in result.asset_materializations_for_node("fct_total_cost_daily") if m.partition == DAY
    ] or result.asset_materializations_for_node("fct_total_cost_daily")
    schema = materialization.metadata["dagster/column_schema"].value
    columns = {column.name: column for column in schema.columns}
    assert list(columns)[:2] == ["day", "feature"]
    assert columns["total_cost_usd"].description == "api_cost_usd + gpu_cost_usd, USD."
    assert columns["day"].type == "DATE" and columns["requests"].type == "BIGINT"
    # The same comments as the warehouse's (COMMENT ON), so UI and DuckDB agree.
    (comment,) = project.query(
        "select comment from duckdb_columns() where table_name = 'fct_total_cost_daily' and column_name = 'feature'"
    )[0]
    assert columns["feature"].description == comment
