"""The prompt-cache opportunity (cache policy simulation v1 of the savings spec) on hand-built
calls: the lifetime edge (300.000 s alive, 300.001 s not), the minimum prefix (1,023 vs 1,024 and
4,095 vs 4,096 tokens), OpenAI's 128-token hit steps, a read refreshing the cache, calls at the
same moment ordered by request_id, the day before warming the cache, and the write premium of
Anthropic and of OpenAI from GPT-5.6 on (none on OpenAI before it).

Each expected figure is worked by hand below, and again by an independent reference simulator (a
Python loop over the calls, no SQL) that the mart must equal.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal as D

import pytest
from conftest import REPO, open_project, request
from test_pricing import CURRENT_CATALOG, DAY

DAY_BEFORE = "2026-11-19"
TTLS = {"ttl_short": 300, "ttl_long": 3600}

# Current catalog: gpt-4o in $2.50/M, cache read $1.25/M, out $10/M; claude-haiku-4-5 in $1/M,
# read $0.10/M, 5-minute write $1.25/M, 1-hour write $2/M, out $5/M.
PRICES = {
    "gpt-4o": {"in": D("2.5e-6"), "read": D("1.25e-6"), "w5": D("2.5e-6"), "w1h": D("2.5e-6"), "out": D("1e-5")},
    "claude-haiku-4-5": {"in": D("1e-6"), "read": D("1e-7"), "w5": D("1.25e-6"), "w1h": D("2e-6"), "out": D("5e-6")},
    # claude-sonnet-4-5: in $3/M, read $0.30/M, 5-minute write $3.75/M, 1-hour write $6/M, out $15/M.
    "claude-sonnet-4-5": {"in": D("3e-6"), "read": D("3e-7"), "w5": D("3.75e-6"), "w1h": D("6e-6"), "out": D("1.5e-5")},
    # gpt-5.6: in $4/M, read $0.40/M, write $5/M (1.25x input), out $20/M. OpenAI has no 1-hour write
    # price: the long lifetime's writes are priced as 5-minute ones, $5/M too.
    "gpt-5.6": {"in": D("4e-6"), "read": D("4e-7"), "w5": D("5e-6"), "w1h": D("5e-6"), "out": D("2e-5")},
}
RULES = {  # min prefix, hit granularity, whether a write costs extra (sql/macros/cache_rules.sql)
    "gpt-4o": (1024, 128, False),
    "claude-haiku-4-5": (4096, 1, True),
    "claude-sonnet-4-5": (1024, 1, True),
    "gpt-5.6": (1024, 128, True),
}
LIFETIMES = {"gpt-5.6": 1800}  # a cache lifetime the provider fixes, seconds: no simulated one outlives it


def _call(request_id, at, model, feature, prefixes, input_tokens):
    ts = at if "T" in at else f"{DAY}T{at}Z"
    provider = "openai" if model.startswith("gpt") else "anthropic"
    fields = {"input_tokens": input_tokens, "output_tokens": 100}
    if prefixes is not None:
        fields["prefix_hashes"] = [[tokens, name] for tokens, name in prefixes]
    return request(request_id, ts, model, provider=provider, feature=feature, user_id="u1", **fields)


CALLS = [
    _call("a1", "10:00:00", "gpt-4o", "openai_cache", [(1100, "s"), (2000, "m1")], 3000),  # nothing cached yet
    _call("a2", "10:05:00", "gpt-4o", "openai_cache", [(1100, "s"), (2500, "m2")], 3000),  # s 300.000 s old: read
    _call("a3", "10:10:00.001", "gpt-4o", "openai_cache", [(1100, "s")], 3000),  # 300.001 s: long lifetime only
    _call("a4", "11:00:00", "gpt-4o", "openai_cache", [(1023, "t")], 3000),  # under 1,024: never cached
    _call("a5", "11:00:10", "gpt-4o", "openai_cache", [(1023, "t")], 3000),
    _call("a6", "12:00:00", "gpt-4o", "openai_cache", [(2048, "u")], 3000),  # same moment: a6 before a7
    _call("a7", "12:00:00", "gpt-4o", "openai_cache", [(2048, "u")], 3000),
    _call("a8", "12:30:00", "gpt-4o", "openai_cache", [(2048, "u"), (2900, "v")], 3000),  # 1,800 s: long only
    _call("a9", "12:34:00", "gpt-4o", "openai_cache", [(2048, "u")], 3000),  # a8 refreshed u 240 s ago
    _call("a10", "12:35:00", "gpt-4o", "openai_cache", None, 3000),  # no prefix_hashes: not simulated
    _call("c1", f"{DAY_BEFORE}T23:59:00Z", "gpt-4o", "midnight", [(2048, "w")], 3000),
    _call("c2", f"{DAY}T00:01:00Z", "gpt-4o", "midnight", [(2048, "w")], 3000),  # warmed by the day before
    _call("b1", "13:00:00", "claude-haiku-4-5", "anthropic_cache", [(5000, "k")], 6000),  # writes 5,000
    _call("b2", "13:01:00", "claude-haiku-4-5", "anthropic_cache", [(5000, "k")], 6000),  # reads them
    _call("b3", "13:02:00", "claude-haiku-4-5", "anthropic_cache", [(4095, "x")], 6000),  # under 4,096
    _call("e1", "14:00:00", "gpt-5.6", "openai_write_cache", [(2100, "p")], 3000),  # writes 2,100
    _call("e2", "14:04:00", "gpt-5.6", "openai_write_cache", [(2100, "p")], 3000),  # reads 2,048, writes 52
    # 2,160 s after e2: within the long lifetime (3,600 s) but past GPT-5.6's own 1,800 s: writes 2,100 again.
    _call("e3", "14:40:00", "gpt-5.6", "openai_write_cache", [(2100, "p")], 3000),
]


def reference(calls: list[dict]) -> dict[tuple[str, str], dict]:
    """Spec section 2.3 L1b in a loop: per (day, feature), per policy, reads, writes and savings."""
    out: dict[tuple[str, str], dict] = {}
    for policy, ttl in TTLS.items():
        last_touch: dict[tuple[str, str], dt.datetime] = {}
        for call in sorted(calls, key=lambda c: (dt.datetime.fromisoformat(c["ts"]), c["request_id"])):
            if "prefix_hashes" not in call:
                continue
            at = dt.datetime.fromisoformat(call["ts"])
            model = call["model"]
            minimum, step, premium = RULES[model]
            eligible = [(tokens, name) for tokens, name in call["prefix_hashes"] if tokens >= minimum]
            alive = [
                tokens
                for tokens, name in eligible
                if (model, name) in last_touch
                and (at - last_touch[(model, name)]).total_seconds() <= min(ttl, LIFETIMES.get(model, ttl))
            ]
            reads = min(max(alive, default=0) // step * step, call["input_tokens"])
            writes = max(max((t for t, _ in eligible), default=0) - reads, 0) if premium else 0
            for _, name in eligible:
                last_touch[(model, name)] = at
            price = PRICES[model]
            write_price = price["w5"] if policy == "ttl_short" else price["w1h"]
            actual = call["input_tokens"] * price["in"] + call["output_tokens"] * price["out"]
            counterfactual = (
                (call["input_tokens"] - reads - writes) * price["in"]
                + reads * price["read"]
                + writes * write_price
                + call["output_tokens"] * price["out"]
            )
            row = out.setdefault((call["ts"][:10], call["feature"]), {})
            for key, value in (("reads", reads), ("writes", writes), ("savings", actual - counterfactual)):
                row[f"{key}_{policy}"] = row.get(f"{key}_{policy}", 0) + value
    return out


@pytest.fixture(scope="module")
def cache_project(tmp_path_factory):
    with open_project(tmp_path_factory.mktemp("cache")) as project:
        project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
        project.write_jsonl("calls.jsonl", CALLS)
        project.run_days(DAY_BEFORE, DAY)
        yield project


@pytest.fixture(scope="module")
def simulated(cache_project):
    rows = cache_project.query_dicts("select * from fct_prompt_cache_opportunity_daily")
    return {(row["day"].isoformat(), row["feature"]): row for row in rows}


def test_the_reference_simulator_agrees_with_the_hand_arithmetic():
    ref = reference(CALLS)
    read_saving = D("1.25e-6")  # gpt-4o: input minus cache read, per token
    # Short lifetime: a2 reads 1,024 (1,100 in 128-token steps), a7 and a9 read 2,048.
    assert ref[(DAY, "openai_cache")]["reads_ttl_short"] == 1024 + 2048 + 2048
    assert ref[(DAY, "openai_cache")]["savings_ttl_short"] == (1024 + 2048 + 2048) * read_saving
    # Long lifetime: a3 and a8 read too.
    assert ref[(DAY, "openai_cache")]["reads_ttl_long"] == 1024 * 2 + 2048 * 3
    assert ref[(DAY, "openai_cache")]["savings_ttl_long"] == (1024 * 2 + 2048 * 3) * read_saving
    assert ref[(DAY, "midnight")]["savings_ttl_short"] == 2048 * read_saving
    assert ref[(DAY_BEFORE, "midnight")]["savings_ttl_short"] == 0
    # Anthropic: b1 writes 5,000 (at 1.25x or 2x the input price), b2 reads them (at 0.1x).
    anthropic = ref[(DAY, "anthropic_cache")]
    assert anthropic["savings_ttl_short"] == 5000 * (D("1e-6") - D("1.25e-6")) + 5000 * (D("1e-6") - D("1e-7"))
    assert anthropic["savings_ttl_long"] == 5000 * (D("1e-6") - D("2e-6")) + 5000 * (D("1e-6") - D("1e-7"))
    assert (anthropic["writes_ttl_short"], anthropic["reads_ttl_short"]) == (5000, 5000)
    # OpenAI before GPT-5.6 (gpt-4o): a write costs no more than input, so none is simulated.
    assert ref[(DAY, "openai_cache")]["writes_ttl_short"] == ref[(DAY, "openai_cache")]["writes_ttl_long"] == 0
    # GPT-5.6 writes cost 1.25x input ($5/M over $4/M). e1 writes its 2,100-token prefix; e2, 240 s
    # later, reads 2,048 of it (128-token steps) and writes the other 52. e3, 2,160 s after e2, finds
    # nothing alive even at the long lifetime: GPT-5.6's cache lives 1,800 s. It writes 2,100 again.
    # The same at both lifetimes: OpenAI has no dearer 1-hour write.
    gpt56 = ref[(DAY, "openai_write_cache")]
    e1 = e3 = 2100 * (D("4e-6") - D("5e-6"))  # -0.0021
    e2 = 2048 * (D("4e-6") - D("4e-7")) + 52 * (D("4e-6") - D("5e-6"))  # 0.0073728 - 0.000052
    assert (e1, e2, e1 + e2 + e3) == (D("-0.0021"), D("0.0073208"), D("0.0031208"))
    for policy in TTLS:
        assert (gpt56[f"reads_{policy}"], gpt56[f"writes_{policy}"]) == (2048, 2100 + 52 + 2100), policy
        assert gpt56[f"savings_{policy}"] == e1 + e2 + e3, policy


def test_the_mart_equals_the_reference_simulator(simulated):
    ref = reference(CALLS)
    assert set(simulated) == set(ref)
    for key, expected in ref.items():
        row = simulated[key]
        for policy in TTLS:
            assert row[f"reusable_tokens_{policy}"] == expected[f"reads_{policy}"], (key, policy)
            assert row[f"cache_write_tokens_{policy}"] == expected[f"writes_{policy}"], (key, policy)
            assert row[f"savings_usd_{policy}"] == expected[f"savings_{policy}"], (key, policy)
            assert row[f"counterfactual_cost_usd_{policy}"] == row["actual_cost_usd"] - expected[f"savings_{policy}"]
    openai = simulated[(DAY, "openai_cache")]
    assert (openai["requests"], openai["requests_with_prefix_hashes"]) == (10, 9)
    assert openai["prefix_hash_coverage"] == pytest.approx(0.9)
    assert openai["best_policy"] == "ttl_long"
    assert simulated[(DAY, "anthropic_cache")]["best_policy"] == "ttl_short"  # 1-hour writes cost more
    # GPT-5.6: the long lifetime's writes are 5-minute writes at 1.25x input, so it saves what the
    # short one does (a tie is ttl_short); actual cost: 3 x (3,000 x $4/M + 100 x $20/M).
    gpt56 = simulated[(DAY, "openai_write_cache")]
    assert gpt56["actual_cost_usd"] == 3 * (3000 * D("4e-6") + 100 * D("2e-5"))
    assert gpt56["savings_usd_ttl_long"] == gpt56["savings_usd_ttl_short"] == D("0.0031208")
    assert gpt56["best_policy"] == "ttl_short"
    assert simulated[(DAY_BEFORE, "midnight")]["best_policy"] == "none"


def test_the_per_call_simulation_adds_up_to_the_mart(cache_project, simulated):
    """int_prompt_cache_calls holds the simulation per call (the combined savings bound reads it):
    its savings_usd_ttl_short and _long summed per day x feature x provider x model are the mart's,
    and e1's and e2's are the ones worked by hand above."""
    per_call = {row["request_id"]: row for row in cache_project.query_dicts("select * from int_prompt_cache_calls")}
    assert set(per_call) == {call["request_id"] for call in CALLS if "prefix_hashes" in call}  # a10: not simulated
    e1 = 2100 * (D("4e-6") - D("5e-6"))
    e2 = 2048 * (D("4e-6") - D("4e-7")) + 52 * (D("4e-6") - D("5e-6"))
    for policy in TTLS:
        assert (per_call["e1"][f"savings_usd_{policy}"], per_call["e2"][f"savings_usd_{policy}"]) == (e1, e2), policy
        assert per_call["e2"][f"savings_usd_{policy}"] == D("0.0073208"), policy
    assert (per_call["e2"]["reusable_tokens_ttl_short"], per_call["e2"]["cache_write_tokens_ttl_short"]) == (2048, 52)
    assert all(row["unread_write"] is None for row in per_call.values())  # no call wrote the cache (actual)
    summed = {
        (row["day"].isoformat(), row["feature"]): row
        for row in cache_project.query_dicts(
            "select day, feature, provider, model, sum(savings_usd_ttl_short) as savings_usd_ttl_short,"
            " sum(savings_usd_ttl_long) as savings_usd_ttl_long from int_prompt_cache_calls group by all"
        )
    }
    assert set(summed) == set(simulated)
    for key, row in summed.items():
        assert row == {column: simulated[key][column] for column in row}, key


def test_on_the_mooncake_trace_the_mart_equals_the_reference_simulator(tmp_path):
    """12,031 real requests of one hour (Kimi's production traffic, fixtures/mooncake/), converted by
    bench/mooncake.py with prefix_hashes from their 512-token block ids and priced as
    claude-sonnet-4-5 with no caching: the mart's simulated reads, writes and savings at both
    lifetimes equal the reference loop's, to the last digit."""
    sys.path.insert(0, str(REPO))
    from bench.mooncake import START, canonical_records

    records = list(canonical_records("claude-sonnet-4-5", "anthropic"))
    day = START.date().isoformat()
    with open_project(tmp_path) as project:
        project.write_config(start_date=day, prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
        project.write_jsonl("mooncake.jsonl", records)
        result = project.run_day(day)
        (row,) = project.query_dicts("select * from fct_prompt_cache_opportunity_daily")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    # Every call carries prefix_hashes: the simulation sees all the traffic; no price is negative.
    assert checks["signal_coverage"].passed and checks["counterfactual_non_negative"].passed
    assert row["billed_input_tokens"] == sum(record["input_tokens"] for record in records)
    assert row["prefix_hash_coverage"] == 1
    expected = reference(records)[(day, "mooncake_conversation")]
    assert (row["requests"], row["requests_with_prefix_hashes"]) == (len(records), len(records)) == (12_031, 12_031)
    for policy in TTLS:
        assert row[f"reusable_tokens_{policy}"] == expected[f"reads_{policy}"], policy
        assert row[f"cache_write_tokens_{policy}"] == expected[f"writes_{policy}"], policy
        assert row[f"savings_usd_{policy}"] == expected[f"savings_{policy}"], policy
    # Caching pays on this trace: most prompts share their leading blocks with an earlier one.
    assert row["savings_usd_ttl_short"] > 0
