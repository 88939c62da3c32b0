"""Spend anomalies: the baseline, both gates, and a driver decomposition worked on paper.

The SQL model runs for real (through the `run_model_on` harness) on daily aggregates the test
writes by hand.
"""

from __future__ import annotations

import datetime as dt

import pytest

SETTINGS = {"min_impact_usd": 50.0, "min_impact_pct": 0.2}
DAY = dt.date(2026, 10, 29)  # a Thursday; the 28 days before it hold 20 weekdays and 8 weekend days

SPEND_COLUMNS = {
    "day": "date",
    "feature": "varchar",
    "user_id": "varchar",
    "provider": "varchar",
    "model": "varchar",
    "requests": "bigint",
    "error_requests": "bigint",
    "gateway_cache_hits": "bigint",
    "unpriced_requests": "bigint",
    "input_tokens": "bigint",
    "cached_input_tokens": "bigint",
    "cache_creation_input_tokens": "bigint",
    "output_tokens": "bigint",
    "cost_usd": "decimal(18, 6)",
    "list_cost_usd": "decimal(18, 6)",
    "prompt_cache_savings_usd": "decimal(18, 6)",
    "gateway_cache_avoided_usd": "decimal(18, 6)",
    "output_cost_usd": "decimal(18, 6)",
}
GPU_COLUMNS = {
    "day": "date",
    "pool": "varchar",
    "billed_replicas": "bigint",
    "billed_gpu_hours": "double",
    "busy_gpu_hours": "double",
    "busy_method": "varchar",
    "telemetry_coverage": "double",
    "utilization": "double",
    "gpu_cost_usd": "decimal(18, 6)",
    "idle_cost_usd": "decimal(18, 6)",
}


def spend_row(
    inputs,
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
    """One fct_spend_daily input row built from a per-token structure, so its dollars are known."""
    input_list = input_tokens * input_price
    output_cost = output_tokens * output_price
    savings = cached * saving_per_cached
    inputs["fct_spend_daily"]["rows"].append(
        {
            "day": day,
            "feature": feature,
            "user_id": user,
            "provider": "openai",
            "model": "gpt-x",
            "requests": requests,
            "error_requests": 0,
            "gateway_cache_hits": 0,
            "unpriced_requests": 0,
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "cache_creation_input_tokens": 0,
            "output_tokens": output_tokens,
            "cost_usd": input_list - savings + output_cost,
            "list_cost_usd": input_list + output_cost,
            "prompt_cache_savings_usd": savings,
            "gateway_cache_avoided_usd": 0,
            "output_cost_usd": output_cost,
        }
    )


CHAT = dict(input_price=5e-5, output_price=1.5e-4, saving_per_cached=2.5e-5)


def gpu_row(day, *, busy_gpu_hours, utilization, idle_cost_usd) -> dict:
    """One pool's day: 4 replicas, 96 GPU-hours billed at $10, busy measured by telemetry."""
    return {
        "day": day,
        "pool": "pool",
        "billed_replicas": 4,
        "billed_gpu_hours": 96,
        "busy_gpu_hours": busy_gpu_hours,
        "busy_method": "telemetry",
        "telemetry_coverage": 1,
        "utilization": utilization,
        "gpu_cost_usd": 960,
        "idle_cost_usd": idle_cost_usd,
    }


@pytest.fixture
def inputs():
    """The model's inputs: 28 days of history before DAY; each test adds DAY's rows."""
    inputs = {
        "fct_spend_daily": {"columns": SPEND_COLUMNS, "rows": []},
        "fct_gpu_utilization_daily": {"columns": GPU_COLUMNS, "rows": []},
    }
    for back in range(1, 29):
        day = DAY - dt.timedelta(days=back)
        weekend = day.weekday() >= 5
        # chat: 1,000 requests of 2,000 input tokens (half cached) and 200 output tokens:
        # 100 input at list - 25 saved by the cache + 30 output = $105 a weekday; weekends $63.
        scale = 0.6 if weekend else 1.0
        spend_row(
            inputs,
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
            inputs,
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
            inputs,
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
        inputs["fct_gpu_utilization_daily"]["rows"].append(
            gpu_row(day, busy_gpu_hours=9.6, utilization=0.1, idle_cost_usd=864)
        )
    return inputs


@pytest.fixture
def run(run_model_on, inputs):
    """fct_spend_anomalies's rows of a day, keyed by (dimension, key)."""

    def rows_of(day=DAY):
        rows = run_model_on("fct_spend_anomalies", inputs, day=day, settings=SETTINGS)
        return {(row["dimension"], row["key"]): row for row in rows}

    return rows_of


def test_prompt_growth_is_an_anomaly_driven_by_input_tokens(inputs, run):
    """Today chat sends 6,000 input tokens per request (x3), the cached 1,000,000 unchanged:
    300 at list - 25 saved + 30 output = $305 against the weekday median $105: +$200.
    Chain: volume 1,000 x 0.105 - 105 = 0; input 1,000 x (6,000 x 5e-5 - 6,000 x 0.5 x 2.5e-5 + 0.03)
    - 105 = 255 - 105 = +150; output 0; cache hit rate 0.5 -> 1/6: 305 - 255 = +50; price mix 0."""
    spend_row(
        inputs,
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
        inputs,
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
        inputs,
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
    chat = run()[("feature", "chat")]
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


def test_the_absolute_and_relative_gates(inputs, run):
    # small: $5 -> $8 (+60 %) is only $3: not news. big: +2 % = +$200 is not news either.
    spend_row(
        inputs,
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
        inputs,
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
        inputs,
        DAY,
        "chat",
        "u1",
        requests=1000,
        input_tokens=2_000_000,
        cached=1_000_000,
        output_tokens=200_000,
        **CHAT,
    )
    rows = run()
    small, big = rows[("feature", "small")], rows[("feature", "big")]
    assert float(small["impact_usd"]) == pytest.approx(3) and small["impact_ratio"] == pytest.approx(0.6)
    # Spread floor: max(1.4826 x MAD 0, 5 % of $5, $50 / 10) = $5, so the score is 3 / 5.
    assert small["score"] == pytest.approx(0.6) and small["is_anomaly"] is False
    assert float(big["impact_usd"]) == pytest.approx(200) and big["impact_ratio"] == pytest.approx(0.02)
    assert big["score"] == pytest.approx(200 / 500)  # floor: 5 % of $10,000
    assert big["is_anomaly"] is False  # and the 20 % gate
    assert rows[("feature", "chat")]["is_anomaly"] is False  # on baseline
    assert ("user", "u2") not in rows  # users are kept only when they move


def test_a_new_heavy_user_is_a_volume_anomaly(inputs, run):
    spend_row(
        inputs,
        DAY,
        "chat",
        "spiky",
        requests=1000,
        input_tokens=2_000_000,
        cached=1_000_000,
        output_tokens=200_000,
        **CHAT,
    )  # $105 from a user who never spent before
    user = run()[("user", "spiky")]
    assert float(user["expected_usd"]) == 0 and user["impact_ratio"] is None
    assert user["is_anomaly"] and user["top_driver"] == "volume" and user["volume_usd"] == pytest.approx(105)


def test_the_baseline_needs_14_days_of_history(inputs, run):
    early = DAY - dt.timedelta(days=20)  # only 8 days of data before it
    assert all(not row["is_anomaly"] for row in run(early).values())


def test_idle_gpu_cost_parts_add_up(inputs, run):
    """Baseline: 96 GPU-hours x $10 x (1 - 0.1) = $864 idle. Today utilization drops to 0: $960.
    Billed hours part 0, price part 0, utilization part +$96."""
    inputs["fct_gpu_utilization_daily"]["rows"].append(
        gpu_row(DAY, busy_gpu_hours=0, utilization=0.0, idle_cost_usd=960)
    )
    pool = run()[("gpu_pool_idle", "pool")]
    assert float(pool["impact_usd"]) == pytest.approx(96)
    assert pool["top_driver"] == "utilization"
    assert '"utilization_usd":96.0' in pool["drivers"].replace(" ", "")
