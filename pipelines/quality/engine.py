"""Great Expectations gates, evaluated inside DuckDB on the warehouse's own connection.

A `Suite` names the rows to validate (fixed SQL text: the run's days are picked with
`day between getvariable('costwatch_start') and getvariable('costwatch_end')`, session variables
set as parameters, so no value is ever formatted into SQL) and its `Gate`s: each gate is one
Dagster asset check made of one or more GX expectations. Suites are declared in
`sql/**/<relation>.checks.yml` beside what they guard (`quality/checks.py` reads them). A suite
runs as one GX validation over all the run's days (a range run is judged once, not once per
day), so GX bundles the metrics of all its gates into few queries, and nothing is loaded into
pandas. A failing gate names the days of its failing rows.

Two things GX 1.24 does not do with DuckDB out of the box, fixed here and pinned by
tests/test_quality.py:
- `SqlAlchemyExecutionEngine.execute_query` returns the cursor result after its
  `with engine.connect()` block has closed the connection; duckdb_engine's result is empty by
  then, so every metric is missing and every expectation fails. `DuckDBExecutionEngine`
  buffers the rows while the connection is open.
- duckdb_engine opens the file with its own configuration, which DuckDB refuses while the run
  holds the file open with another one. GX is given the run's connection instead (a cursor: a
  second connection to the same database), which is also what lets it see the day variable.
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import Any, Literal

import duckdb

from pipelines.models.engine import DayRange, prepare_session

# The first and last day (inclusive) of the run being judged; a one-day run sets both to its day.
START_VARIABLE, END_VARIABLE = "costwatch_start", "costwatch_end"
SAMPLE_ROWS = 10
# Failing rows GX returns per expectation: SAMPLE_ROWS of them go into the metadata, all of them
# name failing days (a range's failing rows come in scan order, so a bigger sample names more days).
DAY_SAMPLE_ROWS = 1000


@cache
def gx_classes() -> SimpleNamespace:
    """GX, imported on first use: importing it takes seconds (scipy, pandas, every fluent
    datasource), and a run whose suites have no rows, or `costwatch query`, never needs it.
    Also the two classes that fix GX 1.24 for DuckDB (module docstring), defined once:
    `DuckDBExecutionEngine` reads each result before its connection is released, and
    `DuckDBDatasource` is a GX SQL datasource over a DuckDB connection the caller owns
    (`kwargs['creator']`)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.datasource.fluent import SQLDatasource
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
        def execute_query(self, query):
            with self.get_connection() as connection:
                return self._execute_query_with_recovery(connection, query).freeze()()

    class DuckDBDatasource(SQLDatasource):
        type: Literal["costwatch_duckdb"] = "costwatch_duckdb"

        @property
        def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
            return DuckDBExecutionEngine

    return SimpleNamespace(
        gx=gx, gxe=gxe, DuckDBExecutionEngine=DuckDBExecutionEngine, DuckDBDatasource=DuckDBDatasource
    )


def __getattr__(name: str):
    # `from pipelines.quality.engine import DuckDBExecutionEngine` still works, importing GX then.
    if name in ("DuckDBExecutionEngine", "DuckDBDatasource"):
        return getattr(gx_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Gate:
    """One asset check: it passes when every expectation `expect(config)` builds succeeds.
    Blocking gates fail with ERROR and stop downstream assets (their numbers would be wrong);
    the others WARN (a person should look)."""

    name: str
    description: str
    expect: Callable[[Any], list]
    blocking: bool = False
    # Extra metadata a person needs to act, computed on the validated connection: (cursor, config) -> dict.
    explain: Callable[[duckdb.DuckDBPyConnection, Any], dict] | None = None


@dataclass(frozen=True)
class Suite:
    sql: (
        str  # the rows to validate; fixed text, the run's days picked by getvariable('costwatch_start'/'costwatch_end')
    )
    keys: tuple[str, ...]  # columns that identify a failing row in the sample
    gates: tuple[Gate, ...] = field(default_factory=tuple)


def non_negative(*columns: str) -> Callable[[Any], list]:
    return lambda config: [
        gx_classes().gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0) for column in columns
    ]


def unique_keys(column: str) -> Callable[[Any], list]:
    return lambda config: [
        gx_classes().gxe.ExpectColumnValuesToNotBeNull(column=column),
        gx_classes().gxe.ExpectColumnValuesToBeUnique(column=column),
    ]


# The canonical token semantics, wherever tokens are stored (gateway records, provider usage,
# priced requests): counts >= 0, and input_tokens includes cache reads and cache writes.
TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens")


def token_rules(config: Any) -> list:
    return [
        *non_negative(*TOKEN_COLUMNS)(config),
        *(
            gx_classes().gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="input_tokens", column_B=cached, or_equal=True
            )
            for cached in ("cached_input_tokens", "cache_creation_input_tokens")
        ),
    ]


def rows_of_days(relation: str) -> str:
    """The validated rows of a daily relation: the run's days, chosen by session variables."""
    return (
        f"select * from {relation} where day between getvariable('{START_VARIABLE}') and getvariable('{END_VARIABLE}')"  # noqa: S608 (relation: a model or lake table name from code)
    )


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    passed: bool
    rows_validated: int
    unexpected_rows: int
    expectations: list[dict]
    failing_rows: list[dict]
    seconds: float
    extra: dict
    error: str | None = None
    # Days (ISO) of the failing rows GX returned (up to DAY_SAMPLE_ROWS per expectation), when the
    # rows have a `day`; `failing_days_complete`: every failing row was among them, so no other day fails.
    failing_days: list[str] = field(default_factory=list)
    failing_days_complete: bool = True

    @property
    def share(self) -> float:
        return self.unexpected_rows / self.rows_validated if self.rows_validated else 0.0


def day_range(days: DayRange | dt.date | None) -> DayRange | None:
    """A plain date is a one-day range; None (an unpartitioned asset) stays None."""
    return DayRange.of(days) if isinstance(days, dt.date) else days


@contextmanager
def day_cursor(conn: duckdb.DuckDBPyConnection, days: DayRange | dt.date | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A second connection to the run's database with the run's first and last day set as
    session variables (NULL for an unpartitioned asset), closed afterwards."""
    days = day_range(days)
    cursor = conn.cursor()
    try:
        prepare_session(cursor, read_only=True)
        for variable, value in ((START_VARIABLE, days and days.start), (END_VARIABLE, days and days.end)):
            cursor.execute(f"set variable {variable} = $day::date", {"day": value})  # noqa: S608 (the session variable's name, a constant; the day is a parameter)
        yield cursor
    finally:
        cursor.close()


def _context():
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return gx_classes().gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,  # no usage statistics sent from a pipeline
            # GX draws tqdm bars on stderr for every metric batch: noise in run logs.
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )


def validate(
    conn: duckdb.DuckDBPyConnection, suite: Suite, config: Any, days: DayRange | dt.date | None
) -> list[GateResult]:
    """Run the suite's expectations in DuckDB (one GX validation over all of `days`) and judge each gate."""
    started = time.perf_counter()
    with day_cursor(conn, days) as cursor:
        error, results, expectations = None, None, []
        try:
            # No rows, nothing to judge: every gate holds, and GX's per-expectation planning
            # (about 0.1 s a suite) is skipped on the many empty days of an unused source.
            (rows,) = cursor.execute(f"select count(*) from ({suite.sql})").fetchone()  # noqa: S608 (suite SQL: fixed text from a .checks.yml)
        except Exception as exc:  # a gate that cannot be evaluated fails, with the reason
            rows, results, error = 0, [], f"{type(exc).__name__}: {exc}"
        if rows:
            # Built only when there are rows to judge: GX is imported on first use (seconds), so
            # a run whose suites are all empty never imports it.
            expectations = [(gate, expectation) for gate in suite.gates for expectation in gate.expect(config)]
            try:
                results = _run_gx(cursor, suite, [expectation for _, expectation in expectations])
            except Exception as exc:  # a gate that cannot be evaluated fails, with the reason
                results, error = [None] * len(expectations), f"{type(exc).__name__}: {exc}"
        extras = {gate.name: gate.explain(cursor, config) if gate.explain else {} for gate in suite.gates}
    seconds = time.perf_counter() - started
    if results is None and error is None:
        return [GateResult(gate, True, 0, 0, [], [], seconds, extras[gate.name]) for gate in suite.gates]
    return [
        _judge(
            gate,
            [r for (g, _), r in zip(expectations, results, strict=False) if g is gate],
            rows,
            seconds,
            extras[gate.name],
            error,
        )
        for gate in suite.gates
    ]


def _run_gx(cursor: duckdb.DuckDBPyConnection, suite: Suite, expectations: Sequence) -> list:
    """GX's results for `expectations` over the suite's rows. First with `BOOLEAN_ONLY`: GX then
    bundles every expectation's count into a query or two. The expectations that fail (or raise)
    are validated again in `SUMMARY`, which adds the queries that fetch failing values and their
    keys, and so are those with a `row_condition` (only `SUMMARY` says how many rows the condition
    kept): a passing suite, the daily case, costs about a third of the time, and an unconditioned
    passing expectation's metadata is its verdict."""
    import duckdb_engine
    from sqlalchemy.pool import StaticPool

    gx = gx_classes().gx
    context = _context()
    datasource = context.data_sources.add_costwatch_duckdb(
        name="warehouse",
        connection_string="duckdb:///:memory:",  # not opened: every connection is `cursor`
        kwargs={"poolclass": StaticPool, "creator": lambda: duckdb_engine.ConnectionWrapper(cursor)},
    )
    # GX wants a query asset to start with SELECT; a suite's SQL may open with a CTE.
    query = f"select * from ({suite.sql}) as validated"  # noqa: S608 (suite SQL: fixed text from a .checks.yml)
    batch = datasource.add_query_asset("rows", query=query).add_batch_definition_whole_table("all").get_batch()
    results = list(
        batch.validate(
            gx.ExpectationSuite(name="gates", expectations=list(expectations)),
            result_format={"result_format": "BOOLEAN_ONLY"},
        ).results
    )
    again = [
        n
        for n, result in enumerate(results)
        if not result.success
        or _exception_messages(result.exception_info or {})
        or result.expectation_config.kwargs.get("row_condition")
    ]
    if again:
        detailed = batch.validate(
            gx.ExpectationSuite(name="failing", expectations=[expectations[n] for n in again]),
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": DAY_SAMPLE_ROWS,
                "unexpected_index_column_names": list(suite.keys),
                "return_unexpected_index_query": False,
            },
        ).results
        for n, result in zip(again, detailed, strict=True):
            results[n] = result
    return results


def _judge(gate: Gate, results: list, rows: int, seconds: float, extra: dict, error: str | None) -> GateResult:
    """The gate's verdict from its expectations' results over the suite's `rows`. Its rows
    validated: the most any expectation judged, which is `rows` unless a `row_condition` kept fewer
    (GX's `element_count`, given for those)."""
    if error is not None:
        return GateResult(gate, False, 0, 0, [], [], seconds, extra, error, failing_days_complete=False)
    described, failing, errors = [], [], []
    unexpected = 0
    failing_days: set[str] = set()
    complete = True
    judged = []
    for result in results:
        outcome = result.result or {}
        config = result.expectation_config
        judged.append(outcome.get("element_count", 0 if config.kwargs.get("row_condition") else rows))
        errors.extend(_exception_messages(result.exception_info or {}))
        unexpected += outcome.get("unexpected_count") or 0
        described.append(
            json_safe(
                {
                    "expectation": config.type,
                    **{k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")},
                    "success": result.success,
                    **{
                        k: outcome[k]
                        for k in ("unexpected_count", "unexpected_percent", "observed_value")
                        if k in outcome
                    },
                }
            )
        )
        sampled = [json_safe(row) for row in outcome.get("partial_unexpected_index_list") or []]
        failing.extend(sampled[:SAMPLE_ROWS])
        failing_days |= {str(row["day"]) for row in sampled if row.get("day") is not None}
        if not result.success:  # an aggregate expectation, or rows without a day, names no day
            named = "partial_unexpected_index_list" in outcome and all(row.get("day") for row in sampled)
            complete = complete and named and len(sampled) >= (outcome.get("unexpected_count") or 0)
    passed = all(result.success for result in results) and not errors
    return GateResult(
        gate,
        passed,
        max(judged, default=0),
        unexpected,
        described,
        failing[:SAMPLE_ROWS],
        seconds,
        extra,
        "; ".join(dict.fromkeys(errors)) or None,
        sorted(failing_days),
        complete,
    )


def _exception_messages(info: dict) -> list[str]:
    """GX reports an exception either flat or keyed by the metric that raised it."""
    if "raised_exception" in info:
        return [str(info.get("exception_message"))] if info["raised_exception"] else []
    return [message for nested in info.values() if isinstance(nested, dict) for message in _exception_messages(nested)]


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
