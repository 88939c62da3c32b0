"""Great Expectations gates, evaluated inside DuckDB on the warehouse's own connection.

A `Suite` names the rows to validate (fixed SQL text: a day's rows are picked with
`getvariable('costwatch_day')`, set as a parameter, so no value is ever formatted into SQL) and
its `Gate`s: each gate is one Dagster asset check made of one or more GX expectations. Suites are
declared in `sql/**/<relation>.checks.yml` beside what they guard (`quality/checks.py` reads
them). A suite runs as one GX validation, so GX bundles the metrics of all its gates into few
queries, and nothing is loaded into pandas.

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
from typing import Any, Literal

import duckdb
import duckdb_engine
import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from sqlalchemy.pool import StaticPool

from pipelines.models.engine import prepare_session

DAY_VARIABLE = "costwatch_day"
SAMPLE_ROWS = 10


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """GX's SQL engine, reading each result before the connection it came from is released."""

    def execute_query(self, query):
        with self.get_connection() as connection:
            return self._execute_query_with_recovery(connection, query).freeze()()


class DuckDBDatasource(SQLDatasource):
    """A GX SQL datasource over a DuckDB connection the caller owns (`kwargs['creator']`)."""

    type: Literal["costwatch_duckdb"] = "costwatch_duckdb"

    @property
    def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
        return DuckDBExecutionEngine


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
    sql: str  # the rows to validate; fixed text, a day picked by getvariable('costwatch_day')
    keys: tuple[str, ...]  # columns that identify a failing row in the sample
    gates: tuple[Gate, ...] = field(default_factory=tuple)


def non_negative(*columns: str) -> Callable[[Any], list]:
    return lambda config: [gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0) for column in columns]


def unique_keys(column: str) -> Callable[[Any], list]:
    return lambda config: [
        gxe.ExpectColumnValuesToNotBeNull(column=column),
        gxe.ExpectColumnValuesToBeUnique(column=column),
    ]


# The canonical token semantics, wherever tokens are stored (gateway records, provider usage,
# priced requests): counts >= 0, and input_tokens includes cache reads and cache writes.
TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens")


def token_rules(config: Any) -> list:
    return [
        *non_negative(*TOKEN_COLUMNS)(config),
        *(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="input_tokens", column_B=cached, or_equal=True)
            for cached in ("cached_input_tokens", "cache_creation_input_tokens")
        ),
    ]


def rows_of_day(relation: str) -> str:
    """The validated rows of a daily relation: its day, chosen by a session variable."""
    return f"select * from {relation} where day = getvariable('{DAY_VARIABLE}')"  # noqa: S608 (relation: a model or lake table name from code)


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

    @property
    def share(self) -> float:
        return self.unexpected_rows / self.rows_validated if self.rows_validated else 0.0


@contextmanager
def day_cursor(conn: duckdb.DuckDBPyConnection, day: dt.date | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A second connection to the run's database with the day variable set, closed afterwards."""
    cursor = conn.cursor()
    try:
        prepare_session(cursor, read_only=True)
        cursor.execute(f"set variable {DAY_VARIABLE} = $day", {"day": day})  # noqa: S608 (the session variable's name, a constant; the day is a parameter)
        yield cursor
    finally:
        cursor.close()


def _context():
    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,  # no usage statistics sent from a pipeline
            # GX draws tqdm bars on stderr for every metric batch: noise in run logs.
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )


def validate(conn: duckdb.DuckDBPyConnection, suite: Suite, config: Any, day: dt.date | None) -> list[GateResult]:
    """Run the suite's expectations in DuckDB (one GX validation) and judge each gate."""
    expectations = [(gate, expectation) for gate in suite.gates for expectation in gate.expect(config)]
    started = time.perf_counter()
    with day_cursor(conn, day) as cursor:
        error = None
        try:
            # No rows, nothing to judge: every gate holds, and GX's per-expectation planning
            # (about 0.1 s a suite) is skipped on the many empty days of an unused source.
            (rows,) = cursor.execute(f"select count(*) from ({suite.sql})").fetchone()  # noqa: S608 (suite SQL: fixed text from a .checks.yml)
            results = _run_gx(cursor, suite, [expectation for _, expectation in expectations]) if rows else None
        except Exception as exc:  # a gate that cannot be evaluated fails, with the reason
            results, error = [None] * len(expectations), f"{type(exc).__name__}: {exc}"
        extras = {gate.name: gate.explain(cursor, config) if gate.explain else {} for gate in suite.gates}
    seconds = time.perf_counter() - started
    if results is None:
        return [GateResult(gate, True, 0, 0, [], [], seconds, extras[gate.name]) for gate in suite.gates]
    return [
        _judge(
            gate,
            [r for (g, _), r in zip(expectations, results, strict=False) if g is gate],
            suite.keys,
            seconds,
            extras[gate.name],
            error,
        )
        for gate in suite.gates
    ]


def _run_gx(cursor: duckdb.DuckDBPyConnection, suite: Suite, expectations: Sequence) -> list:
    context = _context()
    datasource = context.data_sources.add_costwatch_duckdb(
        name="warehouse",
        connection_string="duckdb:///:memory:",  # not opened: every connection is `cursor`
        kwargs={"poolclass": StaticPool, "creator": lambda: duckdb_engine.ConnectionWrapper(cursor)},
    )
    # GX wants a query asset to start with SELECT; a suite's SQL may open with a CTE.
    query = f"select * from ({suite.sql}) as validated"  # noqa: S608 (suite SQL: fixed text from a .checks.yml)
    batch = datasource.add_query_asset("rows", query=query).add_batch_definition_whole_table("all").get_batch()
    gx_suite = gx.ExpectationSuite(name="gates", expectations=list(expectations))
    validation = batch.validate(
        gx_suite,
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": SAMPLE_ROWS,
            "unexpected_index_column_names": list(suite.keys),
            "return_unexpected_index_query": False,
        },
    )
    return list(validation.results)


def _judge(
    gate: Gate, results: list, keys: tuple[str, ...], seconds: float, extra: dict, error: str | None
) -> GateResult:
    if error is not None:
        return GateResult(gate, False, 0, 0, [], [], seconds, extra, error)
    described, failing, errors = [], [], []
    rows, unexpected = 0, 0
    for result in results:
        outcome = result.result or {}
        config = result.expectation_config
        errors.extend(_exception_messages(result.exception_info or {}))
        rows = max(rows, outcome.get("element_count") or 0)
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
        failing.extend(json_safe(row) for row in outcome.get("partial_unexpected_index_list") or [])
    passed = all(result.success for result in results) and not errors
    return GateResult(
        gate,
        passed,
        rows,
        unexpected,
        described,
        failing[:SAMPLE_ROWS],
        seconds,
        extra,
        "; ".join(dict.fromkeys(errors)) or None,
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
