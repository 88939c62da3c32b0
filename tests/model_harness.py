"""Run one real SQL model on input rows written by hand (SQLMesh's `tests/*.yaml` habit).

`run_model_on(tmp_path, "fct_spend_daily", inputs={...}, day=...)` creates a DuckDB file in a new
folder under `tmp_path`, creates each input relation from its rows, materializes the model with the engine
(`pipelines.models.engine.run_model`, the code the pipeline runs) and returns its output rows as
dicts: the rows of `day` (a date, or a `DayRange` run as one range) for a daily model, every row otherwise.

An input is a list of row dicts, or `{"columns": {name: duckdb type}, "rows": [...]}`. A column
the rows leave out is NULL. A column with no stated type is typed by its name, so money and days
are exact without saying so: `day`, `month`, `*_day`, `*_date`, `period_start`/`period_end` are
DATE; `ts` and `*_at` TIMESTAMP; `*_usd` DECIMAL(18, 6); otherwise by its first non-null value
(bool BOOLEAN, int BIGINT, float DOUBLE, date DATE, str VARCHAR).
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import duckdb

from pipelines.models.engine import DayRange, load_models, run_model

MONEY = "decimal(18, 6)"
_DATE_NAMES = {"day", "month", "period_start", "period_end"}


def column_type(name: str, values: Sequence[object]) -> str:
    if name in _DATE_NAMES or name.endswith(("_day", "_date")):
        return "date"
    if name == "ts" or name.endswith("_at"):
        return "timestamp"
    if name.endswith("_usd"):
        return MONEY
    sample = next((value for value in values if value is not None), None)
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, int):
        return "bigint"
    if isinstance(sample, float | Decimal):
        return "double"
    if isinstance(sample, dt.datetime):
        return "timestamp"
    if isinstance(sample, dt.date):
        return "date"
    return "varchar"


def create_relation(conn: duckdb.DuckDBPyConnection, name: str, spec: Sequence[Mapping] | Mapping) -> None:
    rows = list(spec["rows"] if isinstance(spec, Mapping) else spec)
    stated = dict(spec.get("columns") or {}) if isinstance(spec, Mapping) else {}
    names = list(stated)
    for row in rows:
        names += [column for column in row if column not in names]
    if not names:
        raise ValueError(f"input {name}: state its columns when it has no rows")
    types = {column: stated.get(column) or column_type(column, [row.get(column) for row in rows]) for column in names}
    columns_sql = ", ".join(f'"{column}" {kind}' for column, kind in types.items())
    conn.execute(f"create table {name} ({columns_sql})")  # noqa: S608 (names and types from the test's own input spec)
    if rows:
        # One statement, a list parameter per column zipped by unnest: `executemany` commits each
        # row on its own (thousands of rows took seconds). A Decimal goes in as its text, so DuckDB
        # casts it to the column's DECIMAL exactly.
        columns = [[str(v) if isinstance(v := row.get(column), Decimal) else v for row in rows] for column in names]
        conn.execute(
            f"insert into {name} select {', '.join('unnest(?)' for _ in names)}",  # noqa: S608 (table name from the test's input spec; values are parameters)
            columns,
        )


def run_model_on(
    tmp_path: Path,
    model_name: str,
    inputs: Mapping[str, Sequence[Mapping] | Mapping],
    day: dt.date | DayRange | None = None,
    settings: Mapping[str, object] | None = None,
) -> list[dict]:
    model = load_models()[model_name]
    missing = sorted(set(model.reads) - set(inputs))
    if missing:
        raise ValueError(f"{model_name} reads {missing}: give them as inputs (an empty list needs `columns`)")
    # Each call its own folder: a second run in the same test starts from its own inputs only.
    folder = Path(tempfile.mkdtemp(prefix=f"{model_name}_", dir=tmp_path))
    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
        for name, spec in inputs.items():
            create_relation(conn, name, spec)
        # daily_parquet models write their day's partition under the lake folder and a view over it.
        run_model(conn, model, folder / "lake", day, dict(settings or {}))
        days = DayRange.of(day) if isinstance(day, dt.date) else day
        where = "where day between $start and $end" if model.daily else ""
        conn.execute(
            f"select * from {model.name} {where} order by all",  # noqa: S608 (model name from its file name)
            {"start": days.start, "end": days.end} if model.daily else {},
        )
        names = [description[0] for description in conn.description]
        return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def same_value(expected: object, actual: object, tolerance: float) -> bool:
    """Exact for DECIMAL (compared as decimals, so 105 == 105.000000), integers, text, days;
    within `tolerance` (absolute) for doubles."""
    if expected is None or actual is None:
        return expected is actual
    if isinstance(actual, Decimal):
        return isinstance(expected, int | float | str | Decimal) and Decimal(str(expected)) == actual
    if isinstance(actual, float):
        return isinstance(expected, int | float) and math.isclose(actual, expected, rel_tol=0, abs_tol=tolerance)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return expected is actual
    return expected == actual


def unmatched_rows(expected: Sequence[Mapping], actual: Sequence[Mapping], tolerance: float) -> list[str]:
    """What keeps `actual` from being `expected`: each expected row (a subset of the columns)
    must match its own actual row, and no actual row may be left over."""
    problems = []
    left = list(actual)
    columns = set(actual[0]) if actual else set()
    for want in expected:
        unknown = sorted(set(want) - columns)
        if actual and unknown:
            problems.append(f"expected columns the model does not have: {unknown}")
            continue
        match = next(
            (row for row in left if all(same_value(value, row[column], tolerance) for column, value in want.items())),
            None,
        )
        if match is None:
            problems.append(f"no output row matches {dict(want)}")
        else:
            left.remove(match)
    problems += [f"unexpected output row {row}" for row in left]
    return problems
