"""nvidia-smi CSV logs (`nvidia-smi --query-gpu=timestamp,pci.bus_id,utilization.gpu,...
--format=csv -l 1`) → GPU utilization samples. The log carries no replica name, so the file
that holds it does: `nvidia_smi_<replica_id>[_YYYY-MM-DD].csv`.

Every `--format=csv` variant nvidia-smi writes is read:
- with units (`csv`): header `utilization.gpu [%]`, values `37 %`;
- without units (`csv,nounits`): header `utilization.gpu`, values `37`;
- with a header: columns are found by name (unit suffix ` [..]` ignored), so `--query-gpu`
  may list any fields in any order as long as it has `timestamp` and `utilization.gpu`;
- without a header (`csv,noheader`): a header-less log carries no column names, so it must
  hold exactly the fields of the query NVIDIA documents for logging, in that order
  (`HEADERLESS_QUERY`, 13 columns). A header-less file of another width fails with a message
  that names the fix (log with the header, or with that query).
A value nvidia-smi cannot read (`[N/A]`, `[Not Supported]`) gives no sample.

Time zone: nvidia-smi writes `timestamp` in the host's local time with no offset, so the source's
`timezone` (an IANA name, `sources.gpu_telemetry[i].timezone`, default UTC) says which zone that
is; each sample's `ts` is its UTC instant, daylight saving included. In the hour a clock repeats
when it falls back, the log's line order tells the two passes apart (a log that starts inside that
hour's second pass reads it as the first: nothing in the file says otherwise)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb

from pipelines.sources.queries import load_queries
from pipelines.sources.registry import register

# The logging query of NVIDIA's nvidia-smi documentation ("Useful nvidia-smi queries"): the
# only column order costwatch assumes for a log without a header.
HEADERLESS_QUERY = (
    "timestamp",
    "name",
    "pci.bus_id",
    "driver_version",
    "pstate",
    "pcie.link.gen.max",
    "pcie.link.gen.current",
    "temperature.gpu",
    "utilization.gpu",
    "utilization.memory",
    "memory.total",
    "memory.free",
    "memory.used",
)
HEADERLESS_COMMAND = f"nvidia-smi --query-gpu={','.join(HEADERLESS_QUERY)} --format=csv,noheader -l 1"
_DATE_SUFFIX = re.compile(r"_\d{4}-\d{2}-\d{2}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_.]*(?: \[[^\]]*\])?$")  # `utilization.gpu [%]` or `utilization.gpu`
_TIMESTAMP = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}")
_GPU_COLUMNS = ("pci.bus_id", "uuid", "gpu_uuid", "index")  # the first present tells GPUs apart


def replica_from_filename(path: Path, prefix: str = "nvidia_smi_") -> str:
    """`nvidia_smi_<replica_id>[_YYYY-MM-DD].csv` → replica_id."""
    stem = path.name.split(".")[0]
    stem = stem[len(prefix) :] if stem.startswith(prefix) else stem
    return _DATE_SUFFIX.sub("", stem)


def field_name(cell: str) -> str:
    """A header cell as its `--query-gpu` field: `utilization.gpu [%]` → `utilization.gpu`."""
    return cell.strip().split(" [", 1)[0]


def _first_row(path: Path) -> list[str]:
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.reader(handle, skipinitialspace=True):
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row]
    return []


def log_columns(path: Path) -> tuple[list[str], bool]:
    """The log's `--query-gpu` fields in column order, and whether its first row is a header."""
    first = _first_row(path)
    if first and all(_FIELD.match(cell) for cell in first):
        fields = [field_name(cell) for cell in first]
        missing = [name for name in ("timestamp", "utilization.gpu") if name not in fields]
        if missing:
            raise ValueError(
                f"{path}: the nvidia-smi log has no {' or '.join(missing)} column; add "
                f"{','.join(missing)} to --query-gpu (format: nvidia_smi)"
            )
        return fields, True
    if len(first) == len(HEADERLESS_QUERY) and _TIMESTAMP.match(first[0]):
        return list(HEADERLESS_QUERY), False
    raise ValueError(
        f"{path}: an nvidia-smi log without a header row must hold the {len(HEADERLESS_QUERY)} fields of "
        f"`{HEADERLESS_COMMAND}` in that order, but its first row has {len(first)} columns"
        f"{'' if first and _TIMESTAMP.match(first[0]) else ' and does not start with a timestamp'}; "
        "log with a header (drop `noheader` from --format) so any --query-gpu fields can be read, or log "
        "with that exact query (format: nvidia_smi)"
    )


def read_nvidia_smi(conn: duckdb.DuckDBPyConnection, path: Path, timezone: str = "UTC") -> None:
    """A log → temp table `file_samples` (replica_id, gpu, ts in UTC, utilization 0-1). Columns
    are found by field name (`timestamp`, `utilization.gpu`, and `pci.bus_id`, `uuid` or `index`
    to tell GPUs apart), from the header or, without one, from `HEADERLESS_QUERY`; `timezone` is
    the IANA name of the zone the host's clock was set to when it wrote the log."""
    if not _first_row(path):  # a log just started, or a logger that died: no samples, no error
        conn.execute(load_queries(__package__, "nvidia_smi.sql")["no_samples"])
        return
    fields, has_header = log_columns(path)
    roles = {"timestamp": "ts_text", "utilization.gpu": "utilization_text"}
    gpu_column = next((name for name in _GPU_COLUMNS if name in fields), None)
    if gpu_column:
        roles[gpu_column] = "gpu_text"
    position = {name: index for index, name in enumerate(fields)}  # a repeated name: its last column
    names = [f"c{index}" for index in range(len(fields))]
    for name, role in roles.items():
        names[position[name]] = role
    queries = load_queries(__package__, "nvidia_smi.sql")
    conn.execute(
        queries["samples_by_gpu" if gpu_column else "samples_of_one_gpu"],
        {"path": str(path), "replica": replica_from_filename(path), "names": names, "header": has_header},
    )
    conn.execute(queries["samples_in_utc"], {"timezone": timezone})


register(
    "nvidia_smi",
    "gpu_telemetry",
    read_nvidia_smi,
    "nvidia-smi --query-gpu=... --format=csv[,nounits][,noheader] logs",
    local_timestamps=True,
)
