"""The SQL-model machinery: session settings every warehouse connection gets, and the loader."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipelines.lake.partitions import dataset_view_sql, write_partition
from pipelines.models.engine import parse_model, prepare_session

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


def test_a_daily_model_must_filter_by_day(tmp_path):
    path = tmp_path / "fct_bad.sql"
    path.write_text("/* bad\nmaterialized: daily_table\n*/\nselect * from x")
    with pytest.raises(ValueError, match="must filter its input with \\$day"):
        parse_model(path)
