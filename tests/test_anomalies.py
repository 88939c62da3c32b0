"""Spend anomalies: the baseline, both gates, and a driver decomposition worked on paper.

The SQL model runs for real on a DuckDB file whose daily aggregates the test writes by hand.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipelines.models.engine import load_models, run_model

SETTINGS = {"min_impact_usd": 50.0, "min_impact_pct": 0.2}
DAY = dt.date(2026, 10, 29)  # a Thursday; the 28 days before it hold 20 weekdays and 8 weekend days

SPEND_COLUMNS = """(day date, feature varchar, user_id varchar, provider varchar, model varchar, requests bigint,
    error_requests bigint, gateway_cache_hits bigint, unpriced_requests bigint, input_tokens bigint,
    cached_input_tokens bigint, cache_creation_input_tokens bigint, output_tokens bigint, cost_usd decimal(18, 6),
    list_cost_usd decimal(18, 6), prompt_cache_savings_usd decimal(18, 6), gateway_cache_avoided_usd decimal(18, 6),
    output_cost_usd decimal(18, 6))"""
GPU_COLUMNS = """(day date, pool varchar, billed_replicas bigint, billed_gpu_hours double, busy_gpu_hours double,
    busy_method varchar, telemetry_coverage double, utilization double, gpu_cost_usd decimal(18, 6),
    idle_cost_usd decimal(18, 6))"""


def spend_row(
    conn,
    day,
    feature,
    user,
    *,
    requests,
    input_tokens,
    cached,
    output_tokens,
    input_price,
    output_price,
    saving_per_cached,
):
    """One fct_spend_daily row built from a per-token structure, so its dollars are known."""
    input_list = input_tokens * input_price
    output_cost = output_tokens * output_price
    savings = cached * saving_per_cached
    conn.execute(
        "insert into fct_spend_daily values ($day, $feature, $user, 'openai', 'gpt-x', $requests, 0, 0, 0, $input, "
        "$cached, 0, $output, $cost, $list, $savings, 0, $output_cost)",
        {
            "day": day,
            "feature": feature,
            "user": user,
            "requests": requests,
            "input": input_tokens,
            "cached": cached,
            "output": output_tokens,
            "cost": input_list - savings + output_cost,
            "list": input_list + output_cost,
            "savings": savings,
            "output_cost": output_cost,
        },
    )


CHAT = dict(input_price=5e-5, output_price=1.5e-4, saving_per_cached=2.5e-5)


@pytest.fixture
def warehouse(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute(f"create table fct_spend_daily {SPEND_COLUMNS}")
    conn.execute(f"create table fct_gpu_utilization_daily {GPU_COLUMNS}")
    for back in range(1, 29):
        day = DAY - dt.timedelta(days=back)
        weekend = day.weekday() >= 5
        # chat: 1,000 requests of 2,000 input tokens (half cached) and 200 output tokens:
        # 100 input at list - 25 saved by the cache + 30 output = $105 a weekday; weekends $63.
        scale = 0.6 if weekend else 1.0
        spend_row(
            conn,
            day,
            "chat",
            "u1",
            requests=int(1000 * scale),
            input_tokens=int(2_000_000 * scale),
            cached=int(1_000_000 * scale),
            output_tokens=int(200_000 * scale),
            **CHAT,
        )
        spend_row(
            conn,
            day,
            "small",
            "u2",
            requests=100,
            input_tokens=100_000,
            cached=0,
            output_tokens=0,
            input_price=5e-5,
            output_price=0,
            saving_per_cached=0,
        )  # $5 a day
        spend_row(
            conn,
            day,
            "big",
            "u3",
            requests=10_000,
            input_tokens=200_000_000,
            cached=0,
            output_tokens=0,
            input_price=5e-5,
            output_price=0,
            saving_per_cached=0,
        )  # $10,000 a day
        conn.execute(
            "insert into fct_gpu_utilization_daily values ($day, 'pool', 4, 96, 9.6, 'telemetry', 1, 0.1, 960, 864)",
            {"day": day},
        )
    yield conn
    conn.close()


def run(conn, day=DAY):
    # A daily_table model writes no lake files, so no lake folder is needed.
    run_model(conn, load_models()["fct_spend_anomalies"], Path("no-lake"), day, SETTINGS)
    conn.execute("select * from fct_spend_anomalies where day = $day", {"day": day})
    names = [d[0] for d in conn.description]
    return {(row[names.index("dimension")], row[names.index("key")]): dict(zip(names, row)) for row in conn.fetchall()}


def test_prompt_growth_is_an_anomaly_driven_by_input_tokens(warehouse):
    """Today chat sends 6,000 input tokens per request (x3), the cached 1,000,000 unchanged:
    300 at list - 25 saved + 30 output = $305 against the weekday median $105: +$200.
    Chain: volume 1,000 x 0.105 - 105 = 0; input 1,000 x (6,000 x 5e-5 - 6,000 x 0.5 x 2.5e-5 + 0.03)
    - 105 = 255 - 105 = +150; output 0; cache hit rate 0.5 -> 1/6: 305 - 255 = +50; price mix 0."""
    spend_row(
        warehouse,
        DAY,
        "chat",
        "u1",
        requests=1000,
        input_tokens=6_000_000,
        cached=1_000_000,
        output_tokens=200_000,
        **CHAT,
    )
    spend_row(
        warehouse,
        DAY,
        "small",
        "u2",
        requests=100,
        input_tokens=100_000,
        cached=0,
        output_tokens=0,
        input_price=5e-5,
        output_price=0,
        saving_per_cached=0,
    )
    spend_row(
        warehouse,
        DAY,
        "big",
        "u3",
        requests=10_000,
        input_tokens=200_000_000,
        cached=0,
        output_tokens=0,
        input_price=5e-5,
        output_price=0,
        saving_per_cached=0,
    )
    chat = run(warehouse)[("feature", "chat")]
    assert float(chat["expected_usd"]) == pytest.approx(105) and float(chat["actual_usd"]) == pytest.approx(305)
    assert chat["history_days"] == 20  # weekdays only
    assert chat["score"] == pytest.approx(200 / (0.05 * 105))  # MAD 0: the 5%-of-expected floor
    assert chat["volume_usd"] == pytest.approx(0, abs=1e-6)
    assert chat["input_tokens_per_request_usd"] == pytest.approx(150)
    assert chat["output_tokens_per_request_usd"] == pytest.approx(0, abs=1e-6)
    assert chat["cache_hit_rate_usd"] == pytest.approx(50)
    assert chat["model_price_mix_usd"] == pytest.approx(0, abs=1e-6)
    parts = sum(
        chat[c]
        for c in (
            "volume_usd",
            "input_tokens_per_request_usd",
            "output_tokens_per_request_usd",
            "cache_hit_rate_usd",
            "model_price_mix_usd",
        )
    )
    assert parts == pytest.approx(float(chat["impact_usd"]))
    assert (chat["is_anomaly"], chat["severity"], chat["top_driver"]) == (True, "critical", "input_tokens_per_request")
    assert "u1" in chat["top_users"]


def test_the_absolute_and_relative_gates(warehouse):
    # small: $5 -> $8 (+60 %) is only $3: not news. big: +2 % = +$200 is not news either.
    spend_row(
        warehouse,
        DAY,
        "small",
        "u2",
        requests=160,
        input_tokens=160_000,
        cached=0,
        output_tokens=0,
        input_price=5e-5,
        output_price=0,
        saving_per_cached=0,
    )
    spend_row(
        warehouse,
        DAY,
        "big",
        "u3",
        requests=10_200,
        input_tokens=204_000_000,
        cached=0,
        output_tokens=0,
        input_price=5e-5,
        output_price=0,
        saving_per_cached=0,
    )
    spend_row(
        warehouse,
        DAY,
        "chat",
        "u1",
        requests=1000,
        input_tokens=2_000_000,
        cached=1_000_000,
        output_tokens=200_000,
        **CHAT,
    )
    rows = run(warehouse)
    small, big = rows[("feature", "small")], rows[("feature", "big")]
    assert float(small["impact_usd"]) == pytest.approx(3) and small["impact_pct"] == pytest.approx(0.6)
    # Spread floor: max(1.4826 x MAD 0, 5 % of $5, $50 / 10) = $5, so the score is 3 / 5.
    assert small["score"] == pytest.approx(0.6) and small["is_anomaly"] is False
    assert float(big["impact_usd"]) == pytest.approx(200) and big["impact_pct"] == pytest.approx(0.02)
    assert big["score"] == pytest.approx(200 / 500)  # floor: 5 % of $10,000
    assert big["is_anomaly"] is False  # and the 20 % gate
    assert rows[("feature", "chat")]["is_anomaly"] is False  # on baseline
    assert ("user", "u2") not in rows  # users are kept only when they move


def test_a_new_heavy_user_is_a_volume_anomaly(warehouse):
    spend_row(
        warehouse,
        DAY,
        "chat",
        "spiky",
        requests=1000,
        input_tokens=2_000_000,
        cached=1_000_000,
        output_tokens=200_000,
        **CHAT,
    )  # $105 from a user who never spent before
    user = run(warehouse)[("user", "spiky")]
    assert float(user["expected_usd"]) == 0 and user["impact_pct"] is None
    assert user["is_anomaly"] and user["top_driver"] == "volume" and user["volume_usd"] == pytest.approx(105)


def test_the_baseline_needs_14_days_of_history(warehouse):
    early = DAY - dt.timedelta(days=20)  # only 8 days of data before it
    assert all(not row["is_anomaly"] for row in run(warehouse, early).values())


def test_idle_gpu_cost_parts_add_up(warehouse):
    """Baseline: 96 GPU-hours x $10 x (1 - 0.1) = $864 idle. Today utilization drops to 0: $960.
    Billed hours part 0, price part 0, utilization part +$96."""
    warehouse.execute(
        "insert into fct_gpu_utilization_daily values ($day, 'pool', 4, 96, 0, 'telemetry', 1, 0.0, 960, 960)",
        {"day": DAY},
    )
    pool = run(warehouse)[("gpu_pool_idle", "pool")]
    assert float(pool["impact_usd"]) == pytest.approx(96)
    assert pool["top_driver"] == "utilization"
    assert '"utilization_usd":96.0' in pool["drivers"].replace(" ", "")
