"""nvidia-smi CSV logs (`nvidia-smi --query-gpu=timestamp,pci.bus_id,utilization.gpu,...
--format=csv -l 1`) → GPU utilization samples. The log carries no replica name, so the file
that holds it does: `nvidia_smi_<replica_id>[_YYYY-MM-DD].csv`."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from pipelines.sources.queries import load_queries
from pipelines.sources.registry import register

_DATE_SUFFIX = re.compile(r"_\d{4}-\d{2}-\d{2}$")


def replica_from_filename(path: Path, prefix: str = "nvidia_smi_") -> str:
    """`nvidia_smi_<replica_id>[_YYYY-MM-DD].csv` → replica_id."""
    stem = path.name.split(".")[0]
    stem = stem[len(prefix) :] if stem.startswith(prefix) else stem
    return _DATE_SUFFIX.sub("", stem)


def read_nvidia_smi(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A log → temp table `file_samples` (replica_id, gpu, ts, utilization 0-1). `--query-gpu`
    picks the columns and their order, so they are found by header name (`timestamp`,
    `utilization.gpu [%]`, and `pci.bus_id` or `index` to tell GPUs apart)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = [name.strip() for name in handle.readline().split(",")]
    if "timestamp" not in header or "utilization.gpu [%]" not in header:
        raise ValueError(f"{path}: not an nvidia-smi --format=csv log with timestamp and utilization.gpu [%]")
    roles = {"timestamp": "ts_text", "utilization.gpu [%]": "utilization_text"}
    gpu_column = "pci.bus_id" if "pci.bus_id" in header else "index" if "index" in header else None
    if gpu_column:
        roles[gpu_column] = "gpu_text"
    position = {name: index for index, name in enumerate(header)}  # a repeated name: its last column
    names = [f"c{index}" for index in range(len(header))]
    for name, role in roles.items():
        names[position[name]] = role
    queries = load_queries(__package__, "nvidia_smi.sql")
    conn.execute(
        queries["samples_by_gpu" if gpu_column else "samples_of_one_gpu"],
        {"path": str(path), "replica": replica_from_filename(path), "names": names},
    )


register("nvidia_smi", "gpu_telemetry", read_nvidia_smi, "nvidia-smi --query-gpu=... --format=csv logs")
