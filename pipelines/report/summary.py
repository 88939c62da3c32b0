"""The morning summary `costwatch demo` prints: read-only queries over the warehouse marts.

Its queries are files: `sql/reports/summary/NN_<name>.sql`, printed in file-name order, each
opening with a `/* section title */` comment and reading `$first`/`$last` (the days summarised)
where it takes a period.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pipelines.alerts.render import format_usd, week_change
from pipelines.lake.publish import readable_warehouse
from pipelines.models.engine import REPORTS_DIR, connect_read_only
from pipelines.report.tables import text_table
from pipelines.resources.config import CostwatchConfig

SUMMARY_DIR = REPORTS_DIR / "summary"
HEADLINE = REPORTS_DIR / "summary_headline.sql"

_TITLE = re.compile(r"\A\s*/\*(?P<title>.*?)\*/", re.S)


def read_report_query(path: Path) -> tuple[str, str]:
    """A report file's title (its leading block comment) and its query (the rest)."""
    text = path.read_text(encoding="utf-8")
    title = _TITLE.match(text)
    if not title:
        raise ValueError(f"{path}: a report query must open with a /* title */ comment")
    return title.group("title").strip(), text[title.end() :].strip().rstrip(";")


def load_sections(folder: Path = SUMMARY_DIR) -> dict[str, str]:
    """Section title -> query, in print order."""
    sections = dict(read_report_query(path) for path in sorted(folder.glob("*.sql")))
    if len(sections) != len(list(folder.glob("*.sql"))):
        raise ValueError(f"{folder}: two report queries share a title")
    return sections


SECTIONS = load_sections()


def headline(row: dict, first: dt.date) -> str:
    """The lines a user reads first: the last day's total cost against a week before, its split
    between API and self-hosted GPUs (busy, idle), then the period's totals."""
    day, total = row["day"], row["total_cost_usd"]
    if total is None:
        return f"costwatch: {day}: no cost recorded (no calls, bills or GPU hours); see the findings below"
    change = week_change(total, row["week_ago_total_cost_usd"], day - dt.timedelta(days=7))
    busy, idle = row["gpu_busy_cost_usd"], row["gpu_idle_cost_usd"]
    lines = [
        f"costwatch: {day}: {format_usd(total)} total cost ({change}) over {row['requests'] or 0:,} requests",
        f"  API {format_usd(row['api_cost_usd'])} · self-hosted GPUs {format_usd(busy + idle)} "
        f"(busy {format_usd(busy)}, idle {format_usd(idle)})",
    ]
    if first != day:
        lines.append(
            f"  {first} to {day}: {format_usd(row['period_total_cost_usd'])} total cost, "
            f"{format_usd(row['period_api_cost_usd'])} of it API, over {row['period_requests'] or 0:,} requests"
        )
    return "\n".join(lines)


def headline_row(conn, first: dt.date, last: dt.date) -> dict:
    """The headline query's one row (sql/reports/summary_headline.sql), by column name."""
    conn.execute(read_report_query(HEADLINE)[1], {"first": first, "last": last})
    names = [description[0] for description in conn.description]
    return dict(zip(names, conn.fetchone(), strict=True))


def day_movers(conn, day: dt.date) -> list[tuple[str, object]]:
    """(feature, delta_usd) of the day's top API-spend movers, from its digest."""
    return conn.execute(read_report_query(REPORTS_DIR / "day_movers.sql")[1], {"last": day}).fetchall()


def print_summary(config: CostwatchConfig, first: dt.date, last: dt.date) -> None:
    bounds = {"first": first, "last": last}
    # The analysts' connection: read-only, files readable in the lake only.
    with connect_read_only(readable_warehouse(config.warehouse_path), config.lake) as conn:
        print("\n" + headline(headline_row(conn, first, last), first))
        for title, sql in SECTIONS.items():
            print(f"\n{title}")
            conn.execute(sql, {name: value for name, value in bounds.items() if f"${name}" in sql})
            columns = [description[0] for description in conn.description]
            print(text_table(columns, conn.fetchall()))
