"""Where one day's run spends its time: ingest and price N gateway requests of one day in-process
and print the slowest Dagster steps and the GX gates' validation times (a diagnostic; bench_gx.py
builds its day with it).

The issue-12 figures (costwatch as a subprocess against the pricing floor, peak RSS of each) are
bench/bench.py's; `make bench` runs that, not this. The baseline here is weaker than that floor:
DuckDB's own `read_ndjson` counting the rows, no pricing and no writes.

    .venv/bin/python bench/bench_ingest.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.demo import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 10, 6)  # a Tuesday: full weekday traffic


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one_day(root: Path, requests: int) -> tuple[Path, float]:
    """Generate `requests` for DAY under root and run the daily job on them; print the figures.
    Returns the config path and the reader baseline in seconds."""
    started = time.perf_counter()
    manifest = generate(root / "inputs", start_date=DAY, days=1, requests_per_day=requests, seed=11)
    print(f"generated {manifest['totals']['lines']:,} lines in {time.perf_counter() - started:.1f}s")
    day_file = root / "inputs" / "gateway" / f"requests_{DAY}.jsonl.gz"

    with duckdb.connect() as conn:
        started = time.perf_counter()
        baseline_rows = conn.execute(
            "select count(*) from read_ndjson($path, ignore_errors = true)", {"path": str(day_file)}
        ).fetchone()[0]
        baseline = time.perf_counter() - started
    report("baseline: duckdb read_ndjson count", baseline_rows, baseline)

    config_path = root / "costwatch.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "data_dir": "data",
                "start_date": DAY.isoformat(),
                "sources": {"gateway_logs": [{"path": "inputs/gateway/*.jsonl.gz", "format": "canonical"}]},
                "prices": {"catalog": str(REPO / "fixtures/prices/model_prices.json"), "effective_from": "2025-09-01"},
            }
        )
    )
    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.defs.schedules import DAILY_JOB

    job = build_definitions(config_path).resolve_job_def(DAILY_JOB)
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        started = time.perf_counter()
        result = job.execute_in_process(
            partition_key=DAY.isoformat(),
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        elapsed = time.perf_counter() - started
        steps = {
            event.step_key: event.event_specific_data.duration_ms / 1000
            for event in result.all_events
            if event.event_type_value == "STEP_SUCCESS"
        }
        gates = {
            f"{check.asset_key.to_user_string()}.{check.check_name}": check.metadata["validation_seconds"].value
            for check in result.get_asset_check_evaluations()
            if "validation_seconds" in check.metadata
        }
    with duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True) as conn:
        lines, kept = conn.execute("select sum(lines), sum(kept) from gateway_ingest_audit").fetchone()
        cost = conn.execute("select sum(cost_usd) from fct_spend_daily").fetchone()[0]
    report("costwatch daily run: ingest + price + marts + gates (Dagster, in-process)", lines, elapsed)
    for step, seconds in sorted(steps.items(), key=lambda item: -item[1])[:5]:
        print(f"    {step:<28} {seconds:6.2f}s")
    # The gates of one suite share one GX validation; each reports that validation's time.
    for gate, seconds in sorted(gates.items()):
        print(f"    GX gate {gate:<52} {seconds:6.2f}s")
    print(f"kept {kept:,} of {lines:,} lines; priced ${cost:,.2f}")
    print(f"slowdown vs baseline reader: {elapsed / baseline:.1f}x")
    return config_path, baseline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="costwatch-bench-"))
    try:
        run_one_day(root, args.requests)
        print(f"peak RSS of this process: {peak_rss_mib():,.0f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(label: str, rows: int, seconds: float) -> None:
    print(f"{label}: {rows:,} rows in {seconds:.2f}s = {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
