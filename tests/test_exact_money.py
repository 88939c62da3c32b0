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

The marts over those roll-ups (anomalies, budgets, the daily digest, price findings) run on six
weekdays of history before DAY as well: their actual, expected, to-date and run-rate dollars are
the requests' (a median or a 7-day average of them) to 1e-9, and the anomaly drivers add up to
the impact to 1e-9; a warehouse built with their rounded types is widened on its next run. On the
SQL that rounded them (`::double`, `round(.., 6)`, `::decimal(18, 6)`) 11 of those 12 tests fail (the
idle-GPU one ties the anomaly to a mart that is itself in micro-dollars).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import duckdb
import pytest
from model_harness import create_relation

from pipelines.models.engine import load_models, run_model

DAY = dt.date(2026, 10, 5)  # a Monday
OTHER_DAY = dt.date(2026, 10, 4)
# Weekdays before DAY: the anomaly baseline's days of the same kind (six, so its median averages two
# days), the digest's week before (09-28), the budget month's first days (10-01, 10-02).
HISTORY_DAYS = tuple(dt.date(2026, 9, 25) + dt.timedelta(days=back) for back in (0, 3, 4, 5, 6, 7))
ROLLUP_DAYS = (*HISTORY_DAYS, OTHER_DAY, DAY)
ALERT_MARTS = ("fct_spend_anomalies", "fct_budget_forecast", "fct_daily_digest")
SETTINGS = {"min_impact_usd": 50.0, "min_impact_pct": 0.2, "tolerance_pct": 0.02}
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
    return [_request(rng, f"r{index}", DAY if index % 100 else OTHER_DAY, index) for index in range(3_000)]


def _history_requests() -> list[dict]:
    """300 requests on each HISTORY_DAY, built as DAY's are."""
    rng = random.Random(12)
    return [_request(rng, f"h{index}", HISTORY_DAYS[index % len(HISTORY_DAYS)], index) for index in range(1_800)]


def _request(rng: random.Random, request_id: str, day: dt.date, index: int) -> dict:
    provider, model = rng.choice(API_MODELS)
    cost, saved = _money(rng, 10**10), _money(rng, 10**9)
    status = "error" if rng.random() < 0.03 else "ok"
    hit = status == "ok" and rng.random() < 0.1
    row = {
        "request_id": request_id,
        "day": day,
        "feature": f"feature_{rng.randrange(6)}",
        "user_id": f"u{rng.randrange(30)}",
        "provider": provider,
        "model": model,
        "status": status,
        "gateway_cache_hit": hit,
        "priced": True,
        "pricing_basis": "catalog",
        # int_provider_calls_daily groups by these too (without drawing from rng: the money stays as it was).
        "service_tier": ("standard", "batch", "priority")[index % 3],
        "price_tier": "base" if index % 7 else "above_200k",
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
    return row


def _total(rows, column, keep=lambda row: True, day=DAY) -> Decimal:
    return sum((row[column] for row in rows if row["day"] == day and row[column] is not None and keep(row)), Decimal(0))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The daily money marts of DAY, run by the engine on one warehouse, in dependency order; the
    spend roll-ups of every day before it too, which the anomaly, budget and digest marts read."""
    rows = _requests() + _history_requests()
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
    for day in ROLLUP_DAYS:
        for name in (
            "fct_spend_daily",
            "fct_spend_by_feature_daily",
            "fct_spend_by_user_daily",
            "fct_cache_savings_daily",
        ):
            run_model(conn, models[name], folder / "lake", day)
    for name in ("int_provider_calls_daily", "fct_allocated_spend_daily"):
        run_model(conn, models[name], folder / "lake", DAY)
    _alert_mart_inputs(conn)
    _total_cost(conn, folder / "lake")
    for name in ALERT_MARTS:
        run_model(conn, models[name], folder / "lake", DAY, SETTINGS)
    run_model(conn, models["fct_price_findings"], folder / "lake", None, SETTINGS)
    yield conn, rows
    conn.close()


def _total_cost(conn, lake) -> None:
    """fct_total_cost_daily of every roll-up day (the digest reads it): no self-hosted split, so each
    pool's cost is the day's unallocated GPU cost; the allocation where a day was billed."""
    if not conn.execute(
        "select count(*) from duckdb_tables() where table_name = 'fct_allocated_spend_daily'"
    ).fetchone()[0]:
        create_relation(conn, "fct_allocated_spend_daily", {"columns": ALLOCATION_COLUMNS, "rows": []})
    create_relation(conn, "fct_gpu_cost_by_feature_daily", {"columns": GPU_SPLIT_COLUMNS, "rows": []})
    findings = dict.fromkeys(("finding", "subject", "severity", "message"), "varchar") | {"day": "date"}
    create_relation(conn, "fct_data_findings", {"columns": findings, "rows": []})
    for day in ROLLUP_DAYS:
        run_model(conn, load_models()["fct_total_cost_daily"], lake, day)


ALLOCATION_COLUMNS = {
    "day": "date",
    "feature": "varchar",
    "user_id": "varchar",
    "provider": "varchar",
    "model": "varchar",
    "allocated_usd": "decimal(18, 6)",
}
GPU_SPLIT_COLUMNS = {
    "day": "date",
    "pool": "varchar",
    "feature": "varchar",
    **dict.fromkeys(("gpu_cost_usd", "busy_cost_usd", "idle_cost_usd"), "decimal(18, 6)"),
}


def _alert_mart_inputs(conn) -> None:
    """What the anomaly, budget, digest and price-findings marts read besides the spend roll-ups."""
    create_relation(conn, "fct_gpu_utilization_daily", {"columns": GPU_COLUMNS, "rows": _gpu_days()})
    create_relation(conn, "fct_invoice_reconciliation", {"columns": RECONCILIATION_COLUMNS, "rows": _bills_off()})
    create_relation(
        conn,
        "fct_token_reconciliation",
        [
            {"day": row["day"], "provider": "openai", "model_family": "gpt-4o", "finding": "matched"}
            for row in _bills_off()
        ],
    )
    create_relation(conn, "budgets", [{"feature": f"feature_{index}", "budget_usd": 500.0} for index in range(6)])
    # No savings finding: the digest's money is what these tests are about.
    create_relation(
        conn,
        "fct_savings_opportunities",
        {
            "columns": {
                **dict.fromkeys(
                    ("basis", "kind", "feature", "provider", "model", "target", "finding_key", "status"), "varchar"
                ),
                "day": "date",
                "window_days": "integer",
                "monthly_savings_usd": "decimal(18, 6)",
                "requests_affected": "bigint",
            },
            "rows": [],
        },
    )


# fct_gpu_utilization_daily's money as that mart writes it: micro-dollars.
GPU_COLUMNS = {
    "day": "date",
    "pool": "varchar",
    "billed_gpu_hours": "double",
    "utilization": "double",
    "gpu_cost_usd": "decimal(18, 6)",
    "idle_cost_usd": "decimal(18, 6)",
}
# fct_invoice_reconciliation's money as that mart writes it: the estimate at fct_requests' scale,
# the bill at its export's (DECIMAL(18, 10) per line).
RECONCILIATION_COLUMNS = {
    "day": "date",
    "granularity": "varchar",
    "provider": "varchar",
    "model_family": "varchar",
    "status": "varchar",
    "estimated_usd": "decimal(38, 12)",
    "billed_usd": "decimal(38, 10)",
}


def _gpu_days() -> list[dict]:
    """Pool `p` on every weekday: 20-30 GPU-hours at $2-4 an hour, 10-90 % busy; idle = cost x (1 - u)."""
    rng = random.Random(13)
    days = []
    for day in (*HISTORY_DAYS, DAY):
        hours, utilization = round(rng.uniform(20, 30), 3), rng.uniform(0.1, 0.9)
        cost = (Decimal(str(hours)) * Decimal(rng.randrange(2_000_000, 4_000_000)) / 10**6).quantize(Decimal("1e-6"))
        idle = (cost * Decimal(1 - utilization)).quantize(Decimal("1e-6"))
        days.append({"day": day, "pool": "p", "billed_gpu_hours": hours, "utilization": utilization,
                     "gpu_cost_usd": cost, "idle_cost_usd": idle})  # fmt: skip
    return days


def _bills_off() -> list[dict]:
    """gpt-4o's daily reconciliation: on its estimate on 09-28, then billed 1.25x it (to the bill's
    1e-10) on every day from 09-29 through DAY: a stale price since 09-29."""
    rng = random.Random(14)
    lines = []
    for day in (*HISTORY_DAYS[1:], OTHER_DAY, DAY):
        estimated = _money(rng, 10**15)  # up to $1,000
        billed = estimated if day == HISTORY_DAYS[1] else (estimated * Decimal("1.25")).quantize(Decimal("1e-10"))
        lines.append({"day": day, "granularity": "day", "provider": "openai", "model_family": "gpt-4o",
                      "status": "matched" if billed == estimated else "over",
                      "estimated_usd": estimated, "billed_usd": billed})  # fmt: skip
    return lines


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


def _cost_by_key(rows, day: dt.date, key_of) -> dict[str, Decimal]:
    """fct_requests' cost of `day` per key, priced requests only (a self-hosted call's cost is NULL)."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        if row["day"] == day and row["cost_usd"] is not None:
            totals[key_of(row)] = totals.get(key_of(row), Decimal(0)) + row["cost_usd"]
    return totals


def _median(values: list[Decimal]) -> Decimal:
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _day_rows(conn, relation: str, where: str = "true") -> list[dict]:
    conn.execute(f"select * from {relation} where day = $day and {where}", {"day": DAY})  # noqa: S608 (relation and filter from this test's own text)
    names = [column[0] for column in conn.description]
    return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


ANOMALY_KEYS = {
    "total": lambda row: "all",
    "provider": lambda row: row["provider"],
    "model": lambda row: row["model"],
    "feature": lambda row: row["feature"],
}
DRIVERS = (
    "volume_usd",
    "input_tokens_per_request_usd",
    "output_tokens_per_request_usd",
    "cache_hit_rate_usd",
    "model_price_mix_usd",
)


@pytest.mark.parametrize("dimension", ANOMALY_KEYS)
def test_anomaly_actual_expected_and_impact_equal_the_requests(warehouse, dimension):
    """actual_usd is the key's fct_requests cost on DAY; expected_usd the median of its cost over
    the six weekdays before (a weekday's baseline; the median of an even count averages the middle
    two); impact_usd their difference. Each to 1e-9, and the keys' actuals add up to the total."""
    conn, rows = warehouse
    key_of = ANOMALY_KEYS[dimension]
    actual = _cost_by_key(rows, DAY, key_of)
    history = [_cost_by_key(rows, day, key_of) for day in HISTORY_DAYS]
    expected = {key: _median([costs.get(key, Decimal(0)) for costs in history]) for key in actual}
    marts = {row["key"]: row for row in _day_rows(conn, "fct_spend_anomalies", f"dimension = '{dimension}'")}
    assert set(marts) == set(actual) and len(actual) == {"total": 1, "provider": 2, "model": 3, "feature": 6}[dimension]
    for key, row in marts.items():
        assert abs(row["actual_usd"] - actual[key]) <= TOLERANCE, (key, row["actual_usd"], actual[key])
        assert abs(row["expected_usd"] - expected[key]) <= TOLERANCE, (key, row["expected_usd"], expected[key])
        assert abs(row["impact_usd"] - (actual[key] - expected[key])) <= TOLERANCE, key
    assert abs(sum(row["actual_usd"] for row in marts.values()) - _total(rows, "cost_usd")) <= TOLERANCE


def test_anomaly_drivers_add_up_to_the_impact(warehouse):
    """The five dollar drivers of every row, and the JSON `drivers` (billed hours, price and
    utilization for an idle GPU pool), add up to impact_usd to 1e-9: none is rounded."""
    conn, _ = warehouse
    marts = _day_rows(conn, "fct_spend_anomalies")
    assert {row["dimension"] for row in marts} >= {*ANOMALY_KEYS, "gpu_pool_idle"}
    for row in marts:
        # One JSON shape for both kinds of row: the other kind's parts are null.
        drivers = {
            name: usd for name, usd in json.loads(row["drivers"], parse_float=Decimal).items() if usd is not None
        }
        if row["dimension"] == "gpu_pool_idle":
            assert set(drivers) == {"billed_gpu_hours_usd", "price_per_gpu_hour_usd", "utilization_usd"}
            assert drivers["billed_gpu_hours_usd"] == row["volume_usd"]
        else:
            assert abs(sum(row[column] for column in DRIVERS) - row["impact_usd"]) <= TOLERANCE, row
            assert set(drivers) == set(DRIVERS) and all(drivers[column] == row[column] for column in DRIVERS)
        assert abs(sum(drivers.values()) - row["impact_usd"]) <= TOLERANCE, row


def test_anomaly_idle_gpu_cost_equals_the_utilization_mart(warehouse):
    conn, _ = warehouse
    idle = {row["day"]: row["idle_cost_usd"] for row in _gpu_days()}
    (pool,) = _day_rows(conn, "fct_spend_anomalies", "dimension = 'gpu_pool_idle'")
    expected = _median([idle[day] for day in HISTORY_DAYS])
    assert (pool["key"], pool["actual_usd"]) == ("p", idle[DAY])
    assert abs(pool["expected_usd"] - expected) <= TOLERANCE and pool["impact_usd"] == idle[DAY] - pool["expected_usd"]


def test_budget_spend_to_date_run_rate_and_forecast_equal_the_requests(warehouse):
    """Spend to date: October's cost through DAY (10-01, 10-02, OTHER_DAY, DAY). Run rate: the 7
    days through DAY (09-29 on) / 7. Forecast: spend to date + run rate x the 26 days left."""
    conn, rows = warehouse
    month = [day for day in ROLLUP_DAYS if day.month == DAY.month]
    week = [day for day in ROLLUP_DAYS if DAY - dt.timedelta(days=6) <= day]
    feature = ANOMALY_KEYS["feature"]
    to_date = {key: sum((_cost_by_key(rows, day, feature).get(key, 0) for day in month), Decimal(0))
               for key in _cost_by_key(rows, DAY, feature)}  # fmt: skip
    seven_days = {key: sum((_cost_by_key(rows, day, feature).get(key, 0) for day in week), Decimal(0))
                  for key in to_date}  # fmt: skip
    to_date["total"], seven_days["total"] = sum(to_date.values()), sum(seven_days.values())
    marts = {row["feature"]: row for row in _day_rows(conn, "fct_budget_forecast")}
    assert set(marts) == set(to_date) and len(marts) == 7
    for key, row in marts.items():
        assert abs(row["spend_to_date_usd"] - to_date[key]) <= TOLERANCE, (key, row["spend_to_date_usd"])
        assert abs(row["daily_run_rate_usd"] * 7 - seven_days[key]) <= TOLERANCE, key
        forecast = to_date[key] + seven_days[key] * 26 / 7
        assert abs(row["forecast_month_end_usd"] - forecast) <= TOLERANCE, (key, row["forecast_month_end_usd"])


def test_digest_money_equals_the_requests(warehouse):
    """The digest's spend, the week before's (09-28), caching savings, and each top mover's
    change: fct_requests' sums to 1e-9. Idle GPU cost is the utilization mart's."""
    conn, rows = warehouse
    (digest,) = _day_rows(conn, "fct_daily_digest")
    week_ago = DAY - dt.timedelta(days=7)
    assert abs(digest["spend_usd"] - _total(rows, "cost_usd")) <= TOLERANCE
    assert abs(digest["week_ago_spend_usd"] - _total(rows, "cost_usd", day=week_ago)) <= TOLERANCE
    savings = _total(rows, "prompt_cache_savings_usd") + _total(rows, "gateway_cache_avoided_usd")
    assert abs(digest["caching_savings_usd"] - savings) <= TOLERANCE
    # Total cost: both API providers billed DAY (1234.56 each, allocated in full), plus each pool's GPU cost.
    gpu = [row for row in _gpu_days() if row["day"] == DAY]
    assert digest["api_cost_usd"] == Decimal("2469.12")
    assert digest["gpu_idle_cost_usd"] == digest["idle_gpu_cost_usd"] == sum(row["idle_cost_usd"] for row in gpu)
    assert digest["gpu_busy_cost_usd"] == sum(row["gpu_cost_usd"] - row["idle_cost_usd"] for row in gpu)
    assert digest["total_cost_usd"] == Decimal("2469.12") + sum(row["gpu_cost_usd"] for row in gpu)
    # No bill a week before: the estimate, at fct_requests' exact scale.
    week_ago_gpu = sum(row["gpu_cost_usd"] for row in _gpu_days() if row["day"] == week_ago)
    assert abs(digest["week_ago_total_cost_usd"] - _total(rows, "cost_usd", day=week_ago) - week_ago_gpu) <= TOLERANCE
    today, before = (
        _cost_by_key(rows, DAY, ANOMALY_KEYS["feature"]),
        _cost_by_key(rows, week_ago, ANOMALY_KEYS["feature"]),
    )
    moves = {key: today.get(key, 0) - before.get(key, 0) for key in {*today, *before}}
    top = sorted(moves, key=lambda key: (-abs(moves[key]), key))[:3]
    assert [mover["feature"] for mover in digest["top_movers"]] == top
    for mover in digest["top_movers"]:
        assert abs(mover["delta_usd"] - moves[mover["feature"]]) <= TOLERANCE, mover


def test_price_finding_money_equals_the_reconciliation_rows(warehouse):
    """gpt-4o billed 1.25x its estimate on every day after 09-28: a stale price whose billed and
    estimated dollars are the sums of those reconciliation rows, to 1e-9."""
    conn, _ = warehouse
    run = [line for line in _bills_off() if line["day"] > HISTORY_DAYS[1]]
    conn.execute("select * from fct_price_findings")
    names = [column[0] for column in conn.description]
    (finding,) = [dict(zip(names, row, strict=True)) for row in conn.fetchall()]
    assert (finding["finding"], finding["first_day"], finding["days"]) == ("stale_price", HISTORY_DAYS[2], len(run))
    assert abs(finding["billed_usd"] - sum(line["billed_usd"] for line in run)) <= TOLERANCE
    assert abs(finding["estimated_usd"] - sum(line["estimated_usd"] for line in run)) <= TOLERANCE
    assert finding["billed_to_estimated_ratio"] == pytest.approx(1.25, rel=1e-9)


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


# The money columns of the alert marts as a warehouse built before they were exact holds them.
ROUNDED_ALERT_MONEY = {
    "fct_spend_anomalies": {
        **dict.fromkeys(("actual_usd", "expected_usd", "impact_usd"), "DECIMAL(18,6)"),
        **dict.fromkeys(DRIVERS, "DOUBLE"),
    },
    "fct_budget_forecast": dict.fromkeys(
        ("spend_to_date_usd", "daily_run_rate_usd", "forecast_month_end_usd"), "DECIMAL(18,6)"
    ),
    "fct_daily_digest": {
        **dict.fromkeys(("spend_usd", "week_ago_spend_usd", "caching_savings_usd"), "DECIMAL(18,6)"),
        "top_movers": "STRUCT(feature VARCHAR, delta_usd DECIMAL(18,6))[]",
    },
}


@pytest.mark.parametrize("mart", ALERT_MARTS)
def test_a_warehouse_built_with_rounded_alert_money_takes_the_exact_types_on_its_next_run(tmp_path, mart):
    """The alert marts' tables as they were (money DECIMAL(18, 6), the anomaly drivers DOUBLE, the
    digest's movers a list of DECIMAL(18, 6) structs): the next run widens each column to the
    model's type (DECIMAL(38, 12)) and the day's money comes out exact."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    rows = _requests() + _history_requests()
    create_relation(conn, "fct_requests", {"columns": dict.fromkeys(MONEY_COLUMNS, REQUEST_MONEY), "rows": rows})
    models = load_models()
    for day in ROLLUP_DAYS:
        for name in ("fct_spend_daily", "fct_spend_by_feature_daily"):
            run_model(conn, models[name], tmp_path / "lake", day)
    _alert_mart_inputs(conn)
    _total_cost(conn, tmp_path / "lake")
    run_model(conn, models[mart], tmp_path / "lake", OTHER_DAY, SETTINGS)
    for column, kind in ROUNDED_ALERT_MONEY[mart].items():
        conn.execute(f'alter table {mart} alter column "{column}" type {kind}')  # noqa: S608 (names and types from this test's own table)

    def kinds() -> dict[str, str]:
        found = conn.execute(
            "select column_name, data_type from information_schema.columns where table_name = $mart", {"mart": mart}
        ).fetchall()
        return {column: kind for column, kind in found if column in ROUNDED_ALERT_MONEY[mart]}

    assert kinds() == ROUNDED_ALERT_MONEY[mart]
    run_model(conn, models[mart], tmp_path / "lake", DAY, SETTINGS)
    assert kinds() == {
        column: "STRUCT(feature VARCHAR, delta_usd DECIMAL(38,12))[]" if column == "top_movers" else "DECIMAL(38,12)"
        for column in ROUNDED_ALERT_MONEY[mart]
    }
    money = {"fct_spend_anomalies": "actual_usd", "fct_budget_forecast": "spend_to_date_usd"}.get(mart, "spend_usd")
    where = {"fct_spend_anomalies": "dimension = 'total'", "fct_budget_forecast": "feature = 'total'"}.get(mart, "true")
    (row,) = _day_rows(conn, mart, where)
    month = sum((_total(rows, "cost_usd", day=day) for day in ROLLUP_DAYS if day.month == DAY.month), Decimal(0))
    assert abs(row[money] - (month if mart == "fct_budget_forecast" else _total(rows, "cost_usd"))) <= TOLERANCE
    conn.close()
