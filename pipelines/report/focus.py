"""`costwatch export --focus`: the period's LLM spend as FOCUS 1.2 rows, for a FinOps platform.

The rows come from `sql/reports/focus_export.sql` on the analysts' published warehouse. The file
is CSV (RFC 4180, header row, NULL as an empty field, decimals with their exact digits and no
trailing zeros) or Parquet (the same columns, decimals as DECIMAL), chosen by the file's suffix.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from pipelines.lake.store import LakePath
from pipelines.models.engine import REPORTS_DIR, connect_read_only
from pipelines.report.summary import read_report_query

QUERY_PATH = REPORTS_DIR / "focus_export.sql"
FORMATS = (".csv", ".parquet")
_BATCH_ROWS = 50_000


def export_focus(warehouse: Path, lake_dir: LakePath, first: dt.date, last: dt.date, output: Path) -> int:
    """Write the FOCUS rows of `first`..`last` to `output` (.csv or .parquet); return the row count."""
    if output.suffix.lower() not in FORMATS:
        raise ValueError(f"--output {output}: the file must end in .csv or .parquet")
    sql = read_report_query(QUERY_PATH)[1]
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with connect_read_only(warehouse, lake_dir) as conn:
        reader = conn.sql(sql, params={"first": first, "last": last}).to_arrow_reader(_BATCH_ROWS)
        write = _write_parquet if output.suffix.lower() == ".parquet" else _write_csv
        rows = write(reader, partial)
    partial.replace(output)  # a reader never sees half a file
    return rows


def _write_csv(reader, path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(reader.schema.names)
        for batch in reader:
            columns = [column.to_pylist() for column in batch.columns]  # DECIMAL as Decimal, exact
            writer.writerows([_field(value) for value in row] for row in zip(*columns, strict=True))
            rows += batch.num_rows
    return rows


def _write_parquet(reader, path: Path) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _field(value: object) -> object:
    """FOCUS NumericFormat: a plain decimal (no exponent, no trailing zeros); NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    return value


def default_period(latest: dt.date) -> tuple[dt.date, dt.date]:
    """The month to date of the latest day with costs."""
    return latest.replace(day=1), latest
