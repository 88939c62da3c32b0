"""Gateway log ingest: token semantics per source, quarantine, duplicates, UTC days, re-runs."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
from decimal import Decimal as D

import duckdb
import pytest
from conftest import REPO, request

from pipelines.sources.gateway import day as gateway
from pipelines.sources.gateway.records import RAW_SCHEMA
from pipelines.sources.quarantine import QUARANTINE_SCHEMA
from pipelines.sources.registry import formats

FIXTURES = REPO / "fixtures" / "gateway"


def ingest(tmp_path, files, day):
    with duckdb.connect() as conn:
        return gateway.ingest_day(conn, tmp_path / "lake", files, dt.date.fromisoformat(day))


def stale(tmp_path, files):
    with duckdb.connect() as conn:
        return gateway.stale_days(conn, tmp_path / "lake", files)


def lake_rows(tmp_path, dataset, day):
    path = tmp_path / "lake" / dataset / f"day={day}" / "data.parquet"
    with duckdb.connect() as conn:
        conn.execute("select * from read_parquet($path)", {"path": str(path)})
        names = [d[0] for d in conn.description]
        return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


# --- token semantics, one rule per source -------------------------------------------------------


def test_canonical_input_tokens_include_cached_tokens(tmp_path):
    """Canonical = OpenAI/OTel convention: input_tokens counts cache reads and writes too."""
    path = tmp_path / "a.jsonl"
    path.write_text(
        json.dumps(
            request(
                "r1", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens=1500, cached_input_tokens=1024, output_tokens=10
            )
        )
        + "\n"
    )
    ingest(tmp_path, [(path, "canonical")], "2026-11-20")
    (row,) = lake_rows(tmp_path, "gateway_requests", "2026-11-20")
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_creation_input_tokens"]) == (1500, 1024, 0)


@pytest.mark.parametrize("export", ["litellm_spend_logs.csv", "litellm_spend_logs.json"])
def test_litellm_prompt_tokens_include_cache_reads_from_either_field(tmp_path, export):
    """LiteLLM reports OpenAI-style usage for every provider: prompt_tokens includes the cached
    tokens, found in usage_object.prompt_tokens_details.cached_tokens (OpenAI) or
    usage_object.cache_read_input_tokens / cache_creation_input_tokens (Anthropic)."""
    files = [(FIXTURES / export, "litellm_spend_logs")]
    result = ingest(tmp_path, files, "2026-11-20")
    assert (result.lines, result.kept, result.quarantined) == (4, 4, 0)
    rows = {row["request_id"]: row for row in lake_rows(tmp_path, "gateway_requests", "2026-11-20")}
    openai = rows["chatcmpl-001"]
    assert (openai["input_tokens"], openai["cached_input_tokens"], openai["cache_creation_input_tokens"]) == (
        3000,
        2048,
        0,
    )
    assert openai["output_tokens"] == 400 and openai["duration_ms"] == 2500
    assert (openai["provider"], openai["model"], openai["feature"], openai["user_id"]) == (
        "openai",
        "gpt-4o",
        "chat",
        "alice",
    )
    anthropic = rows["msg_002"]
    assert (anthropic["input_tokens"], anthropic["cached_input_tokens"], anthropic["cache_creation_input_tokens"]) == (
        7000,
        4000,
        1000,
    )
    assert anthropic["feature"] == "search_rag"  # from request_tags "feature:search_rag"
    assert anthropic["ts"] == dt.datetime(2026, 11, 20, 23, 59, 59, 900000, tzinfo=dt.timezone.utc)
    assert rows["chatcmpl-003"]["status"] == "error"
    assert rows["chatcmpl-004"]["gateway_cache_hit"] is True
    # No end user on the request: the spend belongs to the key's owner (`user`).
    assert rows["chatcmpl-004"]["user_id"] == "key-owner-2"


def test_litellm_rows_price_like_the_canonical_rule(project):
    project.write_config(
        sources={"gateway_logs": [{"path": str(FIXTURES / "litellm_spend_logs.csv"), "format": "litellm_spend_logs"}]}
    )
    project.run_day("2026-11-20")
    cost = dict(project.query("select request_id, cost_usd from fct_requests"))
    # gpt-4o: 952 uncached x 2.5e-6 + 2,048 cached x 1.25e-6 + 400 out x 1e-5
    assert cost["chatcmpl-001"] == 952 * D("2.5e-6") + 2048 * D("1.25e-6") + 400 * D("1e-5")
    # sonnet: 2,000 uncached x 3e-6 + 4,000 read x 3e-7 + 1,000 written x 3.75e-6 + 300 out x 1.5e-5
    assert cost["msg_002"] == 2000 * D("3e-6") + 4000 * D("3e-7") + 1000 * D("3.75e-6") + 300 * D("1.5e-5")
    assert cost["chatcmpl-004"] == 0  # LiteLLM cache hit


# --- LiteLLM rows as LiteLLM itself writes them (fixtures/gateway/README.md says how) ----------

REAL_LITELLM = ["litellm_real_spend_logs.csv", "litellm_real_spend_logs.json"]
SONNET_ID = "chatcmpl-47911ee2-dfeb-4822-ad74-4183f47604c2"
CACHE_HIT_ID = "chatcmpl-mini-1_cache_hit1796220255.7819548"


@pytest.mark.parametrize("export", REAL_LITELLM)
def test_litellm_real_rows_are_all_kept_with_their_tokens(tmp_path, export):
    """Five rows built by litellm 1.110.2's own get_logging_payload and exported from Postgres.
    Every row that did not touch LiteLLM's cache says cache_hit "None"; all five must be kept.
    Numbers read by hand from the fixture: prompt_tokens (LiteLLM's, cache reads and writes
    included), metadata.usage_object's cache reads (cache_read_input_tokens or
    prompt_tokens_details.cached_tokens) and writes, completion_tokens, request_duration_ms."""
    result = ingest(tmp_path, [(FIXTURES / export, "litellm_spend_logs")], "2026-11-20")
    assert (result.lines, result.kept, result.quarantined, result.duplicates) == (5, 5, 0, 0)
    rows = {row["request_id"]: row for row in lake_rows(tmp_path, "gateway_requests", "2026-11-20")}
    got = {
        rid: (
            row["provider"],
            row["model"],
            row["input_tokens"],
            row["cached_input_tokens"],
            row["cache_creation_input_tokens"],
            row["output_tokens"],
            row["gateway_cache_hit"],
            row["feature"],
            row["user_id"],
            row["duration_ms"],
            row["status"],
        )
        for rid, row in rows.items()
    }
    assert got == {
        # Azure deployment eu/gpt-4o-2024-08-06: 4,096 of the 5,200 prompt tokens were cache reads
        "chatcmpl-azure-eu-1": (
            "azure",
            "eu/gpt-4o-2024-08-06",
            5200,
            4096,
            0,
            310,
            False,
            "summaries",
            "alice",
            1500,
            "ok",
        ),
        # no end user on the request: the key's owner
        "together-1": (
            "together_ai",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            820,
            0,
            0,
            45,
            False,
            "triage",
            "key-owner-1",
            1750,
            "ok",
        ),
        # Anthropic answered input 1,500 + cache read 4,000 + cache write 1,500 (1,000 5m + 500 1h);
        # LiteLLM's prompt_tokens = 7,000 already holds all three: the canonical inclusive rule
        SONNET_ID: (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            7000,
            4000,
            1500,
            300,
            False,
            "search_rag",
            "key-owner-1",
            2000,
            "ok",
        ),
        "chatcmpl-mini-1": ("openai", "gpt-4o-mini", 1200, 0, 0, 80, False, "support_bot", "carol", 2250, "ok"),
        # the same request again, answered from LiteLLM's cache (cache_hit "True", model "openai/gpt-4o-mini")
        CACHE_HIT_ID: ("openai", "gpt-4o-mini", 1200, 0, 0, 80, True, "support_bot", "carol", 2500, "ok"),
    }
    # Postgres wrote timestamp(3) without a zone; LiteLLM stores UTC
    assert rows[SONNET_ID]["ts"] == dt.datetime(2026, 11, 20, 9, 14, 0, 250000, tzinfo=dt.timezone.utc)
    tags = {rid: json.loads(row["tags"]) for rid, row in rows.items()}
    # LiteLLM's own catalog entry: model_map_value.key, the whole key (its model_map_key alone is
    # the bare `gpt-4o-2024-08-06` for the Azure call)
    assert {rid: t["model_map_key"] for rid, t in tags.items()} == {
        "chatcmpl-azure-eu-1": "azure/gpt-4o-2024-08-06",
        "together-1": "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        SONNET_ID: "claude-sonnet-4-5-20250929",
        "chatcmpl-mini-1": "gpt-4o-mini-2024-07-18",
        CACHE_HIT_ID: "gpt-4o-mini-2024-07-18",
    }
    # Its charge (`spend`, exact from its text), the 1-hour share of the writes, the tier
    assert {rid: row["reported_cost_usd"] for rid, row in rows.items()} == {
        "chatcmpl-azure-eu-1": D("0.010980000000"),  # 0.010980000000000002 at 1e-12
        "together-1": _spend_at_1e12("together-1"),
        SONNET_ID: D("0.01695"),
        "chatcmpl-mini-1": _spend_at_1e12("chatcmpl-mini-1"),  # 0.00022799999999999999
        CACHE_HIT_ID: D(0),
    }
    assert {rid: row["cache_creation_1h_input_tokens"] for rid, row in rows.items()} == {
        rid: (500 if rid == SONNET_ID else 0) for rid in rows
    }
    assert {rid: row["service_tier"] for rid, row in rows.items()} == {
        rid: ("standard" if rid == SONNET_ID else None) for rid in rows
    }
    assert rows[SONNET_ID]["reasoning_tokens"] == 0  # completion_tokens_details.reasoning_tokens


def _spend_at_1e12(request_id: str) -> D:
    """LiteLLM's `spend` for a fixture row, from its JSON text, rounded to the lake's 1e-12."""
    rows = json.loads((FIXTURES / "litellm_real_spend_logs.json").read_text(encoding="utf-8"), parse_float=D)
    return next(row["spend"] for row in rows if row["request_id"] == request_id).quantize(D("1e-12"))


def test_litellm_real_rows_price_by_their_whole_provider_model_key(project):
    """Prices read by hand from fixtures/prices/model_prices.json. A LiteLLM row names the catalog
    entry LiteLLM priced it with (`model_map_information`), and that entry prices it: the Azure EU
    deployment's call is `azure/gpt-4o-2024-08-06` there, so ours equals LiteLLM's `spend`. The same
    call logged without that key (a canonical record) resolves its whole multi-slash name to the EU
    deployment's own entry, `azure/eu/gpt-4o-2024-08-06`, 10 % above."""
    source = {"path": str(FIXTURES / "litellm_real_spend_logs.csv"), "format": "litellm_spend_logs"}
    without_key = request(
        "canonical-azure-eu",
        "2026-11-20T09:00:00Z",
        "eu/gpt-4o-2024-08-06",
        provider="azure",
        input_tokens=5200,
        cached_input_tokens=4096,
        output_tokens=310,
    )
    canonical = project.write_jsonl("canonical.jsonl", [without_key])
    project.write_config(sources={"gateway_logs": [source, {"path": str(canonical), "format": "canonical"}]})
    project.run_day("2026-11-20")
    rows = project.query("select request_id, price_key, cost_usd, reported_cost_usd from fct_requests")
    key = {rid: price_key for rid, price_key, _, _ in rows}
    cost = {rid: cost_usd for rid, _, cost_usd, _ in rows}
    reported = {rid: reported_usd for rid, _, _, reported_usd in rows}
    # azure/gpt-4o-2024-08-06: 1,104 uncached x 2.5e-6 + 4,096 cached x 1.25e-6 + 310 out x 1e-5
    assert key["chatcmpl-azure-eu-1"] == "azure/gpt-4o-2024-08-06"
    assert cost["chatcmpl-azure-eu-1"] == 1104 * D("2.5e-6") + 4096 * D("1.25e-6") + 310 * D("1e-5")
    assert cost["chatcmpl-azure-eu-1"] == reported["chatcmpl-azure-eu-1"] == D("0.01098")
    # azure/eu/gpt-4o-2024-08-06: 1,104 x 2.75e-6 + 4,096 x 1.375e-6 + 310 x 1.1e-5
    assert key["canonical-azure-eu"] == "azure/eu/gpt-4o-2024-08-06"
    assert cost["canonical-azure-eu"] == 1104 * D("2.75e-6") + 4096 * D("1.375e-6") + 310 * D("1.1e-5")
    # together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo: 820 in + 45 out, both 8.8e-7
    assert cost["together-1"] == 820 * D("8.8e-7") + 45 * D("8.8e-7")
    # gpt-4o-mini: 1,200 in x 1.5e-7 + 80 out x 6e-7; its repeat came from LiteLLM's cache: free
    assert cost["chatcmpl-mini-1"] == 1200 * D("1.5e-7") + 80 * D("6e-7")
    assert cost[CACHE_HIT_ID] == 0


def test_litellm_real_export_says_none_for_calls_that_missed_the_cache():
    """The pin behind the fix: the fixture really holds "None" and "True", as LiteLLM writes them."""
    with (FIXTURES / "litellm_real_spend_logs.csv").open(newline="") as f:
        cells = {row["request_id"]: row["cache_hit"] for row in csv.DictReader(f)}
    assert cells == {
        "chatcmpl-azure-eu-1": "None",
        "together-1": "None",
        SONNET_ID: "None",
        "chatcmpl-mini-1": "None",
        CACHE_HIT_ID: "True",
    }


def test_litellm_provider_slash_model_is_the_catalog_key():
    """Why the model is kept whole after its provider: LiteLLM's catalog keys multi-slash names
    as `<provider>/<rest>` (the rest alone is no key)."""
    catalog = json.loads((REPO / "fixtures" / "prices" / "model_prices.json").read_text())
    for provider, model in [
        ("azure", "eu/gpt-4o-2024-08-06"),
        ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ]:
        assert catalog[f"{provider}/{model}"]["litellm_provider"] == provider
        assert model not in catalog


LITELLM_ROW = {
    "request_id": "r",
    "startTime": "2026-11-20T10:00:00",
    "model": "gpt-4o",
    "custom_llm_provider": "openai",
    "prompt_tokens": 10,
    "completion_tokens": 2,
    "status": "success",
}


@pytest.mark.parametrize(
    ("cache_hit", "expected"),
    [("None", False), ("True", True), ("False", False), (True, True), (False, False), (None, False), ("", False)],
)
def test_litellm_cache_hit_in_every_form_litellm_writes(tmp_path, cache_hit, expected):
    path = tmp_path / "spend.jsonl"
    path.write_text(json.dumps({**LITELLM_ROW, "cache_hit": cache_hit}) + "\n")
    result = ingest(tmp_path, [(path, "litellm_spend_logs")], "2026-11-20")
    assert (result.kept, result.quarantined) == (1, 0)
    (row,) = lake_rows(tmp_path, "gateway_requests", "2026-11-20")
    assert row["gateway_cache_hit"] is expected


def test_litellm_cache_hit_that_is_no_known_form_is_quarantined(tmp_path):
    path = tmp_path / "spend.jsonl"
    path.write_text(json.dumps({**LITELLM_ROW, "cache_hit": "maybe"}) + "\n")
    result = ingest(tmp_path, [(path, "litellm_spend_logs")], "2026-11-20")
    assert (result.kept, result.quarantined) == (0, 1)
    (bad,) = lake_rows(tmp_path, "gateway_quarantine", "2026-11-20")
    assert bad["reason"] == "bad_type:gateway_cache_hit"


@pytest.mark.parametrize(
    ("model", "provider_column", "expected"),
    [
        # as LiteLLM logs it: the provider in its own column, the model whole after it
        ("eu/gpt-4o-2024-08-06", "azure", ("azure", "eu/gpt-4o-2024-08-06")),
        (
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "together_ai",
            ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
        # a model that still carries its provider (LiteLLM's cache hits) loses that one prefix
        ("openai/gpt-4o-mini", "openai", ("openai", "gpt-4o-mini")),
        ("azure/eu/gpt-4o-2024-08-06", "azure", ("azure", "eu/gpt-4o-2024-08-06")),
        # no provider column: the first segment is the provider, the rest the model
        ("azure/eu/gpt-4o-2024-08-06", None, ("azure", "eu/gpt-4o-2024-08-06")),
        (
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "",
            ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
        ("gpt-4o", None, (None, "gpt-4o")),
    ],
)
def test_litellm_multi_slash_model_names_are_kept_whole(tmp_path, model, provider_column, expected):
    path = tmp_path / "spend.jsonl"
    record = {**LITELLM_ROW, "model": model, "custom_llm_provider": provider_column, "cache_hit": "None"}
    path.write_text(json.dumps(record) + "\n")
    ingest(tmp_path, [(path, "litellm_spend_logs")], "2026-11-20")
    (row,) = lake_rows(tmp_path, "gateway_requests", "2026-11-20")
    assert (row["provider"], row["model"]) == expected


# --- quarantine: every line lands somewhere, with a reason --------------------------------------

GOOD = request("good", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens=10, output_tokens=5)
BAD_LINES = {
    '{"request_id": "trunc", "ts": "2026-11-20T10:00:00Z", "mod': "bad_json",
    "garbage text, not json": "bad_json",
    "[1, 2, 3]": "not_an_object",
    json.dumps({"ts": "2026-11-20T10:00:00Z", "model": "gpt-4o"}): "missing_request_id",
    json.dumps({"request_id": "no-ts", "model": "gpt-4o"}): "missing_ts",
    json.dumps(request("bad-ts", "not-a-time", "gpt-4o")): "bad_ts",
    json.dumps({"request_id": "no-model", "ts": "2026-11-20T10:00:00Z"}): "missing_model",
    json.dumps(request("neg", "2026-11-20T10:00:00Z", "gpt-4o", output_tokens=-3)): "negative:output_tokens",
    json.dumps(request("str-tok", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens="12")): "bad_type:input_tokens",
    json.dumps(request("frac", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens=12.5)): "bad_type:input_tokens",
    json.dumps(
        request("cached>in", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens=10, cached_input_tokens=20)
    ): "cached_exceeds_input",
    json.dumps(
        request(
            "rw>in",
            "2026-11-20T10:00:00Z",
            "gpt-4o",
            input_tokens=10,
            cached_input_tokens=6,
            cache_creation_input_tokens=6,
        )
    ): "cache_reads_and_writes_exceed_input",
    json.dumps(request("status", "2026-11-20T10:00:00Z", "gpt-4o", status="maybe")): "bad_status",
    json.dumps(request("hit", "2026-11-20T10:00:00Z", "gpt-4o", gateway_cache_hit="yes")): "bad_type:gateway_cache_hit",
}


def test_every_bad_line_is_quarantined_with_its_reason_and_verbatim_text(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(GOOD), *BAD_LINES, json.dumps(GOOD)]  # the last line: a duplicate delivery
    path.write_text("\n".join(lines) + "\n")
    result = ingest(tmp_path, [(path, "canonical")], "2026-11-20")
    assert result.lines == len(lines) == result.kept + result.quarantined + result.duplicates
    assert (result.kept, result.quarantined, result.duplicates) == (1, len(BAD_LINES), 1)
    quarantine = lake_rows(tmp_path, "gateway_quarantine", "2026-11-20")
    assert {row["raw"]: row["reason"] for row in quarantine} == BAD_LINES
    assert {row["record_ref"] for row in quarantine} == {f"line {n}" for n in range(2, 2 + len(BAD_LINES))}
    expected_counts = {}
    for reason in BAD_LINES.values():
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    assert result.quarantine_by_reason == expected_counts


def test_the_quarantine_has_the_one_quarantine_schema_and_points_into_each_file(tmp_path):
    """Gateway, billing and GPU quarantines share one schema; `record_ref` says where the record
    is the way each file is read: a JSON-lines line, a CSV row (header = row 1), an array element."""
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps(GOOD) + "\n\nnot json\n")  # the blank line 2 is counted, not a record
    csv_export = tmp_path / "spend.csv"
    csv_export.write_text("request_id,startTime,model\nok,2026-11-20 10:00:00+00:00,gpt-4o\nbad,not-a-time,gpt-4o\n")
    json_export = tmp_path / "spend.json"
    json_export.write_text(json.dumps([{"request_id": "j", "startTime": "2026-11-20T10:00:00Z", "model": "m"}, [1]]))
    files = [(jsonl, "canonical"), (csv_export, "litellm_spend_logs"), (json_export, "litellm_spend_logs")]
    ingest(tmp_path, files, "2026-11-20")
    path = tmp_path / "lake" / "gateway_quarantine" / "day=2026-11-20" / "data.parquet"
    with duckdb.connect() as conn:
        conn.execute("select * from read_parquet($path, hive_partitioning = true)", {"path": str(path)})
        columns = [d[0] for d in conn.description]
        rows = conn.fetchall()
    assert sorted(columns) == sorted(QUARANTINE_SCHEMA.names)
    refs = {(row[columns.index("source_file")], row[columns.index("record_ref")]) for row in rows}
    assert refs == {(str(jsonl), "line 3"), (str(csv_export), "row 3"), (str(json_export), "[1]")}


def test_every_gateway_format_is_one_module_with_its_projection():
    """Each format registers itself from its own module, and its `<module>.sql` projects onto the
    same fields, so validate.sql and the lake tables take every format alike."""
    gateway_formats = formats("gateway_logs")
    assert {"canonical", "litellm_spend_logs", "otel_genai", "otlp_json"} <= set(gateway_formats)
    columns = {}
    with duckdb.connect() as conn:
        for name, fmt in gateway_formats.items():
            assert fmt.module == f"pipelines.sources.gateway.{name}"
            gateway.parse_records(conn, RAW_SCHEMA.empty_table(), name, dt.date(2026, 11, 20))
            conn.execute("select * from gateway_file")
            columns[name] = [(d[0], d[1]) for d in conn.description]
    assert all(found == columns["canonical"] for found in columns.values()), columns
    assert [name for name, _ in columns["canonical"]][-2:] == ["reason", "assigned_day"]


def test_bytes_level_damage_bom_crlf_and_invalid_utf8(tmp_path):
    good = json.dumps(GOOD).encode()
    other = json.dumps(request("second", "2026-11-20T11:00:00Z", "gpt-4o")).encode()
    data = b"\xef\xbb\xbf" + good + b"\r\n" + b'{"request_id": "\xff\xfe"}\r\n' + b"\r\n" + other + b"\r\n"
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    result = ingest(tmp_path, [(path, "canonical")], "2026-11-20")
    # 3 non-blank lines: two good (BOM and CR stripped), one not UTF-8; the blank line is no record
    assert (result.lines, result.kept, result.quarantined) == (3, 2, 1)
    assert result.quarantine_by_reason == {"not_utf8": 1}


def test_duplicate_deliveries_keep_the_first_and_count_conflicts(tmp_path):
    first = request("dup", "2026-11-20T10:00:00Z", "gpt-4o", input_tokens=10, output_tokens=5)
    changed = {**first, "output_tokens": 6}  # same id, different content: an inconsistent duplicate
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [first, first, changed]) + "\n")
    other = tmp_path / "b.jsonl"  # and once more from another file
    other.write_text(json.dumps(first) + "\n")
    result = ingest(tmp_path, [(path, "canonical"), (other, "canonical")], "2026-11-20")
    assert (result.lines, result.kept, result.duplicates, result.conflicting_duplicates) == (4, 1, 3, 1)
    (row,) = lake_rows(tmp_path, "gateway_requests", "2026-11-20")
    assert row["output_tokens"] == 5 and row["line_no"] == 1


# --- days: UTC, across midnight, and files that do not follow days ------------------------------


def test_utc_day_assignment_across_midnight(tmp_path):
    records = [
        request("last-ms", "2026-11-20T23:59:59.999Z", "gpt-4o"),
        request("midnight", "2026-11-21T00:00:00Z", "gpt-4o"),
        request("offset", "2026-11-21T01:30:00+02:00", "gpt-4o"),  # 23:30 UTC on the 20th
        request("naive", "2026-11-20T23:00:00", "gpt-4o"),  # no offset: UTC
        request("west", "2026-11-20T20:00:00-05:00", "gpt-4o"),  # 01:00 UTC on the 21st
    ]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    ingest(tmp_path, [(path, "canonical")], "2026-11-20")
    ingest(tmp_path, [(path, "canonical")], "2026-11-21")
    day20 = {row["request_id"] for row in lake_rows(tmp_path, "gateway_requests", "2026-11-20")}
    day21 = {row["request_id"] for row in lake_rows(tmp_path, "gateway_requests", "2026-11-21")}
    assert day20 == {"last-ms", "offset", "naive"}
    assert day21 == {"midnight", "west"}


def test_a_bad_line_without_a_time_counts_on_the_day_of_the_record_before_it(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(
        "\n".join(
            [
                "garbage at the top",  # no record before it: the day of the first good record after it
                json.dumps(request("a", "2026-11-20T23:59:00Z", "gpt-4o")),
                "garbage after a",
                json.dumps(request("b", "2026-11-21T00:01:00Z", "gpt-4o")),
                "garbage after b",
            ]
        )
        + "\n"
    )
    first = ingest(tmp_path, [(path, "canonical")], "2026-11-20")
    second = ingest(tmp_path, [(path, "canonical")], "2026-11-21")
    assert (first.lines, first.quarantined, second.lines, second.quarantined) == (3, 2, 2, 1)


def test_the_manifest_skips_files_that_cannot_hold_the_day_and_reopens_changed_ones(tmp_path):
    day20 = tmp_path / "requests_2026-11-20.jsonl"
    day20.write_text(json.dumps(request("a", "2026-11-20T10:00:00Z", "gpt-4o")) + "\n")
    day21 = tmp_path / "requests_2026-11-21.jsonl"
    day21.write_text(json.dumps(request("b", "2026-11-21T10:00:00Z", "gpt-4o")) + "\n")
    files = [(day20, "canonical"), (day21, "canonical")]
    ingest(tmp_path, files, "2026-11-20")  # first sight: both files read to learn their days
    again = ingest(tmp_path, files, "2026-11-20")
    assert again.files_read == [str(day20)] and again.files_skipped == 1
    assert stale(tmp_path, files) == []
    # A late record for the 20th lands in the 21st's file: the 20th is stale until re-run.
    with day21.open("a") as handle:
        handle.write(json.dumps(request("late", "2026-11-20T23:59:00Z", "gpt-4o")) + "\n")
    assert stale(tmp_path, files) == [dt.date(2026, 11, 20)]
    rerun = ingest(tmp_path, files, "2026-11-20")
    assert {row["request_id"] for row in lake_rows(tmp_path, "gateway_requests", "2026-11-20")} == {"a", "late"}
    assert rerun.kept == 2 and stale(tmp_path, files) == []


# --- re-runs --------------------------------------------------------------------------------------


def _digest(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.parquet"))
    }


def test_rerunning_a_day_replaces_it_with_identical_results(project):
    project.write_config()
    project.write_jsonl(
        "calls.jsonl.gz",
        [
            request(
                f"r{i}",
                f"2026-11-20T{i % 24:02d}:00:00Z",
                "gpt-4o",
                input_tokens=100 + i,
                cached_input_tokens=i,
                output_tokens=10,
                feature=f"f{i % 3}",
                user_id=f"u{i % 5}",
            )
            for i in range(50)
        ]
        + ["not json"],
        gz=True,
    )
    project.run_day("2026-11-20")
    lake_before = _digest(project.lake)
    marts_before = project.query("select * from fct_spend_daily order by all")
    project.run_day("2026-11-20")
    assert _digest(project.lake) == lake_before
    assert project.query("select * from fct_spend_daily order by all") == marts_before
    assert project.query("select count(*), sum(requests) from fct_spend_daily")[0][1] == 50


def test_a_day_without_logs_is_an_empty_partition_not_an_error(project):
    project.write_config()
    project.write_jsonl("calls.jsonl", [request("a", "2026-11-20T10:00:00Z", "gpt-4o")])
    result = project.run_day("2026-11-19")
    assert result.success
    assert project.query("select count(*) from fct_requests where day = '2026-11-19'") == [(0,)]
    assert project.query("select count(*) from fct_spend_daily") == [(0,)]


def test_ingest_checks_report_counts(project):
    project.write_config()
    project.write_jsonl(
        "calls.jsonl",
        [request("a", "2026-11-20T10:00:00Z", "gpt-4o"), request("a", "2026-11-20T10:00:00Z", "gpt-4o"), "oops"],
    )
    result = project.run_day("2026-11-20")
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    accounted = checks[("gateway_requests", "every_record_accounted_for")]
    assert accounted.passed and accounted.severity.value == "ERROR"
    assert [accounted.metadata[key].value for key in ("records", "kept", "quarantined", "duplicates")] == [3, 1, 1, 1]
    quarantine_share = checks[("gateway_ingest_audit", "quarantine_share")]
    assert quarantine_share.passed is False  # 1 of 3 lines, above the default 0.01
    assert quarantine_share.metadata["quarantined"].value == 1
    assert quarantine_share.metadata["by_reason"].value == {"bad_json": 1}
    duplicate_share = checks[("gateway_ingest_audit", "duplicate_share")]
    assert duplicate_share.passed is False  # 1 of 3 lines, above the default 0.02
    assert duplicate_share.metadata["duplicates"].value == 1
    materializations = {m.asset_key.to_user_string(): m for m in result.asset_materializations_for_node("gateway_logs")}
    assert materializations["gateway_requests"].metadata["lines_read"].value == 3
    assert materializations["gateway_quarantine"].metadata["dagster/row_count"].value == 1
    assert materializations["gateway_ingest_audit"].metadata["dagster/row_count"].value == 1  # one file


def test_no_matching_file_fails_with_the_key_to_fix(project):
    project.write_config(sources={"gateway_logs": [{"path": "inputs/nothing-*.jsonl", "format": "canonical"}]})
    result = project.run_day("2026-11-20", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "sources.gateway_logs matched no file" in failure.event_specific_data.error.to_string()


def test_otel_genai_input_tokens_include_cache_reads_and_writes(tmp_path):
    """OTel GenAI semantic conventions: gen_ai.usage.cache_read.input_tokens and
    gen_ai.usage.cache_creation.input_tokens SHOULD be included in gen_ai.usage.input_tokens."""
    span = {
        "name": "chat claude-3-5-sonnet-20241022",
        "context": {"trace_id": "0xabc", "span_id": "0x01"},
        "start_time": "2026-11-20T10:00:00.000000Z",
        "end_time": "2026-11-20T10:00:01.500000Z",
        "status": {"status_code": "UNSET"},
        "attributes": {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-3-5-sonnet",
            "gen_ai.response.model": "claude-3-5-sonnet-20241022",
            "gen_ai.response.id": "msg_1",
            "gen_ai.usage.input_tokens": 9000,
            "gen_ai.usage.cache_read.input_tokens": 6000,
            "gen_ai.usage.cache_creation.input_tokens": 2000,
            "gen_ai.usage.output_tokens": 300,
            "user.id": "u9",
            "app.feature": "chat",
        },
    }
    failed = {
        **span,
        "context": {"trace_id": "0xabc", "span_id": "0x02"},
        "status": {"status_code": "ERROR"},
        "attributes": {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 50,
        },
    }
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(span) + "\n" + json.dumps(failed) + "\n")
    result = ingest(tmp_path, [(path, "otel_genai")], "2026-11-20")
    assert (result.lines, result.kept) == (2, 2)
    rows = {row["request_id"]: row for row in lake_rows(tmp_path, "gateway_requests", "2026-11-20")}
    anthropic = rows["msg_1"]
    assert (
        anthropic["input_tokens"],
        anthropic["cached_input_tokens"],
        anthropic["cache_creation_input_tokens"],
        anthropic["output_tokens"],
    ) == (9000, 6000, 2000, 300)
    assert (
        anthropic["model"],
        anthropic["provider"],
        anthropic["feature"],
        anthropic["user_id"],
        anthropic["duration_ms"],
    ) == ("claude-3-5-sonnet-20241022", "anthropic", "chat", "u9", 1500)
    assert rows["0x02"]["status"] == "error" and rows["0x02"]["model"] == "gpt-4o"
