"""What a run pays whatever the size of its day: column comments written only where they changed,
in one transaction."""

import duckdb
import pytest

from pipelines.models.engine import comment_relation


class Statements:
    """A DuckDB connection that remembers the statements it ran."""

    def __init__(self, conn):
        self.conn, self.seen = conn, []

    def execute(self, sql, *args):
        self.seen.append(sql)
        return self.conn.execute(sql, *args)

    def comments(self):
        seen, self.seen = [s for s in self.seen if s.startswith("comment on")], []
        return seen


def test_comments_are_written_where_they_differ_and_a_replaced_relation_gets_them_all_again():
    conn = Statements(duckdb.connect())
    conn.execute("create table spend (day date, feature varchar, cost_usd decimal(18, 6))")
    columns = {"day": "UTC day.", "feature": "Product feature.", "cost_usd": "Spend, USD."}
    comment_relation(conn, "spend", "table", "Spend per day.", columns)
    assert len(conn.comments()) == 4  # the table and its three columns
    comment_relation(conn, "spend", "table", "Spend per day.", columns)
    assert conn.comments() == []  # nothing changed: nothing written
    comment_relation(conn, "spend", "table", "Spend per day.", {**columns, "feature": "Product feature that called."})
    assert conn.comments() == ["comment on column spend.feature is 'Product feature that called.'"]
    conn.execute("create or replace table spend as select * from spend")  # a rebuilt table has no comments
    comment_relation(conn, "spend", "table", "Spend per day, rebuilt.", {**columns, "feature": "It's a feature."})
    assert len(conn.comments()) == 4
    assert conn.execute("select comment from duckdb_tables() where table_name = 'spend'").fetchall() == [
        ("Spend per day, rebuilt.",)
    ]
    assert conn.execute(
        "select column_name, comment from duckdb_columns() where table_name = 'spend' order by column_index"
    ).fetchall() == [("day", "UTC day."), ("feature", "It's a feature."), ("cost_usd", "Spend, USD.")]


def test_an_undocumented_column_is_still_an_error():
    conn = duckdb.connect()
    conn.execute("create table spend (day date, mystery_number integer)")
    with pytest.raises(ValueError, match="mystery_number"):
        comment_relation(conn, "spend", "table", "Spend per day.", {"day": "UTC day."})
