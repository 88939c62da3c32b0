"""Warehouse relations beside the SQL models: tables written whole from rows Python holds (the
config's settings), and what a materialization reports about a model's rows (money totals, a
preview). The SQL here is about one relation's own rows, never analysis."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from pipelines.lake.partitions import whole_file, whole_view_sql, write_file
from pipelines.lake.store import LakePath
from pipelines.models.engine import DayRange, SqlModel, comment_relation


def replace_table(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    rows: pa.Table,
    description: str,
    columns: dict[str, str] | None = None,
    *,
    lake_dir: LakePath | None = None,
) -> int:
    """`name` becomes exactly `rows` (schema included), documented (`columns`: the table's own
    column texts, over the glossary's). Returns the row count.

    `lake_dir` (a distributed run: `WarehouseResource.tables_lake`): the rows become the dataset's
    one lake file, atomically, and `name` a view over it, so runs in other processes read them."""
    staged = f"_{name}_rows"
    conn.register(staged, rows)
    try:
        if lake_dir is None:
            conn.execute(f"create or replace table {name} as select * from {staged}")  # noqa: S608 (a settings table name from code)
        else:
            write_file(conn, f"select * from {staged}", whole_file(lake_dir, name))  # noqa: S608 (a settings table name from code)
            conn.execute(whole_view_sql(lake_dir, name))
    finally:
        conn.unregister(staged)
    comment_relation(conn, name, "table" if lake_dir is None else "view", description, columns)
    return rows.num_rows


def _of_days(model: SqlModel, days: DayRange | dt.date | None) -> tuple[str, dict]:
    if not model.daily:
        return "", {}
    if isinstance(days, dt.date):
        days = DayRange.of(days)
    return "where day between $start and $end", {"start": days.start, "end": days.end}


def _money_columns(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> list[str]:
    if not model.additive:  # its header says the rows' money must not be summed
        return []
    return [
        name
        for (name,) in conn.execute(
            # A rate (`cost_per_1k_requests_usd`) is money per unit: its sum means nothing.
            "select column_name from information_schema.columns where table_name = $name"
            " and column_name like '%\\_usd' escape '\\' and column_name not like '%\\_per\\_%' escape '\\'",
            {"name": model.name},
        ).fetchall()
    ]


def column_schema(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> list[tuple[str, str, str | None]]:
    """(name, DuckDB type, comment) of each column of the model's relation, in order: what the
    Dagster UI shows as the asset's columns."""
    return conn.execute(
        "select column_name, data_type, comment from duckdb_columns() where table_name = $name order by column_index",
        {"name": model.name},
    ).fetchall()


def money_totals(conn: duckdb.DuckDBPyConnection, model: SqlModel, days: DayRange | dt.date | None) -> dict[str, float]:
    """`total_<column>` for each `*_usd` column of the model's rows (of `days` when daily), in USD
    to the cent: the UI shows dollars and cents, and plots them run after run (a number, not text)."""
    money = _money_columns(conn, model)
    if not money:
        return {}
    where, params = _of_days(model, days)
    sums = ", ".join(f"sum({column})::double" for column in money)
    values = conn.execute(
        f"select {sums} from {model.name} {where}",  # noqa: S608 (model name and its own money columns)
        params,
    ).fetchone()
    return {f"total_{column}": round(value or 0.0, 2) for column, value in zip(money, values, strict=True)}


def daily_totals(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, days: DayRange
) -> dict[dt.date, dict[str, float | int]]:
    """Per day of `days` (a daily model): `rows` and `total_<column>` for each `*_usd` column, in
    USD, in one grouped query: a range run's progress, day by day. A day without rows is absent
    (the caller fills 0)."""
    money = _money_columns(conn, model)
    sums = "".join(f", sum({column})::double" for column in money)
    rows = conn.execute(
        f"select day, count(*){sums} from {model.name} where day between $start and $end group by day",  # noqa: S608 (model name and its own money columns)
        {"start": days.start, "end": days.end},
    ).fetchall()
    return {
        day: {
            "rows": count,
            **{f"total_{column}": round(value or 0.0, 6) for column, value in zip(money, values, strict=True)},
        }
        for day, count, *values in rows
    }


def preview(conn: duckdb.DuckDBPyConnection, model: SqlModel, days: DayRange | dt.date | None, limit: int = 10):
    """(columns, rows): the first `limit` rows of the model (of `days` when daily)."""
    where, params = _of_days(model, days)
    rows = conn.execute(
        f"select * from {model.name} {where} limit {int(limit)}",  # noqa: S608 (model name from the file name; an int)
        params,
    ).fetchall()
    return [description[0] for description in conn.description], rows
