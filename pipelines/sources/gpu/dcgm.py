"""DCGM exporter samples, as stored by the Prometheus that scraped them and written out with
their timestamps (`/federate`, a remote-read dump, `promtool tsdb dump(-openmetrics)`) →
GPU utilization samples:
`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-..",Hostname="..",pod=".."} 37 1730419200000`.

Which pod: the exporter labels each GPU's sample with the pod that holds the GPU (`pod`,
`namespace`, `container`). Scraped through the exporter's own Helm chart ServiceMonitor
(`honorLabels: false`), Prometheus renames those to `exported_pod`, `exported_namespace`,
`exported_container` and sets `pod`/`namespace` to the scrape target: the exporter. So the
replica is `exported_pod` (with its `exported_namespace`) when the sample has one, else `pod`
(with `namespace`), else `Hostname`. A `pod` that is the exporter itself (the `pod` of any
sample in the file that carries `exported_pod`) names no replica: that GPU had no workload
(the exporter wrote `pod=""`, which Prometheus drops) and its samples go to the `Hostname`.
The GPU is `UUID`, else `gpu`.

Timestamps, decided per file by its format:
- Prometheus text exposition format (`text/plain; version=0.0.4`): an int64 of
  **milliseconds** since the epoch.
- OpenMetrics: **seconds** since the epoch, a number that may have decimals
  (`1730419200.123`). An OpenMetrics exposition must end with the line `# EOF`; the
  Prometheus text format has no such line and cannot write a decimal timestamp.
So a file with a `# EOF` line or a timestamp with a decimal point or exponent is OpenMetrics
(seconds); any other file is the Prometheus text format (milliseconds). A timestamp that then
falls outside 1990-2200 means the file was mislabelled, and the read fails naming the fix.

Other metrics, comments and samples without a timestamp (a live `/metrics` page has none) are
skipped."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.sources.registry import register

METRIC = "DCGM_FI_DEV_GPU_UTIL"
_SAMPLE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{(?P<labels>(?:[^}\"]|\"(?:[^\"\\]|\\.)*\")*)\})?"
    r"\s+(?P<value>\S+)(?:\s+(?P<timestamp>[-+]?[0-9][0-9.eE+-]*))?\s*$"
)
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_EOF = "# EOF"
_EPOCH = dt.datetime(1970, 1, 1)
# Plausible sample times, in seconds since the epoch: 1990-01-01 to 2200-01-01.
_EARLIEST = Decimal(int((dt.datetime(1990, 1, 1) - _EPOCH).total_seconds()))
_LATEST = Decimal(int((dt.datetime(2200, 1, 1) - _EPOCH).total_seconds()))


def _utilization_samples(lines: list[str]) -> list[tuple[dict[str, str], str, str]]:
    """(labels, value text, timestamp text) of every DCGM_FI_DEV_GPU_UTIL sample with a timestamp."""
    samples = []
    for line in lines:
        if line.startswith("#") or METRIC not in line:
            continue
        sample = _SAMPLE.match(line)
        if not sample or not sample["timestamp"]:
            continue
        labels = dict(_LABEL.findall(sample["labels"] or ""))
        if (sample["name"] or labels.get("__name__")) != METRIC:
            continue
        samples.append((labels, sample["value"], sample["timestamp"]))
    return samples


def timestamp_unit(lines: list[str], stamps: list[str]) -> str:
    """`seconds` for OpenMetrics (a `# EOF` line, or a timestamp with decimals), else `milliseconds`."""
    openmetrics = any(line.strip() == _EOF for line in lines) or any(
        "." in stamp or "e" in stamp.lower() for stamp in stamps
    )
    return "seconds" if openmetrics else "milliseconds"


def _replica(labels: dict[str, str], exporter_pods: set[str]) -> str | None:
    if labels.get("exported_pod"):
        return labels["exported_pod"]
    if labels.get("pod") and labels["pod"] not in exporter_pods:
        return labels["pod"]
    return labels.get("Hostname") or None


def read_dcgm(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A scrape file → temp table `file_samples` (replica_id, gpu, ts, utilization 0-1)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = [line.strip() for line in handle]
    samples = _utilization_samples(lines)
    unit = timestamp_unit(lines, [stamp for _, _, stamp in samples])
    per_second = Decimal(1) if unit == "seconds" else Decimal(1000)
    exporter_pods = {labels["pod"] for labels, _, _ in samples if labels.get("exported_pod") and labels.get("pod")}
    replicas, gpus, stamps, utilizations = [], [], [], []
    for labels, value, stamp in samples:
        try:
            seconds = Decimal(stamp) / per_second
            utilization = float(value) / 100
        except (InvalidOperation, ValueError):
            continue
        if not _EARLIEST <= seconds < _LATEST:
            raise ValueError(
                f"{path}: DCGM sample timestamp {stamp} read as {unit} since the epoch is not in 1990-2200: "
                "a Prometheus text file has integer milliseconds; an OpenMetrics file has seconds and must end "
                "with the line `# EOF`. Export the samples again in one of the two formats (format: dcgm)."
            )
        ts = _EPOCH + dt.timedelta(microseconds=int((seconds * 1_000_000).to_integral_value()))
        replicas.append(_replica(labels, exporter_pods))
        gpus.append(labels.get("UUID") or labels.get("gpu") or "0")
        stamps.append(ts)
        utilizations.append(utilization)
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


register(
    "dcgm",
    "gpu_telemetry",
    read_dcgm,
    "DCGM exporter samples with timestamps (Prometheus text: ms; OpenMetrics: seconds)",
)
