"""What every benchmark shares: the floor, the measured subprocess (wall time and peak RSS of that
process alone, with a timeout and a memory cap), generated inputs that `--keep` reuses, the
configs costwatch runs on, and the result lines and table.

The floor is a bare DuckDB script (`python bench/common.py floor ...`, SQL in `bench/sql/`): it
reads the same files costwatch reads, prices every request with the per-token prices (input, cache
read, output) of the same catalog the config names, and writes spend by day x feature x user x
provider x model to Parquet. No validation, quarantine, dedupe, lake, marts or gates: what any
reader of these files must pay at least. It runs as its own process, measured like costwatch's,
interpreter start included on both sides.

Peak RSS is the child's `ru_maxrss` from `os.wait4` on that child: its own high-water mark (and
that of any process it waited for), not this script's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
# A worktree without its own .venv runs the interpreter's (and its console script) instead.
COSTWATCH = str(BIN / "costwatch") if (BIN / "costwatch").exists() else str(Path(PYTHON).with_name("costwatch"))
SQL_DIR = Path(__file__).resolve().parent / "sql"
# The demo's catalog: it prices every model the generator routes to (fixtures/prices/README).
CATALOG = REPO / "fixtures" / "prices" / "litellm_2026_11.json"
DEMO_CONFIG = REPO / "pipelines" / "demo" / "costwatch.yaml"
GIB = 1024**3
FLOOR_FORMATS = ("canonical", "litellm_spend_logs", "otlp_json")


# ---------------------------------------------------------------------------------------------
# Measuring a subprocess
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Measurement:
    """One measured process: wall seconds from start to exit, its peak RSS (bytes), and how it
    ended (`ok`, `exit N`, `timed out after N s`, `killed at N GiB (cap)`, `SIGKILL ...`)."""

    label: str
    seconds: float
    peak_rss_bytes: int
    status: str
    log: Path

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def tail(self, lines: int = 6) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def measure(
    label: str,
    cmd: list[str],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    max_rss_bytes: int | None = None,
) -> Measurement:
    """Run `cmd` (stdout and stderr to `log`) in its own process group and measure it. A watchdog
    kills the whole group past `timeout_s` or when the group's resident memory passes
    `max_rss_bytes`; the result says so instead of raising, so one dead run never stops a bench."""
    log.parent.mkdir(parents=True, exist_ok=True)
    killed: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)

        def watch() -> None:
            while not done.wait(0.5):
                elapsed = time.perf_counter() - started
                reason = None
                if timeout_s is not None and elapsed > timeout_s:
                    reason = f"timed out after {timeout_s:g} s"
                elif max_rss_bytes is not None:
                    rss = group_rss_bytes(process.pid)
                    if rss > max_rss_bytes:
                        reason = (
                            f"killed at {rss / GIB:.1f} GiB after {elapsed:.0f} s (cap {max_rss_bytes / GIB:.3g} GiB)"
                        )
                if reason:
                    with lock:
                        if not done.is_set():
                            killed.append(reason)
                            with contextlib.suppress(ProcessLookupError):
                                os.killpg(process.pid, signal.SIGKILL)
                    return

        watchdog = threading.Thread(target=watch, daemon=True)
        watchdog.start()
        _, wait_status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        with lock:
            done.set()
        process.returncode = os.waitstatus_to_exitcode(wait_status)
    watchdog.join()
    code = process.returncode
    if killed:
        status = killed[0]
    elif code == 0:
        status = "ok"
    elif code < 0:
        name = signal.Signals(-code).name
        status = f"{name}" + (" (out of memory? the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else "")
    else:
        status = f"exit {code}"
    return Measurement(label, seconds, usage.ru_maxrss * 1024, status, log)


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in group `pgid` (the measured child and its children)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            # after the command: state, ppid, pgrp, ... rss (pages) is field 24 of stat, index 21 here
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


# ---------------------------------------------------------------------------------------------
# Inputs and configs
# ---------------------------------------------------------------------------------------------


def generate_inputs(
    out: Path,
    *,
    start: dt.date,
    days: int,
    requests_per_day: int,
    seed: int = 7,
    timeout_s: float | None = None,
    max_rss_bytes: int | None = None,
) -> Measurement | None:
    """`costwatch generate` into `out`, measured; None when `out` already holds exactly this
    generation (a `--keep` folder from an earlier bench)."""
    params = {"start": start.isoformat(), "days": days, "requests_per_day": requests_per_day, "seed": seed}
    marker = out / "bench-params.json"
    if marker.exists() and json.loads(marker.read_text()) == params:
        return None
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [COSTWATCH, "generate", "--days", str(days), "--requests-per-day", str(requests_per_day)]
    cmd += ["--seed", str(seed), "--start-date", start.isoformat(), "--out", str(out)]
    measured = measure(
        f"generate {days} d x {requests_per_day:,}/d",
        cmd,
        log=out.parent / f"{out.name}.generate.log",
        timeout_s=timeout_s,
        max_rss_bytes=max_rss_bytes,
    )
    if measured.ok:
        marker.write_text(json.dumps(params))
    return measured


def fresh_project(root: Path) -> Path:
    """An empty project folder (its data dir and Dagster instance) with the repository's
    dagster.yaml, so runs are configured as `make`'s are, without touching the repository's
    run history."""
    shutil.rmtree(root, ignore_errors=True)
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return root


def gateway_config(root: Path, *, start_date: dt.date, gateway_logs: list[dict]) -> Path:
    """A config with gateway logs only, priced by CATALOG (the catalog the floor reads)."""
    import yaml

    config = {
        "data_dir": "data",
        "start_date": start_date.isoformat(),
        "sources": {"gateway_logs": gateway_logs},
        "prices": {"catalog": str(CATALOG), "effective_from": "2025-01-01"},
    }
    path = root / "costwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def demo_config(root: Path, inputs: Path, *, start_date: dt.date) -> Path:
    """The shipped demo config over generated inputs in `inputs` (every `data/inputs/...` path
    rewritten), priced by CATALOG, starting at `start_date`."""
    import yaml

    config = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))

    def rewrite(value):
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        if isinstance(value, str) and value.startswith("data/inputs/"):
            return str(inputs / value.removeprefix("data/inputs/"))
        return value

    config = rewrite(config)
    config["start_date"] = start_date.isoformat()
    config["prices"]["catalog"] = str(CATALOG)
    config["prices"]["effective_from"] = min(start_date, dt.date(2026, 1, 1)).isoformat()
    path = root / "costwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def costwatch_run(
    label: str, root: Path, config: Path, days: tuple[dt.date, dt.date], *, timeout_s: float, max_rss_bytes: int
) -> Measurement:
    """`costwatch run` of one day or a range, as a subprocess of its own, on the project in `root`."""
    first, last = days
    window = ["--date", first.isoformat()] if first == last else ["--from", first.isoformat(), "--to", last.isoformat()]
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
    env.pop("COSTWATCH_CONFIG", None)
    log = root / "logs" / f"run_{first}_{last}.log"
    if log.exists():
        log = log.with_name(f"{log.stem}_{time.time_ns()}.log")
    cmd = [COSTWATCH, "--config", str(config), "run", *window]
    return measure(label, cmd, log=log, env=env, cwd=root, timeout_s=timeout_s, max_rss_bytes=max_rss_bytes)


def floor_run(
    label: str, workdir: Path, fmt: str, files: list[Path], days: tuple[dt.date, dt.date], *, timeout_s: float
) -> tuple[Measurement, dict]:
    """The floor over `files`, measured; returns the measurement and its totals (rows, cost)."""
    out = workdir / f"floor_{fmt}_{days[0]}_{days[1]}.parquet"
    cmd = [PYTHON, str(Path(__file__).resolve()), "floor", "--format", fmt, "--start", days[0].isoformat()]
    cmd += ["--end", days[1].isoformat(), "--out", str(out), *map(str, files)]
    measured = measure(label, cmd, log=workdir / "logs" / f"{out.stem}.log", timeout_s=timeout_s)
    totals = {}
    if measured.ok:
        totals = json.loads(measured.log.read_text().strip().splitlines()[-1])
    out.unlink(missing_ok=True)
    return measured, totals


def warehouse_totals(root: Path, days: tuple[dt.date, dt.date]) -> dict:
    """What costwatch kept and priced over `days` (from its warehouse), to set beside the floor's
    totals: a fast run that kept nothing would otherwise look like a win."""
    import duckdb

    try:
        with duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True) as conn:
            requests, cost = conn.execute(
                "select sum(requests), sum(cost_usd) from fct_spend_daily where day between $first and $last",
                {"first": days[0], "last": days[1]},
            ).fetchone()
        return {"rows": int(requests or 0), "cost_usd": float(cost or 0)}
    except duckdb.Error as error:
        return {"error": str(error).splitlines()[0]}


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """One benchmark's line: costwatch against the floor on the same input."""

    name: str
    costwatch: Measurement | None
    floor: Measurement | None
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.costwatch and self.floor and self.costwatch.ok and self.floor.ok and self.floor.seconds > 0:
            return self.costwatch.seconds / self.floor.seconds
        return None


def seconds_text(measured: Measurement | None) -> str:
    if measured is None:
        return "-"
    if not measured.ok:
        return f"{measured.status} ({measured.seconds:.1f} s)"
    return f"{measured.seconds:.1f} s"


def rss_text(measured: Measurement | None) -> str:
    return "-" if measured is None else f"{measured.peak_rss_bytes / GIB:.2f} GiB"


def print_result(result: Result) -> None:
    ratio = f"{result.ratio:.1f}x" if result.ratio is not None else "-"
    print(
        f"RESULT {result.name}: costwatch {seconds_text(result.costwatch)}, peak RSS {rss_text(result.costwatch)}"
        f" | floor {seconds_text(result.floor)}, peak RSS {rss_text(result.floor)} | ratio {ratio}"
        + (f" | target {result.target}" if result.target else "")
        + (f" | {result.note}" if result.note else ""),
        flush=True,
    )
    for measured in (result.costwatch, result.floor):
        if measured is not None and not measured.ok:
            print(f"    {measured.label}: {measured.status}; log {measured.log}; last lines:", flush=True)
            for line in measured.tail().splitlines():
                print(f"      {line}", flush=True)


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| benchmark | costwatch | peak RSS | floor | floor peak RSS | ratio | target | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        ratio = f"{result.ratio:.1f}x" if result.ratio is not None else "-"
        cells = [
            result.name,
            seconds_text(result.costwatch),
            rss_text(result.costwatch),
            seconds_text(result.floor),
            rss_text(result.floor),
            ratio,
            result.target,
            result.note,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    """Cores, memory and load, printed with the table: figures from a loaded machine are noisy."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return f"{os.cpu_count()} cores, {total_kib / 1024**2:.0f} GiB RAM, load average {load} (1, 5, 15 min)"


# ---------------------------------------------------------------------------------------------
# The floor script
# ---------------------------------------------------------------------------------------------


def floor(fmt: str, files: list[str], start: dt.date, end: dt.date, out: Path) -> dict:
    """Read `files` (format `fmt`), price them, write spend per day x feature x user x provider x
    model to `out`; return the rows read and the money priced."""
    import duckdb

    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        prices = (SQL_DIR / "catalog_prices.sql").read_text(encoding="utf-8")
        conn.execute(f"create temp macro catalog_prices(catalog_path) as table {prices}")
        reader = (SQL_DIR / f"floor_{fmt}.sql").read_text(encoding="utf-8")
        conn.execute(f"create temp macro floor_requests(files, start_day, end_day) as table {reader}")
        spend = (SQL_DIR / "floor_spend.sql").read_text(encoding="utf-8")
        params = {"files": files, "start_day": start.isoformat(), "end_day": end.isoformat(), "catalog": str(CATALOG)}
        conn.sql(spend, params=params).write_parquet(str(out))
        rows, cost, groups = conn.execute(
            "select sum(requests), sum(cost_usd), count(*) from read_parquet($out)", {"out": str(out)}
        ).fetchone()
    return {"rows": int(rows or 0), "cost_usd": float(cost or 0), "groups": groups}


def _floor_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench/common.py floor", description="the bare DuckDB floor")
    parser.add_argument("--format", choices=FLOOR_FORMATS, required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    print(json.dumps(floor(args.format, args.files, args.start, args.end, args.out)))


if __name__ == "__main__":
    if sys.argv[1:2] != ["floor"]:
        sys.exit("usage: python bench/common.py floor --format F --start D --end D --out OUT.parquet FILE...")
    _floor_main(sys.argv[2:])
