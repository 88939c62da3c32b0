"""The cost formula, priced by hand: each call's dollars are worked out on paper below, from the
catalog's per-token prices, and compared to the micro-dollar (here: exactly, as decimals)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal as D

import dagster as dg
import pytest
import yaml
from conftest import CATALOG, REPO, open_project, request

from pipelines.resources.config import ConfigError, load_config
from pipelines.sources.prices import entry_price_rows, load_rules, off_peak_windows, price_rows

DAY = "2026-11-20"

# Prices from fixtures/prices/model_prices.json (USD per token), copied here by hand.
GPT4O = {"in": D("2.5e-6"), "out": D("1e-5"), "read": D("1.25e-6")}  # no cache-write price: input price
SONNET = {"in": D("3e-6"), "out": D("1.5e-5"), "read": D("3e-7"), "write": D("3.75e-6")}
MINI = {"in": D("1.5e-7"), "out": D("6e-7"), "read": D("7.5e-8")}

CALLS = [
    # OpenAI dated snapshot: 2,000 input tokens of which 1,024 read from cache, 500 output.
    request(
        "openai-cached",
        f"{DAY}T09:00:00Z",
        "gpt-4o-2024-08-06",
        provider="openai",
        feature="chat",
        user_id="u1",
        input_tokens=2000,
        cached_input_tokens=1024,
        output_tokens=500,
    ),
    # Anthropic, canonical (inclusive) counts: 10,000 input = 2,000 uncached + 6,000 read + 2,000 written.
    request(
        "anthropic-read-write",
        f"{DAY}T10:00:00Z",
        "claude-3-5-sonnet-20241022",
        provider="anthropic",
        feature="chat",
        user_id="u2",
        input_tokens=10000,
        cached_input_tokens=6000,
        cache_creation_input_tokens=2000,
        output_tokens=800,
    ),
    # Anthropic cache write only: caching cost more than it saved on this call.
    request(
        "anthropic-write-only",
        f"{DAY}T11:00:00Z",
        "claude-3-5-sonnet-20241022",
        provider="anthropic",
        feature="summarise",
        user_id="u2",
        input_tokens=5000,
        cache_creation_input_tokens=5000,
        output_tokens=0,
    ),
    # Gateway cache hit: no provider call, so no cost; it records what it avoided.
    request(
        "gateway-hit",
        f"{DAY}T12:00:00Z",
        "gpt-4o-mini",
        provider="openai",
        feature="search_rag",
        user_id="u1",
        input_tokens=1000,
        output_tokens=200,
        gateway_cache_hit=True,
    ),
    # A failed call: its prompt was sent, but providers bill nothing for an error.
    request(
        "failed",
        f"{DAY}T12:30:00Z",
        "gpt-4o-mini",
        provider="openai",
        feature="chat",
        user_id="u1",
        input_tokens=4000,
        output_tokens=0,
        status="error",
    ),
    # A model no catalog knows: flagged, never costed at zero.
    request(
        "unpriced",
        f"{DAY}T13:00:00Z",
        "gpt-experimental-preview",
        provider="openai",
        feature="chat",
        user_id="u3",
        input_tokens=100,
        output_tokens=100,
    ),
    # Self-hosted: its money comes from GPU billing, not token prices.
    request(
        "self-hosted",
        f"{DAY}T14:00:00Z",
        "llama-3.1-8b-instruct",
        provider="self_hosted",
        pool="llama-8b-h100",
        replica_id="r0",
        feature="batch_tagging",
        user_id="u4",
        input_tokens=300,
        output_tokens=20,
        workload="batch",
    ),
]

EXPECTED = {
    # cost = uncached x in + reads x read + writes x write + output x out
    "openai-cached": {
        "cost_usd": 976 * GPT4O["in"] + 1024 * GPT4O["read"] + 500 * GPT4O["out"],  # 0.00872
        "list_cost_usd": 2000 * GPT4O["in"] + 500 * GPT4O["out"],  # 0.01
    },
    "anthropic-read-write": {
        "cost_usd": 2000 * SONNET["in"] + 6000 * SONNET["read"] + 2000 * SONNET["write"] + 800 * SONNET["out"],
        "list_cost_usd": 10000 * SONNET["in"] + 800 * SONNET["out"],  # 0.042
    },
    "anthropic-write-only": {
        "cost_usd": 5000 * SONNET["write"],  # 0.01875
        "list_cost_usd": 5000 * SONNET["in"],  # 0.015
    },
}


@pytest.fixture(scope="module")
def priced_run(module_project):
    """CALLS priced by one daily run: (the project, the run's result). The tests only read it."""
    module_project.write_config()
    module_project.write_jsonl("calls.jsonl", CALLS)
    return module_project, module_project.run_day(DAY)


@pytest.fixture(scope="module")
def priced(priced_run):
    project, _ = priced_run
    return {row["request_id"]: row for row in project.query_dicts("select * from fct_requests")}


def test_hand_priced_calls(priced):
    assert EXPECTED["openai-cached"]["cost_usd"] == D("0.00872")  # the paper arithmetic itself
    assert EXPECTED["anthropic-read-write"]["cost_usd"] == D("0.0273")
    for request_id, expected in EXPECTED.items():
        row = priced[request_id]
        assert row["cost_usd"] == expected["cost_usd"], request_id
        assert row["list_cost_usd"] == expected["list_cost_usd"], request_id
        assert row["prompt_cache_savings_usd"] == expected["list_cost_usd"] - expected["cost_usd"], request_id
        assert row["pricing_basis"] == "catalog" and row["priced"]


def test_cache_write_savings_are_negative(priced):
    assert priced["anthropic-write-only"]["prompt_cache_savings_usd"] == D("-0.00375")


def test_dated_snapshot_resolves_to_its_provider_qualified_catalog_entry(priced):
    # The catalog has both `gpt-4o-2024-08-06` and `openai/gpt-4o-2024-08-06`; like LiteLLM's own
    # lookup, the provider-qualified key wins (for Azure and OpenAI pairs they differ in price).
    assert priced["openai-cached"]["price_key"] == "openai/gpt-4o-2024-08-06"
    assert priced["anthropic-read-write"]["price_key"] == "anthropic/claude-3-5-sonnet-20241022"


def test_gateway_cache_hit_costs_nothing_and_records_what_it_avoided(priced):
    row = priced["gateway-hit"]
    assert row["cost_usd"] == 0 and row["list_cost_usd"] == 0
    assert row["gateway_cache_avoided_usd"] == 1000 * MINI["in"] + 200 * MINI["out"]  # 0.00027


def test_failed_call_costs_nothing(priced):
    row = priced["failed"]
    assert row["cost_usd"] == 0 and row["list_cost_usd"] == 0 and row["priced"]


def test_unpriced_model_is_flagged_not_zero(priced, priced_run):
    project, _ = priced_run
    row = priced["unpriced"]
    assert row["priced"] is False and row["pricing_basis"] == "unpriced"
    assert row["cost_usd"] is None
    (unpriced,) = project.query("select unpriced_requests from fct_spend_by_feature_daily where feature = 'chat'")[0]
    assert unpriced == 1


def test_self_hosted_is_priced_by_gpu_billing_not_counted_unpriced(priced):
    row = priced["self-hosted"]
    assert row["pricing_basis"] == "gpu_billing" and row["priced"] is True
    assert row["cost_usd"] is None


def test_unpriced_share_check_warns(priced_run):
    _, result = priced_run
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    # 1 unpriced of 6 API calls (the self-hosted call is not an API call) > 1% default
    assert checks["unpriced_share"].passed is False
    assert checks["unpriced_share"].metadata["share"].value == pytest.approx(1 / 6)
    assert checks["unpriced_share"].metadata["unpriced_models"].value == ["gpt-experimental-preview"]


def test_daily_marts_add_up_to_the_requests(priced, priced_run):
    project, _ = priced_run
    total_cost = sum(row["cost_usd"] for row in priced.values() if row["cost_usd"] is not None)
    (mart_cost, mart_requests) = project.query("select sum(cost_usd), sum(requests) from fct_spend_daily")[0]
    assert mart_cost == total_cost.quantize(D("1e-6"))
    assert mart_requests == len(CALLS)
    by_user = dict(project.query("select user_id, cost_usd from fct_spend_by_user_daily"))
    assert by_user["u2"] == (
        EXPECTED["anthropic-read-write"]["cost_usd"] + EXPECTED["anthropic-write-only"]["cost_usd"]
    ).quantize(D("1e-6"))
    savings = dict(
        project.query("select model, sum(prompt_cache_savings_usd) from fct_cache_savings_daily group by model")
    )
    assert savings["claude-3-5-sonnet-20241022"] == D("0.0147") + D("-0.00375")


def test_override_beats_catalog_and_price_changes_apply_from_their_date(project):
    project.write_config(
        prices={
            "catalog": str(CATALOG),
            "effective_from": "2025-09-01",
            "overrides": {
                "gpt-4o-mini": {
                    "input_cost_per_token": 1e-6,
                    "output_cost_per_token": 2e-6,
                    "effective_from": "2026-11-21",
                },
            },
        }
    )
    project.write_jsonl(
        "calls.jsonl",
        [
            request("before", "2026-11-20T10:00:00Z", "gpt-4o-mini", input_tokens=1000, output_tokens=100),
            request("after", "2026-11-21T10:00:00Z", "gpt-4o-mini", input_tokens=1000, output_tokens=100),
        ],
    )
    project.run_day("2026-11-20")
    project.run_day("2026-11-21")
    rows = {r["request_id"]: r for r in project.query_dicts("select * from fct_requests")}
    assert rows["before"]["cost_usd"] == 1000 * MINI["in"] + 100 * MINI["out"]  # catalog: 0.00021
    assert rows["before"]["pricing_basis"] == "catalog"
    assert rows["after"]["cost_usd"] == 1000 * D("1e-6") + 100 * D("2e-6")  # override: 0.0012
    assert rows["after"]["pricing_basis"] == "override"


# --------------------------------------------------------------------------- the whole price model
# Calls priced by the current LiteLLM catalog (fixtures/prices/litellm_2026_11.json) and the rules
# file, each worked out by hand below from the provider's published price (USD per million tokens,
# "/M"), which the catalog or the rule carries.

CURRENT_CATALOG = REPO / "fixtures" / "prices" / "litellm_2026_11.json"
M = D("1e-6")  # USD per token of a USD-per-million price


@dataclass(frozen=True)
class Call:
    request_id: str
    model: str
    fields: dict
    cost_usd: D
    price_key: str
    price_tier: str = "base"
    priced_service_tier: str = "standard"
    at: str = "10:00:00Z"  # time of day on DAY (a Friday), UTC
    off_peak: bool = False


CALLS_CURRENT = [
    # Gemini 2.5 Pro (ai.google.dev/gemini-api/docs/pricing): $1.25/M in and $10/M out for prompts up
    # to 200k tokens; $2.50/M and $15/M for every token of a longer prompt.
    Call(
        "tier-at-200k",
        "gemini-2.5-pro",
        {"provider": "gcp.gemini", "input_tokens": 200_000, "output_tokens": 1_000},
        200_000 * D("1.25") * M + 1_000 * 10 * M,
        "gemini/gemini-2.5-pro",
    ),  # 0.26
    Call(
        "tier-above-200k",
        "gemini-2.5-pro",
        {"provider": "gcp.gemini", "input_tokens": 200_001, "output_tokens": 1_000},
        200_001 * D("2.5") * M + 1_000 * 15 * M,
        "gemini/gemini-2.5-pro",
        "above_200k",
    ),  # 0.5150025
    # Priority above 200k: $4.50/M in, $27/M out.
    Call(
        "priority-above-200k",
        "gemini-2.5-pro",
        {"provider": "gcp.gemini", "input_tokens": 300_000, "output_tokens": 1_000, "service_tier": "priority"},
        300_000 * D("4.5") * M + 1_000 * 27 * M,
        "gemini/gemini-2.5-pro",
        "above_200k",
        "priority",
    ),  # 1.377
    # Flex: half price, $0.625/M in, $5/M out.
    Call(
        "flex",
        "gemini-2.5-pro",
        {"provider": "gcp.gemini", "input_tokens": 1_000, "output_tokens": 100, "service_tier": "flex"},
        1_000 * D("0.625") * M + 100 * 5 * M,
        "gemini/gemini-2.5-pro",
        priced_service_tier="flex",
    ),  # 0.001125
    # Batch Mode above 200k: half the long-context price, $1.25/M in, $7.50/M out.
    Call(
        "batch-above-200k",
        "gemini-2.5-pro",
        {"provider": "gcp.gemini", "input_tokens": 250_000, "output_tokens": 2_000, "service_tier": "batch"},
        250_000 * D("1.25") * M + 2_000 * D("7.5") * M,
        "gemini/gemini-2.5-pro",
        "above_200k",
        "batch",
    ),  # 0.3275
    # Grounding with Google Search: $35 per 1,000 grounded prompts, once per call however many searches.
    Call(
        "web-search-per-prompt",
        "gemini-2.5-pro",
        {"provider": "gcp.gemini", "input_tokens": 1_000, "output_tokens": 100, "web_search_requests": 4},
        1_000 * D("1.25") * M + 100 * 10 * M + D("0.035"),
        "gemini/gemini-2.5-pro",
    ),  # 0.03725
    # GPT-5 priority (platform.openai.com/docs/pricing): $2.50/M in, $0.25/M cached, $20/M out;
    # reasoning tokens are output tokens.
    Call(
        "priority-reasoning",
        "gpt-5",
        {
            "provider": "openai",
            "input_tokens": 10_000,
            "cached_input_tokens": 4_000,
            "output_tokens": 2_000,
            "reasoning_tokens": 1_500,
            "service_tier": "priority",
        },
        6_000 * D("2.5") * M + 4_000 * D("0.25") * M + 2_000 * 20 * M,
        "gpt-5",
        priced_service_tier="priority",
    ),
    # GPT-5 Batch API: $0.625/M in, $5/M out.
    Call(
        "batch",
        "gpt-5",
        {"provider": "openai", "input_tokens": 10_000, "output_tokens": 1_000, "service_tier": "batch"},
        10_000 * D("0.625") * M + 1_000 * 5 * M,
        "gpt-5",
        priced_service_tier="batch",
    ),  # 0.01125
    # Batch x prompt cache: does the batch discount reach cache reads too? Each call below reads the
    # cache in a batch job. OpenAI stacks: gpt-4o's catalog has batch in $1.25/M and out $5/M but no
    # batch cache read, so the rule halves the $1.25/M cache read: $0.625/M.
    Call(
        "batch-cache-stacks-openai",
        "gpt-4o",
        {
            "provider": "openai",
            "input_tokens": 10_000,
            "cached_input_tokens": 4_000,
            "output_tokens": 1_000,
            "service_tier": "batch",
        },
        6_000 * D("1.25") * M + 4_000 * D("0.625") * M + 1_000 * 5 * M,
        "gpt-4o",
        priced_service_tier="batch",
    ),  # 0.0075 + 0.0025 + 0.005 = 0.015
    # Anthropic stacks, all usage at 50 %: Claude Sonnet 4.5's catalog batch prices, in $1.50/M,
    # cache read $0.15/M, 5-minute write $1.875/M, out $7.50/M.
    Call(
        "batch-cache-stacks-anthropic",
        "claude-sonnet-4-5-20250929",
        {
            "provider": "anthropic",
            "input_tokens": 10_000,
            "cached_input_tokens": 4_000,
            "cache_creation_input_tokens": 2_000,
            "output_tokens": 1_000,
            "service_tier": "batch",
        },
        4_000 * D("1.5") * M + 4_000 * D("0.15") * M + 2_000 * D("1.875") * M + 1_000 * D("7.5") * M,
        "claude-sonnet-4-5-20250929",
        priced_service_tier="batch",
    ),  # 0.006 + 0.0006 + 0.00375 + 0.0075 = 0.01785
    # Gemini 2.5 Flash on Vertex AI does not stack: "the cache hit discount takes precedence over the
    # batch discount". Catalog: in $0.30/M, cache read $0.03/M, out $2.50/M; batch in $0.15/M and out
    # $1.25/M, no batch cache read, so the Vertex rule keeps the cache read at $0.03/M (not $0.015/M).
    Call(
        "batch-cache-vertex-gemini-no-stacking",
        "gemini-2.5-flash",
        {
            "provider": "gcp.vertex_ai",
            "input_tokens": 10_000,
            "cached_input_tokens": 6_000,
            "output_tokens": 1_000,
            "service_tier": "batch",
        },
        4_000 * D("0.15") * M + 6_000 * D("0.03") * M + 1_000 * D("1.25") * M,
        "gemini-2.5-flash",
        priced_service_tier="batch",
    ),  # 0.0006 + 0.00018 + 0.00125 = 0.00203 (stacked it would be 0.00194)
    # Claude on Vertex AI follows Anthropic's batch rule, not Vertex's: Claude Sonnet 5 there has
    # in $2/M, batch in $1/M and out $5/M, and no batch cache price, so Anthropic's rules fill them
    # from the batch input: read 0.1 x $1/M = $0.10/M, 5-minute write 1.25 x $1/M = $1.25/M.
    Call(
        "batch-cache-stacks-vertex-claude",
        "claude-sonnet-5",
        {
            "provider": "gcp.vertex_ai",
            "input_tokens": 10_000,
            "cached_input_tokens": 4_000,
            "cache_creation_input_tokens": 2_000,
            "output_tokens": 1_000,
            "service_tier": "batch",
        },
        4_000 * 1 * M + 4_000 * D("0.1") * M + 2_000 * D("1.25") * M + 1_000 * 5 * M,
        "vertex_ai/claude-sonnet-5",
        priced_service_tier="batch",
    ),  # 0.004 + 0.0004 + 0.0025 + 0.005 = 0.0119
    # GPT-5.6 bills prompt-cache writes at 1.25x input (developers.openai.com prompt-caching guide):
    # in $4/M, cache read $0.40/M, cache write $5/M, out $20/M (catalog).
    Call(
        "openai-cache-write-gpt-5.6",
        "gpt-5.6",
        {
            "provider": "openai",
            "input_tokens": 10_000,
            "cached_input_tokens": 2_000,
            "cache_creation_input_tokens": 3_000,
            "output_tokens": 500,
        },
        5_000 * 4 * M + 2_000 * D("0.4") * M + 3_000 * 5 * M + 500 * 20 * M,
        "gpt-5.6",
    ),  # 0.02 + 0.0008 + 0.015 + 0.01 = 0.0458
    # Claude Sonnet 4.5 (docs.anthropic.com pricing): $3/M in, $3.75/M 5-minute writes, $6/M 1-hour
    # writes, $0.30/M cache reads, $15/M out; web search $10 per 1,000 searches.
    Call(
        "one-hour-writes-and-search",
        "claude-sonnet-4-5-20250929",
        {
            "provider": "anthropic",
            "input_tokens": 20_000,
            "cached_input_tokens": 5_000,
            "cache_creation_input_tokens": 10_000,
            "cache_creation_1h_input_tokens": 4_000,
            "output_tokens": 1_000,
            "web_search_requests": 2,
        },
        5_000 * 3 * M + 5_000 * D("0.3") * M + 6_000 * D("3.75") * M + 4_000 * 6 * M + 1_000 * 15 * M + 2 * D("0.01"),
        "claude-sonnet-4-5-20250929",
    ),  # 0.098
    # Rules: Claude 3.7 Sonnet on Bedrock has no 1-hour write price in the catalog: Anthropic's rule,
    # 2 x $3/M input = $6/M. 1,000 uncached + 2,000 1-hour writes, 100 out at $15/M.
    Call(
        "rule-one-hour-write",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        {
            "provider": "aws.bedrock",
            "input_tokens": 3_000,
            "cache_creation_input_tokens": 2_000,
            "cache_creation_1h_input_tokens": 2_000,
            "output_tokens": 100,
        },
        1_000 * 3 * M + 2_000 * 6 * M + 100 * 15 * M,
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
    ),  # 0.0165
    # ... and no batch price: Bedrock batch inference is 50 % of on-demand, $1.50/M in, $7.50/M out.
    Call(
        "rule-batch",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        {"provider": "aws.bedrock", "input_tokens": 2_000, "output_tokens": 1_000, "service_tier": "batch"},
        2_000 * D("1.5") * M + 1_000 * D("7.5") * M,
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        priced_service_tier="batch",
    ),  # 0.0105
    # gpt-realtime: text $4/M in and $16/M out, audio $32/M in and $64/M out.
    Call(
        "audio",
        "gpt-realtime",
        {
            "provider": "openai",
            "input_tokens": 5_000,
            "audio_input_tokens": 3_000,
            "output_tokens": 1_000,
            "audio_output_tokens": 800,
        },
        2_000 * 4 * M + 3_000 * 32 * M + 200 * 16 * M + 800 * 64 * M,
        "gpt-realtime",
    ),  # 0.1584
    # Qwen-Turbo (Alibaba Model Studio): $0.05/M in, $0.20/M out, $0.50/M for thinking (reasoning) output.
    Call(
        "reasoning-priced-apart",
        "qwen-turbo",
        {"provider": "dashscope", "input_tokens": 1_000, "output_tokens": 1_000, "reasoning_tokens": 600},
        1_000 * D("0.05") * M + 400 * D("0.2") * M + 600 * D("0.5") * M,
        "dashscope/qwen-turbo",
    ),  # 0.00043
    # Perplexity pplx-70b-online: $5 per 1,000 requests, no input price, $2.80/M out.
    Call(
        "per-request-fee",
        "pplx-70b-online",
        {"provider": "perplexity", "input_tokens": 1_000, "output_tokens": 500},
        500 * D("2.8") * M + D("0.005"),
        "perplexity/pplx-70b-online",
    ),  # 0.0064
    # Names. Azure's GPT-4 Turbo is not OpenAI's: $11/M in on Azure (catalog), $10/M at OpenAI.
    Call(
        "azure-not-openai",
        "gpt-4-turbo",
        {"provider": "azure.ai.openai", "input_tokens": 1_000},
        1_000 * 11 * M,
        "azure/gpt-4-turbo",
    ),
    Call(
        "openai-not-azure", "gpt-4-turbo", {"provider": "openai", "input_tokens": 1_000}, 1_000 * 10 * M, "gpt-4-turbo"
    ),
    # A LiteLLM name with two slashes: Azure's EU data zone deployment, $2.75/M in, $11/M out.
    Call(
        "multi-slash",
        "azure/eu/gpt-4o-2024-08-06",
        {"provider": "azure", "input_tokens": 1_000, "output_tokens": 100},
        1_000 * D("2.75") * M + 100 * 11 * M,
        "azure/eu/gpt-4o-2024-08-06",
    ),  # 0.00385
    # Claude on Vertex AI as OpenTelemetry names it (gcp.vertex_ai, model@version), above 200k:
    # $6/M in and $22.50/M out for every token.
    Call(
        "vertex-claude-long",
        "claude-sonnet-4-5@20250929",
        {"provider": "gcp.vertex_ai", "input_tokens": 250_000, "output_tokens": 1_000},
        250_000 * 6 * M + 1_000 * D("22.5") * M,
        "vertex_ai/claude-sonnet-4-5@20250929",
        "above_200k",
    ),  # 1.5225
    # Bedrock cross-region inference profile (us.) and its ARN: $3.30/M in, $16.50/M out.
    Call(
        "bedrock-us-prefix",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        {"provider": "aws.bedrock", "input_tokens": 1_000, "output_tokens": 100},
        1_000 * D("3.3") * M + 100 * D("16.5") * M,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),  # 0.00495
    Call(
        "bedrock-arn",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        {"provider": "aws.bedrock", "input_tokens": 1_000, "output_tokens": 100},
        1_000 * D("3.3") * M + 100 * D("16.5") * M,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    # xAI bills its long-context rate from 200k tokens on (inclusive): $2.50/M in, $5/M out.
    Call(
        "xai-tier-at-200k",
        "grok-4.20-multi-agent-beta-0309",
        {"provider": "xai", "input_tokens": 200_000, "output_tokens": 100},
        200_000 * D("2.5") * M + 100 * 5 * M,
        "xai/grok-4.20-multi-agent-beta-0309",
        "above_200k",
    ),  # 0.5005
    # DeepSeek V4 Pro (api-docs.deepseek.com/quick_start/pricing): $1.32/M in, $0.044/M cache hits,
    # $3.96/M out; half that ($0.66, $0.022, $1.98) in its off-peak hours, on weekdays 00:00-01:00,
    # 04:00-06:00 and 10:00-24:00 UTC, all weekend. 08:00 UTC on a Friday is peak, 10:30 off-peak.
    Call(
        "deepseek-peak",
        "deepseek-v4-pro",
        {"provider": "deepseek", "input_tokens": 1_000, "cached_input_tokens": 400, "output_tokens": 100},
        600 * D("1.32") * M + 400 * D("0.044") * M + 100 * D("3.96") * M,
        "deepseek/deepseek-v4-pro",
        at="08:00:00Z",
    ),  # 0.0012056
    Call(
        "deepseek-off-peak",
        "deepseek-v4-pro",
        {"provider": "deepseek", "input_tokens": 1_000, "cached_input_tokens": 400, "output_tokens": 100},
        600 * D("0.66") * M + 400 * D("0.022") * M + 100 * D("1.98") * M,
        "deepseek/deepseek-v4-pro",
        at="10:30:00Z",
        off_peak=True,
    ),  # 0.0006028
    # The window ends at 01:00 (exclusive): 00:59 is off-peak, 01:00 peak.
    Call(
        "deepseek-last-off-peak-minute",
        "deepseek-v4-pro",
        {"provider": "deepseek", "input_tokens": 1_000, "output_tokens": 100},
        1_000 * D("0.66") * M + 100 * D("1.98") * M,
        "deepseek/deepseek-v4-pro",
        at="00:59:59Z",
        off_peak=True,
    ),  # 0.000858
    Call(
        "deepseek-window-end",
        "deepseek-v4-pro",
        {"provider": "deepseek", "input_tokens": 1_000, "output_tokens": 100},
        1_000 * D("1.32") * M + 100 * D("3.96") * M,
        "deepseek/deepseek-v4-pro",
        at="01:00:00Z",
    ),  # 0.001716
    # LiteLLM's batch calculator ignores off-peak hours: a batch call at 10:30 is not off-peak; it pays the
    # batch price, half the standard one (no `_batches` fields), which happens to equal the off-peak one.
    Call(
        "deepseek-batch-in-window",
        "deepseek-v4-pro",
        {"provider": "deepseek", "input_tokens": 1_000, "output_tokens": 100, "service_tier": "batch"},
        1_000 * D("0.66") * M + 100 * D("1.98") * M,
        "deepseek/deepseek-v4-pro",
        priced_service_tier="batch",
        at="10:30:00Z",
    ),  # 0.000858
    # Tencent's DeepSeek V4 Pro: the same rates and windows, weekdays read in Asia/Shanghai. 02:00 UTC
    # Friday is 10:00 Friday there: peak. 17:00 UTC Friday is 01:00 Saturday there: off-peak.
    Call(
        "tencent-peak",
        "deepseek-v4-pro-0813",
        {"provider": "tencent", "input_tokens": 2_000, "output_tokens": 500},
        2_000 * D("1.32") * M + 500 * D("3.96") * M,
        "tencent/deepseek-v4-pro-0813",
        at="02:00:00Z",
    ),  # 0.00462
    Call(
        "tencent-saturday-in-shanghai",
        "deepseek-v4-pro-0813",
        {"provider": "tencent", "input_tokens": 2_000, "output_tokens": 500},
        2_000 * D("0.66") * M + 500 * D("1.98") * M,
        "tencent/deepseek-v4-pro-0813",
        at="17:00:00Z",
        off_peak=True,
    ),  # 0.00231
]


@pytest.fixture(scope="module")
def priced_current(tmp_path_factory):
    with open_project(tmp_path_factory.mktemp("current")) as project:
        project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
        records = [
            request(call.request_id, f"{DAY}T{call.at}", call.model, feature="chat", user_id="u1", **call.fields)
            for call in CALLS_CURRENT
        ]
        project.write_jsonl("calls.jsonl", records)
        project.run_day(DAY)
        yield {row["request_id"]: row for row in project.query_dicts("select * from fct_requests")}


@pytest.mark.parametrize("call", CALLS_CURRENT, ids=lambda call: call.request_id)
def test_the_current_catalog_prices_each_rule_as_published(priced_current, call):
    row = priced_current[call.request_id]
    assert row["price_key"] == call.price_key
    assert row["price_tier"] == call.price_tier
    assert row["priced_service_tier"] == call.priced_service_tier
    assert row["off_peak"] is call.off_peak
    assert row["cost_usd"] == call.cost_usd


def test_the_hand_arithmetic_itself():
    by_id = {call.request_id: call.cost_usd for call in CALLS_CURRENT}
    assert by_id["tier-above-200k"] == D("0.5150025")
    assert by_id["deepseek-peak"] == D("0.0012056")
    assert by_id["deepseek-off-peak"] == D("0.0006028")
    assert by_id["tencent-saturday-in-shanghai"] == D("0.00231")
    assert by_id["one-hour-writes-and-search"] == D("0.098")
    assert by_id["audio"] == D("0.1584")
    assert by_id["vertex-claude-long"] == D("1.5225")
    assert by_id["batch-cache-stacks-openai"] == D("0.015")
    assert by_id["batch-cache-stacks-anthropic"] == D("0.01785")
    assert by_id["batch-cache-vertex-gemini-no-stacking"] == D("0.00203")
    assert by_id["batch-cache-stacks-vertex-claude"] == D("0.0119")
    assert by_id["openai-cache-write-gpt-5.6"] == D("0.0458")


def test_a_rule_fills_only_what_the_catalog_lacks_and_says_so():
    catalog = json.loads(CURRENT_CATALOG.read_text(encoding="utf-8"))

    def one_hour_write(model_key):
        rows = entry_price_rows(
            model_key, catalog[model_key], effective_from=dt.date(2026, 1, 1), layer="catalog", source="catalog:x"
        )
        (row,) = [
            r
            for r in rows
            if r["component"] == "cache_write_1h" and r["service_tier"] == "standard" and r["above_tokens"] == 0
        ]
        return row

    filled = one_hour_write("anthropic.claude-3-7-sonnet-20250219-v1:0")
    assert filled["price_usd"] == D("6e-6") and filled["price_source"] == "rule:anthropic_cache_write_1h"
    # The catalog's own 1-hour price wins over the rule (here they agree: $6/M).
    own = one_hour_write("claude-sonnet-4-5")
    assert own["price_usd"] == D("6e-6") and own["price_source"] == "catalog:x"
    assert own["price_field"] == "cache_creation_input_token_cost_above_1hr"


def test_every_rule_names_its_source_and_the_file_its_date():
    as_of, rules = load_rules()
    assert isinstance(as_of, dt.date)
    assert rules and all(rule.source.startswith("https://") for rule in rules)
    assert len({rule.id for rule in rules}) == len(rules)


def test_an_override_may_give_any_catalog_price_field(tmp_path):
    config = {
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
        "prices": {
            "catalog": str(CATALOG),
            "overrides": {
                "my-model": {
                    "input_cost_per_token": 2e-6,
                    "output_cost_per_token": 8e-6,
                    "input_cost_per_token_batches": 5e-7,
                    "cache_creation_input_token_cost_above_1hr": 4e-6,
                    "output_cost_per_reasoning_token": 1e-5,
                    "search_context_cost_per_query": {"search_context_size_medium": 0.02},
                },
            },
        },
    }
    (tmp_path / "inputs").mkdir()
    (tmp_path / "costwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    rows = price_rows(load_config(tmp_path / "costwatch.yaml")).to_pylist()
    mine = {(r["service_tier"], r["component"]): r for r in rows if r["model_key"] == "my-model"}
    assert mine[("batch", "input")]["price_usd"] == D("5e-7")
    assert mine[("batch", "output")]["price_usd"] == D("4e-6")  # no batch output given: the 50 % default rule
    assert mine[("batch", "output")]["price_source"] == "rule:default_batch"
    assert mine[("standard", "cache_write_1h")]["price_usd"] == D("4e-6")
    assert mine[("standard", "reasoning")]["price_usd"] == D("1e-5")
    assert mine[("standard", "web_search")]["price_usd"] == D("0.02")
    assert {r["layer"] for r in mine.values()} == {"override"}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("input_cost_per_tokn", "did you mean 'input_cost_per_token'?"),
        ("output_cost_per_token_turbo", "service tier suffix (_batches, _priority, _flex)"),
    ],
)
def test_an_override_with_a_field_that_is_no_price_names_the_key_and_the_fix(tmp_path, field, message):
    config = {
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
        "prices": {
            "catalog": str(CATALOG),
            "overrides": {"my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, field: 1e-6}},
        },
    }
    (tmp_path / "inputs").mkdir()
    (tmp_path / "costwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "costwatch.yaml")
    assert f"prices.overrides.my-model.{field}: unknown key, not a price field" in str(raised.value)
    assert message in str(raised.value)


def test_models_whose_reported_cost_disagrees_with_ours_are_listed_in_a_warning(project):
    project.write_config()
    project.write_jsonl(
        "calls.jsonl",
        [
            # ours: 1,000 x $0.15/M + 100 x $0.60/M = $0.00021, as the gateway says
            request(
                "agrees",
                f"{DAY}T10:00:00Z",
                "gpt-4o-mini",
                provider="openai",
                input_tokens=1000,
                output_tokens=100,
                reported_cost_usd=0.00021,
            ),
            # within $0.000001 (float noise): agrees
            request(
                "rounding",
                f"{DAY}T10:01:00Z",
                "gpt-4o-mini",
                provider="openai",
                input_tokens=1000,
                output_tokens=100,
                reported_cost_usd=0.0002105,
            ),
            # ours: 1,000 x $3/M + 100 x $15/M = $0.0045; the gateway says $0.01
            request(
                "disagrees",
                f"{DAY}T10:02:00Z",
                "claude-3-5-sonnet-20241022",
                provider="anthropic",
                input_tokens=1000,
                output_tokens=100,
                reported_cost_usd=0.01,
            ),
        ],
    )
    result = project.run_day(DAY)
    rows = {r["request_id"]: r for r in project.query_dicts("select * from fct_requests")}
    assert rows["agrees"]["reported_cost_usd"] == D("0.00021") and rows["agrees"]["reported_cost_agrees"] is True
    assert rows["rounding"]["reported_cost_agrees"] is True
    assert rows["disagrees"]["cost_usd"] == D("0.0045") and rows["disagrees"]["reported_cost_agrees"] is False
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}["reported_cost_agrees"]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["disagreeing_models"].value == {
        "claude-3-5-sonnet-20241022": {"requests": 1, "cost_usd": 0.0045, "reported_cost_usd": 0.01}
    }


# An entry whose off-peak hours are its weekends, read in Asia/Shanghai (UTC+8, like Tencent's): $2/M in,
# $8/M out; off-peak $1/M and $4/M. 1,000 tokens in, 100 out: 0.0028 at peak, 0.0014 off-peak.
SHANGHAI_WEEKENDS = {
    "litellm_provider": "tencent",
    "input_cost_per_token": 2e-6,
    "output_cost_per_token": 8e-6,
    "off_peak_pricing": {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 4e-6,
        "weekday_timezone": "Asia/Shanghai",
        "windows": [{"hours_utc": "00:00-00:00", "weekdays": ["sat", "sun"]}],
    },
}


@pytest.mark.parametrize(
    ("ts", "off_peak", "cost_usd"),
    [
        ("2026-11-20 15:59:59", False, D("0.0028")),  # Friday 23:59:59 in Shanghai
        ("2026-11-20 16:00:00", True, D("0.0014")),  # Saturday 00:00 in Shanghai, still Friday in UTC
        ("2026-11-22 15:59:00", True, D("0.0014")),  # Sunday 23:59 in Shanghai
        ("2026-11-22 16:00:00", False, D("0.0028")),  # Monday 00:00 in Shanghai, still Sunday in UTC
    ],
)
def test_off_peak_weekdays_are_read_in_the_entry_time_zone(run_model_on, ts, off_peak, cost_usd):
    assert 1_000 * 2 * M + 100 * 8 * M == D("0.0028") and 1_000 * 1 * M + 100 * 4 * M == D("0.0014")
    case = yaml.safe_load((REPO / "tests" / "model_cases" / "fct_requests.yaml").read_text(encoding="utf-8"))
    inputs = next(iter(case["cases"].values()))["inputs"]
    prices = entry_price_rows(
        "shanghai-weekends", SHANGHAI_WEEKENDS, effective_from=dt.date(2025, 9, 1), layer="catalog", source="test"
    )
    day = dt.date.fromisoformat(ts[:10])
    call = {
        "request_id": "r1", "ts": dt.datetime.fromisoformat(ts), "day": day, "provider": "tencent",
        "model": "shanghai-weekends", "feature": "chat", "user_id": "u1", "input_tokens": 1_000,
        "cached_input_tokens": 0, "cache_creation_input_tokens": 0, "uncached_input_tokens": 1_000,
        "output_tokens": 100, "gateway_cache_hit": False, "status": "ok", "workload": "interactive",
        "source_format": "canonical", "service_tier": "standard", "cache_creation_5m_input_tokens": 0,
        "cache_creation_1h_input_tokens": 0, "audio_input_tokens": 0, "audio_output_tokens": 0,
        "reasoning_tokens": 0, "web_search_requests": 0,
    }  # fmt: skip
    [row] = run_model_on(
        "fct_requests",
        {
            "stg_prices": {
                "columns": inputs["stg_prices"]["columns"],
                "rows": [{**price, "effective_to": None, "priority": 1} for price in prices],
            },
            "stg_gateway_requests": {"columns": inputs["stg_gateway_requests"]["columns"], "rows": [call]},
        },
        day=day,
        settings={"pseudonymise_user_id": False, "user_key_inner_pad": None, "user_key_outer_pad": None},
    )
    assert (row["price_key"], row["off_peak"], row["cost_usd"]) == ("shanghai-weekends", off_peak, cost_usd)


@pytest.mark.parametrize(
    ("written", "read"), [("Asia/Shanghai", "Asia/Shanghai"), ("Mars/Olympus", "UTC"), ("", "UTC")]
)
def test_off_peak_weekdays_zone_falls_back_to_utc_as_litellm_does(written, read):
    """LiteLLM's `_weekday_calendar` reads a name no zone has as UTC; a catalog typo must not fail the day."""
    entry = {
        "off_peak_pricing": {"weekday_timezone": written, "windows": [{"hours_utc": "10:00-12:00", "weekdays": [6]}]}
    }
    assert off_peak_windows(entry) == [
        {"weekdays": [6], "weekday_timezone": read, "start_minute": 600, "end_minute": 720}
    ]
