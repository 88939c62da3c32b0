"""Great Expectations gates inside DuckDB: the GX 1.24 + duckdb_engine fix, day and day-range
selection, counts, failing-row samples and failing days, quiet logs, and blocking vs warning
checks in Dagster."""

import datetime as dt

import dagster as dg
import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pyarrow.parquet as pq
import pytest
from conftest import request
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from sqlalchemy.pool import NullPool

from pipelines.defs.quality import run_gates
from pipelines.models.engine import DayRange
from pipelines.quality import engine as quality_engine
from pipelines.quality.engine import Gate, Suite, rows_of_days, validate

DAY = dt.date(2026, 10, 6)
# (request_id, day, input_tokens, cached_input_tokens, cost_usd): two rows of DAY break a rule.
ROWS = [
    ("a", DAY, 1000, 200, 0.01),
    ("b", DAY, 500, 600, 0.02),  # cached above input
    ("c", DAY, 800, 0, -0.5),  # negative cost
    ("d", DAY, 300, 300, 0.0),
    ("e", DAY - dt.timedelta(days=1), 10, 99, -1.0),  # breaks both rules, on another day
]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "create table calls (request_id varchar, day date, input_tokens bigint, "
            "cached_input_tokens bigint, cost_usd decimal(18, 6))"
        )
        conn.executemany("insert into calls values (?, ?, ?, ?, ?)", ROWS)
    return path


SUITE = Suite(
    rows_of_days("calls"),
    ("request_id", "day"),
    (
        Gate(
            "cost_non_negative",
            "",
            lambda config: [gxe.ExpectColumnValuesToBeBetween(column="cost_usd", min_value=0)],
            blocking=True,
        ),
        Gate(
            "cached_within_input",
            "",
            lambda config: [
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="input_tokens", column_B="cached_input_tokens", or_equal=True
                )
            ],
        ),
        Gate("ids_unique", "", lambda config: [gxe.ExpectColumnValuesToBeUnique(column="request_id")]),
    ),
)


def test_gates_count_and_sample_failing_rows_of_the_day_inside_duckdb(warehouse, capfd):
    with duckdb.connect(str(warehouse)) as conn:
        results = {result.gate.name: result for result in validate(conn, SUITE, None, DAY)}
    # Independent count, in Python, of the rows of DAY that break each rule.
    of_day = [row for row in ROWS if row[1] == DAY]
    negative = [row[0] for row in of_day if row[4] < 0]
    over = [row[0] for row in of_day if row[3] > row[2]]
    assert negative == ["c"] and over == ["b"]

    cost = results["cost_non_negative"]
    assert (cost.passed, cost.rows_validated, cost.unexpected_rows) == (False, len(of_day), len(negative))
    assert [row["request_id"] for row in cost.failing_rows] == negative
    assert cost.failing_rows[0]["cost_usd"] == -0.5
    assert (cost.failing_days, cost.failing_days_complete) == ([DAY.isoformat()], True)
    cached = results["cached_within_input"]
    assert (cached.passed, cached.unexpected_rows) == (False, len(over))
    assert [row["request_id"] for row in cached.failing_rows] == over
    assert results["ids_unique"].passed and results["ids_unique"].unexpected_rows == 0
    assert all(result.error is None for result in results.values())
    # GX's tqdm progress bars stay out of the run's logs.
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out


def test_the_other_day_is_validated_on_its_own(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        results = {result.gate.name: result for result in validate(conn, SUITE, None, DAY - dt.timedelta(days=1))}
    assert results["cost_non_negative"].rows_validated == 1
    assert results["cost_non_negative"].failing_rows == [
        {"request_id": "e", "day": (DAY - dt.timedelta(days=1)).isoformat(), "cost_usd": -1.0}
    ]
    assert not results["cached_within_input"].passed


def test_a_range_of_days_is_judged_once_and_its_failing_days_are_named(warehouse):
    """One validation over both days: each gate counts the failing rows of every day in the range
    and names their days (worked out here from ROWS)."""
    days = DayRange(DAY - dt.timedelta(days=1), DAY)
    with duckdb.connect(str(warehouse)) as conn:
        results = {result.gate.name: result for result in validate(conn, SUITE, None, days)}
    negative = [row for row in ROWS if row[4] < 0]
    over = [row for row in ROWS if row[3] > row[2]]
    cost = results["cost_non_negative"]
    assert (cost.passed, cost.rows_validated, cost.unexpected_rows) == (False, len(ROWS), len(negative))
    assert sorted(row["request_id"] for row in cost.failing_rows) == sorted(row[0] for row in negative)
    assert (cost.failing_days, cost.failing_days_complete) == (sorted({row[1].isoformat() for row in negative}), True)
    assert cost.failing_days == [str(DAY - dt.timedelta(days=1)), str(DAY)]
    cached = results["cached_within_input"]
    assert (cached.unexpected_rows, cached.failing_days) == (len(over), sorted({row[1].isoformat() for row in over}))
    assert results["ids_unique"].passed and results["ids_unique"].failing_days == []
    # As Dagster check results: one per gate for the range, which its metadata names (Dagster keeps
    # a partition on a check result, not a range).
    with duckdb.connect(str(warehouse)) as conn:
        checks = list(run_gates(conn, [SUITE], None, days))
    assert {check.check_name: check.metadata["days"].value for check in checks} == dict.fromkeys(
        results, f"{days.start}..{days.end}"
    )
    # A one-day range is that day, as a plain date.
    with duckdb.connect(str(warehouse)) as conn:
        one_day = {result.gate.name: result for result in validate(conn, SUITE, None, DayRange.of(DAY))}
        as_date = {result.gate.name: result for result in validate(conn, SUITE, None, DAY)}
    assert {name: (r.passed, r.unexpected_rows, r.failing_rows) for name, r in one_day.items()} == {
        name: (r.passed, r.unexpected_rows, r.failing_rows) for name, r in as_date.items()
    }


def test_failing_days_say_when_the_sample_may_miss_some(warehouse, monkeypatch):
    """With a sample smaller than the failing rows, the days named are marked incomplete."""
    monkeypatch.setattr(quality_engine, "DAY_SAMPLE_ROWS", 1)
    with duckdb.connect(str(warehouse)) as conn:
        (cost, *_) = validate(conn, SUITE, None, DayRange(DAY - dt.timedelta(days=1), DAY))
    assert cost.unexpected_rows == 2 and len(cost.failing_days) == 1
    assert cost.failing_days_complete is False


def test_a_day_without_rows_passes_every_gate_without_calling_gx(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        results = validate(conn, SUITE, None, DAY + dt.timedelta(days=1))
    assert [(r.passed, r.rows_validated, r.unexpected_rows, r.expectations) for r in results] == [(True, 0, 0, [])] * 3


def test_gates_run_while_the_run_holds_the_file_open(warehouse):
    """GX gets the run's own connection: duckdb_engine opening the same file with its own
    configuration is refused by DuckDB while a writer holds it."""
    with duckdb.connect(str(warehouse)) as writer:
        writer.execute("insert into calls values ('f', ?, 5, 0, 0.5)", [DAY])  # a write the gates must see
        results = {result.gate.name: result for result in validate(writer, SUITE, None, DAY)}
        assert results["ids_unique"].rows_validated == 5


def test_a_gate_that_cannot_be_evaluated_fails_with_the_reason(warehouse):
    broken = Suite(
        rows_of_days("calls"),
        ("request_id",),
        (
            Gate(
                "no_such_column", "", lambda config: [gxe.ExpectColumnValuesToNotBeNull(column="tokens")], blocking=True
            ),
        ),
    )
    with duckdb.connect(str(warehouse)) as conn:
        (result,) = validate(conn, broken, None, DAY)
    assert result.passed is False
    assert "tokens" in result.error


@pytest.mark.upstream_bug("great-expectations 1.24 + duckdb-engine 0.17: results read after the connection closes")
def test_stock_gx_sql_engine_loses_duckdb_results(warehouse):
    """Why `DuckDBExecutionEngine` exists: GX 1.24's own engine reads each result after closing
    its connection, and duckdb_engine's results are empty by then, so an expectation that holds
    fails. When this test fails, GX has fixed it and the workaround can go."""
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )
    datasource = context.data_sources.add_sql(
        "stock", connection_string=f"duckdb:///{warehouse}", kwargs={"poolclass": NullPool}
    )
    batch = datasource.add_table_asset("calls", table_name="calls").add_batch_definition_whole_table("all").get_batch()
    result = batch.validate(gxe.ExpectTableRowCountToEqual(value=len(ROWS)))
    assert result.success is False
    # The metric's rows are read from a closed result: gone ("No open result set"), or empty
    # (GX then indexes into nothing), depending on when duckdb_engine's cursor was released.
    reason = str(result.exception_info)
    assert "No open result set" in reason or "list index out of range" in reason


# --- in Dagster -----------------------------------------------------------------------------------


def test_a_failing_blocking_gate_stops_downstream_assets(project):
    """A lake partition that breaks a token rule (written by an older reader, or by hand) fails
    `fct_requests`'s blocking gate, and the marts built from it do not run on it."""
    project.write_config()
    project.write_jsonl(
        "calls.jsonl",
        [
            request("ok", f"{DAY}T09:00:00Z", "gpt-4o-mini", provider="openai", input_tokens=100, output_tokens=10),
            request("bad", f"{DAY}T10:00:00Z", "gpt-4o-mini", provider="openai", input_tokens=100, output_tokens=10),
        ],
    )
    project.run_day(DAY.isoformat())
    partition = project.lake / "gateway_requests" / f"day={DAY}" / "data.parquet"
    with duckdb.connect() as conn:  # tamper with the lake: 'bad' now claims more cache reads than input
        tampered = conn.sql(
            "select * replace (if(request_id = 'bad', 500, cached_input_tokens) as cached_input_tokens) "
            "from read_parquet($p)",
            params={"p": str(partition)},
        ).to_arrow_table()
    pq.write_table(tampered, partition)

    from pipelines.definitions import build_definitions

    job = build_definitions(project.config_path).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key=DAY.isoformat(),
        instance=project.instance,
        raise_on_error=False,
        asset_selection=[dg.AssetKey("fct_requests"), dg.AssetKey("fct_spend_daily")],
    )
    checks = {check.check_name: check for check in result.get_asset_check_evaluations()}
    gate = checks["cached_within_input"]
    assert gate.passed is False and gate.severity == dg.AssetCheckSeverity.ERROR
    assert gate.metadata["unexpected_rows"].value == 1
    assert [row["request_id"] for row in gate.metadata["failing_rows_sample"].value] == ["bad"]
    assert gate.metadata["failing_days"].value == [DAY.isoformat()]
    assert gate.metadata["failing_days_complete"].value is True
    # Recorded on the day's partition (the UI shows the result there), the day in its metadata too.
    assert {check.partition for check in checks.values()} == {DAY.isoformat()}
    assert gate.metadata["days"].value == DAY.isoformat()
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert "fct_spend_daily" not in materialized
    # Its uncached input (100 - 500 tokens) is priced at zero, as LiteLLM clamps it, so its cost is
    # not negative: the token gate is what catches the row.
    assert checks["money_non_negative"].passed
    assert checks["request_ids_unique"].passed


# --- .checks.yml ------------------------------------------------------------------------------------


def write_checks(sql_dir, relation, text):
    path = sql_dir / "marts" / f"{relation}.checks.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


CHECKS_YML = """
suites:
  - rows: day
    keys: [request_id]
    gates:
      - name: cost_non_negative
        description: cost >= 0
        blocking: true
        expect:
          - non_negative: cost_usd
      - name: cached_within_input
        description: cache reads within input
        expect:
          - expect_column_pair_values_a_to_be_greater_than_b:
              {column_A: input_tokens, column_B: cached_input_tokens, or_equal: true}
      - name: ids_unique
        description: one row per request
        expect:
          - unique: request_id
        explain:
          sql: >-
            select count(*) as rows_of_day from calls
            where day between getvariable('costwatch_start') and getvariable('costwatch_end')
          settings: [max_unpriced_share]
"""


def test_checks_yml_gates_judge_rows_like_the_same_suite_in_code(warehouse, tmp_path):
    """The file above declares SUITE's three gates: same verdicts, counts and samples, plus the explain entries."""
    from pipelines.quality.checks import load_suites
    from pipelines.resources.config import CostwatchConfig

    write_checks(tmp_path / "sql", "calls", CHECKS_YML)
    (suite,) = load_suites("calls", tmp_path / "sql")
    assert [(gate.name, gate.blocking) for gate in suite.gates] == [
        ("cost_non_negative", True),
        ("cached_within_input", False),
        ("ids_unique", False),
    ]
    config = CostwatchConfig.model_construct(start_date=DAY)  # no file: only the defaults are read
    with duckdb.connect(str(warehouse)) as conn:
        from_yml = {r.gate.name: r for r in validate(conn, suite, config, DAY)}
        in_code = {r.gate.name: r for r in validate(conn, SUITE, config, DAY)}
    for name, expected in in_code.items():
        got = from_yml[name]
        assert (got.passed, got.rows_validated, got.unexpected_rows, got.failing_rows) == (
            expected.passed,
            expected.rows_validated,
            expected.unexpected_rows,
            expected.failing_rows,
        )
    assert not from_yml["cost_non_negative"].passed  # row c
    # 4 rows of DAY in ROWS; the default checks.max_unpriced_share is 0.01.
    assert from_yml["ids_unique"].extra == {"rows_of_day": 4, "max_unpriced_share": 0.01}


def test_a_setting_is_resolved_from_the_config(tmp_path):
    from pipelines.quality.checks import load_suites, settings
    from pipelines.resources.config import CheckThresholds, CostwatchConfig

    write_checks(
        tmp_path / "sql",
        "calls",
        """
suites:
  - rows: all
    keys: [request_id]
    gates:
      - name: mostly_priced
        description: priced
        expect:
          - expect_column_values_to_be_in_set: {column: priced, value_set: [true], mostly: {setting: min_priced_share}}
          - expect_column_values_to_be_in_set: {column: currency, value_set: {setting: known_currencies}}
""",
    )
    config = CostwatchConfig.model_construct(
        start_date=DAY, checks=CheckThresholds(max_unpriced_share=0.25), currency_rates={"EUR": 1.08, "GBP": 1.27}
    )
    (suite,) = load_suites("calls", tmp_path / "sql")
    assert suite.sql == "select * from calls"
    priced, currency = suite.gates[0].expect(config)
    assert (priced.column, priced.value_set, priced.mostly) == ("priced", [True], 0.75)
    assert currency.value_set == ["EUR", "GBP", "USD"]
    assert settings(config)["min_priced_share"] == 0.75


def test_a_checks_file_still_reading_the_one_day_variable_is_refused(tmp_path):
    """`costwatch_day` is never set since runs cover ranges: a suite reading it would judge no row."""
    from pipelines.quality.checks import load_suites

    old = "where day between getvariable('costwatch_start') and getvariable('costwatch_end')"
    path = write_checks(tmp_path / "sql", "calls", CHECKS_YML.replace(old, "where day = getvariable('costwatch_day')"))
    with pytest.raises(ValueError, match="costwatch_day") as raised:
        load_suites("calls", tmp_path / "sql")
    assert str(path) in str(raised.value) and "costwatch_start" in str(raised.value)


def test_rows_day_adds_the_day_to_the_keys(tmp_path):
    from pipelines.quality.checks import load_suites

    write_checks(tmp_path / "sql", "calls", CHECKS_YML)
    (suite,) = load_suites("calls", tmp_path / "sql")
    assert suite.keys == ("request_id", "day")
    assert suite.sql == rows_of_days("calls")


def test_no_checks_file_means_no_suites(tmp_path):
    from pipelines.quality.checks import load_suites

    (tmp_path / "sql").mkdir()
    assert load_suites("calls", tmp_path / "sql") == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("- unique: request_id", "- expect_values_to_be_nice: {column: request_id}"), "expect_values_to_be_nice"),
        (("- unique: request_id", "- expect_column_values_to_be_unique: {colum: request_id}"), "colum"),
        (("blocking: true", "blockng: true"), "blockng"),
        (("keys: [request_id]", "keys: [request_id]\n    rows_where: x"), "rows_where"),
        (("settings: [max_unpriced_share]", "settings: [max_unpriced_shares]"), "max_unpriced_shares"),
        (
            (
                "- non_negative: cost_usd",
                "- expect_column_values_to_be_between: {column: cost_usd, min_value: {setting: zero}}",
            ),
            "zero",
        ),
    ],
)
def test_a_mistake_in_a_checks_file_names_the_file_and_the_key(tmp_path, change, named):
    from pipelines.quality.checks import load_suites

    old, new = change
    assert old in CHECKS_YML
    path = write_checks(tmp_path / "sql", "calls", CHECKS_YML.replace(old, new, 1))
    with pytest.raises(ValueError, match="unknown") as raised:
        load_suites("calls", tmp_path / "sql")
    assert str(path) in str(raised.value) and repr(named) in str(raised.value)


def test_every_checks_file_in_sql_loads():
    """Each `sql/**/*.checks.yml` guards a model or a lake dataset and parses without error."""
    from pipelines.models.engine import SQL_DIR, load_models
    from pipelines.quality.checks import load_suites

    files = sorted(SQL_DIR.rglob("*.checks.yml"))
    assert {path.name.removesuffix(".checks.yml") for path in files} >= {
        "fct_requests",
        "fct_spend_daily",
        "fct_invoice_reconciliation",
        "fct_allocated_spend_daily",
        "fct_gpu_utilization_daily",
    }
    models = load_models()
    for path in files:
        relation = path.name.removesuffix(".checks.yml")
        assert relation in models or path.parent.name == "lake", path
        assert load_suites(relation), path


def test_the_expectation_snapshot_is_the_installed_gx():
    """The definitions check a `.checks.yml`'s expectation names and arguments against a snapshot
    of GX's classes (no GX import at load); it must be exactly what the installed GX has."""
    import importlib.metadata

    from pipelines.quality import gx_expectations
    from pipelines.quality.checks import expectation_fields, installed_expectation_fields

    assert gx_expectations.GX_VERSION == importlib.metadata.version("great_expectations")
    installed = installed_expectation_fields()
    assert expectation_fields() == installed
    assert installed["ExpectColumnValuesToBeBetween"] >= {"column", "min_value", "max_value", "mostly"}


GX_IMPORTS = """
import datetime as dt, sys
from pathlib import Path

import duckdb

from pipelines.definitions import build_definitions
from pipelines.quality.checks import load_suites
from pipelines.quality.engine import validate
from pipelines.resources.config import CostwatchConfig

config = CostwatchConfig.model_construct(start_date=dt.date(2026, 10, 6))  # only the defaults are read
build_definitions(sys.argv[1])  # every .checks.yml in sql/ is loaded and checked here
loaded = "great_expectations" in sys.modules
(suite,) = load_suites("calls", Path(sys.argv[2]))
with duckdb.connect() as conn:
    conn.execute("create table calls (request_id varchar, day date, input_tokens bigint, "
                 "cached_input_tokens bigint, cost_usd decimal(18, 6))")
    empty = validate(conn, suite, config, dt.date(2026, 10, 6))
    after_empty = "great_expectations" in sys.modules
    conn.execute("insert into calls values ('a', '2026-10-06', 10, 20, -1)")
    with_rows = validate(conn, suite, config, dt.date(2026, 10, 6))
print(loaded, after_empty, [r.passed for r in empty], "great_expectations" in sys.modules, [r.passed for r in with_rows])
"""


def test_gx_is_imported_only_when_a_suite_has_rows_to_judge(project):
    """Importing GX takes seconds: loading the definitions and judging a suite with no rows (an
    empty day) do without it; the first suite with rows imports it and judges them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = project.write_config()
    write_checks(project.root / "sql", "calls", CHECKS_YML)
    script = project.root / "gx_imports.py"
    script.write_text(GX_IMPORTS, encoding="utf-8")
    repository = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(script), str(config), str(project.root / "sql")],
        capture_output=True,
        text=True,
        check=True,
        cwd=repository,
        env={**os.environ, "PYTHONPATH": str(repository)},
    ).stdout.split("\n")[-2]
    # Row a: negative cost (the blocking gate fails), cached above input; its id is unique.
    assert out == "False False [True, True, True] True [False, False, True]"
