"""SQL models: one `sql/**/<name>.sql` file = one warehouse relation = one Dagster asset.

A model file opens with a block comment: its first line says what the table is; the rest is
`key: value` lines and the column documentation that becomes `COMMENT ON`:

  materialized  one of the materializations below
  grain         the columns that identify one row, comma-separated (`day, feature, user_id`);
                each must be a column the query selects; optional for a view of source rows
  lookback      daily models only, required: the history one output day reads, so `run --changed`
                knows which later days read a changed one. `N`: the N days before it (0: only the
                day itself); `month`: month-to-date, from the 1st of its month; both, as
                `month, N` (a month-to-date total beside an N-day run rate). The query reads N as
                `$lookback_days`, so the window is written once
  renamed       daily tables only, optional: `new <- old, ...`, columns renamed since a warehouse
                was written; the next run renames them in place (their history kept), so a
                rename is not a dropped column
  memory        daily tables only, optional: `per_request` for a model that reads one row per request
                (the savings levers over int_billed_calls): it runs under PER_REQUEST_MEMORY_LIMIT and
                spills past it, as a daily_parquet model always does
  additive      optional, default true: `false` when the rows' `*_usd` columns must not be added
                up (findings of different bases): no `total_*` in the asset's metadata

A daily model computes a range of days in one statement: it reads `$start` and `$end` (dates,
inclusive; a one-day run has start = end) and returns rows for those days only, each day's rows
exactly what a run of that day alone returns. A model with a window therefore gives every output
day its own window (a `days` CTE of `generate_series($start, $end)` joined to the history, or
window functions over days), never one window for the whole range.

Dependencies are the relations the query reads, found by parsing it with sqlglot (CTE names
excluded), so they cannot drift from the SQL.

Materializations:
  view           `create or replace view` (staging: renames, casts, defaults)
  table          rebuilt whole (small reference tables)
  daily_parquet  the range's rows computed once, then each day's rows written as that day's lake
                 partition, atomically (a day without rows gets an empty one), with a view over all
                 days: per-request facts never accumulate in DuckDB
  daily_table    the range's rows replace those days' rows of a warehouse table in one transaction
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import sqlglot
import yaml
from sqlglot import exp

from pipelines.lake.partitions import (
    dataset_view_sql,
    lake_datasets,
    sql_string,
    whole_file,
    whole_view_sql,
    write_file,
    write_partition,
)
from pipelines.lake.store import LakePath, lake_prefix, register_lake_filesystem
from pipelines.resources.config import CostwatchConfig, pseudonym_key
from pipelines.resources.files import sql_dir

SQL_DIR = sql_dir()
GLOSSARY = SQL_DIR / "columns.yml"
MACROS_DIR = SQL_DIR / "macros"  # `create or replace macro` files, run before any model
REPORTS_DIR = SQL_DIR / "reports"  # read-only queries the CLI prints (not models: nothing is materialized)
MATERIALIZATIONS = ("view", "table", "daily_parquet", "daily_table")
DAILY = ("daily_parquet", "daily_table")


@dataclass(frozen=True)
class DayRange:
    """The UTC days one run of a daily model computes: `start` through `end`, inclusive."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a day range ends on or after its start: {self.start} .. {self.end}")

    @classmethod
    def of(cls, day: dt.date) -> DayRange:
        return cls(day, day)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=offset) for offset in range((self.end - self.start).days + 1)]

    def __str__(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class Lookback:
    """The history one day's run of a daily model reads: `days` before it, and month-to-date."""

    days: int = 0
    month_to_date: bool = False

    @property
    def days_back(self) -> int:
        """The most days before an output day it can read: `days`, or 30 for month-to-date (the 31st)."""
        return max(self.days, 30 if self.month_to_date else 0)

    def last_day_reading(self, day: dt.date) -> dt.date:
        """The latest day whose run reads `day`'s rows."""
        last = day + dt.timedelta(days=self.days)
        if self.month_to_date:
            last = max(last, day.replace(day=calendar.monthrange(day.year, day.month)[1]))
        return last


def stages(models: Mapping[str, SqlModel]) -> dict[str, int]:
    """Each model's stage: how many times, on the way from the inputs to it, a model reads other
    days than its own. A stage-0 model of day D reads only day D; a daily model with a look-back
    reads days before D, and a `table` model every day, of what it reads, so it comes a stage after
    it. Runs of different days at once (distributed mode) are safe within a stage: every day of a
    stage is complete before any day of the next one starts. Relations that are not models
    (ingest, settings) are stage 0; a view passes its input's days through."""
    found: dict[str, int] = {}

    def stage(name: str) -> int:
        if name not in found:
            model = models.get(name)
            found[name] = (
                0
                if model is None
                else max((stage(read) + _crosses_days(model, models.get(read)) for read in model.reads), default=0)
            )
        return found[name]

    for name in models:
        stage(name)
    return {name: found[name] for name in models}


def _crosses_days(model: SqlModel, read: SqlModel | None) -> int:
    """1 when `model` reads other days of `read` than its own day (`read` None: an ingest or settings
    relation, daily or unchanging alike)."""
    by_day = read is None or read.daily or read.materialized == "view"
    if model.materialized == "table":
        return int(by_day)
    return int(bool(model.daily and model.lookback and model.lookback.days_back and by_day))


def widest_lookback(models: Iterable[SqlModel]) -> Lookback:
    """The most history any of the daily models reads: the largest `days`, and month-to-date if one reads it."""
    windows = [model.lookback for model in models if model.lookback is not None]
    return Lookback(max((w.days for w in windows), default=0), any(w.month_to_date for w in windows))


@dataclass(frozen=True)
class SqlModel:
    name: str
    layer: str  # staging / intermediate / marts: the folder it lives in
    path: Path
    query: str  # the select, with `$start` and `$end` (the days to compute) where daily
    description: str
    materialized: str
    columns: dict[str, str]
    reads: tuple[str, ...]  # relations the query reads (models or lake/source tables)
    parameters: tuple[str, ...]  # `$name` parameters: `start`, `end`, `lookback_days`, or settings from the config
    grain: tuple[str, ...] = ()  # the columns that identify one row
    lookback: Lookback | None = None  # daily models: the history a day's run reads
    renamed: tuple[tuple[str, str], ...] = ()  # (old, new) column names: the table's columns follow
    additive: bool = True  # whether the rows' money columns add up to a meaningful total
    per_request: bool = False  # runs under PER_REQUEST_MEMORY_LIMIT (daily_parquet, or `memory: per_request`)

    @property
    def daily(self) -> bool:
        return self.materialized in DAILY


_HEADER = re.compile(r"\A\s*/\*(?P<body>.*?)\*/", re.S)


def parse_model(path: Path) -> SqlModel:
    text = path.read_text(encoding="utf-8")
    header = _HEADER.match(text)
    if not header:
        raise ValueError(f"{path}: a model must open with a /* description */ block comment")
    first_line, _, rest = header.group("body").strip().partition("\n")
    meta, columns = _header_fields(rest)
    materialized = meta.get("materialized")
    if materialized not in MATERIALIZATIONS:
        raise ValueError(f"{path}: materialized must be one of {MATERIALIZATIONS}, got {materialized!r}")
    query = text[header.end() :].strip().rstrip(";")
    parameters = tuple(sorted(set(re.findall(r"\$([a-z_]+)", query))))
    if materialized in DAILY and not {"start", "end"} <= set(parameters):
        raise ValueError(f"{path}: a daily model must filter its input with $start and $end (the days it computes)")
    if materialized in DAILY and "day" in parameters:
        raise ValueError(f"{path}: $day is gone: a daily model computes the days $start through $end")
    if materialized == "view" and parameters:
        raise ValueError(f"{path}: a view cannot take parameters ({parameters}); make it a table")
    tree = _parse(query)  # once: sqlglot is the slowest part of loading the definitions
    grain = _grain(path, meta.get("grain"), tree)
    if not grain and materialized != "view":  # a view may pass source rows through, keyed by nothing it selects
        raise ValueError(f"{path}: declare `grain:`, the columns that identify one row (grain: day, feature)")
    if materialized in DAILY:
        if "lookback" not in meta:
            raise ValueError(
                f"{path}: a daily model must declare `lookback:` (days before each day it reads: 0, N, month or month, N)"
            )
        lookback = _lookback(path, meta["lookback"])
    elif "lookback" in meta:
        raise ValueError(f"{path}: lookback: only a daily model reads a window of days; remove it")
    else:
        lookback = None
    renamed = _renamed(path, meta.get("renamed"), tree, materialized)
    if meta.get("memory", "per_request") != "per_request" or ("memory" in meta and materialized != "daily_table"):
        raise ValueError(f"{path}: memory: only `memory: per_request` on a daily table; remove it or fix it")
    if meta.get("additive", "true") not in ("true", "false"):
        raise ValueError(f"{path}: additive: write true or false, got {meta['additive']!r}")
    return SqlModel(
        name=path.stem,
        layer=path.parent.name,
        path=path,
        query=query,
        description=first_line.strip(),
        materialized=materialized,
        columns=columns,
        reads=tables_read(tree),
        parameters=parameters,
        grain=grain,
        lookback=lookback,
        renamed=renamed,
        additive=meta.get("additive", "true") == "true",
        per_request=materialized == "daily_parquet" or "memory" in meta,
    )


def _renamed(path: Path, text: str | None, tree: exp.Expression, materialized: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    if materialized != "daily_table":
        raise ValueError(f"{path}: renamed: only a daily table keeps rows between runs; remove it")
    pairs = []
    for pair in text.split(","):
        new, arrow, old = (part.strip() for part in pair.partition("<-"))
        if not (arrow and new and old):
            raise ValueError(f"{path}: renamed: write `new_name <- old_name`, comma-separated, got {pair.strip()!r}")
        pairs.append((old, new))
    missing = [new for _, new in pairs if new not in (_selected_columns(tree) or {new})]
    if missing:
        raise ValueError(f"{path}: renamed: {missing} are not columns the query selects")
    return tuple(pairs)


def _grain(path: Path, text: str | None, tree: exp.Expression) -> tuple[str, ...]:
    columns = tuple(column.strip() for column in (text or "").split(",") if column.strip())
    selected = _selected_columns(tree)
    missing = [column for column in columns if selected is not None and column not in selected]
    if missing:
        raise ValueError(f"{path}: grain: {missing} are not columns the query selects")
    return columns


def _selected_columns(tree: exp.Expression) -> set[str] | None:
    """The output column names, or None when a `*` hides them."""
    names = tree.named_selects
    return None if "*" in names else set(names)


def _lookback(path: Path, text: str) -> Lookback:
    parts = [part.strip() for part in text.split(",")]
    numbers = [int(part) for part in parts if part.isdigit()]
    if not parts or len(parts) != len(set(parts)) or len(numbers) > 1 or set(parts) - {"month", *map(str, numbers)}:
        raise ValueError(f"{path}: lookback: {text!r} is not N (days before each day), month, or month, N")
    return Lookback(numbers[0] if numbers else 0, "month" in parts)


def _header_fields(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """`key: value` lines; lines indented under `columns:` document one column each. Not YAML:
    a column's text is prose and may hold colons."""
    meta: dict[str, str] = {}
    columns: dict[str, str] = {}
    in_columns = False
    for line in text.splitlines():
        if not line.strip():
            continue
        key, _, value = line.strip().partition(":")
        if line[0].isspace() and in_columns:
            columns[key.strip()] = value.strip()
        else:
            in_columns = key.strip() == "columns"
            meta[key.strip()] = value.strip()
    return meta, columns


def _parse(query: str) -> exp.Expression:
    return sqlglot.parse_one(re.sub(r"\$[a-z_]+", "NULL", query), read="duckdb")


def tables_read(query: str | exp.Expression) -> tuple[str, ...]:
    """Relations a query (its text, or its parsed tree) reads, CTE names excluded. A call of one of
    the project's table macros (`from price_calls(...)`) reads what the macro's body reads."""
    tree = _parse(query) if isinstance(query, str) else query
    names, functions = _relations(tree)
    macros = table_macro_reads()
    return tuple(sorted(names.union(*(macros.get(function, ()) for function in functions))))


def _relations(tree: exp.Expression) -> tuple[set[str], set[str]]:
    """The relations a tree reads (CTE names excluded) and the table functions it calls."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables = list(tree.find_all(exp.Table))
    names = {table.name for table in tables if table.name and not isinstance(table.this, exp.Anonymous)}
    functions = {table.this.name.lower() for table in tables if isinstance(table.this, exp.Anonymous)}
    return names - ctes, functions


@cache
def table_macro_reads() -> dict[str, tuple[str, ...]]:
    """The project's table macros (`create macro name(...) as table ...` in sql/macros) and the
    relations each one's body reads."""
    reads = {}
    for path in sorted(MACROS_DIR.glob("*.sql")):
        tree = _parse(path.read_text(encoding="utf-8"))
        if isinstance(tree, exp.Create) and isinstance(tree.expression, exp.Query):
            reads[tree.this.this.name.lower()] = tuple(sorted(_relations(tree.expression)[0]))
    return reads


@cache
def load_models(sql_dir: Path = SQL_DIR) -> dict[str, SqlModel]:
    models = {}
    for path in sorted(sql_dir.rglob("*.sql")):
        if MACROS_DIR in path.parents or REPORTS_DIR in path.parents:
            continue
        model = parse_model(path)
        if model.name in models:
            raise ValueError(f"two SQL models are named {model.name}: {models[model.name].path} and {path}")
        models[model.name] = model
    return models


# DuckDB's memory while a model over per-request rows runs (a daily_parquet model such as
# fct_requests, and a daily table declaring `memory: per_request`: the savings levers): it
# grows with requests per day, so it spills to `<warehouse>.tmp` past this and a 10M-request day
# stays under ~2 GiB with Python and Dagster beside it (bench/bench.py measures it). Models over
# daily aggregates keep DuckDB's default: their windows over a year of history do not spill.
PER_REQUEST_MEMORY_LIMIT = "1GB"


@contextmanager
def memory_capped(conn: duckdb.DuckDBPyConnection, capped: bool = True) -> Iterator[None]:
    """PER_REQUEST_MEMORY_LIMIT while the block runs (when `capped`), then the setting before."""
    if not capped:
        yield
        return
    (memory_limit,) = conn.execute("select current_setting('memory_limit')").fetchone()
    conn.execute(f"set memory_limit = '{PER_REQUEST_MEMORY_LIMIT}'")  # noqa: S608 (a constant; SET takes no parameters)
    try:
        yield
    finally:
        conn.execute(f"set memory_limit = {sql_string(memory_limit)}")  # noqa: S608 (DuckDB's own setting, quoted; SET takes no parameters)


def prepare_session(conn: duckdb.DuckDBPyConnection, *, read_only: bool = False, lake: LakePath | None = None) -> None:
    """Settings every connection to the warehouse needs, writers and readers alike.

    - An object-store `lake` (`storage.lake: s3://...`): its filesystem registered, so the views
      over its partitions read (`pipelines.lake.store.register_lake_filesystem`).
    - UTC: a timestamp without an offset is UTC, and `::date` is the UTC day.
    - DuckDB 2.0's `window_self_join` optimizer rewrites `sum(x) over (partition by k)` into a
      self-join whose second scan of a hive-partitioned Parquet view loses the `day = ...`
      filter, silently summing every day (tests/test_sqlmodels.py pins this). It is turned off.
    - The project's macros (sql/macros), which views and models call; a writer (re)creates them
      in the warehouse, where a read-only reader finds them.
    """
    conn.execute("set TimeZone = 'UTC'")
    conn.execute("set disabled_optimizers = 'window_self_join'")
    register_lake_filesystem(conn, lake)
    if read_only:
        return
    # Persisted (no TEMP): analysts' read-only sessions call them. They hold code only; a secret
    # such as the pseudonym key reaches SQL as a parameter of the statement that uses it. Written
    # only when the warehouse's differ from sql/macros (a new warehouse, or new code): a run opens
    # ~90 connections, and creating them all costs ~15 ms a time.
    texts, digest = _macros()
    try:
        # fetchall: no result left open. The name is our constant.
        ((written,),) = conn.execute(f"select {MACROS_DIGEST}()").fetchall()  # noqa: S608 (our constant macro name)
    except duckdb.CatalogException:  # none written yet
        written = None
    if written != digest:
        for text in texts:
            conn.execute(text)
        conn.execute(f"create or replace macro {MACROS_DIGEST}() as '{digest}'")  # noqa: S608 (our constant name; a hex digest)


# A macro returning the digest of the macros the warehouse holds: which sql/macros they came from.
MACROS_DIGEST = "costwatch_macros_digest"


@cache
def _macros() -> tuple[tuple[str, ...], str]:
    """The texts of sql/macros/*.sql, in name order, and their digest."""
    texts = tuple(path.read_text(encoding="utf-8") for path in sorted(MACROS_DIR.glob("*.sql")))
    return texts, hashlib.sha256("\0".join(texts).encode()).hexdigest()[:32]


@contextmanager
def connect_read_only(warehouse: Path, lake_dir: LakePath) -> Iterator[duckdb.DuckDBPyConnection]:
    """An analyst's connection: the warehouse attached read-only, files readable in the lake only.

    - `read_only`: no statement can change the warehouse.
    - File access is limited to `lake_dir` (its views read Parquet there), so a query cannot read
      other files, write them with `COPY ... TO` or `EXPORT`, attach databases or load extensions.
      DuckDB lets an allowed folder be written too: `costwatch query` also refuses statements
      other than SELECT, so nothing writes into the lake.
    - DuckDB allows its temp directory too (default `.tmp` under the working directory, where
      other files may sit): the connection spills to a private, empty folder of its own instead,
      removed when it closes.
    - `lock_configuration`: a query cannot lift those limits with SET.
    The settings apply to the whole database instance, so the warehouse is attached to a private
    in-memory instance rather than opened directly: other readers in the process keep theirs.
    """
    spill = Path(tempfile.mkdtemp(prefix="costwatch-reader-"))
    conn = duckdb.connect(":memory:", config={"temp_directory": str(spill)})
    try:
        conn.execute("attach $path as warehouse (read_only)", {"path": str(warehouse)})
        conn.execute("use warehouse")
        prepare_session(conn, read_only=True, lake=lake_dir)
        conn.execute("set allowed_directories = $folders", {"folders": [lake_prefix(lake_dir)]})
        conn.execute("set enable_external_access = false")
        conn.execute("set lock_configuration = true")
        yield conn
    finally:
        conn.close()
        shutil.rmtree(spill, ignore_errors=True)


@contextmanager
def interrupt_after(conn: duckdb.DuckDBPyConnection, seconds: float | None) -> Iterator[None]:
    """Interrupt what `conn` runs once `seconds` have passed (None or 0: no limit): a runaway
    query ends with duckdb.InterruptException instead of running on."""
    if not seconds:
        yield
        return
    timer = threading.Timer(seconds, conn.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


# Pseudonyms are `u_` + the first 24 hex digits (96 bits) of HMAC-SHA256(key, user id as UTF-8),
# computed in sql/marts/fct_requests.sql: unique in practice (a collision among a million users
# has odds near 1e-17) and short enough to read in a table.
_SHA256_BLOCK_BYTES = 64


def pseudonym_parameters(config: CostwatchConfig, environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """`$pseudonymise_user_id` and the HMAC key pads SQL models take as parameters.

    HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m)), K' the key padded to the block size
    (hashed first when longer). The pads are computed here so DuckDB, which has sha256 but no
    hmac, finishes the hash in SQL (the `hmac_sha256` macro) without the key in any SQL text.
    Off: both pads are NULL and the models keep the user id.
    """
    key = pseudonym_key(config, environ)
    if key is None:
        return {"pseudonymise_user_id": False, "user_key_inner_pad": None, "user_key_outer_pad": None}
    block = (hashlib.sha256(key).digest() if len(key) > _SHA256_BLOCK_BYTES else key).ljust(_SHA256_BLOCK_BYTES, b"\0")
    return {
        "pseudonymise_user_id": True,
        "user_key_inner_pad": bytes(byte ^ 0x36 for byte in block),
        "user_key_outer_pad": bytes(byte ^ 0x5C for byte in block),
    }


def run_model(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    lake_dir: LakePath,
    days: DayRange | dt.date | None,
    settings: dict[str, object] | None = None,
    *,
    in_lake: bool = False,
) -> int:
    """Materialize one model (for the days `days` covers when daily; a date is a one-day range).
    `settings` are config values the SQL reads as `$name` parameters (never formatted into the
    text). Returns the rows written (over the whole range).

    `in_lake` (distributed mode, a run's scratch warehouse): nothing is kept in the session's
    database. A `daily_table` is written as lake partitions (as a `daily_parquet` model is) and a
    `table` as one whole file `lake/<name>/data.parquet`, each with its view: runs of other days,
    in other processes, read them from the lake."""
    prepare_session(conn, lake=lake_dir)
    if isinstance(days, dt.date):
        days = DayRange.of(days)
    # `$lookback_days`: the header's `lookback`, so a model's window is stated once.
    lookback_days = model.lookback.days if model.lookback else None
    available = {
        **(settings or {}),
        "start": days.start if days else None,
        "end": days.end if days else None,
        "lookback_days": lookback_days,
    }
    missing = [name for name in model.parameters if name not in available]
    if missing:
        raise ValueError(f"{model.path}: no setting for parameter(s) {missing}")
    params = {name: available[name] for name in model.parameters}
    if model.materialized == "view":
        conn.execute(f"create or replace view {model.name} as {model.query}")  # noqa: S608 (model name and the model's own SQL file)
        _comment(conn, model, "view")
        return conn.execute(f"select count(*) from {model.name}").fetchone()[0]  # noqa: S608 (model name from the SQL file name)
    if model.materialized == "table" and in_lake:
        rows_table = f"_{model.name}_rows"
        conn.execute(f"create or replace temp table {rows_table} as {model.query}", params)  # noqa: S608 (model name and the model's own SQL file)
        try:
            rows = write_file(
                conn,
                f"select *{_as_warehouse_types(conn, rows_table, model)} from {rows_table}",  # noqa: S608 (a temp table named from the model)
                whole_file(lake_dir, model.name),
            )
        finally:
            conn.execute(f"drop table if exists {rows_table}")  # noqa: S608 (a temp table named from the model)
        conn.execute(whole_view_sql(lake_dir, model.name))
        return rows  # undocumented: the run's database is deleted after it; the published catalog documents it
    if model.materialized == "table":
        conn.execute(f"create or replace table {model.name} as {model.query}", params)  # noqa: S608 (model name and the model's own SQL file)
        _comment(conn, model, "table")
        return conn.execute(f"select count(*) from {model.name}").fetchone()[0]  # noqa: S608 (model name from the SQL file name)
    if days is None:
        raise ValueError(f"{model.name} is daily: run it for a day or a DayRange")
    if model.materialized == "daily_parquet" or in_lake:
        rows = _write_daily_partitions(conn, model, lake_dir, days, params)
        conn.execute(dataset_view_sql(lake_dir, model.name, day_first=model.materialized == "daily_table"))
        if not in_lake:  # a scratch run's database is deleted after it; the published catalog documents it
            _comment(conn, model, "view")
        return rows
    conn.execute("begin transaction")
    try:
        # Planning a model's query costs up to ~50 ms (the savings marts): planned once here, either
        # to create the table or to bring an existing one's columns in line.
        exists = conn.execute(
            "select table_name from duckdb_tables() where table_name = $name and not temporary"
            " and database_name = current_database() and schema_name = current_schema()",
            {"name": model.name},
        ).fetchall()
        if exists:
            _add_new_columns(conn, model, params)
        else:
            conn.execute(f"create table {model.name} as select * from ({model.query}) where false", params)  # noqa: S608 (model name and the model's own SQL file)
        conn.execute(
            f"delete from {model.name} where day between $start and $end",  # noqa: S608 (model name from the SQL file name)
            {"start": days.start, "end": days.end},
        )
        with memory_capped(conn, model.per_request):
            (inserted,) = conn.execute(f"insert into {model.name} by name {model.query}", params).fetchone()  # noqa: S608 (model name and the model's own SQL file)
        (in_range,) = conn.execute(
            f"select count(*) from {model.name} where day between $start and $end",  # noqa: S608 (model name from the SQL file name)
            {"start": days.start, "end": days.end},
        ).fetchone()
        if inserted != in_range:
            # Counted, not searched for: a scan of the whole table would grow with history.
            raise ValueError(f"{model.name}: {inserted - in_range} row(s) outside the days run ({days}); {STRAY_FIX}")
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    _comment(conn, model, "table")
    return in_range


def _write_daily_partitions(
    conn: duckdb.DuckDBPyConnection, model: SqlModel, lake_dir: LakePath, days: DayRange, params: dict
) -> int:
    """The range's rows computed by one statement into a temp table, then each day's rows written
    as its partition (atomically, by `write_partition`): the query never runs once per day. A day
    without rows still gets its (empty) partition, so re-running an emptied day replaces it."""
    rows_table = f"_{model.name}_range"
    with memory_capped(conn, model.per_request):
        try:
            conn.execute(f"create or replace temp table {rows_table} as {model.query}", params)  # noqa: S608 (model name and the model's own SQL file)
            _refuse_days_outside(conn, rows_table, days)
            day_rows = f"select * exclude (day){_as_warehouse_types(conn, rows_table, model)} from {rows_table}"  # noqa: S608 (a temp table named from the model)
            # The rows keep the query's order (fct_requests: by ts, so by day): each day's filter
            # below reads only its own row groups.
            return sum(
                write_partition(
                    conn,
                    f"{day_rows} where day = $day",  # noqa: S608 (the select above, from code)
                    lake_dir,
                    model.name,
                    day,
                    {"day": day},
                )
                for day in days.days
            )
        finally:
            conn.execute(f"drop table if exists {rows_table}")  # noqa: S608 (a temp table named from the model)


def _as_warehouse_types(conn: duckdb.DuckDBPyConnection, relation: str, model: SqlModel) -> str:
    """A `replace (...)` clause that keeps a warehouse model's integer sums integers in the lake
    (distributed mode): DuckDB's `sum` of integers is a HUGEINT, which Parquet has no type for and
    DuckDB writes as a DOUBLE, so a count read back would be a float (`format('{:d}')` fails on it).
    As a BIGINT it reads back as the warehouse table holds it; one past its range fails the write.
    Nothing for a `daily_parquet` model, whose lake types are its own since it was written."""
    if model.materialized == "daily_parquet":
        return ""
    wide = [
        name
        for name, kind, *_ in conn.execute(f"describe {relation}").fetchall()  # noqa: S608 (a temp table named from the model)
        if kind in ("HUGEINT", "UHUGEINT")
    ]
    return f" replace ({', '.join(f'{_quoted(name)}::bigint as {_quoted(name)}' for name in wide)})" if wide else ""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


STRAY_FIX = "filter the input by $start and $end"


def _refuse_days_outside(conn: duckdb.DuckDBPyConnection, relation: str, days: DayRange) -> None:
    """A daily model returns rows of its range only: a row of another day would be lost from the
    lake (a daily_table's rows are counted instead: it would land beside that day's rows)."""
    (stray,) = conn.execute(
        f"select count(*) from {relation} where day is null or day not between $start and $end",  # noqa: S608 (a relation named from the model)
        {"start": days.start, "end": days.end},
    ).fetchone()
    if stray:
        raise ValueError(f"{relation}: {stray} row(s) outside the days run ({days}); {STRAY_FIX}")


def _add_new_columns(conn: duckdb.DuckDBPyConnection, model: SqlModel, params: dict) -> None:
    """A model that gained a column adds it to its table (NULL on days not re-run since); one that
    lost a column is an error, because silently keeping stale data is worse. A column whose type
    changed takes the model's type (e.g. money widened from DECIMAL(18, 6) to the requests' scale):
    inserting into the old type would cast every new day back to it; days not re-run keep their values."""
    existing = {name: kind for name, kind, *_ in conn.execute(f"describe {model.name}").fetchall()}  # noqa: S608 (model name from the SQL file name)
    for old, new in model.renamed:  # the header's `renamed:`: the column and its history move together
        if old in existing and new not in existing:
            conn.execute(f'alter table {model.name} rename column "{old}" to "{new}"')  # noqa: S608 (model name; names from its header)
            existing[new] = existing.pop(old)
    wanted = {name: kind for name, kind, *_ in conn.execute(f"describe ({model.query})", params).fetchall()}  # noqa: S608 (the model's own SQL file)
    gone = sorted(set(existing) - set(wanted))
    if gone:
        raise ValueError(
            f"{model.name}: columns {gone} are no longer in {model.path.name}; drop the table "
            f"(costwatch query cannot, it is read-only: use duckdb) and re-run every day"
        )
    for name, kind in wanted.items():
        if name not in existing:
            conn.execute(f'alter table {model.name} add column "{name}" {kind}')  # noqa: S608 (model name; column name and type from DuckDB's describe of the model's query)
        elif existing[name] != kind:
            conn.execute(f'alter table {model.name} alter column "{name}" type {kind}')  # noqa: S608 (model name; column name and type from DuckDB's describe of the model's query)


@cache
def column_glossary(path: Path = GLOSSARY) -> dict[str, str]:
    return {str(key): str(value) for key, value in yaml.safe_load(path.read_text(encoding="utf-8")).items()}


def comment_relation(
    conn: duckdb.DuckDBPyConnection, name: str, kind: str, description: str, columns: dict[str, str] | None = None
) -> None:
    """COMMENT ON the relation and each of its columns: the model's own text, else the glossary's.
    A column documented nowhere is an error, so the warehouse never grows an unexplained column.
    Only comments that differ from the warehouse's are written, in one transaction: a relation
    kept from the last run (a daily table) needs none, a replaced one one commit, not one per column."""
    texts = {**column_glossary(), **(columns or {})}
    existing = conn.execute(
        "select column_name, comment from duckdb_columns() where table_name = $name order by column_index",
        {"name": name},
    ).fetchall()
    undocumented = [column for column, _ in existing if column not in texts]
    if undocumented:
        raise ValueError(f"{name}: document {undocumented} in the model header or sql/columns.yml")
    found = conn.execute(
        "select comment from duckdb_tables() where table_name = $name"
        " union all select comment from duckdb_views() where view_name = $name",
        {"name": name},
    ).fetchone()
    current = found[0] if found else None
    # COMMENT ON takes a literal, not a parameter; the texts come from our own files.
    statements = [f"comment on {kind} {name} is {sql_string(description)}"] if current != description else []  # noqa: S608 (kind: table or view; our relation name; text escaped by sql_string)
    statements += [
        f"comment on column {name}.{column} is {sql_string(texts[column])}"  # noqa: S608 (our relation and its columns from duckdb_columns; text escaped by sql_string)
        for column, comment in existing
        if comment != texts[column]
    ]
    if not statements:
        return
    conn.execute("begin transaction")
    try:
        for statement in statements:
            conn.execute(statement)
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise


def publish_lake_views(
    conn: duckdb.DuckDBPyConnection, lake_dir: LakePath, daily: dict[str, str], whole: dict[str, str] | None = None
) -> None:
    """Warehouse views over lake datasets, documented: `daily` ones over every day's partition,
    `whole` ones over their single file (`lake/<name>/data.parquet`). Names map to descriptions."""
    register_lake_filesystem(conn, lake_dir)
    for dataset, description in daily.items():
        conn.execute(dataset_view_sql(lake_dir, dataset))
        comment_relation(conn, dataset, "view", description)
    for dataset, description in (whole or {}).items():
        conn.execute(whole_view_sql(lake_dir, dataset))
        comment_relation(conn, dataset, "view", description)


def lake_catalog(conn: duckdb.DuckDBPyConnection, lake_dir: LakePath, *, documented: bool = True) -> list[str]:
    """A view over every dataset the lake holds, documented: the ingest datasets, the models' (a
    distributed run writes every daily mart as partitions and every table model as one whole
    file) and the settings tables (`replace_table` into the lake). What a distributed run's
    scratch warehouse starts from (not `documented`: it is deleted after the run, and a comment
    costs ~13 ms), and what `published_warehouse` publishes in that mode. Returns the names, sorted."""
    from pipelines.defs.ingest import publish_ingest_views  # the ingest datasets' own descriptions

    held = lake_datasets(lake_dir)  # one listing (on S3: of the whole prefix)
    names = set(publish_ingest_views(conn, lake_dir, held))
    models = load_models()
    for name, layout in sorted(held.items()):
        if name in names or not _IDENTIFIER.fullmatch(name):
            continue  # ingest (done), or not a dataset: _manifests, _quarantine, ...
        if layout == "whole":
            conn.execute(whole_view_sql(lake_dir, name))
        else:
            table = name in models and models[name].materialized == "daily_table"
            conn.execute(dataset_view_sql(lake_dir, name, day_first=table))
        if name in models and documented:
            _comment(conn, models[name], "view")
        names.add(name)
    # The view models over them, each once everything it reads is there (views read views).
    views = [model for model in models.values() if model.materialized == "view"]
    while ready := [view for view in views if set(view.reads) <= names]:
        for view in ready:
            conn.execute(f"create or replace view {view.name} as {view.query}")  # noqa: S608 (model name and the model's own SQL file)
            if documented:
                _comment(conn, view, "view")
            names.add(view.name)
            views.remove(view)
    return sorted(names)


_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def _comment(conn: duckdb.DuckDBPyConnection, model: SqlModel, kind: str) -> None:
    comment_relation(conn, model.name, kind, model.description, model.columns)
