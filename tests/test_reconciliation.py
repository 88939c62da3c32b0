"""Provider exports, reconciliation and allocation, on a day small enough to work on paper.

Prices (catalog, USD per token): gpt-4o-mini in 1.5e-7, cached 7.5e-8, out 6e-7;
claude-3-5-sonnet-20241022 in 3e-6, read 3e-7, write 3.75e-6, out 1.5e-5;
claude-3-5-haiku-20241022 in 8e-7, out 4e-6.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from conftest import request

from pipelines.sources.billing.common import Parsed
from pipelines.sources.billing.day import read_exports
from pipelines.sources.billing.invoice_csv import read_invoice_csv
from pipelines.sources.billing.openai_costs import read_openai_costs
from pipelines.sources.quarantine import CurrencyError

DAY = "2026-10-20"
START = int(dt.datetime(2026, 10, 20, tzinfo=dt.timezone.utc).timestamp())

LOGS = [
    # gpt-4o-mini A: 1,000,000 in, 100,000 out -> 0.15 + 0.06 = 0.21
    request(
        "A",
        f"{DAY}T09:00:00Z",
        "gpt-4o-mini",
        provider="openai",
        feature="chat",
        user_id="u1",
        input_tokens=1_000_000,
        output_tokens=100_000,
    ),
    # gpt-4o-mini B: 2,000,000 in of which 1,000,000 cached, 200,000 out -> 0.15 + 0.075 + 0.12 = 0.345
    request(
        "B",
        f"{DAY}T10:00:00Z",
        "gpt-4o-mini",
        provider="openai",
        feature="search",
        user_id="u2",
        input_tokens=2_000_000,
        cached_input_tokens=1_000_000,
        output_tokens=200_000,
    ),
    # sonnet C: 100,000 in = 20,000 uncached + 60,000 read + 20,000 written; 10,000 out
    #   -> 0.06 + 0.018 + 0.075 + 0.15 = 0.303
    request(
        "C",
        f"{DAY}T11:00:00Z",
        "claude-3-5-sonnet-20241022",
        provider="anthropic",
        feature="chat",
        user_id="u1",
        input_tokens=100_000,
        cached_input_tokens=60_000,
        cache_creation_input_tokens=20_000,
        output_tokens=10_000,
    ),
    # haiku D: 10,000 in, 1,000 out -> 0.008 + 0.004 = 0.012; Anthropic bills nothing for it
    request(
        "D",
        f"{DAY}T12:00:00Z",
        "claude-3-5-haiku-20241022",
        provider="anthropic",
        feature="summarise",
        user_id="u3",
        input_tokens=10_000,
        output_tokens=1_000,
    ),
]


def openai_page(buckets):
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def openai_bucket(start, results):
    return {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}


def openai_cost(value, line_item, project="proj_web"):
    return {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": "usd"},
        "line_item": line_item,
        "project_id": project,
    }


def anthropic_bucket(day, results):
    return {
        "starting_at": f"{day}T00:00:00Z",
        "ending_at": f"{day}T00:00:00Z".replace(day, _next(day)),
        "results": results,
    }


def _next(day):
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def anthropic_cost(cents, token_type, model="claude-3-5-sonnet-20241022"):
    return {
        "currency": "USD",
        "amount": cents,
        "workspace_id": "wrk_1",
        "description": None,
        "cost_type": "tokens",
        "context_window": "0-200k",
        "model": model,
        "service_tier": "standard",
        "token_type": token_type,
    }


OPENAI_COSTS = openai_page(
    [
        openai_bucket(START - 86400, []),  # the day before: covered, nothing billed
        openai_bucket(
            START,
            [
                openai_cost(0.30, "gpt-4o-mini-2024-07-18, input"),  # 2,000,000 uncached x 1.5e-7
                openai_cost("0.075", "gpt-4o-mini-2024-07-18, cached input"),  # 1,000,000 x 7.5e-8 (value as a string)
                openai_cost(0.18, "gpt-4o-mini-2024-07-18, output"),  # 300,000 x 6e-7
                openai_cost(42.0, "fine-tuning training, gpt-4o-mini-2024-07-18"),  # no gateway traffic
            ],
        ),
    ]
)
OPENAI_USAGE = openai_page(
    [
        openai_bucket(
            START,
            [
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": 3_000_000,
                    "output_tokens": 300_000,
                    "input_cached_tokens": 1_000_000,
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                    "num_model_requests": 2,
                    "project_id": "proj_web",
                    "user_id": None,
                    "api_key_id": None,
                    "model": "gpt-4o-mini-2024-07-18",
                    "batch": False,
                }
            ],
        )
    ]
)
ANTHROPIC_COSTS = {
    "data": [
        anthropic_bucket(
            DAY,
            [
                anthropic_cost("6.0", "uncached_input_tokens"),  # cents: 20,000 x 3e-6 = $0.06
                anthropic_cost("1.8", "cache_read_input_tokens"),  # $0.018
                anthropic_cost("7.5", "cache_creation.ephemeral_5m_input_tokens"),  # $0.075
                anthropic_cost("16.5", "output_tokens"),  # $0.165 where the logs say $0.15: billed over
            ],
        )
    ],
    "has_more": False,
    "next_page": None,
}
ANTHROPIC_USAGE = {
    "data": [
        anthropic_bucket(
            DAY,
            [
                {
                    "uncached_input_tokens": 20_000,
                    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 20_000},
                    "cache_read_input_tokens": 60_000,
                    "output_tokens": 10_000,
                    "server_tool_use": {"web_search_requests": 0},
                    "api_key_id": None,
                    "workspace_id": "wrk_1",
                    "model": "claude-3-5-sonnet-20241022",
                    "service_tier": "standard",
                    "context_window": "0-200k",
                }
            ],
        )
    ],
    "has_more": False,
    "next_page": None,
}
INVOICE = (
    "invoice_id,provider,period_start,period_end,line_item,model,amount,currency\n"
    "INV-openai-2026-10,openai,2026-10-01,2026-10-31,gpt-4o-mini usage,gpt-4o-mini,0.56,USD\n"
)


def write_exports(project, *, invoice=INVOICE):
    folder = project.root / "inputs" / "billing"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "openai_costs.json").write_text(json.dumps(OPENAI_COSTS))
    (folder / "openai_usage.json").write_text(json.dumps(OPENAI_USAGE))
    (folder / "anthropic_cost_report.json").write_text(json.dumps(ANTHROPIC_COSTS))
    (folder / "anthropic_usage_report.json").write_text(json.dumps(ANTHROPIC_USAGE))
    (folder / "invoice.csv").write_text(invoice)
    return folder


def billing_config(project, **extra):
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [
                {"path": "inputs/billing/openai_costs.json", "format": "openai_costs"},
                {"path": "inputs/billing/anthropic_cost_report.json", "format": "anthropic_cost_report"},
                {"path": "inputs/billing/invoice*.csv", "format": "invoice_csv"},
            ],
            "provider_usage": [
                {"path": "inputs/billing/openai_usage.json", "format": "openai_usage"},
                {"path": "inputs/billing/anthropic_usage_report.json", "format": "anthropic_usage_report"},
            ],
        },
        reconciliation={"tolerance_pct": 0.02, "tolerance_usd": 0.01},
        **extra,
    )


@pytest.fixture
def reconciled(project):
    project.write_jsonl("logs.jsonl", LOGS)
    write_exports(project)
    billing_config(project)
    project.run_day(DAY)
    project.run_day("2026-10-31")  # the monthly invoice lands on its period's last day
    return project


# --- readers: units and token semantics ----------------------------------------------------------


def test_anthropic_cost_report_amounts_are_cents(tmp_path):
    path = tmp_path / "cost_report.json"
    path.write_text(json.dumps(ANTHROPIC_COSTS))
    parsed = read_exports([(path, "anthropic_cost_report")], {})
    assert sorted(line["billed_usd"] for line in parsed.cost_lines) == [D("0.018"), D("0.06"), D("0.075"), D("0.165")]
    assert {line["token_type"] for line in parsed.cost_lines} == {"input", "cached_input", "cache_write", "output"}


def test_anthropic_usage_input_excludes_cache_and_is_normalised_to_include_it(tmp_path):
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(ANTHROPIC_USAGE))
    (line,) = read_exports([(path, "anthropic_usage_report")], {}).usage_lines
    # uncached 20,000 + cache reads 60,000 + cache writes 20,000
    assert (line["input_tokens"], line["cached_input_tokens"], line["cache_creation_input_tokens"]) == (
        100_000,
        60_000,
        20_000,
    )


def test_openai_usage_input_already_includes_cached_tokens(tmp_path):
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(OPENAI_USAGE))
    (line,) = read_exports([(path, "openai_usage")], {}).usage_lines
    assert (line["input_tokens"], line["cached_input_tokens"], line["requests"]) == (3_000_000, 1_000_000, 2)


def test_openai_line_items_split_into_model_and_token_kind(tmp_path):
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(OPENAI_COSTS))
    parsed = read_exports([(path, "openai_costs")], {})
    kinds = {(line["model"], line["token_type"], line["cost_type"]): line["billed_usd"] for line in parsed.cost_lines}
    assert kinds == {
        ("gpt-4o-mini-2024-07-18", "input", "tokens"): D("0.3"),
        ("gpt-4o-mini-2024-07-18", "cached_input", "tokens"): D("0.075"),
        ("gpt-4o-mini-2024-07-18", "output", "tokens"): D("0.18"),
        (None, None, "other"): D("42"),
    }
    # The empty bucket still says the day was covered (billed zero).
    assert parsed.covered_days == {("openai", dt.date(2026, 10, 19)), ("openai", dt.date(2026, 10, 20))}


def test_ragged_rows_missing_fields_and_empty_buckets_are_quarantined_not_fatal(tmp_path):
    costs = openai_page(
        [
            openai_bucket(START, [openai_cost(1.0, "gpt-4o, input"), {"object": "organization.costs.result"}, "junk"]),
            {"object": "bucket", "start_time": "yesterday", "results": []},
            openai_bucket(START + 86400, None),  # results: null, an empty day
        ]
    )
    (tmp_path / "costs.json").write_text(json.dumps(costs))
    parsed = Parsed()
    read_openai_costs(tmp_path / "costs.json", {}, parsed)
    assert len(parsed.cost_lines) == 1
    assert sorted(row["reason"] for row in parsed.quarantine) == [
        "bad_start_time",
        "missing_amount",
        "result_not_an_object",
    ]
    (tmp_path / "invoice.csv").write_text(
        INVOICE + "INV-2,openai,2026-10-01,2026-10-31,extra,,1.00,USD,surprise\n"
        "INV-3,openai,2026-10-31,2026-10-01,backwards,,1.00,USD\n"
        "INV-4,openai,2026-10-01,2026-10-31,x,,,USD\n"
    )
    parsed = Parsed()
    read_invoice_csv(tmp_path / "invoice.csv", {}, parsed)
    assert len(parsed.cost_lines) == 1
    assert [row["reason"] for row in parsed.quarantine] == [
        "ragged_row:9_fields_for_8_columns",
        "period_end_before_start",
        "missing_amount",
    ]
    assert [row["record_ref"] for row in parsed.quarantine] == ["row 3", "row 4", "row 5"]


def test_non_usd_without_a_rate_names_the_file_and_row(tmp_path):
    path = tmp_path / "invoice_eur.csv"
    path.write_text(INVOICE.replace(",USD", ",EUR"))
    with pytest.raises(CurrencyError) as raised:
        read_exports([(path, "invoice_csv")], {})
    assert str(path) in str(raised.value) and "row 2" in str(raised.value) and "currency_rates" in str(raised.value)
    (line,) = read_exports([(path, "invoice_csv")], {"EUR": 1.08}).cost_lines
    assert line["billed_usd"] == D("0.56") * D("1.08") and line["currency"] == "EUR"


def test_non_usd_export_fails_the_run_with_the_fix(project):
    project.write_jsonl("logs.jsonl", LOGS)
    write_exports(project, invoice=INVOICE.replace(",USD", ",GBP"))
    billing_config(project)
    result = project.run_day(DAY, raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.event_specific_data.error.to_string()
    assert "invoice.csv row 2" in message and "currency_rates: {GBP:" in message


# --- reconciliation -----------------------------------------------------------------------------


def test_each_reconciliation_status_with_hand_worked_numbers(reconciled):
    rows = {
        (r["granularity"], r["provider"], r["line_key"]): r
        for r in reconciled.query_dicts("select * from fct_invoice_reconciliation")
    }
    mini = rows[("day", "openai", "gpt-4o-mini")]
    assert (mini["estimated_usd"], mini["billed_usd"], mini["status"]) == (D("0.555"), D("0.555"), "matched")
    sonnet = rows[("day", "anthropic", "claude-3-5-sonnet")]
    assert (sonnet["estimated_usd"], sonnet["billed_usd"], sonnet["variance_usd"]) == (
        D("0.303"),
        D("0.318"),
        D("0.015"),
    )
    assert sonnet["status"] == "over"  # 0.015 > max(0.01, 2% of 0.318 = 0.00636)
    assert sonnet["variance_pct"] == pytest.approx(0.015 / 0.303)
    fine_tuning = rows[("day", "openai", "fine-tuning training, gpt-4o-mini-2024-07-18")]
    assert (fine_tuning["billed_usd"], fine_tuning["status"]) == (D("42"), "billed_without_logs")
    haiku = rows[("day", "anthropic", "claude-3-5-haiku")]
    assert (haiku["estimated_usd"], haiku["billed_usd"], haiku["status"]) == (
        D("0.012"),
        D("0"),
        "logs_without_billing",
    )
    invoice = rows[("period", "openai", "gpt-4o-mini")]
    # October invoice 0.56 vs the month's estimate 0.555: 0.005 <= max(0.01, 0.0112)
    assert (invoice["period_start"], invoice["period_end"]) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert (invoice["estimated_usd"], invoice["billed_usd"], invoice["status"]) == (D("0.555"), D("0.56"), "matched")
    assert len(rows) == 5


def test_under_status(project):
    project.write_jsonl("logs.jsonl", LOGS)
    folder = write_exports(project)
    cheaper = json.loads(json.dumps(ANTHROPIC_COSTS))
    cheaper["data"][0]["results"][3]["amount"] = "10.0"  # output billed $0.10 instead of $0.15
    (folder / "anthropic_cost_report.json").write_text(json.dumps(cheaper))
    billing_config(project)
    project.run_day(DAY)
    ((status, variance),) = project.query(
        "select status, variance_usd from fct_invoice_reconciliation where line_key = 'claude-3-5-sonnet'"
    )
    assert (status, variance) == ("under", D("-0.05"))  # 0.253 billed - 0.303 estimated


def test_token_reconciliation_matches_when_semantics_agree(reconciled):
    findings = dict(reconciled.query("select model_family, finding from fct_token_reconciliation"))
    assert findings == {
        "gpt-4o-mini": "matched",
        "claude-3-5-sonnet": "matched",
        "claude-3-5-haiku": "logs_without_usage",
    }


def test_token_reconciliation_finds_double_counted_cache_and_lost_logs(project):
    double_counted = {**LOGS[2], "input_tokens": 160_000}  # 100,000 true + the 60,000 cache reads again
    lost = [LOGS[0]]  # call B never reached the logs
    project.write_jsonl("logs.jsonl", [*lost, double_counted, LOGS[3]])
    write_exports(project)
    billing_config(project)
    project.run_day(DAY)
    rows = {r["model_family"]: r for r in project.query_dicts("select * from fct_token_reconciliation")}
    assert rows["claude-3-5-sonnet"]["finding"] == "cached_tokens_double_counted"
    assert rows["claude-3-5-sonnet"]["input_tokens_diff"] == 60_000
    assert rows["gpt-4o-mini"]["finding"] == "logs_missing_calls"
    assert rows["gpt-4o-mini"]["missing_share"] == pytest.approx(200_000 / 300_000)  # B's output tokens


# --- allocation ---------------------------------------------------------------------------------


def test_allocation_sums_to_the_bill_exactly(reconciled):
    rows = reconciled.query_dicts("select * from fct_allocated_spend_daily order by provider, feature, user_id")
    openai = {(r["feature"], r["user_id"]): r for r in rows if r["provider"] == "openai"}
    # Bill: 0.555 (gpt-4o-mini tokens) + 42.00 (fine-tuning) = 42.555. The tokens split by the
    # estimate: A 0.21 / 0.555, B 0.345 / 0.555 of $0.555; fine-tuning stays unallocated.
    assert openai[("chat", "u1")]["allocated_usd"] == D("0.21")
    assert openai[("search", "u2")]["allocated_usd"] == D("0.345")
    assert openai[("unallocated", "unallocated")]["allocated_usd"] == D("42.00")
    assert openai[("unallocated", "unallocated")]["allocation_basis"] == "not_token_usage"
    assert sum(r["allocated_usd"] for r in openai.values()) == D("42.555")
    anthropic = {(r["feature"], r["user_id"]): r for r in rows if r["provider"] == "anthropic"}
    # Bill $0.318, all to sonnet's one caller; haiku was not billed.
    assert anthropic[("chat", "u1")]["allocated_usd"] == D("0.318")
    assert (anthropic[("summarise", "u3")]["allocated_usd"], anthropic[("summarise", "u3")]["allocation_basis"]) == (
        D("0"),
        "no_bill",
    )


def test_billed_spend_on_a_day_with_no_logs_is_allocated_as_unallocated(project):
    project.write_jsonl("logs.jsonl", [request("other-day", "2026-10-22T10:00:00Z", "gpt-4o-mini")])
    write_exports(project)
    billing_config(project)
    result = project.run_day(DAY)
    rows = project.query_dicts("select * from fct_allocated_spend_daily where provider = 'openai'")
    assert {(r["feature"], r["model"], r["allocation_basis"]): r["allocated_usd"] for r in rows} == {
        ("unallocated", "gpt-4o-mini", "no_gateway_traffic"): D("0.555"),
        ("unallocated", "fine-tuning training, gpt-4o-mini-2024-07-18", "not_token_usage"): D("42.00"),
    }
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["allocation_equals_bill"].passed


def test_reconciliation_checks_warn_and_report_per_provider(reconciled):
    result = reconciled.run_day(DAY)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    within = checks["reconciliation_within_tolerance"]
    assert within.passed is False  # the sonnet line is over, haiku unbilled, fine-tuning without logs
    assert within.metadata["unexpected_rows"].value == 3
    assert checks["allocation_equals_bill"].passed
    materialization = result.asset_materializations_for_node("fct_invoice_reconciliation")[0]
    # Per provider over the one-day rows (a monthly invoice would count the same money twice).
    assert materialization.metadata["billed_usd_by_provider"].value == {"anthropic": 0.318, "openai": 42.555}


def test_a_steady_billed_to_estimated_ratio_is_a_stale_price(project):
    days = [f"2026-10-{d}" for d in range(20, 25)]
    logs, cost_buckets, usage_buckets = [], [], []
    for index, day in enumerate(days):
        start = int(dt.datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp())
        # One call a day: 1,000,000 in + 100,000 out of gpt-4o-mini = $0.21 at the catalog price.
        logs.append(
            request(
                f"r{index}",
                f"{day}T10:00:00Z",
                "gpt-4o-mini",
                provider="openai",
                input_tokens=1_000_000,
                output_tokens=100_000,
            )
        )
        factor = D("1") if index < 2 else D("1.25")  # the provider raised the price on the 22nd
        cost_buckets.append(
            openai_bucket(
                start,
                [
                    openai_cost(str(D("0.15") * factor), "gpt-4o-mini, input"),
                    openai_cost(str(D("0.06") * factor), "gpt-4o-mini, output"),
                ],
            )
        )
        usage_buckets.append(
            openai_bucket(
                start,
                [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 1_000_000,
                        "output_tokens": 100_000,
                        "input_cached_tokens": 0,
                        "num_model_requests": 1,
                        "project_id": None,
                        "model": "gpt-4o-mini",
                        "batch": False,
                    }
                ],
            )
        )
    project.write_jsonl("logs.jsonl", logs)
    folder = project.root / "inputs" / "billing"
    folder.mkdir(parents=True)
    (folder / "openai_costs.json").write_text(json.dumps(openai_page(cost_buckets)))
    (folder / "openai_usage.json").write_text(json.dumps(openai_page(usage_buckets)))
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/billing/openai_costs.json", "format": "openai_costs"}],
            "provider_usage": [{"path": "inputs/billing/openai_usage.json", "format": "openai_usage"}],
        },
        reconciliation={"tolerance_usd": 0.01},
    )
    for day in days:
        project.run_day(day)
    (finding,) = project.query_dicts("select * from fct_price_findings")
    assert (finding["model_family"], finding["finding"]) == ("gpt-4o-mini", "stale_price")
    assert (finding["first_day"], finding["last_day"], finding["days"]) == (
        dt.date(2026, 10, 22),
        dt.date(2026, 10, 24),
        3,
    )
    assert finding["billed_to_estimated_ratio"] == pytest.approx(1.25)
    assert finding["billed_usd"] == 3 * D("0.2625") and finding["estimated_usd"] == 3 * D("0.21")
    assert "effective_from: 2026-10-22" in finding["recommendation"]
    statuses = dict(project.query("select day, status from fct_invoice_reconciliation"))
    assert [statuses[dt.date.fromisoformat(day)] for day in days] == ["matched", "matched", "over", "over", "over"]


def test_largest_remainder_hands_out_the_micro_dollars_rounding_lost(project):
    """Three equal callers share a $1.000001 bill: each is owed 0.333333666...; rounded down they
    get 999,999 micro-dollars, and the 2 left over go to the first two (by feature name)."""
    project.write_jsonl(
        "logs.jsonl",
        [
            request(
                f"r{index}",
                f"{DAY}T1{index}:00:00Z",
                "gpt-4o-mini",
                provider="openai",
                feature=f"f{index}",
                user_id="u",
                input_tokens=1_000_000,
                output_tokens=0,
            )
            for index in range(3)
        ],
    )
    folder = project.root / "inputs" / "billing"
    folder.mkdir(parents=True)
    (folder / "openai_costs.json").write_text(
        json.dumps(openai_page([openai_bucket(START, [openai_cost("1.000001", "gpt-4o-mini, input")])]))
    )
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/billing/openai_costs.json", "format": "openai_costs"}],
        }
    )
    project.run_day(DAY)
    allocated = dict(project.query("select feature, allocated_usd from fct_allocated_spend_daily order by feature"))
    assert allocated == {"f0": D("0.333334"), "f1": D("0.333334"), "f2": D("0.333333")}
    assert sum(allocated.values()) == D("1.000001")
