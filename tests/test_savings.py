"""The counterfactual engine (sql/macros/price_calls.sql) and the savings levers built on it:
`fct_batch_opportunity_daily` (declared batch work billed at the standard or priority tier) and
`fct_token_efficiency_daily` (duplicate calls, truncated retries, the long-context premium).

Every price below is the current LiteLLM catalog's (fixtures/prices/litellm_2026_11.json), in USD
per token, written out by hand; the sums are worked in Decimal here, not read back from the mart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import dagster as dg
import duckdb
import pytest
from conftest import REPO, open_project, request
from test_pricing import CALLS_CURRENT, CURRENT_CATALOG, DAY

from pipelines.models.engine import load_models, prepare_session
from pipelines.sources.prices import load_rules

DAY_BEFORE = "2026-11-19"


def _batch_call(request_id: str, model: str, provider: str, **fields) -> dict:
    return request(request_id, f"{DAY}T03:00:00Z", model, provider=provider, user_id="etl", **fields)


BATCH_CALLS = [
    # Anthropic, claude-haiku-4-5, declared batch at standard: 4,000 uncached, 4,000 read, 1,000
    # 5-minute and 1,000 1-hour writes, 1,000 out.
    _batch_call(
        "haiku-standard",
        "claude-haiku-4-5",
        "anthropic",
        feature="nightly_enrich",
        workload="batch",
        input_tokens=10_000,
        cached_input_tokens=4_000,
        cache_creation_input_tokens=2_000,
        cache_creation_1h_input_tokens=1_000,
        output_tokens=1_000,
    ),
    # OpenAI gpt-4o, declared batch at standard: 6,000 uncached, 4,000 read, 1,000 out.
    _batch_call(
        "gpt-4o-standard",
        "gpt-4o",
        "openai",
        feature="nightly_enrich",
        workload="batch",
        input_tokens=10_000,
        cached_input_tokens=4_000,
        output_tokens=1_000,
    ),
    # OpenAI gpt-4.1 at priority for batch work: 8,000 uncached, 2,000 read, 1,000 out.
    _batch_call(
        "gpt-4.1-priority",
        "gpt-4.1",
        "openai",
        feature="batch_tagging",
        workload="batch",
        service_tier="priority",
        input_tokens=10_000,
        cached_input_tokens=2_000,
        output_tokens=1_000,
    ),
    # Out of scope, each for its own reason: already on batch; interactive; failed; a gateway cache
    # hit (billed nothing); a self-hosted call.
    _batch_call(
        "already-batch",
        "gpt-4o",
        "openai",
        feature="nightly_enrich",
        workload="batch",
        service_tier="batch",
        input_tokens=10_000,
        output_tokens=1_000,
    ),
    _batch_call("interactive", "gpt-4o", "openai", feature="chat", input_tokens=10_000, output_tokens=1_000),
    _batch_call(
        "failed",
        "gpt-4o",
        "openai",
        feature="nightly_enrich",
        workload="batch",
        status="error",
        input_tokens=10_000,
        output_tokens=0,
    ),
    _batch_call(
        "cache-hit",
        "gpt-4o",
        "openai",
        feature="nightly_enrich",
        workload="batch",
        gateway_cache_hit=True,
        input_tokens=10_000,
        output_tokens=1_000,
    ),
]

# Batch prices where the catalog has none come from the dated rules file
# (pipelines/sources/price_rules.yml): Anthropic's Message Batches and OpenAI's Batch API bill every
# token kind, cache reads and writes included, at 50 % of standard.
# claude-haiku-4-5: standard in 1e-6, read 1e-7, 5-minute write 1.25e-6, 1-hour write 2e-6, out 5e-6;
# batch (the catalog's) in 5e-7, read 5e-8, write 6.25e-7, out 2.5e-6, and 1-hour write 1e-6 (rule).
HAIKU_STANDARD = 4_000 * D("1e-6") + 4_000 * D("1e-7") + 1_000 * D("1.25e-6") + 1_000 * D("2e-6") + 1_000 * D("5e-6")
HAIKU_BATCH = 4_000 * D("5e-7") + 4_000 * D("5e-8") + 1_000 * D("6.25e-7") + 1_000 * D("1e-6") + 1_000 * D("2.5e-6")
# gpt-4o: standard in 2.5e-6, read 1.25e-6, out 1e-5; batch (catalog) in 1.25e-6, out 5e-6, read 6.25e-7 (rule).
GPT_4O_STANDARD = 6_000 * D("2.5e-6") + 4_000 * D("1.25e-6") + 1_000 * D("1e-5")
GPT_4O_BATCH = 6_000 * D("1.25e-6") + 4_000 * D("6.25e-7") + 1_000 * D("5e-6")
# gpt-4.1: priority in 3.5e-6, read 8.75e-7, out 1.4e-5; standard 2e-6, 5e-7, 8e-6; batch (catalog)
# in 1e-6, out 4e-6, read 2.5e-7 (rule).
GPT_41_PRIORITY = 8_000 * D("3.5e-6") + 2_000 * D("8.75e-7") + 1_000 * D("1.4e-5")
GPT_41_STANDARD = 8_000 * D("2e-6") + 2_000 * D("5e-7") + 1_000 * D("8e-6")
GPT_41_BATCH = 8_000 * D("1e-6") + 2_000 * D("2.5e-7") + 1_000 * D("4e-6")


def _call(request_id: str, ts: str, feature: str, user_id: str, **fields) -> dict:
    """A gpt-4o call of 1,000 prompt tokens (`fields` may change them); ts on DAY unless it names a day."""
    at = ts if "T" in ts else f"{DAY}T{ts}Z"
    tokens = {"input_tokens": 1_000, "output_tokens": 100}
    return request(request_id, at, "gpt-4o", provider="openai", feature=feature, user_id=user_id, **(tokens | fields))


# gpt-4o (current catalog): $2.50/M in, $10/M out.
LOOP_CALL = 1_000 * D("2.5e-6") + 100 * D("1e-5")  # 0.0035
CUT_CALL = 1_000 * D("2.5e-6") + 256 * D("1e-5")  # 0.00506, a call cut at 256 output tokens

EFFICIENCY_CALLS = [
    # A client loop: the same prompt_hash from one user of `loop`, again and again.
    _call("d1", "10:00:00", "loop", "u_loop", prompt_hash="h1"),
    _call("d2", "10:00:30", "loop", "u_loop", prompt_hash="h1"),  # 30 s after d1: a duplicate
    _call("d3", "10:01:30", "loop", "u_loop", prompt_hash="h1"),  # exactly 60 s after d2: a duplicate
    _call("d4", "10:02:30.001", "loop", "u_loop", prompt_hash="h1"),  # 60.001 s after d3: not one
    _call("d5", "10:02:40", "loop", "u_other", prompt_hash="h1"),  # another user: not one
    _call("d6", "10:02:45", "loop", "u_loop", prompt_hash="h1", status="error", output_tokens=0),  # failed
    _call("d7", "10:03:00", "loop", "u_loop", prompt_hash="h1"),  # 29.999 s after d4 (d6 failed): a duplicate
    _call("x1", f"{DAY_BEFORE}T23:59:40Z", "loop", "u_loop", prompt_hash="h2"),
    _call("x2", f"{DAY}T00:00:20Z", "loop", "u_loop", prompt_hash="h2"),  # 40 s after x1, past midnight: one
    # Calls cut by max_tokens (finish_reason = length) and sent again.
    _call(
        "t1",
        "12:00:00",
        "summarise",
        "u_sum",
        output_tokens=256,
        finish_reason="length",
        max_tokens=256,
        prompt_hash="p1",
        prefix_hashes=[[1_000, "f1"]],
    ),
    # 20 s later with max_tokens raised: another prompt_hash, the same first prefix: t1 was retried.
    _call("t2", "12:00:20", "summarise", "u_sum", max_tokens=1024, prompt_hash="p1b", prefix_hashes=[[1_000, "f1"]]),
    _call("t3", "12:05:00", "summarise", "u_sum", output_tokens=256, finish_reason="length", prompt_hash="p3"),
    _call("t4", "12:07:00", "summarise", "u_sum", prompt_hash="p3"),  # exactly 120 s later: t3 was retried
    _call("t5", "12:10:00", "summarise", "u_sum", output_tokens=256, finish_reason="length", prompt_hash="p5"),
    _call(
        "t6",
        f"{DAY_BEFORE}T23:59:00Z",
        "summarise",
        "u_sum",
        output_tokens=256,
        finish_reason="length",
        prompt_hash="p6",
    ),
    _call("t7", f"{DAY}T00:00:30Z", "summarise", "u_sum", prompt_hash="p6"),  # 90 s later, the next day
    # Gemini 2.5 Pro (current catalog): $1.25/M in and $10/M out up to 200k prompt tokens; $2.50/M
    # and $15/M for every token of a longer prompt.
    request(
        "l1",
        f"{DAY}T09:00:00Z",
        "gemini-2.5-pro",
        provider="gcp.gemini",
        feature="rag",
        user_id="u_rag",
        input_tokens=200_000,
        output_tokens=1_000,
    ),
    request(
        "l2",
        f"{DAY}T09:00:01Z",
        "gemini-2.5-pro",
        provider="gcp.gemini",
        feature="rag",
        user_id="u_rag",
        input_tokens=200_001,
        output_tokens=1_000,
    ),
]
# Repeats a gateway response cache would answer (`faq`, gpt-4o, 1,000 in / 100 out each: LOOP_CALL):
# the same prompt_hash from anyone within savings.gateway_cache_ttl_s (86,400 s), duplicates apart.
GATEWAY_CALLS = [
    _call("g1", "10:00:00", "faq", "u_a", prompt_hash="q1"),
    _call("g2", "11:00:00", "faq", "u_b", prompt_hash="q1"),  # another user an hour later: a repeat
    _call("g3", "11:00:30", "faq", "u_b", prompt_hash="q1"),  # u_b again within 60 s: a duplicate, not both
    _call("g4", f"{DAY_BEFORE}T12:00:00Z", "faq", "u_c", prompt_hash="q2"),
    _call("g5", "12:00:00", "faq", "u_d", prompt_hash="q2"),  # exactly 86,400 s after g4: a repeat
    _call("g6", f"{DAY_BEFORE}T11:59:59.999Z", "faq", "u_c", prompt_hash="q3"),
    _call("g7", "12:00:00", "faq", "u_d", prompt_hash="q3"),  # 86,400.001 s after g6: not one
]
# The tails (`tail`, gpt-4o): 30 calls of the day, 28 of 1,000 prompt tokens, so p90 is 1,000 by
# any definition of a percentile (nearest rank: the 27th of 30). Above it: one call of 11,000 plain
# tokens (10,000 to trim) and one of 11,000 with 9,500 read from the cache (only its 1,500 plain
# tokens can go). One answer of 1,100 output tokens, 600 of them reasoning, above the p95 of 100:
# only its 500 visible tokens above 100 can be cut... of which 1,000 are above p95, so min(1,000, 500).
TAIL_CALLS = [_call(f"tail{n}", f"14:{n:02d}:00", "tail", "u_tail", prompt_hash=f"tail{n}") for n in range(27)] + [
    _call("tail-think", "14:40:00", "tail", "u_tail", output_tokens=1_100, reasoning_tokens=600),
    _call("tail-long", "14:41:00", "tail", "u_tail", input_tokens=11_000),
    _call("tail-cached", "14:42:00", "tail", "u_tail", input_tokens=11_000, cached_input_tokens=9_500),
]
TAIL_TRIM = (10_000 + 1_500) * D("2.5e-6")  # gpt-4o's plain input price
OUTPUT_CAP = 500 * D("1e-5")  # gpt-4o's output price (reasoning is billed as output)
REASONING = 600 * D("1e-5")
# What the 30 cost: 27 plain calls, the long answer, the long prompt, the cached one.
TAIL_SPEND = (
    27 * LOOP_CALL
    + (1_000 * D("2.5e-6") + 1_100 * D("1e-5"))
    + (11_000 * D("2.5e-6") + 100 * D("1e-5"))
    + (1_500 * D("2.5e-6") + 9_500 * D("1.25e-6") + 100 * D("1e-5"))
)
# Prompt-cache writes on claude-haiku-4-5-20251001 (the dated name: the batch calls use the other; current catalog: in 1e-6, 5-minute write 1.25e-6, 1-hour
# write 2e-6, out 5e-6). `stamped` writes 2,000 tokens a call and never reads them (a timestamp in
# the prefix); `healthy` writes and then reads.
WRITE_CALLS = [
    request(
        f"{feature}-{n}",
        f"{DAY}T08:0{n}:00Z",
        "claude-haiku-4-5-20251001",
        provider="anthropic",
        feature=feature,
        user_id="u_cache",
        input_tokens=3_000,
        output_tokens=100,
        **fields,
    )
    for feature, n, fields in (
        ("stamped", 1, {"cache_creation_input_tokens": 2_000}),
        ("stamped", 2, {"cache_creation_input_tokens": 2_000, "cache_creation_1h_input_tokens": 2_000}),
        ("healthy", 1, {"cache_creation_input_tokens": 2_000}),
        ("healthy", 2, {"cached_input_tokens": 2_000}),
    )
]
STAMPED_5M = 1_000 * D("1e-6") + 2_000 * D("1.25e-6") + 100 * D("5e-6")  # 0.004
STAMPED_1H = 1_000 * D("1e-6") + 2_000 * D("2e-6") + 100 * D("5e-6")  # 0.0055
STAMPED_AS_INPUT = 3_000 * D("1e-6") + 100 * D("5e-6")  # 0.0035, each
LONG_AT_TIER = 200_001 * D("2.5e-6") + 1_000 * D("1.5e-5")
LONG_AT_BASE = 200_001 * D("1.25e-6") + 1_000 * D("1e-5")


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    """Two days (DAY and the day before) of the calls above and every hand-priced call of
    tests/test_pricing.py, as one range run."""
    with open_project(tmp_path_factory.mktemp("savings")) as project:
        # Routing is tested on its own below: here no model has a cheaper sibling.
        project.write_config(
            prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"}, savings={"routes": {}}
        )
        pricing_calls = [
            request(call.request_id, f"{DAY}T{call.at}", call.model, feature="chat", user_id="u1", **call.fields)
            for call in CALLS_CURRENT
        ]
        project.write_jsonl(
            "calls.jsonl",
            pricing_calls + BATCH_CALLS + EFFICIENCY_CALLS + WRITE_CALLS + GATEWAY_CALLS + TAIL_CALLS,
        )
        project.run_days(DAY_BEFORE, DAY)
        yield project


def test_the_hand_arithmetic_itself():
    assert HAIKU_STANDARD == D("0.01265")
    assert HAIKU_BATCH == D("0.006325")
    assert GPT_4O_STANDARD == D("0.03")
    assert GPT_4O_BATCH == D("0.015")
    assert GPT_41_PRIORITY == D("0.04375")
    assert GPT_41_STANDARD == D("0.025")
    assert GPT_41_BATCH == D("0.0125")


def test_declared_batch_work_is_priced_again_at_the_batch_and_standard_tiers(priced):
    rows = {
        (row["model"], row["current_tier"], row["target_tier"], row["reason"]): row
        for row in priced.query_dicts("select * from fct_batch_opportunity_daily")
    }
    expected = {
        ("claude-haiku-4-5", "standard", "batch", "declared_batch"): (HAIKU_STANDARD, HAIKU_BATCH, True),
        ("gpt-4o", "standard", "batch", "declared_batch"): (GPT_4O_STANDARD, GPT_4O_BATCH, True),
        ("gpt-4.1", "priority", "batch", "declared_batch"): (GPT_41_PRIORITY, GPT_41_BATCH, True),
        ("gpt-4.1", "priority", "standard", "priority_on_batch"): (GPT_41_PRIORITY, GPT_41_STANDARD, True),
    }
    # Nothing else: not the call already on batch, the interactive one, the failed one, the
    # gateway cache hit, nor any of test_pricing's calls (none declared batch work).
    assert sorted(rows) == sorted(expected)
    for key, (current, target, stacks) in expected.items():
        row = rows[key]
        assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (1, 10_000, 1_000), key
        assert row["current_cost_usd"] == current, key
        assert row["target_cost_usd"] == target, key
        assert row["savings_usd"] == current - target, key
        assert row["stacks_with_cache"] is stacks, key
        assert row["confidence"] == "high"
        assert row["day"].isoformat() == DAY


def test_an_unchanged_call_priced_again_costs_what_fct_requests_says_to_the_last_digit(priced):
    """The engine's identity: every call of the two days, as int_billed_calls gives it to the
    savings models, with nothing changed and priced again by price_calls, costs exactly its
    cost_usd (and has the same charges, list cost and tiers). The day covers every rule test_pricing.py prices by hand: context tiers, service
    tiers, off-peak hours, 1-hour writes, audio, reasoning, web search, fees, errors, cache hits."""
    with duckdb.connect(str(priced.warehouse), read_only=True) as conn:
        prepare_session(conn, read_only=True)
        differing = conn.execute(
            f"""
            with calls as (select * from int_billed_calls),
            again as (select * from price_calls(calls, DATE '{DAY_BEFORE}', DATE '{DAY}'))
            select request_id
            from fct_requests
            inner join again using (request_id)
            where
                fct_requests.cost_usd is distinct from again.cost_usd
                or fct_requests.list_cost_usd is distinct from again.list_cost_usd
                or fct_requests.charges is distinct from again.charges
                or fct_requests.price_key is distinct from again.price_key
                or fct_requests.price_tier is distinct from again.price_tier
                or fct_requests.priced_service_tier is distinct from again.priced_service_tier
            """  # noqa: S608 (DAY: a constant of the tests)
        ).fetchall()
        total = conn.execute("select count(*), count(cost_usd) from fct_requests").fetchone()
        (again,) = conn.execute(
            f"select count(*) from price_calls(int_billed_calls, DATE '{DAY_BEFORE}', DATE '{DAY}')"  # noqa: S608 (days: constants of the tests)
        ).fetchone()
    assert differing == []
    assert total[0] == len(CALLS_CURRENT) + len(BATCH_CALLS) + len(EFFICIENCY_CALLS) + len(WRITE_CALLS) + len(
        GATEWAY_CALLS
    ) + len(TAIL_CALLS)
    assert total[1] > 0
    assert again == total[0]  # every call priced again, none lost or doubled


def test_the_savings_model_reads_the_prices_through_the_macro():
    """Dependencies come from parsing the SQL: a model calling price_calls reads stg_prices."""
    models = load_models()
    assert "stg_prices" in models["fct_requests"].reads
    for name in ("int_batch_calls", "int_token_efficiency_calls", "int_prompt_cache_calls", "int_model_fit_calls"):
        assert set(models[name].reads) == {"int_billed_calls", "stg_prices"}, name
        assert models[name].layer == "savings"
    # The marts that add the per-call models up; the long-context premium is priced in the mart.
    assert set(models["fct_batch_opportunity_daily"].reads) == {"int_batch_calls"}
    assert set(models["fct_token_efficiency_daily"].reads) == {
        "int_billed_calls",
        "int_token_efficiency_calls",
        "stg_prices",
    }


def test_the_readme_query_prices_a_day_at_batch_prices(priced):
    """The README's example of calling price_calls runs as written (its day set to this one) and
    prices the two models only the batch calls above use at their hand-worked batch cost."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pricing = readme.split("## Pricing", 1)[1].split("\n## ", 1)[0]
    query = next(block for block in pricing.split("```sql\n")[1:] if "price_calls(" in block).split("```", 1)[0]
    with duckdb.connect(str(priced.warehouse), read_only=True) as conn:
        prepare_session(conn, read_only=True)
        by_model = dict(conn.execute(query.replace("2026-11-20", DAY)).fetchall())
    assert by_model["claude-haiku-4-5"] == HAIKU_BATCH
    assert by_model["gpt-4.1"] == GPT_41_BATCH


def test_the_efficiency_arithmetic_itself():
    assert LOOP_CALL == D("0.0035")
    assert CUT_CALL == D("0.00506")
    assert LONG_AT_TIER == D("0.5150025")
    assert LONG_AT_BASE == D("0.26000125")
    assert (STAMPED_5M, STAMPED_1H, STAMPED_AS_INPUT) == (D("0.004"), D("0.0055"), D("0.0035"))


def test_duplicates_truncated_retries_and_the_long_context_premium_are_measured(priced):
    rows = {
        (row["day"].isoformat(), row["feature"]): row
        for row in priced.query_dicts(
            "select * from fct_token_efficiency_daily where feature in ('loop', 'summarise', 'rag')"
        )
    }
    loop = rows[(DAY, "loop")]
    # d1..d7 and x2 are the day's billed calls (d6 failed); d2, d3, d7 and x2 repeat an ok call of
    # the same prompt, user and feature within 60 s.
    assert (loop["requests"], loop["cost_usd"]) == (7, 7 * LOOP_CALL)
    assert (loop["duplicate_requests"], loop["duplicate_usd"]) == (4, 4 * LOOP_CALL)
    assert rows[(DAY_BEFORE, "loop")]["duplicate_requests"] == 0  # x1 is the first of its pair

    summarise = rows[(DAY, "summarise")]
    # Cut on DAY: t1, t3, t5. Sent again: t1 (by its first prefix), t3 (at exactly 120 s), and t6
    # of the day before, re-sent after midnight: counted on DAY, the re-send's day. t5 never was.
    assert (summarise["finish_length_requests"], summarise["finish_length_usd"]) == (3, 3 * CUT_CALL)
    assert (summarise["truncated_retry_requests"], summarise["truncated_retry_usd"]) == (3, 3 * CUT_CALL)
    assert summarise["requests"] == 6  # t1..t5 and t7 (t6 is the day before's)
    before = rows[(DAY_BEFORE, "summarise")]
    assert (before["finish_length_requests"], before["truncated_retry_requests"]) == (1, 0)

    rag = rows[(DAY, "rag")]
    # l1 at exactly 200,000 prompt tokens bills at the base tier: no premium; l2 at 200,001 does not.
    assert rag["long_context_requests"] == 1
    assert rag["long_context_premium_usd"] == LONG_AT_TIER - LONG_AT_BASE
    assert rag["cost_usd"] == 200_000 * D("1.25e-6") + 1_000 * D("1e-5") + LONG_AT_TIER
    # Nothing measured where nothing happened.
    for key, row in rows.items():
        if key[1] == "rag":
            assert row["duplicate_requests"] == row["truncated_retry_requests"] == 0, key


def test_the_tails_arithmetic_itself():
    assert (TAIL_TRIM, OUTPUT_CAP, REASONING) == (D("0.02875"), D("0.005"), D("0.006"))
    assert TAIL_SPEND == D("0.153125")


def test_gateway_repeats_and_the_tails_are_priced_again(priced):
    rows = {
        (row["day"].isoformat(), row["feature"]): row
        for row in priced.query_dicts("select * from fct_token_efficiency_daily where feature in ('faq', 'tail')")
    }
    faq = rows[(DAY, "faq")]
    # g1 (first), g2 (a repeat), g3 (a duplicate only), g5 (a repeat, at exactly the TTL), g7 (past it).
    assert (faq["requests"], faq["duplicate_requests"]) == (5, 1)
    assert (faq["gateway_repeat_requests"], faq["gateway_repeat_usd"]) == (2, 2 * LOOP_CALL)
    assert rows[(DAY_BEFORE, "faq")]["gateway_repeat_requests"] == 0

    tail = rows[(DAY, "tail")]
    assert (tail["input_p50"], tail["input_p90"], tail["output_p50"], tail["output_p95"]) == (1_000, 1_000, 100, 100)
    assert (tail["tail_excess_input_tokens"], tail["tail_trim_usd"]) == (11_500, TAIL_TRIM)
    assert (tail["verbose_excess_output_tokens"], tail["output_cap_usd"]) == (500, OUTPUT_CAP)
    assert (tail["reasoning_tokens"], tail["reasoning_usd"]) == (600, REASONING)
    # 28 calls of 1,000 plain tokens, one of 11,000, one of 1,500 (9,500 read from the cache).
    assert tail["input_tokens"] == 28 * 1_000 + 2 * 11_000
    assert (tail["uncached_input_tokens"], tail["uncached_input_usd"]) == (40_500, 40_500 * D("2.5e-6"))
    # Nothing above the tails where every call is alike.
    assert faq["tail_trim_usd"] == faq["output_cap_usd"] == faq["reasoning_usd"] == 0


def test_a_day_run_alone_measures_what_the_range_run_did(priced, tmp_path):
    """DAY's savings rows are the same whether DAY ran in a range with the day before or alone,
    after it (the window reads the day before from the lake either way)."""
    before = priced.query("select * from fct_token_efficiency_daily where day = $day order by all", {"day": DAY})
    priced.run_day(DAY)
    after = priced.query("select * from fct_token_efficiency_daily where day = $day order by all", {"day": DAY})
    assert after == before and len(after) > 0


def test_on_vertex_ai_the_batch_discount_does_not_reach_gemini_cache_reads(project):
    """Declared batch work on Vertex AI that read the prompt cache. Gemini there does not stack the
    two discounts (the cache hit discount takes precedence: cache reads keep their price at batch),
    so stacks_with_cache is false; Claude on Vertex follows Anthropic's batch rule (all usage at
    50 %), so it is true."""
    project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
    vertex = {"feature": "nightly_vertex", "workload": "batch", "input_tokens": 10_000, "output_tokens": 1_000}
    project.write_jsonl(
        "calls.jsonl",
        [
            _batch_call("gemini", "gemini-2.5-flash", "gcp.vertex_ai", cached_input_tokens=6_000, **vertex),
            _batch_call(
                "claude",
                "claude-sonnet-5",
                "gcp.vertex_ai",
                cached_input_tokens=4_000,
                cache_creation_input_tokens=2_000,
                **vertex,
            ),
        ],
    )
    project.run_day(DAY)
    rows = {row["model"]: row for row in project.query_dicts("select * from fct_batch_opportunity_daily")}
    # Gemini 2.5 Flash on Vertex (catalog): in $0.30/M, cache read $0.03/M, out $2.50/M; batch in
    # $0.15/M, out $1.25/M, cache read $0.03/M (rule vertex_batch_cache_no_stacking).
    gemini_standard = 4_000 * D("3e-7") + 6_000 * D("3e-8") + 1_000 * D("2.5e-6")  # 0.00388
    gemini_batch = 4_000 * D("1.5e-7") + 6_000 * D("3e-8") + 1_000 * D("1.25e-6")  # 0.00203
    # Claude Sonnet 5 on Vertex: in $2/M, read $0.20/M, 5-minute write $2.50/M, out $10/M; batch
    # in $1/M, out $5/M (catalog), read $0.10/M and write $1.25/M (Anthropic's rules).
    claude_standard = 4_000 * D("2e-6") + 4_000 * D("2e-7") + 2_000 * D("2.5e-6") + 1_000 * D("1e-5")  # 0.0238
    claude_batch = 4_000 * D("1e-6") + 4_000 * D("1e-7") + 2_000 * D("1.25e-6") + 1_000 * D("5e-6")  # 0.0119
    assert (gemini_standard, gemini_batch) == (D("0.00388"), D("0.00203"))
    assert (claude_standard, claude_batch) == (D("0.0238"), D("0.0119"))
    assert sorted(rows) == ["claude-sonnet-5", "gemini-2.5-flash"]
    for model, standard, batch, stacks in (
        ("gemini-2.5-flash", gemini_standard, gemini_batch, False),
        ("claude-sonnet-5", claude_standard, claude_batch, True),
    ):
        row = rows[model]
        assert (row["current_tier"], row["target_tier"], row["reason"]) == ("standard", "batch", "declared_batch")
        assert (row["current_cost_usd"], row["target_cost_usd"]) == (standard, batch), model
        assert row["savings_usd"] == standard - batch, model
        assert row["stacks_with_cache"] is stacks, model


def test_a_target_tier_dearer_than_the_one_billed_is_flagged_not_hidden(project):
    """An override that prices batch above standard (a price error a person should see): the row
    keeps its negative saving, the savings_within_spend gate fails (WARN, naming the row) and the
    run completes."""
    project.write_config(
        prices={
            "catalog": str(CURRENT_CATALOG),
            "effective_from": "2025-09-01",
            "overrides": {
                "odd-model": {
                    "input_cost_per_token": 1e-6,
                    "output_cost_per_token": 1e-6,
                    "input_cost_per_token_batches": 2e-6,
                    "output_cost_per_token_batches": 2e-6,
                }
            },
        }
    )
    project.write_jsonl(
        "calls.jsonl",
        [
            _batch_call(
                "odd",
                "odd-model",
                "openai",
                feature="nightly",
                workload="batch",
                input_tokens=1_000,
                output_tokens=1_000,
            )
        ],
    )
    result = project.run_day(DAY)
    assert result.success
    (row,) = project.query_dicts("select * from fct_batch_opportunity_daily")
    assert row["savings_usd"] == 2_000 * D("1e-6") - 2_000 * D("2e-6")
    checks = {
        check.check_name: check
        for check in result.get_asset_check_evaluations()
        if check.asset_key.to_user_string() == "fct_batch_opportunity_daily"
    }
    assert checks["savings_within_spend"].passed is False
    assert checks["savings_within_spend"].severity.value == "WARN"


# fct_savings_opportunities as of DAY: a 28-day window holding DAY_BEFORE and DAY, the two days
# with calls, so a month is the window's dollars x 30.44 / 2.
MONTH_OVER_2_DAYS = D("30.44") / 2
FINDINGS = {
    # kind, feature, provider, model, target: basis, in scope (calls, USD), affected, window saving (USD)
    ("duplicate_calls", "loop", "openai", "gpt-4o", ""): ("measured", 8, 8 * LOOP_CALL, 4, 4 * LOOP_CALL),
    # summarise's calls: t1, t3, t5 cut on DAY and t6 the day before; t2, t4, t7 whole.
    ("truncation_retries", "summarise", "openai", "gpt-4o", ""): (
        "measured",
        7,
        4 * CUT_CALL + 3 * LOOP_CALL,
        3,
        3 * CUT_CALL,
    ),
    # The write premium stamped paid for writes nothing read; healthy read its write: no finding.
    ("cache_write_waste", "stamped", "anthropic", "claude-haiku-4-5-20251001", ""): (
        "measured",
        2,
        STAMPED_5M + STAMPED_1H,
        2,
        STAMPED_5M + STAMPED_1H - 2 * STAMPED_AS_INPUT,
    ),
    ("long_context_tier", "rag", "gcp.gemini", "gemini-2.5-pro", "base_tier"): (
        "price_rule",
        2,
        200_000 * D("1.25e-6") + 1_000 * D("1e-5") + LONG_AT_TIER,
        1,
        LONG_AT_TIER - LONG_AT_BASE,
    ),
    ("batch", "nightly_enrich", "anthropic", "claude-haiku-4-5", "batch"): (
        "price_rule",
        1,
        HAIKU_STANDARD,
        1,
        HAIKU_STANDARD - HAIKU_BATCH,
    ),
    ("batch", "nightly_enrich", "openai", "gpt-4o", "batch"): (
        "price_rule",
        1,
        GPT_4O_STANDARD,
        1,
        GPT_4O_STANDARD - GPT_4O_BATCH,
    ),
    ("batch", "batch_tagging", "openai", "gpt-4.1", "batch"): (
        "price_rule",
        1,
        GPT_41_PRIORITY,
        1,
        GPT_41_PRIORITY - GPT_41_BATCH,
    ),
    ("service_tier", "batch_tagging", "openai", "gpt-4.1", "standard"): (
        "price_rule",
        1,
        GPT_41_PRIORITY,
        1,
        GPT_41_PRIORITY - GPT_41_STANDARD,
    ),
    # A gateway response cache of 24 h would have answered: g2 and g5 (faq); d4 and d5 (loop: d4 is
    # 60.001 s after d3, no duplicate, but a repeat; d5 is another user's); t4 (summarise: 120 s after
    # t3, past the duplicate window) and t7 (t6's prompt, the day before). Each a LOOP_CALL.
    ("gateway_cache", "faq", "openai", "gpt-4o", "gateway_ttl"): ("upper_bound", 7, 7 * LOOP_CALL, 2, 2 * LOOP_CALL),
    ("duplicate_calls", "faq", "openai", "gpt-4o", ""): ("measured", 7, 7 * LOOP_CALL, 1, LOOP_CALL),  # g3
    ("gateway_cache", "loop", "openai", "gpt-4o", "gateway_ttl"): ("upper_bound", 8, 8 * LOOP_CALL, 2, 2 * LOOP_CALL),
    ("gateway_cache", "summarise", "openai", "gpt-4o", "gateway_ttl"): (
        "upper_bound",
        7,
        4 * CUT_CALL + 3 * LOOP_CALL,
        2,
        2 * LOOP_CALL,
    ),
    ("trim_input", "tail", "openai", "gpt-4o", "p90"): ("upper_bound", 30, TAIL_SPEND, 2, TAIL_TRIM),
    ("cap_output", "tail", "openai", "gpt-4o", "p95"): ("upper_bound", 30, TAIL_SPEND, 1, OUTPUT_CAP),
    # Exposure: the spend a lever could act on, no estimate (None). Calls without prefix_hashes whose
    # prompt reaches the model's minimum (1,024 tokens; 4,096 for claude-haiku-4-5): their plain
    # prompt tokens at the price billed.
    ("prompt_cache", "tail", "openai", "gpt-4o", "log_prefix_hashes"): (
        "exposure",
        30,
        (11_000 + 1_500) * D("2.5e-6"),  # tail-long, and tail-cached's plain part
        2,
        None,
    ),
    ("prompt_cache", "rag", "gcp.gemini", "gemini-2.5-pro", "log_prefix_hashes"): (
        "exposure",
        2,
        200_000 * D("1.25e-6") + 200_001 * D("2.5e-6"),  # l2 at the long-context rate
        2,
        None,
    ),
    ("prompt_cache", "nightly_enrich", "anthropic", "claude-haiku-4-5", "log_prefix_hashes"): (
        "exposure",
        1,
        4_000 * D("1e-6"),
        1,
        None,
    ),
    ("prompt_cache", "nightly_enrich", "openai", "gpt-4o", "log_prefix_hashes"): (
        "exposure",
        2,
        6_000 * D("2.5e-6") + 10_000 * D("1.25e-6"),  # gpt-4o-standard; already-batch at batch price
        2,
        None,
    ),
    ("prompt_cache", "batch_tagging", "openai", "gpt-4.1", "log_prefix_hashes"): (
        "exposure",
        1,
        8_000 * D("3.5e-6"),  # at priority
        1,
        None,
    ),
    # tail-think's 600 reasoning tokens at gpt-4o's output price; summarise's 4 cut calls.
    ("cap_output", "tail", "openai", "gpt-4o", "reasoning_effort"): ("exposure", 30, REASONING, 30, None),
    ("cap_output", "summarise", "openai", "gpt-4o", "finish_length"): ("exposure", 7, 4 * CUT_CALL, 4, None),
}


def _monthly(window_usd: D) -> D:
    return (window_usd * MONTH_OVER_2_DAYS).quantize(D("0.000001"), rounding=ROUND_HALF_UP)  # as DuckDB rounds


def test_every_lever_becomes_one_finding_with_its_hand_priced_dollars(priced):
    rows = {
        (row["kind"], row["feature"], row["provider"], row["model"], row["target"]): row
        for row in priced.query_dicts(
            "select * from fct_savings_opportunities where day = $day and feature <> 'chat'", {"day": DAY}
        )
    }
    # Nothing else: no prompt-cache finding (t1 and t2's one prefix, 1,000 tokens, is under
    # gpt-4o's 1,024-token minimum), nothing for the interactive, failed or cached calls.
    assert sorted(rows) == sorted(FINDINGS)
    for key, (basis, in_scope, spend, affected, saving) in FINDINGS.items():
        row = rows[key]
        assert row["basis"] == basis, key
        assert row["confidence"] == ("low" if basis in ("upper_bound", "exposure") else "high"), key
        assert (row["requests_in_scope"], row["requests_affected"]) == (in_scope, affected), key
        assert row["spend_in_scope_usd"] == spend, key
        assert row["estimated_savings_usd"] == saving, key
        assert row["monthly_savings_usd"] == (None if saving is None else _monthly(saving)), key
        assert (row["period_start"].isoformat(), row["period_end"].isoformat()) == ("2026-10-24", DAY)
        assert (row["window_days"], row["days_observed"]) == (28, 2)
        assert row["finding_key"] == "{}:{}:{}/{}:{}".format(*key)
        assert row["assumptions"] and row["evidence"]
    # test_pricing's calls (feature chat): their long-context findings are the premiums
    # fct_token_efficiency_daily measured, model by model; one of them (claude-3-7 on Bedrock) also
    # wrote the cache and nothing read it.
    chat = priced.query(
        "select model, kind, estimated_savings_usd from fct_savings_opportunities"
        " where feature = 'chat' and kind = 'long_context_tier' order by all"
    )
    assert priced.query(
        "select kind, count(*) from fct_savings_opportunities where feature = 'chat' and basis <> 'exposure'"
        " group by kind order by kind"
    ) == [("cache_write_waste", 1), ("long_context_tier", 3)]
    premiums = priced.query(
        "select model, 'long_context_tier', sum(long_context_premium_usd) from fct_token_efficiency_daily"
        " where feature = 'chat' group by model having sum(long_context_premium_usd) > 0 order by all"
    )
    assert chat == premiums and len(chat) == 3
    duplicates = rows[("duplicate_calls", "loop", "openai", "gpt-4o", "")]
    assert duplicates["assumptions"].startswith("4 calls repeated an earlier call")
    assert '"duplicate_window_s":60' in duplicates["evidence"].replace(".0", "")
    # Its examples: the 5 costliest duplicates of the window (all cost the same: by request_id, last first).
    assert json.loads(duplicates["evidence"])["sample_request_ids"] == ["x2", "d7", "d3", "d2"]
    trimmed = rows[("trim_input", "tail", "openai", "gpt-4o", "p90")]
    assert json.loads(trimmed["evidence"])["sample_request_ids"] == ["tail-long", "tail-cached"]  # 0.025, 0.00375
    # And 5 drawn at random with a fixed seed: the smallest md5 of the ids (here all 4, in that order).
    assert json.loads(duplicates["evidence"])["random_request_ids"] == _draws(["x2", "d7", "d3", "d2"])
    assert json.loads(trimmed["evidence"])["random_request_ids"] == _draws(["tail-long", "tail-cached"])


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (a seeded draw, not security)


def _draws(ids: list[str], n: int = 5) -> list[str]:
    """The seeded random sample, worked in Python: the n ids with the smallest md5."""
    return sorted(set(ids), key=md5)[:n]


def _ntile(ordered: list[str], buckets: int = 10) -> dict[str, int]:
    """SQL's ntile(buckets) over ids already in order: the first len % buckets groups one larger."""
    size, larger = divmod(len(ordered), buckets)
    tiles, start = {}, 0
    for tile in range(1, buckets + 1):
        end = start + size + (1 if tile <= larger else 0)
        tiles.update({request_id: tile for request_id in ordered[start:end]})
        start = end
    return tiles


def kit_cells(calls: dict[str, tuple[int, int]]) -> list[tuple[tuple[int, int], str, str]]:
    """One day's eval-kit cells worked in Python: deciles of prompt and answer size (ties by id),
    2 calls per cell by the smallest md5: [((input decile, output decile), draw, request_id)]."""
    by_input = _ntile(sorted(calls, key=lambda r: (calls[r][0], r)))
    by_output = _ntile(sorted(calls, key=lambda r: (calls[r][1], r)))
    return merge_kits([[((by_input[r], by_output[r]), md5(r), r) for r in calls]])


def merge_kits(days: list[list[tuple[tuple[int, int], str, str]]]) -> list[tuple[tuple[int, int], str, str]]:
    """Per cell, the 2 smallest draws of all the days' cells, by cell then draw."""
    cells: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for cell, draw, request_id in (entry for day in days for entry in day):
        cells.setdefault(cell, []).append((draw, request_id))
    return [(cell, draw, r) for cell in sorted(cells) for draw, r in sorted(set(cells[cell]))[:2]]


def test_the_window_merges_the_days_draws_and_eval_kits_by_hand():
    """random_samples: the days' 5 smallest draws merge into the window's 5 smallest, an id seen
    twice counted once. eval_kit: each cell keeps its 2 smallest draws across the days."""
    days = [[f"a{n}" for n in range(9)], None, [f"b{n}" for n in range(7)] + ["a3"]]
    daily = [None if ids is None else _draws(ids) for ids in days]
    every = [r for ids in days if ids for r in ids]
    cell = lambda i, o, r: {"input_decile": i, "output_decile": o, "draw": md5(r), "request_id": r}  # noqa: E731
    kits = [
        [cell(1, 1, "k1"), cell(1, 1, "k2"), cell(3, 2, "k3")],
        [cell(1, 1, "k4"), cell(1, 1, "k5"), cell(10, 10, "k6")],
    ]
    first_cell = sorted(["k1", "k2", "k4", "k5"], key=md5)[:2]
    with duckdb.connect() as conn:
        prepare_session(conn)
        assert conn.execute("select random_samples($lists)", {"lists": daily}).fetchone()[0] == _draws(every)
        assert conn.execute("select eval_kit($lists)", {"lists": kits}).fetchone()[0] == [*first_cell, "k3", "k6"]


# Each upper-bound lever's saving per call, as fct_savings_overlap_daily reads it (table, expression).
LEVERS_PER_CALL = {
    "gateway_cache": ("int_token_efficiency_calls", "case when is_gateway_repeat then billed_cost_usd end"),
    "trim_input": ("int_token_efficiency_calls", "trim_savings_usd"),
    "cap_output": ("int_token_efficiency_calls", "cap_savings_usd"),
    "route_by_difficulty": ("int_model_fit_calls", "route_savings_usd"),
    "right_size_model": ("int_model_fit_calls", "rightsize_savings_usd"),
    "prompt_cache:ttl_short": ("int_prompt_cache_calls", "savings_usd_ttl_short"),
    "prompt_cache:ttl_long": ("int_prompt_cache_calls", "savings_usd_ttl_long"),
    "batch": (
        "int_batch_calls",
        "case when reason not in ('declared_batch', 'priority_on_batch') then savings_usd end",
    ),
}


def test_the_combined_upper_bound_takes_the_largest_fired_lever_per_call_by_hand():
    """savings_per_basis on hand-made findings and overlap rows. classify (openai/gpt-4o) has
    trim_input and prompt_cache at ttl_long as upper-bound findings; right_size_model is validated
    (another basis) and ttl_short is not the finding's lifetime. Per ranking, the first fired lever:
    [ttl_long 3, trim 1] -> 3; [trim 2] -> 2; [right_size 5, trim 0.5] -> 0.5; [ttl_short 4] -> 0;
    a day before the window -> nothing; ttl_long's writes cost 0.5 (ttl_short's 1 are not taken).
    The window's 5.0 over 28 observed days is 5.0 x 30.44 / 28 a month. gpt-4o's selfhost_trigger
    (feature '') is an alternative to all of the model's calls; a pool's autoscale and queue_batch
    are alternatives to each other."""
    day, start = dt.date(2026, 10, 28), dt.date(2026, 10, 1)
    monthly = lambda usd: (D(usd) * D("30.44") / 28).quantize(D("0.000001"))  # noqa: E731
    combined = monthly("5.0")
    finding = lambda kind, feature, provider, model, target, basis, usd: {  # noqa: E731
        "day": day,
        "period_start": start,
        "days_observed": 28,
        "kind": kind,
        "feature": feature,
        "provider": provider,
        "model": model,
        "target": target,
        "basis": basis,
        "monthly_savings_usd": D(usd),
        "status": "open",
    }
    findings = [
        finding("trim_input", "classify", "openai", "gpt-4o", "p90", "upper_bound", "4"),
        finding("prompt_cache", "classify", "openai", "gpt-4o", "ttl_long", "upper_bound", "5"),
        finding("right_size_model", "classify", "openai", "gpt-4o", "gpt-4o-mini", "validated", "9"),
        finding("autoscale", "", "self_hosted", "pool-a", "hourly_schedule", "upper_bound", "100"),
        finding("queue_batch", "", "self_hosted", "pool-a", "queued", "upper_bound", "150"),
        finding("duplicate_calls", "classify", "openai", "gpt-4o", "", "measured", "2"),
    ]
    ranking = lambda levers, savings: {"levers": levers, "requests": 1, "savings_usd": [D(s) for s in savings]}  # noqa: E731
    overlap = [
        {
            "day": day,
            "feature": "classify",
            "provider": "openai",
            "model": "gpt-4o",
            "requests": 5,
            "rankings": [
                ranking(["prompt_cache:ttl_long", "trim_input"], ["3", "1"]),
                ranking(["trim_input"], ["2"]),
                ranking(["right_size_model", "trim_input"], ["5", "0.5"]),
                ranking(["prompt_cache:ttl_short"], ["4"]),
            ],
            "lever_costs": [
                {"lever": "prompt_cache:ttl_long", "cost_usd": D("-0.5")},
                {"lever": "prompt_cache:ttl_short", "cost_usd": D("-1")},
            ],
        },
        {
            "day": start - dt.timedelta(days=1),
            "feature": "classify",
            "provider": "openai",
            "model": "gpt-4o",
            "requests": 1,
            "rankings": [ranking(["trim_input"], ["7"])],
            "lever_costs": None,
        },
    ]

    def totals(selfhost_usd: str | None) -> dict:
        rows = findings + (
            [finding("selfhost_trigger", "", "openai", "gpt-4o", "qwen-32b", "upper_bound", selfhost_usd)]
            if selfhost_usd
            else []
        )
        with duckdb.connect() as conn:
            prepare_session(conn)
            conn.execute(
                "create table findings (day date, period_start date, days_observed bigint, kind varchar,"
                " feature varchar, provider varchar, model varchar, target varchar, basis varchar,"
                " monthly_savings_usd decimal(18, 6), status varchar)"
            )
            conn.executemany(
                "insert into findings values ($day, $period_start, $days_observed, $kind, $feature, $provider,"
                " $model, $target, $basis, $monthly_savings_usd, $status)",
                rows,
            )
            conn.execute(
                "create table overlap (day date, feature varchar, provider varchar, model varchar, requests bigint,"
                " rankings struct(levers varchar[], requests bigint, savings_usd decimal(38, 12)[])[],"
                " lever_costs struct(lever varchar, cost_usd decimal(38, 12))[])"
            )
            conn.executemany(
                "insert into overlap values ($day, $feature, $provider, $model, $requests, $rankings, $lever_costs)",
                overlap,
            )
            return {
                basis: (n, usd)
                for basis, n, usd in conn.execute(
                    "select * from savings_per_basis(findings, overlap, $day, 1)", {"day": day}
                ).fetchall()
            }

    cent = D("0.01")
    assert totals(None) == {
        "measured": (1, D("2.00")),
        "upper_bound": (4, (combined + 150).quantize(cent)),
        "validated": (1, D("9.00")),
    }
    # Below the model's per-call total, the trigger changes nothing; above it, it replaces it.
    assert totals("3")["upper_bound"] == (5, (combined + 150).quantize(cent))
    assert totals("40")["upper_bound"] == (5, D("190.00"))
    assert combined == D("5.435714")


def test_the_day_before_has_its_own_window(priced):
    """A finding as of DAY_BEFORE sees DAY_BEFORE alone: x1 and t6 are not waste yet (t6's re-send
    is the next day), so that day has no finding with an estimate; t6, cut, is exposure."""
    assert priced.query(
        "select kind, feature, target, spend_in_scope_usd from fct_savings_opportunities where day = $day",
        {"day": DAY_BEFORE},
    ) == [("cap_output", "summarise", "finish_length", CUT_CALL)]


def test_the_totals_are_per_basis_and_take_one_finding_per_feature_and_model(priced):
    """batch_tagging's gpt-4.1 priority call has two findings (to batch, to standard): the
    price_rule total counts the larger one only. The upper bounds combine call by call. Nothing is
    summed across bases."""
    with duckdb.connect(str(priced.warehouse), read_only=True) as conn:
        prepare_session(conn, read_only=True)
        totals = {
            basis: (findings, usd)
            for basis, findings, usd in conn.execute(
                "select * from savings_per_basis(fct_savings_opportunities, fct_savings_overlap_daily, $day::date, 0)",
                {"day": DAY},
            ).fetchall()
        }
    price_rule = [
        LONG_AT_TIER - LONG_AT_BASE,
        HAIKU_STANDARD - HAIKU_BATCH,
        GPT_4O_STANDARD - GPT_4O_BATCH,
        GPT_41_PRIORITY - GPT_41_BATCH,  # > GPT_41_PRIORITY - GPT_41_STANDARD
        # test_pricing's chat calls: the context-tier premiums, one model each.
        *(
            premium
            for (premium,) in priced.query(
                "select sum(long_context_premium_usd) from fct_token_efficiency_daily where feature = 'chat'"
                " group by model having sum(long_context_premium_usd) > 0"
            )
        ),
    ]
    assert totals == {
        "measured": (
            5,
            (
                _monthly(4 * LOOP_CALL)
                + _monthly(LOOP_CALL)  # faq's g3
                + _monthly(3 * CUT_CALL)
                + _monthly(STAMPED_5M + STAMPED_1H - 2 * STAMPED_AS_INPUT)
                # test_pricing's Bedrock claude-3-7 call: 2,000 1-hour writes at $6/M over $3/M input.
                + _monthly(2_000 * (D("6e-6") - D("3e-6")))
            ).quantize(D("0.01")),
        ),
        "price_rule": (8, sum(_monthly(saving) for saving in price_rule).quantize(D("0.01"))),
        # faq, loop and summarise: their gateway repeats. tail: the combined upper bound takes per
        # call its largest lever; trimming acts on tail-long and tail-cached (0.02875) and capping on
        # tail-think (0.005), other calls, so both count: 0.03375, not the larger finding alone.
        "upper_bound": (5, (3 * _monthly(2 * LOOP_CALL) + _monthly(TAIL_TRIM + OUTPUT_CAP)).quantize(D("0.01"))),
    }


def test_costwatch_savings_prints_the_findings_basis_by_basis(priced, capsys):
    from pipelines.cli import main

    # Every finding here saves cents a month: under the default savings.min_monthly_usd ($100).
    assert main(["savings", "--config", str(priced.config_path)]) == 0
    assert "no open finding saves $100.00 a month or more" in capsys.readouterr().out

    assert main(["savings", "--config", str(priced.config_path), "--all"]) == 0
    out = capsys.readouterr().out
    assert f"costwatch savings as of {DAY}: 28-day window from 2026-10-24, 2 day(s) with calls" in out
    # Surest basis first; within a basis, largest first.
    measured, price_rule = out.index("[measured"), out.index("[price rule")
    assert measured < price_rule
    assert f"${_monthly(3 * CUT_CALL):,.2f}/mo  truncation_retries  summarise  openai/gpt-4o" in out
    keys = [line.split("key: ")[1] for line in out.splitlines() if "key: " in line]
    # Every finding: those above, chat's 4 with an estimate and its exposure rows (one per model).
    ((chat_exposure,),) = priced.query(
        "select count(*) from fct_savings_opportunities where day = $day and feature = 'chat' and basis = 'exposure'",
        {"day": DAY},
    )
    assert len(keys) == len(FINDINGS) + 4 + chat_exposure
    assert set(keys) >= {"{}:{}:{}/{}:{}".format(*key) for key in FINDINGS}
    monthly = [float(line.split("/mo")[0].strip().lstrip("$")) for line in out.splitlines() if "/mo  " in line]
    # 5 measured, 8 price-rule and 5 upper-bound findings, in that order.
    for basis in (monthly[:5], monthly[5:13], monthly[13:]):
        assert basis == sorted(basis, reverse=True)
    assert len(monthly) == 18 and out.index("[price rule") < out.index("[upper bound")
    # Exposure last, by spend in scope a month, never a saving: tail's reasoning, $0.006 in the window.
    assert out.index("[upper bound") < out.index("[exposure: spend in scope, not estimated]")
    assert f"${_monthly(REASONING):,.2f}/mo in scope  cap_output  tail  openai/gpt-4o -> reasoning_effort" in out
    assert "      $0.01 in the window, not estimated on 30 call(s) in scope (30 affected)" in out

    assert main(["savings", "--config", str(priced.config_path), "--all", "--kind", "service_tier"]) == 0
    out = capsys.readouterr().out
    assert [line.split("key: ")[1] for line in out.splitlines() if "key: " in line] == [
        "service_tier:batch_tagging:openai/gpt-4.1:standard"
    ]


def test_a_finding_marked_done_is_measured_against_its_baseline(project, capsys):
    """The loop of trust: a finding is acknowledged, then marked done with the cost per useful
    call it had; the next day's calls are measured against it. DAY_BEFORE: one prompt sent three
    times in 20 s (two duplicates: 3 calls for 1 useful, $0.0105 each useful one); DAY: two
    distinct prompts ($0.0035 each). Realized: ($0.0105 - $0.0035) x 2 = $0.014."""
    from pipelines.cli import main
    from pipelines.lake.savings_state import read_state

    project.write_config(
        prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"}, savings={"routes": {}}
    )
    before = [_call(f"r{n}", f"{DAY_BEFORE}T10:00:{10 * n:02d}Z", "loop", "u1", prompt_hash="h1") for n in range(3)]
    after = [_call(f"s{n}", f"{DAY}T1{n}:00:00Z", "loop", "u1", prompt_hash=f"fresh{n}") for n in range(2)]
    project.write_jsonl("calls.jsonl", before + after)
    project.run_day(DAY_BEFORE)
    key = "duplicate_calls:loop:openai/gpt-4o:"
    config = ["--config", str(project.config_path)]

    assert main(["findings", "ack", key, *config]) == 0
    assert main(["findings", "done", "duplicate_calls:nowhere:openai/gpt-4o:", *config]) == 1
    assert "no savings finding 'duplicate_calls:nowhere:openai/gpt-4o:'" in capsys.readouterr().out
    assert main(["findings", "done", key, "--note", "client retries fixed", *config]) == 0
    state = read_state(project.lake)[key]
    assert (state["status"], state["note"]) == ("done", "client retries fixed")
    assert state["baseline"] == {"unit_cost_usd": "0.010500000000", "start": "2026-10-23", "end": DAY_BEFORE}
    capsys.readouterr()

    project.run_day(DAY)
    ((month, days, unit_before, unit_after, volume, realized),) = project.query(
        "select month, days, unit_cost_before_usd, unit_cost_after_usd, volume_after, realized_savings_usd"
        " from fct_savings_realized where finding_key = $key",
        {"key": key},
    )
    assert (month.isoformat(), days, volume) == ("2026-11-01", 1, 2)
    assert (unit_before, unit_after) == (3 * LOOP_CALL, LOOP_CALL)
    assert realized == (3 * LOOP_CALL - LOOP_CALL) * 2 == D("0.014")
    # The finding still stands on DAY (its window holds DAY_BEFORE's duplicates), settled: out of
    # the digest's savings block and of the default listing, and its realized dollars printed.
    assert project.query(
        "select status from fct_savings_opportunities where day = $day and finding_key = $key", {"day": DAY, "key": key}
    ) == [("done",)]
    assert project.query("select savings_findings from fct_daily_digest where day = $day", {"day": DAY}) == [(None,)]
    assert main(["savings", "--all", *config]) == 0
    out = capsys.readouterr().out
    assert "[done]" in out and f"+$0.01 since 2026-11 (2 useful call(s) over 1 day(s)): {key}" in out
    assert main(["savings", *config]) == 0
    assert "no open finding saves $100.00 a month or more" in capsys.readouterr().out
    assert main(["findings", *config]) == 0
    assert f"done          {key} (client retries fixed)" in capsys.readouterr().out


def test_prompts_that_grew_and_stayed_grown_are_measured(project):
    """trim_input / growth (basis measured): `rag2` sends 1,000-token prompts for 8 days, then 2,000
    for 3 days running; `spiky` grows for one day only, `brief` for two: not sustained. As of the
    11th day, rag2's 3 grown days each cost 2 calls x 1,000 extra tokens at gpt-4o's $2.50/M; as of
    the 10th, its growth is 2 days old: no finding yet."""
    project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
    days = [f"2026-11-{n:02d}" for n in range(1, 12)]
    grown = {"rag2": days[8:], "spiky": days[8:9], "brief": days[8:10]}
    calls = [
        _call(f"{feature}-{day}-{n}", f"{day}T1{n}:00:00Z", feature, "u1", input_tokens=2_000 if day in on else 1_000)
        for feature, on in grown.items()
        for day in days
        for n in range(2)
    ]
    project.write_jsonl("calls.jsonl", calls)
    project.run_days(days[0], days[-1])
    growth = project.query_dicts(
        "select * from fct_savings_opportunities where kind = 'trim_input' and target = 'growth' order by day"
    )
    assert [(row["day"].isoformat(), row["feature"]) for row in growth] == [(days[-1], "rag2")]
    row = growth[0]
    saving = 3 * 2 * 1_000 * D("2.5e-6")
    assert (row["basis"], row["confidence"], row["estimated_savings_usd"]) == ("measured", "high", saving)
    assert (row["requests_in_scope"], row["requests_affected"]) == (22, 6)
    assert row["spend_in_scope_usd"] == 16 * LOOP_CALL + 6 * (2_000 * D("2.5e-6") + 100 * D("1e-5"))
    assert row["days_observed"] == 11
    assert row["monthly_savings_usd"] == (saving * D("30.44") / 11).quantize(D("0.000001"), rounding=ROUND_HALF_UP)
    assert row["assumptions"].startswith("Prompts grew: on 3 days from 2026-11-09, 2000 prompt tokens per call")


# `hashed` on claude-haiku-4-5-20251001 (in 1e-6, read 1e-7, 5-minute write 1.25e-6, 1-hour write
# 2e-6, out 5e-6): 6,000-token prompts whose first 5,000 are the system prompt (its hash `sys`),
# above the model's 4,096-token minimum. Who writes the cache, and does a later call read it?
HASHED_CALLS = [
    # (id, time, prefix hash, tokens read, tokens written at 5 minutes, at 1 hour)
    ("h1", "08:10:00", "sys", 0, 5_000, 0),  # read by h2 240 s later
    ("h2", "08:14:00", "sys", 5_000, 0, 0),
    ("h3", "08:30:00", "sys-stamped", 0, 5_000, 0),  # a timestamp in the prefix: nobody sends it again
    ("h4", "08:40:00", "sys", 0, 5_000, 0),  # the next `sys` call is 300.001 s later: past 5 minutes
    ("h5", "08:45:00.001", "sys", 0, 0, 5_000),  # a 1-hour write, read by h6 3,299.999 s later
    ("h6", "09:40:00", "sys", 5_000, 0, 0),
]
HASHED_WRITE_PREMIUM_5M = 5_000 * (D("1.25e-6") - D("1e-6"))  # 0.00125 per 5-minute write


def test_cache_writes_nobody_read_are_measured_per_write_by_their_prefix_hash(project):
    """cache_write_waste with prefix_hashes (basis measured): the write premium of h3 and h4 only,
    whose written checkpoint no later call carried within the write's lifetime. The feature reads
    the cache too, so the whole-window fallback (no reads at all) does not apply. On gpt-5.6, whose
    cache lives exactly 30 minutes, g1's write is read 20 minutes later (it would be unread within
    5 minutes) and g3's never: one write wasted at 2,100 x ($5/M - $4/M)."""
    project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
    calls = [
        request(
            request_id,
            f"{DAY}T{at}Z",
            "claude-haiku-4-5-20251001",
            provider="anthropic",
            feature="hashed",
            user_id="u1",
            input_tokens=6_000,
            output_tokens=100,
            cached_input_tokens=read,
            cache_creation_input_tokens=written_5m + written_1h,
            cache_creation_1h_input_tokens=written_1h,
            prefix_hashes=[[5_000, prefix], [6_000, f"{request_id}-whole"]],
        )
        for request_id, at, prefix, read, written_5m, written_1h in HASHED_CALLS
    ]
    calls += [
        request(
            request_id,
            f"{DAY}T{at}Z",
            "gpt-5.6",
            provider="openai",
            feature="hashed56",
            user_id="u1",
            input_tokens=3_000,
            output_tokens=100,
            cached_input_tokens=read,
            cache_creation_input_tokens=written,
            prefix_hashes=[[2_100, prefix]],
        )
        for request_id, at, prefix, read, written in (
            ("g1", "10:00:00", "q", 0, 2_100),
            ("g2", "10:20:00", "q", 2_048, 0),  # reads g1's write 1,200 s later
            ("g3", "11:00:00", "r", 0, 2_100),  # nobody carries r again
        )
    ]
    project.write_jsonl("calls.jsonl", calls)
    project.run_days(DAY, DAY)
    (day,) = project.query_dicts("select * from fct_prompt_cache_opportunity_daily where feature = 'hashed'")
    premium = 3 * HASHED_WRITE_PREMIUM_5M + 5_000 * (D("2e-6") - D("1e-6"))  # h1, h3, h4 and h5's 1-hour write
    assert (day["cache_writing_requests"], day["cache_write_premium_usd"]) == (4, premium)
    assert (day["unread_write_requests"], day["cache_write_waste_usd"]) == (2, 2 * HASHED_WRITE_PREMIUM_5M)
    (gpt56,) = project.query_dicts("select * from fct_prompt_cache_opportunity_daily where feature = 'hashed56'")
    write_premium_56 = 2_100 * (D("5e-6") - D("4e-6"))  # 0.0021
    assert (gpt56["cache_writing_requests"], gpt56["cache_write_premium_usd"]) == (2, 2 * write_premium_56)
    assert (gpt56["unread_write_requests"], gpt56["cache_write_waste_usd"]) == (1, write_premium_56)
    (finding,) = project.query_dicts(
        "select * from fct_savings_opportunities where kind = 'cache_write_waste' and feature = 'hashed'"
    )
    assert (finding["basis"], finding["requests_in_scope"], finding["requests_affected"]) == ("measured", 4, 2)
    assert finding["estimated_savings_usd"] == 2 * HASHED_WRITE_PREMIUM_5M
    assert json.loads(finding["evidence"])["method"] == "prefix_hashes"
    assert finding["assumptions"].startswith("2 of 4 calls that wrote the prompt cache wrote a prefix")


def _gpt(model: str, input_tokens: int, output_tokens: int, cached: int = 0) -> D:
    """A call's price by hand: gpt-4o $2.50/M in, $1.25/M cache read, $10/M out; gpt-4o-mini $0.15/M,
    $0.075/M, $0.60/M (current catalog)."""
    rates = {"gpt-4o": ("2.5e-6", "1.25e-6", "1e-5"), "gpt-4o-mini": ("1.5e-7", "7.5e-8", "6e-7")}[model]
    price_in, price_read, price_out = (D(rate) for rate in rates)
    return (input_tokens - cached) * price_in + cached * price_read + output_tokens * price_out


# `classify` on gpt-4o: (prompt, answer, cached, finish_reason) per billed call, 2 failed calls beside.
CLASSIFY = [(1_000, 100, 0, "stop")] * 10 + [
    (3_000, 100, 0, "stop"),
    (3_000, 100, 0, "stop"),
    (3_000, 100, 0, "stop"),
    (3_000, 100, 0, "stop"),
    (500, 150, 0, "length"),  # cut: never easy
    (2_000, 100, 0, "stop"),  # easy at twice the thresholds only
    (1_400, 50, 1_000, "stop"),  # easy; 1,000 tokens read from the cache, read at mini's read price too
    (500, 50, 0, "stop"),  # easy at half the thresholds too
]


EXTRACT_EVAL = {"pass_rate": 0.96, "baseline_pass_rate": 0.97, "n": 400, "date": "2026-11-18"}


def _easy(prompt: int, answer: int, finish: str, scale: D = D(1)) -> bool:
    return finish != "length" and prompt <= 1_500 * scale and answer <= 150 * scale


def _classify_calls() -> list[dict]:
    """`classify`'s calls on gpt-4o (CLASSIFY's sizes), and two that failed."""
    return [
        _call(
            f"c{n}",
            f"09:{n:02d}:00",
            "classify",
            f"u{n}",
            input_tokens=i,
            output_tokens=o,
            cached_input_tokens=c,
            finish_reason=f,
        )
        for n, (i, o, c, f) in enumerate(CLASSIFY)
    ] + [_call(f"cerr{n}", f"09:5{n}:00", "classify", "u_err", status="error", output_tokens=0) for n in range(2)]


def test_easy_calls_are_routed_to_the_cheaper_sibling_with_their_evidence(project, capsys):
    """route_by_difficulty and right_size_model (basis upper_bound), savings.routes' default
    gpt-4o -> gpt-4o-mini. `classify` already sends 250 calls to gpt-4o-mini, none failed: a natural
    experiment whose proxies are no worse (proxy_supported). `extract` sends 200, 60 of them failed:
    worse than gpt-4o's 0 of 20, so a hypothesis. `essay`'s long answers on gpt-4o, with no
    sibling calls, are neither easy nor short: no finding."""
    project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
    calls = _classify_calls()
    calls += [
        request(
            f"cm{n}",
            f"{DAY}T1{n % 10}:{n % 60:02d}:{n % 7:02d}Z",
            "gpt-4o-mini",
            provider="openai",
            feature="classify",
            user_id=f"m{n}",
            input_tokens=1_000,
            output_tokens=100,
        )
        for n in range(250)
    ]
    calls += [_call(f"x{n}", f"08:{n:02d}:00", "extract", f"u{n}") for n in range(20)]
    calls += [
        request(
            f"xm{n}",
            f"{DAY}T1{n % 10}:{n % 60:02d}:{n % 7:02d}Z",
            "gpt-4o-mini",
            provider="openai",
            feature="extract",
            user_id=f"m{n}",
            input_tokens=1_000,
            output_tokens=0 if n < 60 else 100,
            **({"status": "error"} if n < 60 else {}),
        )
        for n in range(200)
    ]
    calls += [_call(f"e{n}", f"07:{n:02d}:00", "essay", f"u{n}", output_tokens=2_000) for n in range(5)]
    project.write_jsonl("calls.jsonl", calls)
    result = project.run_day(DAY)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    # No call carries prefix_hashes: the prompt-cache estimate sees none of the traffic (WARN).
    coverage = checks["signal_coverage"]
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.WARN
    assert checks["counterfactual_non_negative"].passed
    # The price rules' review date against today's: fresh until 90 days have passed.
    rules_age = (dt.datetime.now(dt.timezone.utc).date() - load_rules()[0]).days
    assert checks["price_rules_fresh"].passed == (rules_age <= 90)

    fit = {
        row["feature"]: row
        for row in project.query_dicts("select * from fct_model_fit_daily where day = $day", {"day": DAY})
    }
    assert sorted(fit) == ["classify", "essay", "extract"]  # only gpt-4o has a route here
    classify = fit["classify"]
    saving = {n: _gpt("gpt-4o", i, o, c) - _gpt("gpt-4o-mini", i, o, c) for n, (i, o, c, _) in enumerate(CLASSIFY)}
    easy = [n for n, (i, o, _, f) in enumerate(CLASSIFY) if _easy(i, o, f)]
    half = [n for n, (i, o, _, f) in enumerate(CLASSIFY) if _easy(i, o, f, D("0.5"))]
    double = [n for n, (i, o, _, f) in enumerate(CLASSIFY) if _easy(i, o, f, D(2))]
    assert (len(easy), len(half), len(double)) == (12, 1, 17)
    assert classify["target_model"] == "gpt-4o-mini"
    assert (classify["requests"], classify["easy_requests"]) == (18, 12)
    assert classify["current_cost_usd"] == sum(_gpt("gpt-4o", i, o, c) for i, o, c, _ in CLASSIFY)
    assert classify["rightsize_savings_usd"] == sum(saving.values())
    assert classify["route_savings_usd"] == sum(saving[n] for n in easy)
    assert classify["route_savings_half_usd"] == sum(saving[n] for n in half)
    assert (classify["easy_requests_double"], classify["route_savings_double_usd"]) == (
        17,
        sum(saving[n] for n in double),
    )
    assert (classify["calls"], classify["error_calls"], classify["length_calls"]) == (20, 2, 1)
    assert (classify["target_calls"], classify["target_error_calls"]) == (250, 0)

    findings = {
        (row["kind"], row["feature"]): row
        for row in project.query_dicts(
            "select * from fct_savings_opportunities where day = $day and kind in ('route_by_difficulty', 'right_size_model')",
            {"day": DAY},
        )
    }
    assert sorted(findings) == [
        ("right_size_model", "classify"),
        ("right_size_model", "extract"),
        ("route_by_difficulty", "classify"),
        ("route_by_difficulty", "extract"),
    ]
    route = findings[("route_by_difficulty", "classify")]
    assert (route["basis"], route["confidence"], route["evidence_level"]) == ("upper_bound", "low", "proxy_supported")
    assert (route["target"], route["requests_in_scope"], route["requests_affected"]) == ("gpt-4o-mini", 18, 12)
    assert route["estimated_savings_usd"] == sum(saving[n] for n in easy)
    assert "no worse on observable proxies" in route["assumptions"]
    evidence = json.loads(route["evidence"])
    assert evidence["sensitivity"]["half"]["easy_requests"] == 1
    assert evidence["natural_experiment"]["target_calls"] == 250
    assert findings[("right_size_model", "classify")]["estimated_savings_usd"] == sum(saving.values())
    # extract: gpt-4o-mini failed 60 of 200 calls (Wilson 95 % from 0.24), gpt-4o none of 20 (up to 0.16).
    assert findings[("route_by_difficulty", "extract")]["evidence_level"] == "hypothesis"
    assert findings[("route_by_difficulty", "extract")]["estimated_savings_usd"] == 20 * (
        _gpt("gpt-4o", 1_000, 100) - _gpt("gpt-4o-mini", 1_000, 100)
    )
    assert "a proxy is worse there" in findings[("right_size_model", "extract")]["assumptions"]
    # The eval kit: classify's 18 calls on gpt-4o, 2 per prompt x answer decile cell (with fewer
    # calls than 200, every one of them); the random draws are the 5 smallest md5 of the calls in scope.
    sizes = {f"c{n}": (i, o) for n, (i, o, _, _) in enumerate(CLASSIFY)}
    for kind, in_scope in (("right_size_model", list(sizes)), ("route_by_difficulty", [f"c{n}" for n in easy])):
        evidence = json.loads(findings[(kind, "classify")]["evidence"])
        assert evidence["eval_kit_request_ids"] == [r for _, _, r in kit_cells(sizes)], kind
        assert evidence["random_request_ids"] == _draws(in_scope), kind
    # `costwatch savings --eval-kit KEY` lists the kit's calls with their sizes, smallest first.
    from pipelines.cli import main

    key = findings[("right_size_model", "classify")]["finding_key"]
    capsys.readouterr()  # what the run printed
    assert main(["savings", "--config", str(project.config_path), "--eval-kit", key]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header == "request_id\tts\tfeature\tmodel\tinput_tokens\toutput_tokens"
    listed = [line.split("\t") for line in lines]
    kit = [r for _, _, r in kit_cells(sizes)]
    assert [row[0] for row in listed] == sorted(kit, key=lambda r: (*sizes[r], r))
    assert all(row[2:4] == ["classify", "gpt-4o"] and tuple(map(int, row[4:])) == sizes[row[0]] for row in listed)
    assert main(["savings", "--config", str(project.config_path), "--eval-kit", "batch:sync:openai/gpt-4o:batch"]) == 1
    assert "no eval kit for 'batch:sync:openai/gpt-4o:batch'" in capsys.readouterr().err

    # The team evals gpt-4o-mini on extract's cases: the same findings, now validated by that eval.
    project.write_config(
        prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"},
        savings={"evals": {"extract": {"gpt-4o-mini": EXTRACT_EVAL}}},
    )
    project.run_day(DAY)
    validated = {
        row["kind"]: row
        for row in project.query_dicts(
            "select * from fct_savings_opportunities where day = $day and feature = 'extract'", {"day": DAY}
        )
    }
    route = validated["route_by_difficulty"]
    assert (route["basis"], route["confidence"], route["evidence_level"]) == ("validated", "medium", "eval_validated")
    assert route["assumptions"].startswith("About: 100% of the calls")
    assert "an eval of 400 cases on 2026-11-18: gpt-4o-mini passed 96.0%, gpt-4o 97.0%" in route["assumptions"]
    assert json.loads(route["evidence"])["eval"] == EXTRACT_EVAL
    assert validated["right_size_model"]["basis"] == "validated"
    assert route["estimated_savings_usd"] == findings[("route_by_difficulty", "extract")]["estimated_savings_usd"]
    # classify has no eval: still an upper bound.
    assert project.query(
        "select distinct basis from fct_savings_opportunities where day = $day and feature = 'classify'"
        " and kind in ('route_by_difficulty', 'right_size_model')",
        {"day": DAY},
    ) == [("upper_bound",)]


def test_the_per_call_repricing_adds_up_to_the_model_fit_mart(project):
    """int_model_fit_calls holds the repricing at the target per call (the combined savings bound
    reads it): on `classify`'s calls above, its rightsize_savings_usd and route_savings_usd summed
    per day x feature x provider x model x target are the mart's, and each call's are worked by hand."""
    project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
    calls = _classify_calls()
    project.write_jsonl("calls.jsonl", calls)
    project.run_day(DAY)

    per_call = {row["request_id"]: row for row in project.query_dicts("select * from int_model_fit_calls")}
    assert sorted(per_call) == sorted(f"c{n}" for n in range(len(CLASSIFY)))  # billed calls only: no failed one
    saving = {n: _gpt("gpt-4o", i, o, c) - _gpt("gpt-4o-mini", i, o, c) for n, (i, o, c, _) in enumerate(CLASSIFY)}
    for n, (i, o, _, f) in enumerate(CLASSIFY):
        row = per_call[f"c{n}"]
        assert (row["model"], row["target_model"], row["rightsize_savings_usd"]) == ("gpt-4o", "gpt-4o-mini", saving[n])
        assert row["route_savings_usd"] == (saving[n] if _easy(i, o, f) else None), n
    # c16, by hand: 400 uncached + 1,000 cached prompt tokens and 50 answer tokens; on gpt-4o
    # 400 x $2.50/M + 1,000 x $1.25/M + 50 x $10/M = 0.00275, on gpt-4o-mini 400 x $0.15/M +
    # 1,000 x $0.075/M + 50 x $0.60/M = 0.000165. Easy (1,400 <= 1,500 and 50 <= 150): routed.
    assert per_call["c16"]["rightsize_savings_usd"] == per_call["c16"]["route_savings_usd"] == D("0.002585")
    assert per_call["c14"]["easy_scale"] is None and per_call["c14"]["route_savings_usd"] is None  # cut: never easy

    (mart,) = project.query_dicts("select * from fct_model_fit_daily")
    (summed,) = project.query_dicts(
        "select day, feature, provider, model, target_model, sum(rightsize_savings_usd) as rightsize_savings_usd,"
        " sum(route_savings_usd) as route_savings_usd from int_model_fit_calls group by all"
    )
    assert summed == {key: mart[key] for key in summed}
    assert mart["rightsize_savings_usd"] == sum(saving.values())


def test_price_rules_reviewed_over_90_days_ago_warn():
    from pipelines.defs.settings.prices import rules_freshness

    fresh, stale = (
        rules_freshness(dt.date(2026, 9, 3), dt.date(2026, 12, 2)),
        rules_freshness(dt.date(2026, 9, 2), dt.date(2026, 12, 2)),
    )
    assert (fresh.passed, stale.passed) == (True, False)  # 90 days old is fresh, 91 is not
    assert stale.severity == dg.AssetCheckSeverity.WARN
    assert "91 day(s) ago: over 90; re-check each rule's source" in stale.description


def test_the_wilson_interval_by_hand():
    """The macro against the closed form worked here (z = 1.96): 5 of 10, and 0 of 20."""
    import math

    def wilson(k: int, n: int) -> tuple[float, float]:
        z, p = 1.96, k / n
        centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return max(0.0, (centre - half) / (1 + z * z / n)), min(1.0, (centre + half) / (1 + z * z / n))

    conn = duckdb.connect()
    conn.execute((REPO / "sql" / "macros" / "wilson_interval.sql").read_text())
    for k, n in ((5, 10), (0, 20), (60, 200)):
        low, high = conn.execute(
            "select w.low, w.high from (select wilson_interval($k, $n) as w)", {"k": k, "n": n}
        ).fetchone()
        assert (low, high) == pytest.approx(wilson(k, n), abs=1e-12)
    assert wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4) and wilson(60, 200)[0] == pytest.approx(0.2407, abs=1e-4)
    assert conn.execute("select wilson_interval(0, 0)").fetchone() == (None,)


def test_the_hourly_capacity_schedule_by_hand(run_model_on):
    """fct_capacity_schedule_hourly on one day of three pools, each billed 96 instance hours for $288
    (4 replicas an hour at $3), with 2 requests/s per replica within the SLO and headroom 0.5. The
    03:00 hour has a minute of 150 calls (2.5/s: ceil(2.5 / 2 x 1.5) = ceil(1.875) = 2 replicas), the
    04:00 hour one of 330 (5.5/s: ceil(4.125) = 5, more than billed).
    - `ahead` (scale_ahead, warm floor 1): 02:00 plans 03:00's 2, 03:00 plans 04:00's 5, 04:00 its own
      5; every other hour the floor of 1, the day's last hour included (the next day is not read).
    - `behind` (no scale_ahead, warm floor 0): plans only each hour's own need.
    - `unsized`: no load test and no call served within the SLO: its savings are unknown (NULL)."""
    day = dt.date(2026, 11, 20)
    minutes = {"03:00": 150, "04:10": 330}
    calls = [
        {"day": day, "pool": pool, "ts": dt.datetime.fromisoformat(f"{day}T{at}:00"), "workload": "interactive",
         "gateway_cache_hit": False}
        for pool in ("ahead", "behind")
        for at, count in minutes.items()
        for _ in range(count)
    ] + [{"day": day, "pool": "unsized", "ts": dt.datetime(2026, 11, 20, 9), "workload": "interactive",
          "gateway_cache_hit": False}]  # fmt: skip
    plan = [
        {"day": day, "pool": pool, "workload": "interactive", "per_replica_rps": rps, "warm_floor": floor,
         "per_replica_rps_source": source}
        for pool, rps, floor, source in (
            ("ahead", 2.0, 1, "load_test"), ("behind", 2.0, 0, "load_test"), ("unsized", None, 1, "observed_max")
        )
    ]  # fmt: skip
    pools = [
        {"pool": pool, "headroom": 0.5, "scale_ahead": ahead, "batch_window_s": 86_400, "target_utilization": 0.8}
        for pool, ahead in (("ahead", True), ("behind", False), ("unsized", True))
    ]
    billing = [
        {"day": day, "pool": pool, "instance_hours": 96.0, "gpu_cost_usd": D(288)}
        for pool in ("ahead", "behind", "unsized")
    ]
    rows = run_model_on(
        "fct_capacity_schedule_hourly",
        {
            "fct_requests": calls,
            "fct_capacity_plan": {"columns": {"per_replica_rps": "double"}, "rows": plan},
            "pools": {"columns": {"headroom": "double"}, "rows": pools},
            "stg_gpu_billing": {"columns": {"instance_hours": "double"}, "rows": billing},
        },
        day=day,
    )
    by = {(row["pool"], row["hour"].hour): row for row in rows}
    assert len(rows) == 72
    # ceil(2.5 / 2 x 1.5) = ceil(1.875) = 2; ceil(5.5 / 2 x 1.5) = ceil(4.125) = 5.
    assert [by[("ahead", hour)]["needed_replicas"] for hour in (2, 3, 4, 5)] == [0, 2, 5, 0]
    assert [by[("ahead", hour)]["planned_replicas"] for hour in (1, 2, 3, 4, 5, 23)] == [1, 2, 5, 5, 1, 1]
    assert [by[("behind", hour)]["planned_replicas"] for hour in (2, 3, 4, 5)] == [0, 2, 5, 0]
    assert by[("ahead", 4)]["peak_minute_rps"] == 5.5 and by[("ahead", 4)]["requests"] == 330
    assert by[("ahead", 1)]["billed_replicas"] == 4 and by[("ahead", 1)]["usd_per_replica_hour"] == 3
    ahead = sum(row["savings_usd"] for row in rows if row["pool"] == "ahead")
    # 21 hours at 3 replicas too many, 02:00 at 2, 03:00 and 04:00 at none: 65 replica-hours x $3.
    assert ahead == (21 * 3 + 2) * D(3)
    behind = sum(row["savings_usd"] for row in rows if row["pool"] == "behind")
    # 22 hours at 4 too many (floor 0: nothing planned), 03:00 at 2, 04:00 at none: 90 x $3.
    assert behind == (22 * 4 + 2) * D(3)
    assert {row["savings_usd"] for row in rows if row["pool"] == "unsized"} == {None}
    assert sum(row["billed_cost_usd"] for row in rows if row["pool"] == "ahead") == 288
    # Interactive calls only: neither queueing nor splitting applies.
    assert {(row["day_workloads"], row["queue_savings_usd"], row["split_savings_usd"]) for row in rows} == {
        ("interactive", None, None)
    }


def test_queued_batch_and_split_pools_by_hand(run_model_on):
    """fct_capacity_schedule_hourly's queue_batch and split_pools columns on one day of four pools,
    each billed 96 instance hours for $288 (4 replicas an hour at $3), a replica serving 0.1
    requests/s within the SLO (10 s a call), headroom 0.5, warm floor 1, scale-ahead, batch calls
    queued per 6-hour window (21,600 s) at 50 % utilization: one replica works through 10,800 s of
    calls, 1,080 calls, a window.
    - `queue`: batch calls only, 1,500 at 02:xx (25 a minute) and 300 at 13:xx (5 a minute).
    - `mixed`: the same 1,500 batch calls at 02:xx, and 9 interactive calls in the minute 10:00.
    - `steady`: the 9 interactive calls only: nothing to queue or split.
    - `unsized`: batch calls only, no per-replica rate: the savings are unknown (NULL)."""
    day = dt.date(2026, 11, 20)

    def spread(pool: str, hour: int, per_minute: int, workload: str, minutes: int = 60) -> list[dict]:
        return [
            {"day": day, "pool": pool, "ts": dt.datetime(2026, 11, 20, hour, minute, second), "workload": workload,
             "gateway_cache_hit": False}
            for minute in range(minutes)
            for second in range(per_minute)
        ]  # fmt: skip

    calls = [
        *spread("queue", 2, 25, "batch"),
        *spread("queue", 13, 5, "batch"),
        *spread("mixed", 2, 25, "batch"),
        *spread("mixed", 10, 9, "interactive", minutes=1),
        *spread("steady", 10, 9, "interactive", minutes=1),
        *spread("unsized", 2, 25, "batch"),
    ]
    rps, headroom, floor, window_s, utilization, billed, price = 0.1, 0.5, 1, 21_600, 0.5, 4, D(3)
    plan = [
        {"day": day, "pool": pool, "workload": "batch", "per_replica_rps": None if pool == "unsized" else rps,
         "warm_floor": floor, "per_replica_rps_source": "load_test"}
        for pool in ("queue", "mixed", "steady", "unsized")
    ]  # fmt: skip
    pools = [
        {"pool": pool, "headroom": headroom, "scale_ahead": True, "batch_window_s": window_s,
         "target_utilization": utilization}
        for pool in ("queue", "mixed", "steady", "unsized")
    ]  # fmt: skip
    billing = [
        {"day": day, "pool": pool, "instance_hours": 24.0 * billed, "gpu_cost_usd": 24 * billed * price}
        for pool in ("queue", "mixed", "steady", "unsized")
    ]
    rows = run_model_on(
        "fct_capacity_schedule_hourly",
        {
            "fct_requests": calls,
            "fct_capacity_plan": {"columns": {"per_replica_rps": "double"}, "rows": plan},
            "pools": {"columns": {"headroom": "double", "target_utilization": "double"}, "rows": pools},
            "stg_gpu_billing": {"columns": {"instance_hours": "double"}, "rows": billing},
        },
        day=day,
    )
    by = {(row["pool"], row["hour"].hour): row for row in rows}
    hourly = {pool: [by[(pool, hour)] for hour in range(24)] for pool in ("queue", "mixed", "steady", "unsized")}
    assert {pool: {row["day_workloads"] for row in hours} for pool, hours in hourly.items()} == {
        "queue": {"batch"}, "mixed": {"mixed"}, "steady": {"interactive"}, "unsized": {"batch"}
    }  # fmt: skip

    # queue: each window's replicas = ceil(its calls x 10 s / (21,600 s x 0.5)), never under the floor.
    per_replica = window_s * utilization  # 10,800 s of calls a replica works through in a window
    queued = [math.ceil(1_500 / rps / per_replica), 0, math.ceil(300 / rps / per_replica), 0]  # 15,000 s; 3,000 s
    assert queued == [2, 0, 1, 0]
    assert [row["queued_batch_replicas"] for row in hourly["queue"]] == [n for n in queued for _ in range(6)]
    assert [row["queued_replicas"] for row in hourly["queue"]] == [max(floor, n) for n in queued for _ in range(6)]
    assert hourly["queue"][2]["batch_requests"] == 1_500 and hourly["queue"][2]["batch_busy_replica_s"] == 15_000
    # Billed 4 an hour: 6 hours at 2 too many, 18 at 3: 66 replica-hours x $3 = $198.
    queue_saving = sum((billed - max(floor, n)) * 6 for n in queued) * price
    assert queue_saving == 198
    assert sum(row["queue_savings_usd"] for row in hourly["queue"]) == queue_saving
    # Sized for the peak minute instead (autoscale): 02:xx's 25 calls a minute need ceil(25 / 60 / 0.1 x 1.5)
    # = ceil(6.25) = 7 replicas, planned at 01:00 and 02:00: queueing plans fewer.
    assert math.ceil(25 / 60 / rps * (1 + headroom)) == 7
    assert [hourly["queue"][hour]["planned_replicas"] for hour in (0, 1, 2, 3)] == [1, 7, 7, 1]

    # mixed: combined, 02:xx needs 7 and 10:00 (9 calls: ceil(9 / 60 / 0.1 x 1.5) = ceil(2.25) = 3) 3,
    # each planned an hour ahead. Interactive alone: 3 at 09:00 and 10:00, the floor elsewhere; the
    # batch calls queued: 2 replicas through 00:00-05:59.
    assert math.ceil(9 / 60 / rps * (1 + headroom)) == 3
    combined = [7 if hour in (1, 2) else 3 if hour in (9, 10) else floor for hour in range(24)]
    interactive = [3 if hour in (9, 10) else floor for hour in range(24)]
    split = [interactive[hour] + (2 if hour < 6 else 0) for hour in range(24)]
    assert [row["planned_replicas"] for row in hourly["mixed"]] == combined
    assert [row["interactive_planned_replicas"] for row in hourly["mixed"]] == interactive
    assert [row["split_replicas"] for row in hourly["mixed"]] == split
    assert hourly["mixed"][10]["interactive_peak_minute_rps"] == pytest.approx(9 / 60)
    assert hourly["mixed"][2]["interactive_peak_minute_rps"] == 0
    # Never more than billed: 01:00 and 02:00 plan 7 but were billed 4, so 4 - 3 = 1 each; 00:00 and
    # 03:00-05:00 plan 1 against 3 split: nothing. 2 replica-hours x $3 = $6.
    split_saving = sum(max(min(combined[hour], billed) - split[hour], 0) for hour in range(24)) * price
    assert split_saving == 6
    assert [row["split_savings_usd"] for row in hourly["mixed"]] == [
        max(min(combined[hour], billed) - split[hour], 0) * price for hour in range(24)
    ]
    assert {row["queue_savings_usd"] for row in hourly["mixed"]} == {None}

    # steady: interactive only; unsized: no rate, so its queue saving is unknown.
    assert {(row["queue_savings_usd"], row["split_savings_usd"]) for row in hourly["steady"]} == {(None, None)}
    assert {(row["queued_batch_replicas"], row["queue_savings_usd"]) for row in hourly["unsized"]} == {(None, None)}


BATCH_PRICE_4O = 1_000 * D("1.25e-6") + 100 * D("5e-6")  # a LOOP_CALL's tokens at gpt-4o's batch prices


def test_work_that_looks_offline_is_an_upper_bound_at_batch_prices(project, monkeypatch):
    """Inferred batch (basis upper_bound): calls not declared batch that did not stream, from a
    service account, with a job tag, or in an off-hours burst (30+ a minute from one user of a
    feature, in an hour when the feature's other calls are under a quarter of its busiest hour's).
    User ids are pseudonymised here: savings.service_accounts names the raw id all the same."""
    monkeypatch.setenv("COSTWATCH_PSEUDONYM_KEY", "a-test-key-of-sixteen-bytes-or-more")
    project.write_config(
        prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"},
        savings={"routes": {}, "service_accounts": ["etl-bot"]},
        privacy={"pseudonymise_user_id": True},
    )
    calls = [
        _call("sa", "02:00:00", "sync", "etl-bot", stream=False),  # a service account: inferred
        _call("sa-streamed", "02:01:00", "sync", "etl-bot", stream=True),  # it streamed: someone waits
        _call("tagged", "02:02:00", "sync", "u2", tags={"job": "nightly"}),  # a job tag: inferred
        _call("declared", "02:03:00", "sync", "etl-bot", workload="batch"),  # declared: price rule
        # scrape: 8 calls of 4 users at 14:00, its busiest hour...
        *(_call(f"day{n}", f"14:0{n}:00", "scrape", f"u{n % 4}") for n in range(8)),
        # ...a burst of 30 in one minute at 03:00 (a quiet hour: 0 other calls), inferred...
        *(_call(f"night{n}", f"03:00:{2 * n:02d}", "scrape", "u-bot") for n in range(30)),
        # ...the same at 14:30 (not quiet), and 29 in a minute at 04:00 (not a burst): not inferred.
        *(_call(f"noon{n}", f"14:30:{2 * n:02d}", "scrape", "u-bot") for n in range(30)),
        *(_call(f"small{n}", f"04:00:{2 * n:02d}", "scrape", "u-bot") for n in range(29)),
    ]
    project.write_jsonl("calls.jsonl", calls)
    project.run_day(DAY)
    rows = project.query(
        "select feature, reason, requests, savings_usd, confidence from fct_batch_opportunity_daily order by all"
    )
    assert rows == [
        ("scrape", "offhours_burst", 30, 30 * (LOOP_CALL - BATCH_PRICE_4O), "medium"),
        ("sync", "declared_batch", 1, LOOP_CALL - BATCH_PRICE_4O, "high"),
        ("sync", "job_tag", 1, LOOP_CALL - BATCH_PRICE_4O, "medium"),
        ("sync", "service_account", 1, LOOP_CALL - BATCH_PRICE_4O, "medium"),
    ]
    findings = {
        (row["kind"], row["feature"], row["target"]): row
        for row in project.query_dicts("select * from fct_savings_opportunities where kind = 'batch'")
    }
    assert set(findings) == {
        ("batch", "scrape", "batch_if_tolerant"),
        ("batch", "sync", "batch"),
        ("batch", "sync", "batch_if_tolerant"),
    }
    inferred = findings[("batch", "sync", "batch_if_tolerant")]
    assert (inferred["basis"], inferred["confidence"], inferred["requests_affected"]) == ("upper_bound", "low", 2)
    assert inferred["estimated_savings_usd"] == 2 * (LOOP_CALL - BATCH_PRICE_4O)
    assert json.loads(inferred["evidence"])["reasons"] == ["job_tag", "service_account"]
    assert inferred["assumptions"].startswith(
        "At most: 2 calls look like offline work (tagged with a job, from a service account)"
    )
    assert findings[("batch", "sync", "batch")]["basis"] == "price_rule"


def test_later_turns_of_a_conversation_are_exposure_with_the_history_share(project):
    """trim_input / compact_conversations (basis exposure): a later turn carries the conversation so
    far; its history is estimated as the previous turn's prompt and answer, never above its own
    prompt. The conversation crosses midnight: its first turn, on the day before, still counts."""
    project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
    turns = [  # (id, ts, prompt, answer)
        ("t1", f"{DAY_BEFORE}T23:59:50Z", 1_000, 200),
        ("t2", f"{DAY}T00:00:10Z", 1_500, 100),  # history min(1,200, 1,500) = 1,200
        ("t3", f"{DAY}T00:01:00Z", 800, 50),  # compacted: history min(1,600, 800) = 800
    ]
    calls = [
        _call(r, ts, "chat_ui", "u1", input_tokens=i, output_tokens=o, conversation_id="conv-1")
        for r, ts, i, o in turns
    ]
    calls += [
        _call("solo", "09:00:00", "chat_ui", "u2"),  # no conversation_id
        _call("other", "09:00:05", "chat_ui", "u3", conversation_id="conv-2"),  # a first turn
    ]
    project.write_jsonl("calls.jsonl", calls)
    project.run_days(DAY_BEFORE, DAY)
    (day_row,) = project.query_dicts(
        "select * from fct_token_efficiency_daily where day = $day and feature = 'chat_ui'", {"day": DAY}
    )
    later = _gpt("gpt-4o", 1_500, 100) + _gpt("gpt-4o", 800, 50)
    assert (day_row["conversation_turn_requests"], day_row["conversation_turn_usd"]) == (2, later)
    assert (day_row["conversation_input_tokens"], day_row["conversation_history_tokens"]) == (2_300, 2_000)
    (finding,) = project.query_dicts(
        "select * from fct_savings_opportunities where day = $day and target = 'compact_conversations'", {"day": DAY}
    )
    assert (finding["kind"], finding["basis"], finding["feature"]) == ("trim_input", "exposure", "chat_ui")
    assert (finding["requests_in_scope"], finding["requests_affected"]) == (5, 2)  # the window: both days
    assert finding["spend_in_scope_usd"] == later
    assert finding["estimated_savings_usd"] is None and finding["monthly_savings_usd"] is None
    assert "About 87% of their prompt tokens carried earlier turns" in finding["assumptions"]  # 2,000 / 2,300
    assert json.loads(finding["evidence"])["history_share"] == pytest.approx(2_000 / 2_300)


def test_queue_batch_and_split_pools_findings(project):
    """The findings of a run, on one day: pools `queue` (2,000 batch calls in the minute 03:00) and
    `mixed` (the same burst at 02:00, 60 interactive calls in the minute 10:00), each billed 4
    one-GPU replicas for 24 hours at $3 an hour; the H200 load test at a 5 s SLO (14.43 requests/s a
    replica), headroom 0.3, warm floor 1, the default batch window (a day) and utilization (0.8)."""
    from test_gpu import BATCHING_CURVE, slo_cut

    day = "2026-10-20"
    billing = project.root / "inputs" / "gpu" / "gpu_hours.csv"
    billing.parent.mkdir(parents=True, exist_ok=True)
    billing.write_text(
        "day,pool,replica_id,gpu_type,gpu_count,hours,usd\n"
        + "".join(f"{day},{pool},{pool}-r{n},H100,1,24,72.00\n" for pool in ("queue", "mixed") for n in range(4))
    )
    pool = {"gpu_type": "H100", "latency_slo_s": 5, "headroom": 0.3, "warm_floor": 1, "load_test": str(BATCHING_CURVE)}
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "gpu_billing": [{"path": "inputs/gpu/gpu_hours.csv", "format": "gpu_hours_csv"}],
        },
        pools={"queue": pool, "mixed": pool},
    )

    def minute(pool: str, at: str, count: int, workload: str) -> list[dict]:
        return [
            request(f"{pool}-{at}-{n}", f"{day}T{at}:{n * 60 // count:02d}Z", "llama-3.1-8b-instruct",
                    provider="self_hosted", pool=pool, replica_id=f"{pool}-r0", workload=workload, duration_ms=900,
                    input_tokens=500, output_tokens=100)
            for n in range(count)
        ]  # fmt: skip

    project.write_jsonl(
        "logs.jsonl",
        minute("queue", "03:00", 2_000, "batch")
        + minute("mixed", "02:00", 2_000, "batch")
        + minute("mixed", "10:00", 60, "interactive"),
    )
    project.run_day(day)
    rate, price = slo_cut(BATCHING_CURVE, 5), D(3)
    burst = math.ceil(2_000 / 60 / rate * 1.3)  # the burst minute, peak-sized
    assert burst == 4 and math.ceil(60 / 60 / rate * 1.3) == 1
    # Queued over the day: ceil(2,000 / 14.43 s / (86,400 s x 0.8)) = 1 replica, the warm floor too.
    queued = math.ceil(2_000 / rate / (86_400 * 0.8))
    assert queued == 1
    findings = {
        (row["kind"], row["model"]): row
        for row in project.query_dicts(
            "select * from fct_savings_opportunities where kind in ('autoscale', 'queue_batch', 'split_pools')"
        )
    }
    assert set(findings) == {
        ("autoscale", "queue"),
        ("autoscale", "mixed"),
        ("queue_batch", "queue"),
        ("split_pools", "mixed"),
    }
    # autoscale on `queue`: 4 replicas planned at 02:00 (ahead) and 03:00, 1 elsewhere: 22 x 3 too many.
    assert findings[("autoscale", "queue")]["estimated_savings_usd"] == 22 * (4 - 1) * price
    # queue_batch: 1 replica all day against 4 billed.
    queue = findings[("queue_batch", "queue")]
    assert queue["estimated_savings_usd"] == 24 * (4 - max(1, queued)) * price == 216
    assert (queue["target"], queue["basis"], queue["feature"], queue["provider"]) == (
        "queued",
        "upper_bound",
        "",
        "self_hosted",
    )
    assert (queue["requests_in_scope"], queue["requests_affected"], queue["spend_in_scope_usd"]) == (2_000, 2_000, 288)
    assert "tolerates waiting up to 24 hours" in queue["assumptions"]
    evidence = json.loads(queue["evidence"])
    assert (evidence["batch_window_s"], evidence["target_utilization"], evidence["queued_replica_hours"]) == (
        86_400,
        0.8,
        24,
    )
    # split_pools on `mixed`: combined, 4 at 01:00 and 02:00 (1 elsewhere); split, the interactive
    # calls need 1 (the floor) and the queued batch calls 1 more, all day: 2 x (4 - 2) replica-hours.
    split = findings[("split_pools", "mixed")]
    assert split["estimated_savings_usd"] == 2 * (min(burst, 4) - (1 + queued)) * price == 12
    assert (split["target"], split["requests_in_scope"], split["requests_affected"]) == (
        "interactive_and_batch",
        2_060,
        2_000,
    )
    assert findings[("autoscale", "mixed")]["estimated_savings_usd"] == 22 * (4 - 1) * price
    # One basis, one pool: the per-basis total takes the largest of autoscale and queue_batch on `queue`
    # (and of autoscale and split_pools on `mixed`), never their sum.
    (total,) = project.query(
        "select monthly_savings_usd from savings_per_basis(fct_savings_opportunities, fct_savings_overlap_daily, '2026-10-20'::date, 0) "
        "where basis = 'upper_bound'"
    )
    monthly = {key: row["monthly_savings_usd"] for key, row in findings.items()}
    assert total[0] == (monthly[("queue_batch", "queue")] + monthly[("autoscale", "mixed")]).quantize(D("0.01"))
