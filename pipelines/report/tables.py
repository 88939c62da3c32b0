"""Tables for people: aligned plain text for the terminal, markdown for Dagster metadata.

Both take column names and rows (tuples of values) and format a cell the same way: NULL as `-`,
integers with thousands separators, anything else as `str(value)` (a Decimal keeps its scale).
"""

from __future__ import annotations

from collections.abc import Sequence

NULL = "-"


def cell(value: object) -> str:
    if value is None:
        return NULL
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def text_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, two spaces apart, numbers right-aligned; each line
    indented two spaces under the section title that precedes it."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(column)] + [len(row[index]) for row in cells]) for index, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(
            value.rjust(width) if _numeric(value) else value.ljust(width)
            for value, width in zip(row, widths, strict=True)
        )
        for row in cells
    ]
    return "\n".join("  " + line for line in lines)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table. Cells are markdown: a caller may pass `code` or **bold**.
    A `|` inside a cell is escaped so it cannot split the cell."""
    lines = [_markdown_row(columns), "|" + "---|" * len(columns)]
    lines += [_markdown_row([cell(value) for value in row]) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |"


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").isdigit()
