"""Money marts add up to the requests exactly (DESIGN.md §3: "any money mart sums to the sum of
`fct_requests` to 1e-9; round only when presenting").

Issue 11: every daily mart group was rounded to 1e-6 half-up (`::decimal(18, 6)`), so on a
1M-request day `fct_spend_daily` summed to $7,866.436363 while `fct_requests` summed to
$7,866.390758675. Here 3,000 hand-built requests whose money has 12 decimals (the scale
`fct_requests.sql` casts to, `decimal(18, 12)`) fall into a few hundred groups; the real mart SQL runs
on them, chained on one warehouse as the daily job runs it (fct_requests -> fct_spend_daily ->
its roll-ups), and each mart's day total must equal the requests' total computed here in Python
with `Decimal` (exact, independent of DuckDB). With 1e-6 rounding per group the drift is about
sqrt(groups) x 3e-7, far above 1e-9, so the test fails on the rounding SQL.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import duckdb
import pytest
from model_harness import create_relation

from pipelines.models.engine import load_models, run_model

DAY = dt.date(2026, 10, 5)
OTHER_DAY = dt.date(2026, 10, 4)
TOLERANCE = Decimal("1e-9")
REQUEST_MONEY = "decimal(18, 12)"  # what fct_requests.sql casts every money column to
MONEY_COLUMNS = (
    "cost_usd",
    "list_cost_usd",
    "prompt_cache_savings_usd",
    "gateway_cache_avoided_usd",
    "output_cost_usd",
)
API_MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"))


def _money(rng: random.Random, top: int) -> Decimal:
    """A random amount below $top/1e12 with all 12 decimals in play (e.g. 0.003719402857113)."""
    return Decimal(rng.randrange(1, top)) / Decimal(10**12)


def _requests() -> list[dict]:
    """Requests on DAY over 6 features x 30 users x 3 API models (+ unpriced self-hosted calls),
    with errors and gateway cache hits, money as fct_requests has it; and a few on OTHER_DAY."""
    rng = random.Random(11)
    rows = []
    for index in range(3_000):
        provider, model = rng.choice(API_MODELS)
        cost, saved = _money(rng, 10**10), _money(rng, 10**9)
        status = "error" if rng.random() < 0.03 else "ok"
        hit = status == "ok" and rng.random() < 0.1
        row = {
            "request_id": f"r{index}",
            "day": DAY if index % 100 else OTHER_DAY,
            "feature": f"feature_{rng.randrange(6)}",
            "user_id": f"u{rng.randrange(30)}",
            "provider": provider,
            "model": model,
            "status": status,
            "gateway_cache_hit": hit,
            "priced": True,
            "pricing_basis": "catalog",
            "input_tokens": rng.randrange(1, 50_000),
            "cached_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "output_tokens": rng.randrange(0, 2_000),
            # fct_requests' rule: nothing billed for an error or a gateway cache hit; a hit avoided the cost.
            "cost_usd": Decimal(0) if hit or status == "error" else cost,
            "list_cost_usd": Decimal(0) if hit or status == "error" else cost + saved,
            "prompt_cache_savings_usd": Decimal(0) if hit or status == "error" else saved,
            "gateway_cache_avoided_usd": cost if hit else Decimal(0),
            "output_cost_usd": Decimal(0) if hit or status == "error" else (cost / 3).quantize(Decimal("1e-12")),
        }
        if index % 50 == 7:  # a self-hosted call: no token price, NULL money (unknown, not zero)
            row |= {"provider": "self_hosted", "model": "llama-8b", "priced": False, "pricing_basis": "gpu_billing"}
            row |= dict.fromkeys(MONEY_COLUMNS)
        rows.append(row)
    return rows


def _total(rows, column, keep=lambda row: True) -> Decimal:
    return sum((row[column] for row in rows if row["day"] == DAY and row[column] is not None and keep(row)), Decimal(0))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The daily money marts of DAY, run by the engine on one warehouse, in dependency order."""
    rows = _requests()
    folder = tmp_path_factory.mktemp("exact_money")
    conn = duckdb.connect(str(folder / "warehouse.duckdb"))
    create_relation(conn, "fct_requests", {"columns": dict.fromkeys(MONEY_COLUMNS, REQUEST_MONEY), "rows": rows})
    # One day's provider bill per API provider, as a provider total (no model): every estimate of
    # the provider is in its pool, so the allocation's estimate column covers all its priced calls.
    bills = [
        {"provider": provider, "period_start": DAY, "period_end": DAY, "line_item": "total", "model_family": None,
         "cost_type": "tokens", "is_daily": True, "billed_usd": Decimal("1234.56")}
        for provider in ("openai", "anthropic")
    ]  # fmt: skip
    create_relation(conn, "stg_provider_costs", bills)
    models = load_models()
    for name in (
        "fct_spend_daily",
        "fct_spend_by_feature_daily",
        "fct_spend_by_user_daily",
        "fct_cache_savings_daily",
        "int_provider_calls_daily",
        "fct_allocated_spend_daily",
    ):
        run_model(conn, models[name], folder / "lake", DAY)
    yield conn, rows
    conn.close()


def _mart_total(conn, mart: str, column: str) -> Decimal:
    total = conn.execute(f"select sum({column}) from {mart} where day = $day", {"day": DAY}).fetchone()[0]  # noqa: S608 (mart and column names from this test's own lists)
    return Decimal(total)


def test_the_requests_spread_money_over_many_groups_with_12_decimals(warehouse):
    conn, rows = warehouse
    groups = conn.execute("select count(*) from fct_spend_daily where day = $day", {"day": DAY}).fetchone()[0]
    assert groups > 400
    assert any(row["cost_usd"] and row["cost_usd"].as_tuple().exponent == -12 for row in rows)


@pytest.mark.parametrize(
    ("mart", "column"),
    [
        ("fct_spend_daily", "cost_usd"),
        ("fct_spend_daily", "list_cost_usd"),
        ("fct_spend_daily", "prompt_cache_savings_usd"),
        ("fct_spend_daily", "gateway_cache_avoided_usd"),
        ("fct_spend_daily", "output_cost_usd"),
        ("fct_spend_by_feature_daily", "cost_usd"),
        ("fct_spend_by_feature_daily", "prompt_cache_savings_usd"),
        ("fct_spend_by_feature_daily", "gateway_cache_avoided_usd"),
        ("fct_spend_by_user_daily", "cost_usd"),
        ("fct_spend_by_user_daily", "prompt_cache_savings_usd"),
        ("fct_spend_by_user_daily", "gateway_cache_avoided_usd"),
        ("fct_cache_savings_daily", "prompt_cache_savings_usd"),
        ("fct_cache_savings_daily", "gateway_cache_avoided_usd"),
    ],
)
def test_a_money_mart_day_total_equals_the_requests_total(warehouse, mart, column):
    conn, rows = warehouse
    expected = _total(rows, column)
    assert abs(_mart_total(conn, mart, column) - expected) <= TOLERANCE, (mart, column, expected)


def test_the_reconciliation_estimate_equals_the_billable_requests_total(warehouse):
    """int_provider_calls_daily (what fct_invoice_reconciliation compares with the bills): calls a
    provider bills, i.e. ok, not a gateway hit, not self-hosted."""
    conn, rows = warehouse
    expected = _total(
        rows, "cost_usd", lambda row: row["status"] == "ok" and not row["gateway_cache_hit"]
        and row["pricing_basis"] != "gpu_billing"
    )  # fmt: skip
    assert abs(_mart_total(conn, "int_provider_calls_daily", "estimated_usd") - expected) <= TOLERANCE


def test_the_allocation_estimate_equals_the_requests_total_and_the_bill_is_still_split_to_the_micro_dollar(warehouse):
    conn, rows = warehouse
    expected = _total(rows, "cost_usd", lambda row: row["provider"] in ("openai", "anthropic"))
    assert abs(_mart_total(conn, "fct_allocated_spend_daily", "estimated_usd") - expected) <= TOLERANCE
    # allocated_usd stays in micro-dollars by design, and adds up to the two bills exactly.
    assert _mart_total(conn, "fct_allocated_spend_daily", "allocated_usd") == 2 * Decimal("1234.56")
    scales = {
        row[0].as_tuple().exponent
        for row in conn.execute(
            "select allocated_usd from fct_allocated_spend_daily where allocated_usd <> 0"
        ).fetchall()
    }
    assert scales == {-6}


def test_a_warehouse_built_with_rounded_money_takes_the_exact_type_on_its_next_run(tmp_path):
    """A warehouse whose fct_spend_daily was created when the mart cast money to DECIMAL(18, 6):
    inserting the day into that table would cast it back to 6 decimals, so the next run widens the
    column to the model's type and the day's rows come out exact."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    rows = [row for row in _requests() if row["day"] == DAY][:200]
    create_relation(conn, "fct_requests", {"columns": dict.fromkeys(MONEY_COLUMNS, REQUEST_MONEY), "rows": rows})
    conn.execute(
        "create table fct_spend_daily as select day, feature, user_id, provider, model, 0::bigint as requests,"
        " 0::bigint as error_requests, 0::bigint as gateway_cache_hits, 0::bigint as unpriced_requests,"
        " 0::bigint as input_tokens, 0::bigint as cached_input_tokens, 0::bigint as cache_creation_input_tokens,"
        " 0::bigint as output_tokens, 0::decimal(18, 6) as cost_usd, 0::decimal(18, 6) as list_cost_usd,"
        " 0::decimal(18, 6) as prompt_cache_savings_usd, 0::decimal(18, 6) as gateway_cache_avoided_usd,"
        " 0::decimal(18, 6) as output_cost_usd from fct_requests where false"
    )
    run_model(conn, load_models()["fct_spend_daily"], tmp_path / "lake", DAY)
    kinds = dict(conn.execute("select column_name, data_type from information_schema.columns "
                              "where table_name = 'fct_spend_daily'").fetchall())  # fmt: skip
    assert kinds["cost_usd"] == "DECIMAL(38,12)"
    assert _mart_total(conn, "fct_spend_daily", "cost_usd") == _total(rows, "cost_usd")
    conn.close()
