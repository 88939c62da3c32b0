"""What the GPU billing readers share: the instance-type table, the careful CSV reader, the
per-file record accounting (`GpuBilling`) and the SQL that turns a reader's typed rows into
kept lines and quarantine rows.

A billing reader leaves two temp tables for the file it read, `billing_lines` (GPU lines) and
`billing_quarantine` (the shared quarantine schema), and returns where every record went.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.resources.files import fixture
from pipelines.sources.queries import load_queries
from pipelines.sources.records import read_file_bytes, text_record

INSTANCE_TYPES = fixture("gpu/instance_types.csv")


def queries() -> dict[str, str]:
    return load_queries(__package__, "common.sql")


@dataclass
class GpuBilling:
    """Where every record of one billing file went: GPU lines kept, rows skipped as not GPU
    spend (by reason), quarantined rows. records = gpu_rows + non_gpu_rows + quarantined."""

    source_file: str = ""
    source_format: str = ""
    records: int = 0
    gpu_rows: int = 0
    non_gpu_rows: int = 0
    quarantined: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    # FOCUS GPU lines no commitment covers whose EffectiveCost differs from BilledCost.
    uncommitted_cost_mismatch: list[dict] = field(default_factory=list)

    @property
    def accounted_for(self) -> bool:
        return self.records == self.gpu_rows + self.non_gpu_rows + self.quarantined


def load_instance_types(conn: duckdb.DuckDBPyConnection, extra: Path | None = None) -> None:
    """Temp table `instance_types` (instance_key, gpu_type, gpu_count): the shipped table plus the config's."""
    paths = [INSTANCE_TYPES, *([extra] if extra else [])]
    conn.execute(queries()["instance_types"], {"paths": [str(path) for path in paths]})


def read_csv_export(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A billing CSV → temp table `export_raw` (every cell text, NULL for the literal `NULL`,
    `record_ref` = 'row N' with the header as row 1) and `export_rejects` (record_ref, reason,
    raw) for rows that cannot be split into the header's columns or are not UTF-8.

    DuckDB reads a well-formed file fast, told the header's columns and the dialect: its
    sniffer, left to guess, can take a ragged last row for the header and return no rows at
    all. Damage (bytes that are not UTF-8, a ragged or cut row, an unclosed quote, a line past
    DuckDB's line limit, a cut gzip stream) fails DuckDB's reader for the whole file; such a
    file is read again row by row in Python, which sets aside only the damaged rows."""
    conn.execute(queries()["export_rejects"])
    header = _csv_header(path)
    if header:
        try:
            conn.execute(queries()["export_raw"], {"path": str(path), "columns": {name: "VARCHAR" for name in header}})
        except duckdb.Error:
            pass
        else:
            # A row of empty cells is no record (the Python reader below skips it too).
            empty = " and ".join(f"coalesce(trim({_identifier(name)}), '') = ''" for name in header)
            conn.execute(f"delete from export_raw where {empty}")  # noqa: S608 (quoted header names)
            return
    data, damage = read_file_bytes(path)
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff"), newline=""))
    header = _column_names(next(reader, []))
    columns: list[list[str | None]] = [[] for _ in header]
    refs, rejects, number = [], [], 1
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        raw, not_utf8 = text_record(json.dumps(row, ensure_ascii=False))
        if not_utf8 or len(row) != len(header):
            rejects.append(
                (f"row {number}", not_utf8 or f"ragged_row:{len(row)}_fields_for_{len(header)}_columns", raw)
            )
            continue
        for values, cell in zip(columns, row, strict=True):
            values.append(None if cell == "NULL" else cell)
        refs.append(f"row {number}")
    if damage:  # the rest of a cut gzip stream: one record, counted and quarantined
        rejects.append((f"row {number + 1}", damage, ""))
    raw_table = pa.table(
        {
            **{name: pa.array(values, pa.string()) for name, values in zip(header, columns, strict=True)},
            "record_ref": pa.array(refs, pa.string()),
        }
    )
    conn.register("export_arrow", raw_table)
    conn.execute("create or replace temp table export_raw as select * from export_arrow")
    conn.unregister("export_arrow")
    if rejects:
        conn.executemany(queries()["insert_reject"], rejects)


def input_view(conn: duckdb.DuckDBPyConnection, view: str, names: tuple[str, ...]) -> None:
    """Temp view `view` over `export_raw` with `record_ref` and exactly the format's columns
    `names`: a column the file lacks (FOCUS 1.0 has no SkuPriceDetails) reads as NULL text."""
    present = {row[0] for row in conn.execute("describe export_raw").fetchall()}
    columns = ", ".join(
        f"{_identifier(name) if name in present else 'null::varchar'} as {_identifier(name)}" for name in names
    )
    conn.execute(f"create or replace temp view {view} as select record_ref, {columns} from export_raw")  # noqa: S608 (view name and quoted column names from the format module's constants)


def finish_billing_file(conn: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> GpuBilling:
    """From the reader's `billing_typed` (record_ref, the line's columns, reason, skip_reason):
    `billing_lines` and `billing_quarantine` for the file, and where each of its records went,
    each count from its own table or predicate so `records = kept + skipped + quarantined` is a
    check and not an identity."""
    params = {"source_format": fmt, "source_file": str(path)}
    conn.execute(queries()["billing_quarantine"], params)
    (read,) = conn.execute(queries()["records_read"]).fetchone()
    (kept,) = conn.execute("select count(*) from billing_lines").fetchone()
    (quarantined,) = conn.execute("select count(*) from billing_quarantine").fetchone()
    skipped = dict(conn.execute(queries()["skipped_by_reason"]).fetchall())
    return GpuBilling(
        source_file=str(path),
        source_format=fmt,
        records=read,
        gpu_rows=kept,
        non_gpu_rows=sum(skipped.values()),
        quarantined=quarantined,
        skipped_by_reason=skipped,
    )


def _csv_header(path: Path) -> list[str] | None:
    """The header row as column names, read without reading the file; None when it does not
    read cleanly (then the careful reader takes the whole file)."""
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
            header = next(csv.reader(text), None)
    except (OSError, EOFError, zlib.error, csv.Error):
        return None
    if not header or any(text_record(cell)[1] for cell in header):
        return None
    names = _column_names([header[0].removeprefix("\ufeff"), *header[1:]])
    return names if names == [header[0].removeprefix("\ufeff"), *header[1:]] else None


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_names(header: list[str]) -> list[str]:
    """Header cells as column names: readable, non-empty and unique, as DuckDB would make them."""
    names: list[str] = []
    for index, cell in enumerate(header):
        name = text_record(cell)[0] or f"column{index}"
        while name in names or name == "record_ref":
            name += "_1"
        names.append(name)
    return names
