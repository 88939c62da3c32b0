"""The counterfactual engine (sql/macros/price_calls.sql) and the first price-rule lever on it,
`fct_batch_opportunity_daily`: declared batch work billed at the standard or priority tier.

Every price below is the current LiteLLM catalog's (fixtures/prices/litellm_2026_11.json), in USD
per token, written out by hand; the sums are worked in Decimal here, not read back from the mart.
"""

from __future__ import annotations

from decimal import Decimal as D

import duckdb
import pytest
from conftest import REPO, open_project, request
from test_pricing import CALLS_CURRENT, CURRENT_CATALOG, DAY

from pipelines.models.engine import load_models, prepare_session


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


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    """One day of the batch calls above and every hand-priced call of tests/test_pricing.py."""
    with open_project(tmp_path_factory.mktemp("savings")) as project:
        project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
        pricing_calls = [
            request(call.request_id, f"{DAY}T{call.at}", call.model, feature="chat", user_id="u1", **call.fields)
            for call in CALLS_CURRENT
        ]
        project.write_jsonl("calls.jsonl", pricing_calls + BATCH_CALLS)
        project.run_day(DAY)
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
    """The engine's identity: every call of the day, rebuilt from fct_requests with nothing changed
    and priced again by price_calls, costs exactly its cost_usd (and the same charges, list cost
    and tiers). The day covers every rule test_pricing.py prices by hand: context tiers, service
    tiers, off-peak hours, 1-hour writes, audio, reasoning, web search, fees, errors, cache hits."""
    with duckdb.connect(str(priced.warehouse), read_only=True) as conn:
        prepare_session(conn, read_only=True)
        differing = conn.execute(
            f"""
            with calls as (
                select
                    * exclude (cost_usd, list_cost_usd, prompt_cache_savings_usd, gateway_cache_avoided_usd,
                               output_cost_usd, charges, price_key, pricing_basis, priced, priced_service_tier,
                               off_peak, price_tier),
                    cache_creation_input_tokens - cache_creation_1h_input_tokens as cache_creation_5m_input_tokens,
                    json_extract_string(tags, '$.model_map_key') as model_map_key
                from fct_requests
            ),
            again as (select * from price_calls(calls, DATE '{DAY}', DATE '{DAY}'))
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
    assert differing == []
    assert total[0] == len(CALLS_CURRENT) + len(BATCH_CALLS)
    assert total[1] > 0


def test_the_savings_model_reads_the_prices_through_the_macro():
    """Dependencies come from parsing the SQL: a model calling price_calls reads stg_prices."""
    models = load_models()
    assert "stg_prices" in models["fct_requests"].reads
    assert {"fct_requests", "stg_prices"} <= set(models["fct_batch_opportunity_daily"].reads)
    assert models["fct_batch_opportunity_daily"].layer == "savings"


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
