"""The table renderer (text for the terminal, markdown for Dagster metadata) and the summary's
query files."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from pipelines.report.summary import HEADLINE, SECTIONS, SUMMARY_DIR, load_sections, read_report_query
from pipelines.report.tables import cell, markdown_table, text_table


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (1234567, "1,234,567"),
        (-5, "-5"),
        (Decimal("1234.50"), "1234.50"),  # a Decimal keeps its scale and takes no separators
        (Decimal("0E-12"), "0.000000000000"),  # an exact zero at scale 12: digits, not exponent notation
        (0.125, "0.125"),
        (True, "True"),  # not an int to format
        (dt.date(2026, 10, 5), "2026-10-05"),
        ("chat", "chat"),
    ],
)
def test_a_cell_is_formatted_the_same_in_both_tables(value, text):
    assert cell(value) == text


@pytest.mark.parametrize(
    ("columns", "rows", "expected"),
    [
        (
            ["feature", "requests", "cost_usd"],
            [("chat", 5155, Decimal("22.32")), ("batch_tagging", 2182, None)],
            "  feature        requests  cost_usd\n"
            "  -------------  --------  --------\n"
            "  chat              5,155     22.32\n"
            "  batch_tagging     2,182  -       ",
        ),
        (
            ["day", "impact_usd"],
            [(dt.date(2026, 10, 19), Decimal("-19.40"))],
            # a day is text (left-aligned); a negative amount is a number (right-aligned)
            "  day         impact_usd\n  ----------  ----------\n  2026-10-19      -19.40",
        ),
        (["kind", "alerts"], [], "  kind  alerts\n  ----  ------"),
    ],
    ids=["numbers_right_null_dash", "dates_left_negatives_right", "no_rows"],
)
def test_text_table(columns, rows, expected):
    assert text_table(columns, rows) == expected


@pytest.mark.parametrize(
    ("columns", "rows", "expected"),
    [
        (
            ["file", "records", "adds up"],
            [("`a.jsonl`", 1200, "yes"), ("`b.jsonl`", 3, "**NO**")],
            "| file | records | adds up |\n|---|---|---|\n| `a.jsonl` | 1,200 | yes |\n| `b.jsonl` | 3 | **NO** |",
        ),
        (["model", "cost_usd"], [("a|b", None)], "| model | cost_usd |\n|---|---|\n| a\\|b | - |"),
        (["n"], [], "| n |\n|---|"),
    ],
    ids=["markdown_cells_kept", "pipe_escaped_null_dash", "no_rows"],
)
def test_markdown_table(columns, rows, expected):
    assert markdown_table(columns, rows) == expected


def test_the_summary_sections_are_the_query_files_in_order():
    files = sorted(SUMMARY_DIR.glob("*.sql"))
    assert [path.name[:3] for path in files] == [f"{number:02d}_" for number in range(1, len(files) + 1)]
    assert list(SECTIONS) == [read_report_query(path)[0] for path in files]
    assert list(SECTIONS)[0].startswith("Total cost per feature") and list(SECTIONS)[-1].startswith("What to change")
    assert list(SECTIONS)[4] == "Spend by price tier (service tier, context tier, off-peak hours)"
    assert len(SECTIONS) == 21


def test_summary_queries_take_only_the_period_parameters():
    for query in [*SECTIONS.values(), read_report_query(HEADLINE)[1]]:
        assert query.lstrip().startswith(("select", "with")), query
        assert set(re.findall(r"\$([a-z_]+)", query)) <= {"first", "last"}, query


def test_a_query_file_without_a_title_is_refused(tmp_path):
    (tmp_path / "01_untitled.sql").write_text("select 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="title"):
        load_sections(tmp_path)


def test_ingest_accounting_metadata_is_a_markdown_table():
    from pipelines.defs.ingest.accounting import accounting_metadata

    rows = [
        {
            "source_file": "a.csv",
            "source_format": "focus",
            "records": 1200,
            "kept": 1000,
            "skipped": 150,
            "skipped_by_reason": {"not_gpu": 150},
            "quarantined": 50,
        },
        {"source_file": "b.csv", "source_format": "focus", "records": 10, "kept": 8, "quarantined": 1},
        # A gateway file: the repeat delivery of a kept request counts (4 = 2 kept + 1 + 1 duplicate).
        {"source_file": "c.jsonl", "records": 4, "kept": 2, "quarantined": 1, "duplicates": 1},
    ]
    assert accounting_metadata(rows)["per_source"].value == (
        "| file | format | records | kept | skipped | quarantined | duplicates | adds up |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| `a.csv` | focus | 1,200 | 1,000 | 150 (not_gpu: 150) | 50 | 0 | yes |\n"
        "| `b.csv` | focus | 10 | 8 | 0 | 1 | 0 | **NO** |\n"  # 8 + 0 + 1 = 9 of 10 records
        "| `c.jsonl` | - | 4 | 2 | 0 | 1 | 1 | yes |"
    )
