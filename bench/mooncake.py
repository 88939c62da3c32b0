"""The Mooncake conversation trace (kvcache-ai/Mooncake, FAST'25; fixtures/mooncake/, Apache-2.0)
as canonical gateway records with `prefix_hashes`, and the prompt-cache opportunity costwatch finds
in it when those calls are priced as one API model.

The trace is one hour of Kimi's production requests: `timestamp` (ms from the start),
`input_length`, `output_length` and `hash_ids`, one id per 512-token block of the prompt, where
equal leading ids mean a reusable prefix. A request's checkpoint after block i covers
min(512 x (i + 1), input_length) tokens, and its hash chains the ids of blocks 0..i, so two
requests share a checkpoint exactly when they share every block up to it. The trace has no model,
user or cache usage: each call is priced as MODEL with no cache reads or writes (what the traffic
costs without prompt caching), so the savings are what caching would have earned on it.

    .venv/bin/python bench/mooncake.py [--model claude-sonnet-4-5] [--provider anthropic] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO / "fixtures" / "mooncake" / "conversation_trace.jsonl"
CATALOG = REPO / "fixtures" / "prices" / "litellm_2026_11.json"
BLOCK_TOKENS = 512
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)  # the trace's hour, placed on one day


def canonical_records(model: str, provider: str, trace: Path = TRACE) -> Iterator[dict]:
    with trace.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            row = json.loads(line)
            chained, prefixes = b"", []
            for block, block_id in enumerate(row["hash_ids"]):
                chained = hashlib.blake2b(chained + str(block_id).encode() + b",", digest_size=12).digest()
                prefixes.append([min(BLOCK_TOKENS * (block + 1), row["input_length"]), chained.hex()])
            yield {
                "request_id": f"mooncake-{number:05d}",
                "ts": (START + dt.timedelta(milliseconds=row["timestamp"])).isoformat().replace("+00:00", "Z"),
                "provider": provider,
                "model": model,
                "feature": "mooncake_conversation",
                "user_id": "kimi",
                "input_tokens": row["input_length"],
                "output_tokens": row["output_length"],
                "prefix_hashes": prefixes,
            }


def write_project(root: Path, model: str, provider: str) -> Path:
    (root / "inputs").mkdir(parents=True)
    with (root / "inputs" / "mooncake.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(record) + "\n" for record in canonical_records(model, provider))
    config = {
        "data_dir": "data",
        "start_date": START.date().isoformat(),
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
        "prices": {"catalog": str(CATALOG), "effective_from": "2025-09-01"},
    }
    (root / "costwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root / "costwatch.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="claude-sonnet-4-5")
    parser.add_argument("--provider", default="anthropic")
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="mooncake-"))
    try:
        config = write_project(root, args.model, args.provider)
        costwatch = Path(sys.executable).with_name("costwatch")
        day = START.date().isoformat()
        environment = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
        subprocess.run([str(costwatch), "--config", str(config), "run", "--date", day], check=True, env=environment)
        with duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True) as conn:
            conn.execute("set TimeZone = 'UTC'")
            names = [
                "requests",
                "input_tokens",
                "reusable_tokens_ttl_short",
                "cache_write_tokens_ttl_short",
                "reusable_tokens_ttl_long",
                "cache_write_tokens_ttl_long",
                "actual_cost_usd",
                "savings_usd_ttl_short",
                "savings_usd_ttl_long",
                "best_policy",
            ]
            row = conn.execute(f"select {', '.join(names)} from fct_prompt_cache_opportunity_daily").fetchone()  # noqa: S608 (column names from this script)
        for name, value in zip(names, row, strict=True):
            print(f"{name:30} {value}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
