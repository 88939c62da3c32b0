"""Load tests of self-hosted pools (`pools.<name>.load_test`): a batching-curve CSV per pool, as
`vllm bench serve`-style sweeps are usually summarised: one row per batch size with its request
latency (s) and sustained rate (requests/s)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

LOAD_TEST_SCHEMA = pa.schema(
    [
        ("pool", pa.string()),
        ("batch_size", pa.int32()),
        ("request_latency_s", pa.float64()),
        ("requests_per_s", pa.float64()),
        ("prompt_tokens", pa.int32()),
        ("output_tokens", pa.int32()),
    ]
)


def load_test_rows(pools) -> pa.Table:
    """Every configured pool's load test, in `LOAD_TEST_SCHEMA` (pools without one add nothing)."""
    tables = [LOAD_TEST_SCHEMA.empty_table()]
    with duckdb.connect() as scratch:
        for spec in pools:
            if spec.load_test is None:
                continue
            table = scratch.sql(
                "select $pool as pool, batch_size, request_latency_s, requests_per_s, prompt_tokens, output_tokens "
                "from read_csv($path, header = true)",
                params={"pool": spec.name, "path": str(spec.load_test)},
            ).to_arrow_table()
            tables.append(table.cast(LOAD_TEST_SCHEMA))
    return pa.concat_tables(tables)
