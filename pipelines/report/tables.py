"""Tables for people: aligned plain text for the terminal, markdown for Dagster metadata.

Both take column names and rows (tuples of values) and format a cell the same way: NULL as `-`,
integers with thousands separators, anything else as `str(value)` (a Decimal keeps its scale).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Sequence
from decimal import Decimal

NULL = "-"


def cell(value: object) -> str:
    if value is None:
        return NULL
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Decimal):
        return format(value, "f")  # its scale, never exponent notation (`0E-12` for an exact zero)
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


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """RFC 4180 CSV with a header row; NULL as an empty field, money with its exact digits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_plain(value) for value in row] for row in rows)
    return out.getvalue()


def json_text(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A JSON array of objects, one per row. DECIMAL money is a JSON number with its exact digits
    (never through a float); dates and timestamps are ISO 8601 text."""
    objects = [dict(zip(columns, [_json_value(value) for value in row], strict=True)) for row in rows]
    text = json.dumps(objects, indent=1, ensure_ascii=False, default=_json_default)
    return _unquote_decimals(text) + "\n"


_DECIMAL_MARK = "\u0000decimal:"


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + format(value, "f")
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return value


def _json_default(value: object) -> object:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def _unquote_decimals(text: str) -> str:
    # json.dumps escapes the marker's NUL as \u0000: each marked string becomes its bare number.
    return re.sub(r'"\\u0000decimal:(-?[0-9.]+)"', r"\1", text)


def _plain(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return value
