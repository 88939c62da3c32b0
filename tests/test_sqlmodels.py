"""The SQL-model machinery: session settings every warehouse connection gets, and the loader."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipelines.lake.partitions import dataset_view_sql, partition_file, write_partition
from pipelines.models.engine import (
    DayRange,
    Lookback,
    load_models,
    parse_model,
    prepare_session,
    run_model,
    widest_lookback,
)
from pipelines.models.relations import daily_totals, money_totals

# A windowed share over one day of a hive-partitioned Parquet view: the shape of the GPU and
# allocation marts. DuckDB 2.0's window_self_join rewrite drops the day filter on the re-scan.
SHARE_OF_DAY = """
    with usage as (
        select pool, sum(duration_ms) as request_ms from requests where day = $day group by pool
    )
    select pool, request_ms, sum(request_ms) over (partition by pool) as pool_ms from usage order by pool
"""


@pytest.fixture
def lake(tmp_path):
    conn = duckdb.connect()
    for offset in range(3):  # three days, each pool 10 ms a day
        day = dt.date(2026, 10, 1) + dt.timedelta(days=offset)
        write_partition(
            conn, "select * from (values ('a', 4), ('a', 6), ('b', 10)) t(pool, duration_ms)", tmp_path, "requests", day
        )
    conn.execute(dataset_view_sql(tmp_path, "requests"))
    yield conn
    conn.close()


def test_prepared_sessions_sum_windows_over_the_filtered_day_only(lake):
    prepare_session(lake)
    rows = lake.execute(SHARE_OF_DAY, {"day": dt.date(2026, 10, 2)}).fetchall()
    assert rows == [("a", 10, 10), ("b", 10, 10)]


@pytest.mark.upstream_bug("duckdb 2.0: the window_self_join rewrite drops a filter on the re-scan")
def test_the_optimizer_setting_is_what_makes_it_right(lake):
    """Pins why prepare_session disables window_self_join: with it on, the same query must give
    the same answer or the setting can go. Today it sums all three days."""
    rows = lake.execute(SHARE_OF_DAY, {"day": dt.date(2026, 10, 2)}).fetchall()
    if rows == [("a", 10, 10), ("b", 10, 10)]:
        pytest.fail("DuckDB no longer drops the filter: remove the window_self_join workaround")
    assert rows == [("a", 10, 30), ("b", 10, 30)]


def test_a_view_may_not_take_parameters(tmp_path):
    path = tmp_path / "stg_bad.sql"
    path.write_text("/* bad\nmaterialized: view\n*/\nselect * from x where day = $day")
    with pytest.raises(ValueError, match="a view cannot take parameters"):
        parse_model(path)


def test_a_daily_model_must_filter_by_its_days(tmp_path):
    path = tmp_path / "fct_bad.sql"
    path.write_text("/* bad\nmaterialized: daily_table\n*/\nselect * from x where day = $start")
    with pytest.raises(ValueError, match="must filter its input with \\$start and \\$end"):
        parse_model(path)


def test_a_model_reading_one_day_is_refused(tmp_path):
    """`$day` was the one-day parameter; a model still reading it would silently compute one day of a range."""
    path = tmp_path / "fct_old.sql"
    path.write_text(
        "/* old\nmaterialized: daily_table\n*/\nselect * from x where day between $start and $end and day = $day"
    )
    with pytest.raises(ValueError, match="\\$day is gone"):
        parse_model(path)


# --- grain and lookback: the header keys `run --changed` derives its later days from -------------------


def daily_model(tmp_path, name, header):
    path = tmp_path / f"{name}.sql"
    path.write_text(
        f"/* a daily model\nmaterialized: daily_table\n{header}*/\n"
        "select unnest(generate_series($start::date, $end::date, interval 1 day))::date as day, 1 as n"
    )
    return path


def test_headers_parse_grain_and_lookback(tmp_path):
    model = parse_model(daily_model(tmp_path, "fct_a", "grain: day, n\nlookback: month, 6\n"))
    assert model.grain == ("day", "n")
    assert model.lookback == Lookback(days=6, month_to_date=True)
    assert parse_model(daily_model(tmp_path, "fct_b", "grain: day\nlookback: 0\n")).lookback == Lookback(0, False)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("grain: day\n", "must declare `lookback:`"),
        ("grain: day\nlookback: a week\n", "lookback: 'a week' is not N"),
        ("grain: day\nlookback: -3\n", "lookback: '-3' is not N"),
        ("grain: day\nlookback: 7, 28\n", "lookback: '7, 28' is not N"),
        ("lookback: 0\n", "declare `grain:`"),
        ("grain: day, feature\nlookback: 0\n", "\\['feature'\\] are not columns the query selects"),
    ],
)
def test_a_daily_model_header_without_a_valid_grain_or_lookback_is_refused(tmp_path, header, message):
    with pytest.raises(ValueError, match=message):
        parse_model(daily_model(tmp_path, "fct_bad", header))


def test_only_a_daily_model_declares_a_lookback(tmp_path):
    path = tmp_path / "fct_whole.sql"
    path.write_text("/* whole\nmaterialized: table\ngrain: n\nlookback: 3\n*/\nselect 1 as n")
    with pytest.raises(ValueError, match="only a daily model reads a window of days"):
        parse_model(path)


def test_the_project_models_declare_the_windows_they_read():
    models = load_models()
    assert models["fct_spend_anomalies"].lookback == Lookback(28, False)  # its 28-day baseline
    assert models["fct_budget_forecast"].lookback == Lookback(6, True)  # month-to-date and a 7-day run rate
    assert widest_lookback(models.values()) == Lookback(28, True)


def every_day(first, last):
    return {first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)}


RAN = every_day(dt.date(2025, 12, 1), dt.date(2026, 12, 31))


@pytest.mark.parametrize(
    ("changed", "first", "last"),
    [
        # Mid-month: 28 days after (the anomaly baseline) reaches past the month's end, Oct 31.
        (dt.date(2026, 10, 6), dt.date(2026, 10, 6), dt.date(2026, 11, 3)),
        # The 1st: month-to-date budgets reach its month's last day, beyond 28 days after.
        (dt.date(2026, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        # The last day of a month: 28 days after it, into the next month.
        (dt.date(2026, 10, 31), dt.date(2026, 10, 31), dt.date(2026, 11, 28)),
        # February 2026 has 28 days: from the 3rd, month-to-date ends on the 28th, 28 days after on March 3.
        (dt.date(2026, 2, 3), dt.date(2026, 2, 3), dt.date(2026, 3, 3)),
    ],
)
def test_run_changed_reruns_the_later_days_whose_windows_read_a_changed_day(changed, first, last, capsys):
    from pipelines.cli import _with_downstream_days

    assert _with_downstream_days([changed], RAN) == sorted(every_day(first, last))
    # Only days already run are re-run.
    assert _with_downstream_days([changed], {changed, changed + dt.timedelta(days=2)}) == [
        changed,
        changed + dt.timedelta(days=2),
    ]


def test_a_longer_lookback_in_a_header_reaches_further(tmp_path):
    from pipelines.cli import _with_downstream_days

    (tmp_path / "marts").mkdir()
    for name, lookback in (("fct_short", "3"), ("fct_long", "40")):
        daily_model(tmp_path / "marts", name, f"grain: day\nlookback: {lookback}\n")
    models = load_models(tmp_path)
    changed = dt.date(2026, 10, 6)
    # 40 days after Oct 6 is Nov 15 (25 days left in October + 15).
    assert _with_downstream_days([changed], RAN, models) == sorted(every_day(changed, dt.date(2026, 11, 15)))
    (tmp_path / "marts" / "fct_long.sql").unlink()
    assert _with_downstream_days([changed], RAN, load_models.__wrapped__(tmp_path)) == sorted(
        every_day(changed, dt.date(2026, 10, 9))
    )


# --- a range of days: one statement per model (issue 12) ------------------------------------------------


def test_a_day_range_lists_its_days_inclusive():
    days = DayRange(dt.date(2026, 10, 30), dt.date(2026, 11, 2))
    assert days.days == [dt.date(2026, 10, 30), dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    assert DayRange.of(dt.date(2026, 11, 2)).days == [dt.date(2026, 11, 2)]
    with pytest.raises(ValueError, match="ends on or after its start"):
        DayRange(dt.date(2026, 11, 2), dt.date(2026, 11, 1))


# Counts calls per day from a source table; a day with no calls has no row.
CALLS_PER_DAY = "select day, count(*) as calls from calls where day between $start and $end group by day"


def ranged_model(tmp_path, materialized, query=CALLS_PER_DAY):
    path = tmp_path / f"fct_calls_{materialized}.sql"
    path.write_text(
        f"/* calls per day\nmaterialized: {materialized}\ngrain: day\nlookback: 0\ncolumns:\n  calls: Calls.\n*/\n{query}"
    )
    return parse_model(path)


@pytest.fixture
def calls(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    # Oct 1: 2 calls, Oct 2: none, Oct 3: 1 call, Oct 4: 3 calls.
    conn.execute(
        "create table calls as select * from (values (date '2026-10-01'), (date '2026-10-01'), (date '2026-10-03'),"
        " (date '2026-10-04'), (date '2026-10-04'), (date '2026-10-04')) t(day)"
    )
    yield conn
    conn.close()


def test_a_daily_table_replaces_the_days_of_its_range_only(tmp_path, calls):
    model = ranged_model(tmp_path, "daily_table")
    assert run_model(calls, model, tmp_path / "lake", DayRange(dt.date(2026, 10, 1), dt.date(2026, 10, 4))) == 3
    calls.execute("delete from calls where day = '2026-10-01'")
    calls.execute("insert into calls values ('2026-10-03')")
    # A plain date is a one-day range: Oct 3 is replaced (2 calls now), Oct 1 keeps what it had.
    assert run_model(calls, model, tmp_path / "lake", dt.date(2026, 10, 3)) == 1
    written = f"select day::varchar, calls from {model.name} order by day"  # noqa: S608 (this test's model)
    assert calls.execute(written).fetchall() == [
        ("2026-10-01", 2),
        ("2026-10-03", 2),
        ("2026-10-04", 3),
    ]
    assert money_totals(calls, model, DayRange(dt.date(2026, 10, 1), dt.date(2026, 10, 4))) == {}
    assert daily_totals(calls, model, DayRange(dt.date(2026, 10, 2), dt.date(2026, 10, 4))) == {
        dt.date(2026, 10, 3): {"rows": 1},
        dt.date(2026, 10, 4): {"rows": 1},
    }


def test_a_daily_parquet_model_writes_every_day_of_its_range_once(tmp_path, calls):
    model = ranged_model(tmp_path, "daily_parquet")
    days = DayRange(dt.date(2026, 10, 1), dt.date(2026, 10, 4))
    assert run_model(calls, model, tmp_path / "lake", days) == 3
    for day in days.days:  # Oct 2 had no calls: its partition exists, empty, so a re-run replaces it
        assert partition_file(tmp_path / "lake", model.name, day).exists()
    written = f"select day::varchar, calls from {model.name} order by day"  # noqa: S608 (this test's model)
    assert calls.execute(written).fetchall() == [
        ("2026-10-01", 2),
        ("2026-10-03", 1),
        ("2026-10-04", 3),
    ]


@pytest.mark.parametrize("materialized", ["daily_table", "daily_parquet"])
def test_rows_outside_the_range_are_refused(tmp_path, calls, materialized):
    """A model that forgets its range would lose those rows (Parquet) or duplicate days (table)."""
    model = ranged_model(
        tmp_path, materialized, CALLS_PER_DAY.replace("where day between $start and $end", "where $start <= $end")
    )
    with pytest.raises(ValueError, match="outside the days run \\(2026-10-03\\)"):
        run_model(calls, model, tmp_path / "lake", dt.date(2026, 10, 3))
    # Rolled back or never moved into place: nothing written.
    assert calls.execute(
        "select count(*) from duckdb_tables() where table_name = $name", {"name": model.name}
    ).fetchone() == (0,)
    assert not (tmp_path / "lake" / model.name).exists() or not any(
        (tmp_path / "lake" / model.name).rglob("data.parquet")
    )


def test_money_totals_are_dollars_and_cents_while_day_lines_keep_the_micro_dollars(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute(
        "create table spend as select * from (values (date '2026-10-01', 1.004999::decimal(18, 6)),"
        " (date '2026-10-01', 2.001::decimal(18, 6)), (date '2026-10-02', 0.333333::decimal(18, 6))) t(day, cost_usd)"
    )
    path = tmp_path / "sql" / "marts" / "spend_daily.sql"
    path.parent.mkdir(parents=True)
    path.write_text(
        "/* Spend.\nmaterialized: daily_table\ngrain: day, cost_usd\nlookback: 0\n*/\nselect day, cost_usd from spend where day between $start and $end\n",
        encoding="utf-8",
    )
    model = parse_model(path)
    days = DayRange(dt.date(2026, 10, 1), dt.date(2026, 10, 2))
    run_model(conn, model, tmp_path / "lake", days)
    # 1.004999 + 2.001 + 0.333333 = 3.339332: the UI's total shows $3.34.
    assert money_totals(conn, model, days) == {"total_cost_usd": 3.34}
    assert daily_totals(conn, model, days)[dt.date(2026, 10, 1)]["total_cost_usd"] == 3.005999
    conn.close()


def test_a_renamed_column_keeps_its_history_and_a_dropped_one_is_refused(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute(
        "create table spend as select * from (values (date '2026-10-01', 0.5), (date '2026-10-02', 0.25)) t(day, share)"
    )
    path = tmp_path / "sql" / "marts" / "ratios_daily.sql"
    path.parent.mkdir(parents=True)
    header = (
        "/* Ratios.\nmaterialized: daily_table\ngrain: day\nlookback: 0\n{renamed}columns:\n  {column}: A share.\n*/\n"
    )
    query = "select day, share as {column} from spend where day between $start and $end\n"
    path.write_text(header.format(renamed="", column="share_pct") + query.format(column="share_pct"), encoding="utf-8")
    run_model(conn, parse_model(path), tmp_path / "lake", DayRange(dt.date(2026, 10, 1), dt.date(2026, 10, 2)))
    # The column is renamed: the next run of Oct 2 alone renames it in place; Oct 1 keeps its value.
    conn.execute("update spend set share = 0.75 where day = '2026-10-02'")
    renamed = "renamed: share_ratio <- share_pct\n"
    path.write_text(
        header.format(renamed=renamed, column="share_ratio") + query.format(column="share_ratio"), encoding="utf-8"
    )
    run_model(conn, parse_model(path), tmp_path / "lake", dt.date(2026, 10, 2))
    assert conn.execute("select day::varchar, share_ratio from ratios_daily order by day").fetchall() == [
        ("2026-10-01", 0.5),
        ("2026-10-02", 0.75),
    ]
    # Without the header line, a column gone from the query is an error, never silently dropped.
    path.write_text(
        header.format(renamed="", column="share_fraction") + query.format(column="share_fraction"), encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"columns \['share_ratio'\] are no longer in ratios_daily.sql"):
        run_model(conn, parse_model(path), tmp_path / "lake", dt.date(2026, 10, 2))
    conn.close()


def test_exact_sum_is_the_same_in_any_row_order_where_a_plain_sum_is_not():
    """The `exact_sum` macro (sql/macros) adds doubles as DECIMAL(38, 12): the same total whatever
    order the rows come in, equal to the exact sum of the values rounded to 12 places (computed
    here with Python's Decimal). A plain DOUBLE sum of the same rows differs between orders."""
    import random
    from decimal import ROUND_HALF_EVEN, Decimal

    rng = random.Random(7)
    values = [rng.uniform(0, 1) * 10 ** rng.randint(-6, 3) for _ in range(2_000)]
    exact = float(sum(Decimal(v).quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN) for v in values))
    conn = duckdb.connect()
    prepare_session(conn)
    conn.execute("set threads = 1")  # rows reach the aggregate in table order
    totals = {}
    for name, order in (("forward", values), ("backward", values[::-1]), ("shuffled", rng.sample(values, len(values)))):
        conn.execute(f"create table {name} (x double)")  # noqa: S608 (fixed names)
        conn.executemany(f"insert into {name} values (?)", [(v,) for v in order])  # noqa: S608 (fixed names)
        totals[name] = conn.execute(f"select sum(x), exact_sum(x) from {name}").fetchone()  # noqa: S608 (fixed names)
    assert len({plain for plain, _ in totals.values()}) > 1  # what exact_sum is for
    assert {exact_total for _, exact_total in totals.values()} == {exact}


def test_a_per_request_daily_table_runs_under_the_memory_cap_and_gives_the_setting_back(tmp_path, calls):
    """`memory: per_request` (the savings levers over int_billed_calls): the model's statement sees
    PER_REQUEST_MEMORY_LIMIT, and the connection has its own limit again afterwards."""
    query = (
        "select day, count(*) as calls, any_value(current_setting('memory_limit')) as memory_limit"
        " from calls where day between $start and $end group by day"
    )
    path = tmp_path / "fct_capped.sql"
    path.write_text(
        "/* calls per day, capped\nmaterialized: daily_table\ngrain: day\nlookback: 0\nmemory: per_request\n"
        f"columns:\n  calls: Calls.\n  memory_limit: The limit seen.\n*/\n{query}"
    )
    model = parse_model(path)
    assert model.per_request
    calls.execute("set memory_limit = '2GiB'")
    (before,) = calls.execute("select current_setting('memory_limit')").fetchone()
    run_model(calls, model, tmp_path / "lake", dt.date(2026, 10, 4))
    (seen,) = calls.execute("select memory_limit from fct_capped").fetchone()
    # DuckDB prints the cap in its own units: the same text as setting it on a fresh connection.
    probe = duckdb.connect()
    probe.execute("set memory_limit = '1GB'")
    assert seen == probe.execute("select current_setting('memory_limit')").fetchone()[0] != before
    assert calls.execute("select current_setting('memory_limit')").fetchone()[0] == before
    # Elsewhere the connection's own: the plain daily table of the same query.
    plain_path = tmp_path / "fct_plain.sql"
    plain_path.write_text(path.read_text().replace("memory: per_request\n", ""))
    plain = parse_model(plain_path)
    run_model(calls, plain, tmp_path / "lake", dt.date(2026, 10, 4))
    assert calls.execute(f"select memory_limit from {plain.name}").fetchone()[0] == before  # noqa: S608 (this test's model)


def test_memory_is_declared_on_daily_tables_only(tmp_path):
    path = tmp_path / "fct_view.sql"
    path.write_text("/* a view\nmaterialized: view\nmemory: per_request\n*/\nselect 1 as x")
    with pytest.raises(ValueError, match="memory: only `memory: per_request` on a daily table"):
        parse_model(path)
