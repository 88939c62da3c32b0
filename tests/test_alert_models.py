"""The alert models on hand-built rows: anomaly episodes (open, escalation, a dip inside the quiet
period, recovery) and the daily digest (totals, the week-ago change, the top movers).

Each SQL model runs for real (`run_model_on`, tests/model_harness.py) on input rows written here;
the expected rows are worked out in the comments. The alerts are then worded from those rows by
`pipelines/alerts/compose.py`, as the alerts asset does.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from pipelines.alerts.compose import anomaly_alerts, budget_alerts, digest_alert, savings_alerts, savings_step

LINK = "http://127.0.0.1:3000/assets/fct_spend_anomalies"


def october(day_of_month: int) -> dt.date:
    return dt.date(2026, 10, day_of_month)


# --------------------------------------------------------------------------- anomaly episodes


def anomalies(rows: dict[tuple[str, int], str]) -> dict[str, list[dict]]:
    """fct_spend_anomalies for feature keys, from {(key, day of October): severity}; 'none' is a
    normal day. actual_usd = 100 + the day of the month, so the row an episode reports from shows."""
    spend_anomalies = []
    for (key, day_of_month), severity in rows.items():
        actual = 100 + day_of_month
        spend_anomalies.append(
            {
                "day": october(day_of_month),
                "dimension": "feature",
                "key": key,
                "actual_usd": actual,
                "expected_usd": 50,
                "impact_usd": actual - 50,
                "impact_ratio": (actual - 50) / 50,
                "is_anomaly": severity != "none",
                "severity": severity,
                "top_driver": "volume",
                "drivers": json.dumps({"volume_usd": actual - 50, "model_price_mix_usd": 0.0}),
                "top_users": None,
                "top_models": None,
            }
        )
    return {"fct_spend_anomalies": spend_anomalies}


def test_episodes_open_escalate_survive_a_dip_and_recover_after_the_quiet_days(run_model_on):
    inputs = anomalies(
        {
            # chat: warning on the 1st, critical on the 2nd, a normal 3rd (a dip), warning again on the 4th,
            # then normal from the 5th: the 5th, 6th and 7th are the 3 quiet days, so it recovers on the 7th.
            # A new anomaly on the 11th is a new episode.
            ("chat", 1): "warning",
            ("chat", 2): "critical",
            ("chat", 3): "none",
            ("chat", 4): "warning",
            ("chat", 5): "none",
            ("chat", 6): "none",
            ("chat", 7): "none",
            ("chat", 11): "warning",
            # embed: anomalies on the 1st and the 5th with three normal days between: over on the 4th,
            # and the 5th starts a second episode, over on the 8th.
            ("embed", 1): "critical",
            ("embed", 5): "warning",
        }
    )
    got = {
        day: [
            (
                row["key"],
                row["episode_state"],
                row["episode_start"].day,
                row["last_anomaly_day"].day,
                row["worst_severity"],
            )
            for row in run_model_on("alert_anomaly_episodes", inputs, day=october(day))
        ]
        for day in range(1, 12)
    }
    assert got == {
        1: [("chat", "open", 1, 1, "warning"), ("embed", "open", 1, 1, "critical")],
        2: [("chat", "open", 1, 2, "critical")],  # escalation: same episode, worse severity
        3: [],  # the dip: no anomaly, and not yet 3 quiet days
        4: [("chat", "open", 1, 4, "critical"), ("embed", "recovered", 1, 1, "critical")],
        5: [("embed", "open", 5, 5, "warning")],
        6: [],
        7: [("chat", "recovered", 1, 4, "critical")],
        8: [("embed", "recovered", 5, 5, "warning")],
        9: [],
        10: [],
        11: [("chat", "open", 11, 11, "warning")],
    }


def test_episode_alerts_are_worded_from_the_episode_rows(run_model_on):
    inputs = anomalies({("chat", 1): "warning", ("chat", 2): "critical", ("chat", 3): "none", ("chat", 4): "warning"})

    def alerts_on(day_of_month):
        day = october(day_of_month)
        return anomaly_alerts(run_model_on("alert_anomaly_episodes", inputs, day=day), day, LINK)

    assert [a["alert_id"] for a in alerts_on(1)] == ["anomaly:feature:chat:2026-10-01:warning"]
    assert [a["alert_id"] for a in alerts_on(2)] == ["anomaly:feature:chat:2026-10-01:critical"]
    # Still critical after the dip: the same id as the 2nd's, so the outbox does not send it again.
    again = alerts_on(4)
    assert [a["alert_id"] for a in again] == ["anomaly:feature:chat:2026-10-01:critical"]
    # The 4th's row: actual 104, expected 50, impact +54 (+108%).
    payload = again[0]["payload"]
    assert payload["title"] == "Feature chat: spend up $54.00 on 2026-10-04"
    assert payload["fields"][:3] == [
        {"label": "Actual", "value": "$104.00"},
        {"label": "Expected", "value": "$50.00"},
        {"label": "Impact", "value": "$54.00 (+108%)"},
    ]
    assert payload["drivers"] == [{"name": "volume", "impact_usd": 54}, {"name": "model price mix", "impact_usd": 0.0}]

    (recovery,) = alerts_on(7)
    assert (recovery["alert_id"], recovery["kind"], recovery["severity"]) == (
        "recovery:feature:chat:2026-10-01",
        "recovery",
        "info",
    )
    assert recovery["payload"]["fields"] == [{"label": "Anomalous days", "value": "4"}]  # the 1st to the 4th


# --------------------------------------------------------------------------- daily digest

DAY = dt.date(2026, 10, 20)
WEEK_AGO = dt.date(2026, 10, 13)

# feature: (cost on DAY, cost a week before); None = no row that day.
FEATURE_SPEND = {
    "chat": ("100.00", "90.00"),  # +10
    "search": ("5.00", "40.00"),  # -35: the biggest mover is a fall
    "summarise": ("30.00", "11.00"),  # +19
    "rerank": ("19.00", None),  # +19, new this week: ties summarise and comes first by name
    "autocomplete": ("2.00", "1.00"),  # +1
    "embed": ("4.00", None),  # +4
    "legacy": (None, "8.00"),  # -8, gone this week
}


# fct_total_cost_daily: (day, feature, API, GPU busy, GPU idle); the total is their sum.
TOTAL_COST = [
    (DAY, "chat", "100.00", "40.00", "12.25"),  # 152.25
    (DAY, "search", "60.00", "0", "0"),  # 60
    (DAY, "unallocated", "0", "0", "0.75"),  # an idle pool's 0.75
    (WEEK_AGO, "chat", "150.00", "0", "0"),
    (dt.date(2026, 10, 17), "chat", "999.00", "0", "0"),  # neither the day nor a week before
]


MIN_MONTHLY = 100.0  # savings.min_monthly_usd's default
FINDING_COLUMNS = dict.fromkeys(("finding", "subject", "severity", "message"), "varchar") | {"day": "date"}


SAVINGS_COLUMNS = dict.fromkeys(
    ("basis", "kind", "feature", "provider", "model", "target", "finding_key", "status"), "varchar"
) | {
    "day": "date",
    "window_days": "integer",
    "monthly_savings_usd": "decimal(18, 6)",
    "requests_affected": "bigint",
}


def digest_inputs(
    feature_spend: dict[str, tuple[str | None, str | None]], total_cost=TOTAL_COST, findings=(), savings=()
) -> dict:
    total_cost = [
        {
            "day": day,
            "feature": feature,
            "api_cost_usd": Decimal(api),
            "gpu_busy_cost_usd": Decimal(busy),
            "gpu_idle_cost_usd": Decimal(idle),
            "total_cost_usd": Decimal(api) + Decimal(busy) + Decimal(idle),
        }
        for day, feature, api, busy, idle in total_cost
    ]
    by_feature = []
    for feature, (today, week_ago) in feature_spend.items():
        for day, cost in ((DAY, today), (WEEK_AGO, week_ago)):
            if cost is not None:
                # chat saved 3.00 by prompt caching and 1.50 by gateway cache hits, on both days.
                saved = ("3.00", "1.50") if feature == "chat" else ("0", "0")
                by_feature.append(
                    {
                        "day": day,
                        "feature": feature,
                        "cost_usd": Decimal(cost),
                        "prompt_cache_savings_usd": Decimal(saved[0]),
                        "gateway_cache_avoided_usd": Decimal(saved[1]),
                    }
                )
    return {
        "fct_spend_by_feature_daily": {
            # Stated, so the relation exists with its columns on a day without spend.
            "columns": {
                "day": "date",
                "feature": "varchar",
                "cost_usd": "decimal(18, 6)",
                "prompt_cache_savings_usd": "decimal(18, 6)",
                "gateway_cache_avoided_usd": "decimal(18, 6)",
            },
            "rows": by_feature,
        },
        # Two of the day's three lines are off; the week-ago line and a multi-day invoice (no day) are not the day's.
        "fct_invoice_reconciliation": [
            {"day": DAY, "status": "matched"},
            {"day": DAY, "status": "over"},
            {"day": DAY, "status": "under"},
            {"day": WEEK_AGO, "status": "over"},
            {"day": None, "status": "over"},
        ],
        "fct_total_cost_daily": {
            "columns": {
                "day": "date",
                "feature": "varchar",
                **dict.fromkeys(
                    ("total_cost_usd", "api_cost_usd", "gpu_busy_cost_usd", "gpu_idle_cost_usd"), "decimal(18, 6)"
                ),
            },
            "rows": total_cost,
        },
        "fct_data_findings": {"columns": FINDING_COLUMNS, "rows": list(findings)},
        "fct_savings_opportunities": {"columns": SAVINGS_COLUMNS, "rows": list(savings)},
        "fct_gpu_utilization_daily": [
            {"day": DAY, "pool": "a", "idle_cost_usd": Decimal("12.25")},
            {"day": DAY, "pool": "b", "idle_cost_usd": Decimal("0.75")},
            {"day": WEEK_AGO, "pool": "a", "idle_cost_usd": Decimal("50")},
        ],
    }


def test_digest_totals_and_the_change_against_a_week_before(run_model_on):
    (row,) = run_model_on("fct_daily_digest", digest_inputs(FEATURE_SPEND), day=DAY)
    # Total cost: 152.25 + 60 + 0.75 = 213; API 100 + 60 = 160; GPU busy 40, idle 12.25 + 0.75 = 13.
    assert row["total_cost_usd"] == Decimal("213")
    assert row["week_ago_total_cost_usd"] == Decimal("150")
    assert (row["api_cost_usd"], row["gpu_busy_cost_usd"], row["gpu_idle_cost_usd"]) == (
        Decimal("160"),
        Decimal("40"),
        Decimal("13"),
    )
    # API spend at catalog prices: 100 + 5 + 30 + 19 + 2 + 4 = 160; a week before: 90 + 40 + 11 + 1 + 8 = 150.
    assert row["spend_usd"] == Decimal("160")
    assert row["week_ago_spend_usd"] == Decimal("150")
    assert row["caching_savings_usd"] == Decimal("4.5")
    assert row["off_estimate_lines"] == 2
    assert row["idle_gpu_cost_usd"] == Decimal("13")  # the pools' 12.25 + 0.75

    payload = digest_alert(row, DAY, LINK, min_monthly_usd=MIN_MONTHLY)["payload"]
    # 213 / 150 - 1 = +42 %, +$63.00.
    assert payload["title"] == "LLM cost on 2026-10-20: $213.00 (+42% vs 2026-10-13, +$63.00)"
    assert payload["fields"] == [
        {"label": "Total cost", "value": "$213.00 (+42% vs 2026-10-13, +$63.00)"},
        {"label": "API", "value": "$160.00"},
        {"label": "GPU", "value": "$53.00 (busy $40.00, idle $13.00)"},
        {"label": "Caching saved", "value": "$4.50"},
        {"label": "Bill lines off estimate", "value": "2"},
    ]


def test_a_cheaper_day_reads_as_a_fall_with_the_sign_before_the_dollar(run_model_on):
    cheaper = [(DAY, "chat", "90.00", "0", "0"), (WEEK_AGO, "chat", "96.19", "0", "0")]
    (row,) = run_model_on("fct_daily_digest", digest_inputs(FEATURE_SPEND, cheaper), day=DAY)
    # 90 / 96.19 - 1 = -6.4 %; 90 - 96.19 = -6.19.
    assert (
        digest_alert(row, DAY, LINK, min_monthly_usd=MIN_MONTHLY)["payload"]["title"]
        == "LLM cost on 2026-10-20: $90.00 (-6.4% vs 2026-10-13, -$6.19)"
    )


def test_digest_movers_are_the_largest_absolute_changes_ties_by_name(run_model_on):
    """The query this model replaced ordered by `abs(2)`, a constant, and named chat (+10) first."""
    (row,) = run_model_on("fct_daily_digest", digest_inputs(FEATURE_SPEND), day=DAY)
    assert row["top_movers"] == [
        {"feature": "search", "delta_usd": Decimal("-35")},
        {"feature": "rerank", "delta_usd": Decimal("19")},
        {"feature": "summarise", "delta_usd": Decimal("19")},
    ]
    assert digest_alert(row, DAY, LINK, min_monthly_usd=MIN_MONTHLY)["payload"]["drivers"] == [
        {"name": "feature search (API)", "impact_usd": -35.0},
        {"name": "feature rerank (API)", "impact_usd": 19.0},
        {"name": "feature summarise (API)", "impact_usd": 19.0},
    ]


def test_a_feature_gone_this_week_is_a_negative_mover(run_model_on):
    inputs = digest_inputs({"chat": ("10.00", "9.00"), "legacy": (None, "8.00"), "new": ("3.00", None)})
    (row,) = run_model_on("fct_daily_digest", inputs, day=DAY)
    assert row["top_movers"] == [
        {"feature": "legacy", "delta_usd": Decimal("-8")},
        {"feature": "new", "delta_usd": Decimal("3")},
        {"feature": "chat", "delta_usd": Decimal("1")},
    ]


def test_a_day_without_spend_still_has_its_digest_row(run_model_on):
    (row,) = run_model_on("fct_daily_digest", digest_inputs({}, []), day=DAY)
    assert (row["spend_usd"], row["week_ago_spend_usd"], row["top_movers"]) == (None, None, None)
    assert (row["total_cost_usd"], row["week_ago_total_cost_usd"]) == (None, None)
    payload = digest_alert(row, DAY, LINK, min_monthly_usd=MIN_MONTHLY)["payload"]
    assert payload["fields"][0] == {"label": "Total cost", "value": "$0.00 (no cost on 2026-10-13 to compare)"}
    assert payload["drivers"] == []


def test_the_digest_carries_the_days_findings_warnings_first(run_model_on):
    findings = [
        {
            "day": DAY,
            "finding": "unpriced_model",
            "subject": "acme/a1",
            "severity": "info",
            "message": "acme: add a price",
        },
        {
            "day": DAY,
            "finding": "no_gateway_data",
            "subject": "gateway_logs",
            "severity": "warning",
            "message": "no logs",
        },
        {"day": WEEK_AGO, "finding": "no_bill", "subject": "openai", "severity": "info", "message": "not this day"},
    ]
    (row,) = run_model_on("fct_daily_digest", digest_inputs(FEATURE_SPEND, findings=findings), day=DAY)
    assert [finding["finding"] for finding in row["findings"]] == ["no_gateway_data", "unpriced_model"]
    alert = digest_alert(row, DAY, LINK, min_monthly_usd=MIN_MONTHLY)
    assert alert["severity"] == "warning"  # a day without gateway data is not an ordinary digest
    assert alert["payload"]["title"].endswith(": no gateway data, API calls unknown")
    assert alert["payload"]["fields"][-1] == {"label": "Findings", "value": "• no logs\n• acme: add a price"}

    (quiet,) = run_model_on("fct_daily_digest", digest_inputs(FEATURE_SPEND), day=DAY)
    assert (
        quiet["findings"] is None and digest_alert(quiet, DAY, LINK, min_monthly_usd=MIN_MONTHLY)["severity"] == "info"
    )


def _finding(
    basis: str, kind: str, feature: str, monthly: str, day: dt.date = DAY, target: str = "", status: str = "open"
) -> dict:
    return {
        "status": status,
        "day": day,
        "basis": basis,
        "kind": kind,
        "feature": feature,
        "provider": "openai",
        "model": "gpt-4o",
        "target": target,
        "window_days": 28,
        "monthly_savings_usd": Decimal(monthly),
        "requests_affected": 1_200,
        "finding_key": f"{kind}:{feature}:openai/gpt-4o:{target}",
    }


def test_the_digest_shows_the_three_largest_savings_findings_basis_first(run_model_on):
    savings = [
        _finding("measured", "duplicate_calls", "chat", "150"),
        _finding("upper_bound", "prompt_cache", "support", "500", target="ttl_short"),
        _finding("price_rule", "batch", "nightly", "300", target="batch"),
        _finding("price_rule", "batch", "enrich", "120", target="batch"),  # the fourth: not shown
        _finding("measured", "truncation_retries", "summarise", "99.99"),  # under $100 a month
        # Settled or being worked on: never in the digest.
        _finding("measured", "duplicate_calls", "done", "7000", status="done"),
        _finding("measured", "duplicate_calls", "dismissed", "8000", status="dismissed"),
        _finding("measured", "duplicate_calls", "acknowledged", "6000", status="acknowledged"),
        _finding("measured", "duplicate_calls", "chat", "9000", day=WEEK_AGO),  # another day's
        *(_finding("measured", "duplicate_calls", f"small_{n}", "1") for n in range(8)),
    ]
    (row,) = run_model_on("fct_daily_digest", digest_inputs(FEATURE_SPEND, savings=savings), day=DAY)
    # The day's 10 largest open ones, largest first: 500, 300, 150, 120, 99.99 and five of the $1 ones.
    assert [float(finding["monthly_savings_usd"]) for finding in row["savings_findings"]] == [
        500,
        300,
        150,
        120,
        99.99,
        *[1.0] * 5,
    ]
    fields = digest_alert(row, DAY, LINK, min_monthly_usd=MIN_MONTHLY)["payload"]["fields"]
    assert fields[-1] == {
        "label": "Savings (28-day basis, not additive)",
        "value": "• [upper bound] support: prompt_cache, openai/gpt-4o -> ttl_short: $500.00/mo (1,200 calls)\n"
        "• [price rule] nightly: batch, openai/gpt-4o -> batch: $300.00/mo (1,200 calls)\n"
        "• [measured] chat: duplicate_calls, openai/gpt-4o: $150.00/mo (1,200 calls)",
    }
    # Above every finding's monthly dollars: no block at all.
    fields = digest_alert(row, DAY, LINK, min_monthly_usd=1_000)["payload"]["fields"]
    assert not any(field["label"].startswith("Savings") for field in fields)


def test_a_finding_posts_once_per_doubling_of_the_threshold_and_per_basis():
    # Steps of a $100 threshold: 1 from $100, 2 from $200, 4 from $400; at least $1 when it is 0.
    assert [savings_step(monthly, 100) for monthly in (100, 199.99, 200, 399.99, 400, 1_000)] == [1, 1, 2, 2, 4, 8]
    assert [savings_step(monthly, 0) for monthly in (0.5, 1, 3)] == [1, 1, 2]

    def row(monthly: str, basis: str = "measured", status: str = "open") -> dict:
        return _finding(basis, "duplicate_calls", "chat", monthly, status=status) | {
            "estimated_savings_usd": Decimal(monthly),
            "requests_in_scope": 5_000,
            "confidence": "high",
            "assumptions": "400 calls repeated an earlier call.",
        }

    key = "duplicate_calls:chat:openai/gpt-4o:"
    ids = [
        alert["alert_id"]
        for monthly in ("99.99", "150", "250", "399", "400")
        for alert in savings_alerts([row(monthly)], MIN_MONTHLY, LINK)
    ]
    # Under the threshold: nothing; $150 posts; $250 and $399 share the second step; $400 the third.
    assert ids == [
        f"savings:{key}:measured:x1",
        f"savings:{key}:measured:x2",
        f"savings:{key}:measured:x2",
        f"savings:{key}:measured:x4",
    ]
    # Another basis is another alert; a dismissed or done finding never posts, whatever it saves.
    assert [alert["alert_id"] for alert in savings_alerts([row("150", basis="upper_bound")], MIN_MONTHLY, LINK)] == [
        f"savings:{key}:upper_bound:x1"
    ]
    assert savings_alerts([row("9000", status="dismissed"), row("9000", status="done")], MIN_MONTHLY, LINK) == []
    (alert,) = savings_alerts([row("150")], MIN_MONTHLY, LINK)
    assert (alert["kind"], alert["severity"]) == ("savings_opportunity", "info")
    assert alert["payload"]["title"] == "[measured] chat: duplicate_calls on openai/gpt-4o, $150.00/mo"
    assert alert["payload"]["text"] == "400 calls repeated an earlier call."
    assert {"label": "Key", "value": key} in alert["payload"]["fields"]


# --------------------------------------------------------------------------- budget wording


def budget_row(feature: str, spent: str, forecast: str, budget: str = "2600") -> dict:
    """A fct_budget_forecast row for October with its ratios worked out from the dollars, and the
    threshold crossed as the mart decides it: the highest of 0.8 and 1.0 that spend or forecast reached."""
    spent_pct, forecast_pct = Decimal(spent) / Decimal(budget), Decimal(forecast) / Decimal(budget)
    reached = max(spent_pct, forecast_pct)
    return {
        "feature": feature,
        "month": october(1),
        "budget_usd": Decimal(budget),
        "spend_to_date_usd": Decimal(spent),
        "forecast_month_end_usd": Decimal(forecast),
        "spend_to_budget_ratio": float(spent_pct),
        "forecast_to_budget_ratio": float(forecast_pct),
        "threshold_crossed": 1.0 if reached >= 1 else 0.8,
    }


def test_a_budget_only_forecast_to_cross_says_so_and_is_a_warning():
    # $52 of $2,600 spent (2 %), forecast $2,860 (110 %): forecast to reach 100 %, not reached.
    (alert,) = budget_alerts([budget_row("total", "52", "2860")], LINK)
    assert alert["payload"]["title"] == (
        "Budget total: forecast to reach 100% of $2,600.00 by the end of October 2026 (2% spent so far)"
    )
    assert (alert["alert_id"], alert["severity"]) == ("budget:total:2026-10-01:100:forecast", "warning")
    assert alert["payload"]["fields"][0] == {"label": "Spent to date", "value": "$52.00 (2%)"}


def test_a_budget_actually_spent_past_100_percent_is_reached_and_critical():
    # $2,730 of $2,600 spent (105 %): reached; a different alert from the forecast one, so it is sent too.
    (alert,) = budget_alerts([budget_row("chat", "2730", "3100")], LINK)
    assert alert["payload"]["title"] == "Budget chat: 100% of $2,600.00 reached for October 2026"
    assert (alert["alert_id"], alert["severity"]) == ("budget:chat:2026-10-01:100", "critical")


def test_80_percent_reached_is_a_warning_that_says_reached():
    (alert,) = budget_alerts([budget_row("search", "2100", "2500")], LINK)  # 80.8 % spent, 96 % forecast
    assert alert["payload"]["title"] == "Budget search: 80% of $2,600.00 reached for October 2026"
    assert (alert["alert_id"], alert["severity"]) == ("budget:search:2026-10-01:80", "warning")
