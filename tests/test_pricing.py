"""The cost formula, priced by hand: each call's dollars are worked out on paper below, from the
catalog's per-token prices, and compared to the micro-dollar (here: exactly, as decimals)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from conftest import CATALOG, request

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


@pytest.fixture
def priced(project):
    project.write_config()
    project.write_jsonl("calls.jsonl", CALLS)
    project.run_day(DAY)
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


def test_dated_snapshot_resolves_to_its_catalog_entry(priced):
    assert priced["openai-cached"]["price_key"] == "gpt-4o-2024-08-06"
    assert priced["anthropic-read-write"]["price_key"] == "claude-3-5-sonnet-20241022"


def test_gateway_cache_hit_costs_nothing_and_records_what_it_avoided(priced):
    row = priced["gateway-hit"]
    assert row["cost_usd"] == 0 and row["list_cost_usd"] == 0
    assert row["gateway_cache_avoided_usd"] == 1000 * MINI["in"] + 200 * MINI["out"]  # 0.00027


def test_failed_call_costs_nothing(priced):
    row = priced["failed"]
    assert row["cost_usd"] == 0 and row["list_cost_usd"] == 0 and row["priced"]


def test_unpriced_model_is_flagged_not_zero(priced, project):
    row = priced["unpriced"]
    assert row["priced"] is False and row["pricing_basis"] == "unpriced"
    assert row["cost_usd"] is None
    (unpriced,) = project.query("select unpriced_requests from fct_spend_by_feature_daily where feature = 'chat'")[0]
    assert unpriced == 1


def test_self_hosted_is_priced_by_gpu_billing_not_counted_unpriced(priced):
    row = priced["self-hosted"]
    assert row["pricing_basis"] == "gpu_billing" and row["priced"] is True
    assert row["cost_usd"] is None


def test_unpriced_share_check_warns(project):
    project.write_config()
    project.write_jsonl("calls.jsonl", CALLS)
    result = project.run_day(DAY)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    # 1 unpriced of 6 API calls (the self-hosted call is not an API call) > 1% default
    assert checks["unpriced_share"].passed is False
    assert checks["unpriced_share"].metadata["share"].value == pytest.approx(1 / 6)
    assert checks["unpriced_share"].metadata["unpriced_models"].value == ["gpt-experimental-preview"]


def test_daily_marts_add_up_to_the_requests(priced, project):
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
