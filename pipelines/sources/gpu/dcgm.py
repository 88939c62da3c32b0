"""DCGM exporter samples in the Prometheus text format, as scraped with their timestamps →
GPU utilization samples:
`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-..",Hostname="..",pod=".."} 37 1730419200000`
(percent, milliseconds since the epoch). The replica is the `pod` label, else `Hostname`; the
GPU is `UUID`, else `gpu`. Other metrics and lines without a timestamp are skipped."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.sources.registry import register

_DCGM_SAMPLE = re.compile(
    r"^DCGM_FI_DEV_GPU_UTIL\{(?P<labels>[^}]*)\}\s+(?P<value>[-+0-9.eE]+)\s+(?P<timestamp_ms>\d+)\s*$"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def read_dcgm(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A scrape file → temp table `file_samples` (replica_id, gpu, ts, utilization 0-1)."""
    replicas, gpus, stamps, utilizations = [], [], [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            sample = _DCGM_SAMPLE.match(line.strip())
            if not sample:
                continue
            labels = dict(_LABEL.findall(sample["labels"]))
            replicas.append(labels.get("pod") or labels.get("Hostname"))
            gpus.append(labels.get("UUID") or labels.get("gpu") or "0")
            stamps.append(
                dt.datetime.fromtimestamp(int(sample["timestamp_ms"]) / 1000, dt.timezone.utc).replace(tzinfo=None)
            )
            utilizations.append(float(sample["value"]) / 100)
    conn.register(
        "dcgm_rows",
        pa.table(
            {
                "replica_id": pa.array(replicas, pa.string()),
                "gpu": pa.array(gpus, pa.string()),
                "ts": pa.array(stamps, pa.timestamp("us")),
                "utilization": pa.array(utilizations, pa.float64()),
            }
        ),
    )
    conn.execute("create or replace temp table file_samples as select * from dcgm_rows")
    conn.unregister("dcgm_rows")


register("dcgm", "gpu_telemetry", read_dcgm, "DCGM exporter samples (Prometheus text with timestamps)")
