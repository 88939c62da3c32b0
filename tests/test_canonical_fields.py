"""The canonical record's optional fields (DESIGN.md §1): typed, checked, kept; unknown fields in tags.

Each expectation is read by hand from the record written in the test.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import duckdb
import pytest

from pipelines.sources.gateway import day as gateway

DAY = "2026-11-20"

BASE = {
    "ts": "2026-11-20T10:00:00Z",
    "provider": "anthropic",
    "model": "claude-sonnet-4-5",
    "input_tokens": 10_000,
    "cached_input_tokens": 4_000,
    "cache_creation_input_tokens": 3_000,
    "output_tokens": 900,
}


def ingest(tmp_path, records: list[dict | str]):
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    with duckdb.connect() as conn:
        result = gateway.ingest_day(conn, tmp_path / "lake", [(path, "canonical")], dt.date.fromisoformat(DAY))
    with duckdb.connect() as conn:
        for dataset in ("gateway_requests", "gateway_quarantine"):
            file = tmp_path / "lake" / dataset / f"day={DAY}" / "data.parquet"
            conn.execute(f"create view {dataset} as select * from read_parquet('{file}')")  # noqa: S608 (tmp path)
        kept = conn.execute("select * from gateway_requests order by request_id")
        names = [d[0] for d in kept.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in kept.fetchall()}
        reasons = dict(conn.execute("select record_ref, reason from gateway_quarantine").fetchall())
    return result, rows, reasons


def test_every_optional_field_is_typed_and_kept(tmp_path):
    record = {
        **BASE,
        "request_id": "full",
        "service_tier": "priority",
        "cache_creation_1h_input_tokens": 1_000,
        "audio_input_tokens": 2_000,
        "audio_output_tokens": 300,
        "reasoning_tokens": 500,
        "web_search_requests": 2,
        "finish_reason": "max_tokens",  # Anthropic's word for the cap
        "max_tokens": 900,
        "stream": True,
        "conversation_id": "thread-7",
        "prompt_hash": "ph_abc",
        "prefix_hashes": [[1024, "h1"], [2048, "h2"], [4096, "h3"]],
        "reported_cost_usd": "0.0123456789012",
    }
    result, rows, _ = ingest(tmp_path, [record])
    assert (result.kept, result.quarantined) == (1, 0)
    row = rows["full"]
    assert row["service_tier"] == "priority"
    assert (row["cache_creation_input_tokens"], row["cache_creation_1h_input_tokens"]) == (3_000, 1_000)
    assert (row["audio_input_tokens"], row["audio_output_tokens"], row["reasoning_tokens"]) == (2_000, 300, 500)
    assert row["web_search_requests"] == 2
    assert (row["finish_reason"], row["max_tokens"], row["stream"]) == ("length", 900, True)
    assert (row["conversation_id"], row["prompt_hash"]) == ("thread-7", "ph_abc")
    assert row["prefix_hashes"] == [
        {"tokens": 1024, "hash": "h1"},
        {"tokens": 2048, "hash": "h2"},
        {"tokens": 4096, "hash": "h3"},
    ]
    assert row["reported_cost_usd"] == D("0.012345678901")  # 13 decimals in, 12 kept
    assert row["tags"] is None  # nothing unknown


def test_absent_optional_fields_are_zero_counts_and_null_facts(tmp_path):
    _, rows, _ = ingest(tmp_path, [{**BASE, "request_id": "bare"}])
    row = rows["bare"]
    counts = ("cache_creation_1h_input_tokens", "audio_input_tokens", "audio_output_tokens", "reasoning_tokens")
    assert [row[c] for c in counts] == [0, 0, 0, 0]
    assert row["web_search_requests"] == 0
    facts = ("service_tier", "finish_reason", "max_tokens", "stream", "conversation_id", "prompt_hash")
    assert [row[c] for c in facts] == [None] * 6
    assert (row["prefix_hashes"], row["reported_cost_usd"]) == (None, None)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("standard", "standard"),
        ("default", "standard"),  # OpenAI's word for its standard tier
        ("auto", "standard"),
        ("on_demand", "standard"),  # Bedrock
        ("Batch", "batch"),
        ("flex", "flex"),
        ("PRIORITY", "priority"),
    ],
)
def test_service_tier_words_map_to_the_canonical_tiers(tmp_path, written, canonical):
    _, rows, _ = ingest(tmp_path, [{**BASE, "request_id": "r", "service_tier": written}])
    assert rows["r"]["service_tier"] == canonical
    assert rows["r"]["tags"] is None


def test_an_unknown_tier_word_is_priced_standard_and_kept_in_tags(tmp_path):
    _, rows, _ = ingest(tmp_path, [{**BASE, "request_id": "r", "service_tier": "scale", "tags": {"team": "search"}}])
    assert rows["r"]["service_tier"] == "standard"
    assert json.loads(rows["r"]["tags"]) == {"team": "search", "service_tier_reported": "scale"}


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("stop", "stop"),
        ("end_turn", "stop"),  # Anthropic
        ("STOP", "stop"),  # Gemini
        ("length", "length"),
        ("MAX_TOKENS", "length"),
        ("tool_use", "tool_calls"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("refusal", "content_filter"),
        ("SAFETY", "content_filter"),
        ("pause_turn", "other"),
    ],
)
def test_finish_reasons_map_to_the_canonical_words(tmp_path, written, canonical):
    _, rows, _ = ingest(tmp_path, [{**BASE, "request_id": "r", "finish_reason": written}])
    assert rows["r"]["finish_reason"] == canonical


def test_unknown_top_level_fields_land_in_tags_never_dropped(tmp_path):
    records = [
        {**BASE, "request_id": "a", "team": "search", "experiment": {"arm": "b"}},
        {**BASE, "request_id": "b", "team": "web", "tags": {"env": "prod"}},
        {**BASE, "request_id": "c", "tags": {"env": "prod"}},
        # an explicit tag wins over a top-level field of the same name
        {**BASE, "request_id": "d", "env": "top", "tags": {"env": "tagged"}},
    ]
    _, rows, _ = ingest(tmp_path, records)
    assert json.loads(rows["a"]["tags"]) == {"team": "search", "experiment": {"arm": "b"}}
    assert json.loads(rows["b"]["tags"]) == {"team": "web", "env": "prod"}
    assert json.loads(rows["c"]["tags"]) == {"env": "prod"}
    assert json.loads(rows["d"]["tags"]) == {"env": "tagged"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"cache_creation_1h_input_tokens": 3_001}, "cache_1h_writes_exceed_cache_writes"),
        ({"audio_input_tokens": 10_001}, "audio_exceeds_input"),
        ({"audio_output_tokens": 901}, "audio_exceeds_output"),
        ({"reasoning_tokens": 901}, "reasoning_exceeds_output"),
        ({"reasoning_tokens": -1}, "negative:reasoning_tokens"),
        ({"web_search_requests": "two"}, "bad_type:web_search_requests"),
        ({"max_tokens": 1.5}, "bad_type:max_tokens"),
        ({"stream": "yes"}, "bad_type:stream"),
        ({"reported_cost_usd": "a lot"}, "bad_type:reported_cost_usd"),
        ({"reported_cost_usd": -0.01}, "negative:reported_cost_usd"),
        ({"service_tier": {"tier": "batch"}}, "bad_type:service_tier"),
        ({"prefix_hashes": {"1024": "h"}}, "bad_type:prefix_hashes"),
        ({"prefix_hashes": [[1024, "h1", "extra"]]}, "bad_type:prefix_hashes"),
        ({"prefix_hashes": [["1024", "h1"]]}, "bad_type:prefix_hashes"),
        ({"prefix_hashes": [[2048, "h2"], [1024, "h1"]]}, "prefix_hashes_not_ascending"),
    ],
)
def test_a_broken_optional_field_is_quarantined_with_its_reason(tmp_path, fields, reason):
    result, rows, reasons = ingest(tmp_path, [{**BASE, "request_id": "good"}, {**BASE, "request_id": "bad", **fields}])
    assert (result.kept, result.quarantined) == (1, 1)
    assert set(rows) == {"good"}
    assert reasons == {"line 2": reason}
