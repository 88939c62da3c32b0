"""Great Expectations gates on one day of 1M priced requests, inside DuckDB; print wall time,
rows/s and peak memory.

The day is built by the real pipeline (generate → ingest → price, through Dagster). Then, on the
resulting warehouse, the same run measures:
- the `fct_requests` suite (every gate: unique ids, money and tokens >= 0, cached <= input,
  unpriced share) as one GX validation inside DuckDB — what the daily run does;
- baseline: the same rules as one hand-written DuckDB aggregate (the floor for these checks);
- for scale: loading the day's rows into pandas, which a pandas-based GX datasource would do
  before checking anything.

    .venv/bin/python bench/bench_gx.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_ingest import DAY, peak_rss_mib, report, run_one_day  # noqa: E402

BASELINE_SQL = """
select count(*),
       count(*) - count(distinct request_id),
       count(*) filter (where cost_usd < 0 or list_cost_usd < 0 or gateway_cache_avoided_usd < 0),
       count(*) filter (where least(input_tokens, cached_input_tokens, cache_creation_input_tokens, output_tokens) < 0
                           or cached_input_tokens > input_tokens or cache_creation_input_tokens > input_tokens),
       count(*) filter (where pricing_basis <> 'gpu_billing' and not priced)
from fct_requests where day = $day
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="costwatch-bench-gx-"))
    try:
        config_path, _ = run_one_day(root, args.requests)
        from pipelines.models.engine import prepare_session
        from pipelines.quality.checks import load_suites
        from pipelines.quality.engine import validate
        from pipelines.resources.config import load_config

        config = load_config(config_path)
        with duckdb.connect(str(config.warehouse_path)) as conn:
            prepare_session(conn)
            rows = conn.execute("select count(*) from fct_requests where day = $day", {"day": DAY}).fetchone()[0]

            started = time.perf_counter()
            baseline = conn.execute(BASELINE_SQL, {"day": DAY}).fetchone()
            report("baseline: the same rules as one DuckDB aggregate", rows, time.perf_counter() - started)
            print(
                f"    violations: duplicate ids {baseline[1]}, negative money {baseline[2]}, "
                f"token rules {baseline[3]}, unpriced {baseline[4]}"
            )

            rss_before = peak_rss_mib()
            suites = load_suites("fct_requests")
            for attempt in ("cold", "warm"):
                started = time.perf_counter()
                results = [result for suite in suites for result in validate(conn, suite, config, DAY)]
                report(f"GX suite fct_requests inside DuckDB ({attempt})", rows, time.perf_counter() - started)
            for result in results:
                print(
                    f"    {result.gate.name:<22} passed={result.passed!s:<5} rows={result.rows_validated:,} "
                    f"unexpected={result.unexpected_rows:,}"
                )
            print(f"peak RSS after GX: {peak_rss_mib():,.0f} MiB (before: {rss_before:,.0f} MiB)")

            started = time.perf_counter()
            frame = conn.execute("select * from fct_requests where day = $day", {"day": DAY}).df()
            report("for scale: only loading the day into pandas", len(frame), time.perf_counter() - started)
            print(
                f"    pandas frame: {frame.memory_usage(deep=True).sum() / 2**20:,.0f} MiB; "
                f"peak RSS now {peak_rss_mib():,.0f} MiB"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
