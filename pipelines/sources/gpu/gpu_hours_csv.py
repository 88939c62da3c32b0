"""A GPU-hours CSV → GPU billing lines: `day, pool, replica_id, gpu_type, gpu_count, hours, usd`,
one row per replica and day; `hours` are instance hours, `usd` is USD. For GPUs billed outside a
cloud's FOCUS export (a colocation invoice, a GPU cloud's dashboard export)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.sources.gpu.common import GpuBilling, finish_billing_file, input_view, read_csv_export
from pipelines.sources.queries import load_queries
from pipelines.sources.registry import register

GPU_HOURS_COLUMNS = ("day", "pool", "replica_id", "gpu_type", "gpu_count", "hours", "usd")


def read_gpu_hours_csv(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    rates: dict[str, float],
    pool_tag: str | None = None,
    replica_tag: str | None = None,
) -> GpuBilling:
    """One GPU-hours CSV → temp tables `billing_lines` and `billing_quarantine`. The signature is
    every GPU billing reader's; this one reads none of `rates` (amounts are USD) or the tags (the
    pool and replica are columns)."""
    queries = load_queries(__package__, "gpu_hours_csv.sql")
    read_csv_export(conn, path)
    input_view(conn, "gpu_hours_input", GPU_HOURS_COLUMNS)
    conn.execute(queries["billing_typed"])
    conn.execute(queries["billing_lines"], {"source_file": str(path)})
    return finish_billing_file(conn, path, "gpu_hours_csv")


register(
    "gpu_hours_csv",
    "gpu_billing",
    read_gpu_hours_csv,
    "a GPU-hours CSV (day, pool, replica_id, gpu_type, gpu_count, hours, usd)",
)
