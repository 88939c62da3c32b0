"""Provider exports, reconciliation and allocation, on a day small enough to work on paper.

Prices (catalog, USD per token): gpt-4o-mini in 1.5e-7, cached 7.5e-8, out 6e-7;
claude-3-5-sonnet-20241022 in 3e-6, read 3e-7, write 3.75e-6, out 1.5e-5;
claude-3-5-haiku-20241022 in 8e-7, out 4e-6.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from conftest import open_project, request

from pipelines.sources.billing.common import Parsed
from pipelines.sources.billing.day import read_exports
from pipelines.sources.billing.invoice_csv import read_invoice_csv
from pipelines.sources.billing.openai_costs import LineItem, parse_line_item, read_openai_costs
from pipelines.sources.quarantine import CurrencyError

DAY = "2026-10-20"
DOCUMENTED = Path(__file__).parents[1] / "fixtures" / "billing"  # the providers' own examples, see SOURCE.md
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


def _reconcile(project):
    project.write_jsonl("logs.jsonl", LOGS)
    write_exports(project)
    billing_config(project)
    project.run_day(DAY)
    project.run_day("2026-10-31")  # the monthly invoice lands on its period's last day
    return project


@pytest.fixture
def reconciled(project):
    """For a test that runs more days on it."""
    return _reconcile(project)


@pytest.fixture(scope="module")
def reconciled_once(tmp_path_factory):
    """The same, built once for the tests that only read it."""
    with open_project(tmp_path_factory.mktemp("reconciled")) as project:
        yield _reconcile(project)


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


# --- the providers' documented examples and the OpenAI line-item grammar ---------------------------


def test_openai_costs_documented_example_is_the_days_total(tmp_path):
    parsed = read_exports([(DOCUMENTED / "openai_costs_api_reference.json", "openai_costs")], {})
    (line,) = parsed.cost_lines
    assert (line["line_item"], line["cost_type"], line["model"], line["billed_usd"]) == (
        "total",
        "tokens",
        None,
        D("0.06"),
    )
    assert (line["service_tier"], line["long_context"], line["quantity"]) == (None, None, None)
    assert parsed.covered_days == {("openai", dt.date(2024, 11, 1))}  # start_time 1730419200


def test_openai_costs_documented_result_object_keeps_its_quantity(tmp_path):
    result = json.loads((DOCUMENTED / "openai_costs_result_object.json").read_text())
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(openai_page([openai_bucket(START, [result])])))
    (line,) = read_exports([(path, "openai_costs")], {}).cost_lines
    # "Image models" is no token line of the grammar: another charge, kept with its text and quantity.
    assert (line["line_item"], line["cost_type"], line["model"], line["project"]) == (
        "Image models",
        "other",
        None,
        "proj_abc",
    )
    assert (line["billed_usd"], line["quantity"]) == (D("0.06"), D("10000"))


def _line(model, token_type, *, modality=None, tier="standard", long_context=False):
    return LineItem("tokens", model, token_type, modality, tier, long_context)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The plain forms, in every reader of the Costs API (e.g. the README's own examples).
        ("gpt-4o-mini-2024-07-18, input", _line("gpt-4o-mini-2024-07-18", "input")),
        ("gpt-4o-mini-2024-07-18, cached input", _line("gpt-4o-mini-2024-07-18", "cached_input")),
        ("gpt-4.1-2025-04-14, output", _line("gpt-4.1-2025-04-14", "output")),
        # Cache writes, priced apart from reads (issue 11; "gpt-5.6-terra, cache writes" in real exports).
        ("gpt-5.6-terra, cache writes", _line("gpt-5.6-terra", "cache_write")),
        # A modality after the model: "gpt-audio-mini-2025-12-15 audio, input", "gpt-image-1 image, output",
        # "gpt-image-2-2026-04-21 text, input" are quoted from real exports in public readers.
        ("gpt-audio-mini-2025-12-15 audio, input", _line("gpt-audio-mini-2025-12-15", "input", modality="audio")),
        ("gpt-4o-audio-preview audio, cached input", _line("gpt-4o-audio-preview", "cached_input", modality="audio")),
        ("gpt-image-1 image, output", _line("gpt-image-1", "output", modality="image")),
        ("gpt-image-2-2026-04-21 text, input", _line("gpt-image-2-2026-04-21", "input", modality="text")),
        # A tier prefix and the long-context suffix: "priority | gpt-5.6-sol, output, long context"
        # and "flex | gpt-5-mini" rows are quoted from real exports; batch by the same grammar.
        (
            "priority | gpt-5.6-sol, output, long context",
            _line("gpt-5.6-sol", "output", tier="priority", long_context=True),
        ),
        ("gpt-5.4-2026-03-05, input, long context", _line("gpt-5.4-2026-03-05", "input", long_context=True)),
        ("flex | gpt-5-mini, cached input", _line("gpt-5-mini", "cached_input", tier="flex")),
        ("batch | gpt-4o-2024-08-06, output", _line("gpt-4o-2024-08-06", "output", tier="batch")),
        # Not token usage: other charges, kept with their text.
        ("fine-tuning training, gpt-4o-mini-2024-07-18", LineItem("other")),
        ("web search tool calls", LineItem("other")),
        ("whisper", LineItem("other")),
        ("Image models", LineItem("other")),
        # Looks like token usage but is not the grammar: kept and reported, never guessed.
        ("scale | gpt-4o, input", LineItem("unrecognised")),
        ("gpt-4o, reasoning output", LineItem("unrecognised")),
        ("gpt-4o, input, long contxt", LineItem("unrecognised")),
        # Not grouped by line item: the day's total of token usage.
        (None, LineItem("tokens")),
    ],
)
def test_openai_line_item_grammar(text, expected):
    assert parse_line_item(text) == expected


def test_an_unrecognised_line_item_is_kept_with_its_money_and_listed_by_the_lake_gate(project):
    project.write_jsonl("logs.jsonl", LOGS[:1])
    folder = project.root / "inputs" / "billing"
    folder.mkdir(parents=True)
    costs = openai_page(
        [
            openai_bucket(
                START,
                [
                    {**openai_cost(0.15, "gpt-4o-mini-2024-07-18, input"), "quantity": 1_000_000.0},
                    openai_cost(0.06, "gpt-4o-mini-2024-07-18, output"),
                    openai_cost("0.5", "scale | gpt-4o-mini-2024-07-18, input"),
                ],
            )
        ]
    )
    (folder / "openai_costs.json").write_text(json.dumps(costs))
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/billing/openai_costs.json", "format": "openai_costs"}],
        }
    )
    result = project.run_day(DAY)
    lines = {r["line_item"]: r for r in project.query_dicts("select * from stg_provider_costs")}
    assert lines["scale | gpt-4o-mini-2024-07-18, input"]["cost_type"] == "unrecognised"
    assert lines["scale | gpt-4o-mini-2024-07-18, input"]["billed_usd"] == D("0.5")
    assert lines["gpt-4o-mini-2024-07-18, input"]["quantity"] == D("1000000")
    assert project.query("select count(*) from provider_quarantine") == [(0,)]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    gate = checks["line_items_recognised"]
    assert gate.passed is False
    assert gate.metadata["unrecognised_line_items"].value == ["scale | gpt-4o-mini-2024-07-18, input"]
    # The 0.5 is billed under its own text; the model's tokens still match its logs (A: $0.21).
    rows = {r["line_key"]: r for r in project.query_dicts("select * from fct_invoice_reconciliation")}
    assert (rows["gpt-4o-mini"]["billed_usd"], rows["gpt-4o-mini"]["status"]) == (D("0.21"), "matched")
    assert (
        rows["scale | gpt-4o-mini-2024-07-18, input"]["billed_usd"],
        rows["scale | gpt-4o-mini-2024-07-18, input"]["status"],
    ) == (D("0.5"), "billed_without_logs")


def test_openai_usage_documented_example_counts_cache_writes_and_audio(tmp_path):
    (line,) = read_exports(
        [(DOCUMENTED / "openai_usage_completions_api_reference.json", "openai_usage")], {}
    ).usage_lines
    # input 1,000 = 400 cached reads + 100 cache writes + 500 uncached (the example's own split);
    # audio in = 50 uncached + 50 cached; audio out 50 of the 500 output tokens.
    assert (line["input_tokens"], line["cached_input_tokens"], line["cache_creation_input_tokens"]) == (1000, 400, 100)
    assert (line["audio_input_tokens"], line["audio_output_tokens"], line["output_tokens"]) == (100, 50, 500)
    assert (line["requests"], line["batch"], line["service_tier"], line["model"]) == (5, False, None, None)


@pytest.mark.parametrize(
    ("grouping", "tier"),
    [
        ({"service_tier": "default"}, "standard"),
        ({"service_tier": "priority"}, "priority"),
        ({"service_tier": "flex"}, "flex"),
        ({"batch": True}, "batch"),  # grouped by batch only: the Batch API's tier
        ({"batch": False}, None),
        ({"service_tier": "scale"}, "scale"),  # a word not known is kept, not folded into standard
    ],
)
def test_openai_usage_service_tier(tmp_path, grouping, tier):
    result = {"object": "organization.usage.completions.result", "input_tokens": 10, "output_tokens": 1, **grouping}
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(openai_page([openai_bucket(START, [result])])))
    (line,) = read_exports([(path, "openai_usage")], {}).usage_lines
    assert line["service_tier"] == tier


def test_openai_usage_cache_writes_beyond_the_input_are_quarantined(tmp_path):
    result = {
        "object": "organization.usage.completions.result",
        "input_tokens": 100,
        "input_cached_tokens": 60,
        "input_cache_write_tokens": 50,  # 60 + 50 > 100: input_tokens includes both
        "output_tokens": 1,
    }
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(openai_page([openai_bucket(START, [result])])))
    parsed = read_exports([(path, "openai_usage")], {})
    assert parsed.usage_lines == [] and [row["reason"] for row in parsed.quarantine] == ["cache_writes_exceed_input"]


def test_anthropic_cost_report_documented_example_carries_tier_and_context_window():
    (line,) = read_exports(
        [(DOCUMENTED / "anthropic_cost_report_api_reference.json", "anthropic_cost_report")], {}
    ).cost_lines
    # "123.78912" cents = $1.2378912
    assert (line["billed_usd"], line["token_type"], line["model"]) == (
        D("1.2378912"),
        "input",
        "claude-sonnet-4-20250514",
    )
    assert (line["service_tier"], line["context_window"], line["long_context"]) == ("standard", "0-200k", False)
    assert line["line_item"] == "Claude Sonnet 4 Usage - Input Tokens"


def test_anthropic_cost_report_long_context_batch_and_1h_writes(tmp_path):
    report = {
        "data": [
            anthropic_bucket(
                DAY,
                [
                    {**anthropic_cost("12.5", "cache_creation.ephemeral_1h_input_tokens"), "context_window": "200k-1M",
                     "service_tier": "batch"},
                    {**anthropic_cost("3", "output_tokens"), "context_window": None, "service_tier": None},
                    {**anthropic_cost("1", "output_tokens"), "context_window": "1M-2M"},
                ],
            )
        ]
    }  # fmt: skip
    path = tmp_path / "cost_report.json"
    path.write_text(json.dumps(report))
    parsed = read_exports([(path, "anthropic_cost_report")], {})
    long_batch, ungrouped = parsed.cost_lines
    assert (long_batch["token_type"], long_batch["service_tier"], long_batch["long_context"]) == (
        "cache_write",
        "batch",
        True,
    )
    assert long_batch["billed_usd"] == D("0.125")
    assert (ungrouped["service_tier"], ungrouped["long_context"]) == (None, None)
    # A window not known: which rate it was billed at cannot be told, so it is not guessed.
    assert [row["reason"] for row in parsed.quarantine] == ["unknown_context_window"]


def test_anthropic_usage_documented_example_carries_1h_writes_web_search_tier_and_window():
    (line,) = read_exports(
        [(DOCUMENTED / "anthropic_usage_report_api_reference.json", "anthropic_usage_report")], {}
    ).usage_lines
    # input = 1,500 uncached + 200 cache reads + 500 (5-minute) + 1,000 (1-hour) cache writes
    assert (line["input_tokens"], line["cached_input_tokens"], line["cache_creation_input_tokens"]) == (3200, 200, 1500)
    assert (line["cache_creation_1h_input_tokens"], line["output_tokens"], line["web_search_requests"]) == (
        1000,
        500,
        10,
    )
    assert (line["service_tier"], line["context_window"], line["long_context"], line["batch"]) == (
        "standard",
        "0-200k",
        False,
        False,
    )


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


def test_each_reconciliation_status_with_hand_worked_numbers(reconciled_once):
    rows = {
        (r["granularity"], r["provider"], r["line_key"]): r
        for r in reconciled_once.query_dicts("select * from fct_invoice_reconciliation")
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
    assert sonnet["variance_ratio"] == pytest.approx(0.015 / 0.303)
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


def test_batch_and_standard_bills_reconcile_apart(project):
    """OpenAI names the tier in its line items, so a Batch API bill is matched against the batch
    calls alone. Batch prices are OpenAI's published ones for gpt-4o-mini ($0.075 / $0.30 per
    million in / out, half the standard $0.15 / $0.60), as the catalog has them."""
    batch_call = request(
        "E",
        f"{DAY}T13:00:00Z",
        "gpt-4o-mini",
        provider="openai",
        service_tier="batch",
        input_tokens=2_000_000,  # 2,000,000 x 7.5e-8 = 0.15
        output_tokens=200_000,  # 200,000 x 3e-7 = 0.06 -> $0.21
    )
    project.write_jsonl("logs.jsonl", [LOGS[0], batch_call])  # A: standard, $0.21
    folder = project.root / "inputs" / "billing"
    folder.mkdir(parents=True)
    costs = openai_page(
        [
            openai_bucket(
                START,
                [
                    openai_cost(0.15, "gpt-4o-mini-2024-07-18, input"),
                    openai_cost(0.06, "gpt-4o-mini-2024-07-18, output"),
                    # The batch calls billed at the standard rate: $0.30 + $0.12 = $0.42.
                    openai_cost(0.30, "batch | gpt-4o-mini-2024-07-18, input"),
                    openai_cost(0.12, "batch | gpt-4o-mini-2024-07-18, output"),
                ],
            )
        ]
    )
    (folder / "openai_costs.json").write_text(json.dumps(costs))
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/billing/openai_costs.json", "format": "openai_costs"}],
        },
        reconciliation={"tolerance_pct": 0.02, "tolerance_usd": 0.01},
    )
    project.run_day(DAY)
    rows = {
        (r["service_tier"], r["long_context"]): r
        for r in project.query_dicts("select * from fct_invoice_reconciliation where line_key = 'gpt-4o-mini'")
    }
    assert set(rows) == {("standard", False), ("batch", False)}
    standard, batch = rows[("standard", False)], rows[("batch", False)]
    assert (standard["estimated_usd"], standard["billed_usd"], standard["status"]) == (D("0.21"), D("0.21"), "matched")
    # The whole overcharge is on the batch row; added up, the standard line would have shared it.
    assert (batch["estimated_usd"], batch["billed_usd"], batch["variance_usd"]) == (D("0.21"), D("0.42"), D("0.21"))
    assert (batch["logged_requests"], batch["status"]) == (1, "over")


def test_token_reconciliation_matches_when_semantics_agree(reconciled_once):
    findings = dict(reconciled_once.query("select model_family, finding from fct_token_reconciliation"))
    assert findings == {
        "gpt-4o-mini": "matched",
        "claude-3-5-sonnet": "matched",
        "claude-3-5-haiku": "logs_without_usage",
    }
    # Cache writes side by side: C wrote 20,000 tokens; the usage report's 5-minute writes say so too.
    writes = reconciled_once.query(
        "select gateway_cache_creation_input_tokens, provider_cache_creation_input_tokens"
        " from fct_token_reconciliation where model_family = 'claude-3-5-sonnet'"
    )
    assert writes == [(20_000, 20_000)]


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


def test_allocation_sums_to_the_bill_exactly(reconciled_once):
    rows = reconciled_once.query_dicts("select * from fct_allocated_spend_daily order by provider, feature, user_id")
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
    # What to act on, in dollars, the latest lines first.
    latest = within.metadata["latest_lines_off"].value
    assert len(latest) == 3 and all(line.startswith("2026-10-") and "billed $" in line for line in latest)
    assert any(
        "fine-tuning" in line and "billed $42.00, estimated $0.00, off +$42.00 (billed_without_logs)" in line
        for line in latest
    )
    assert checks["allocation_equals_bill"].passed
    materialization = result.asset_materializations_for_node("fct_invoice_reconciliation")[0]
    # Per provider over the one-day rows (a monthly invoice would count the same money twice).
    assert materialization.metadata["billed_usd_by_provider"].value == {"anthropic": 0.318, "openai": 42.555}


def test_a_later_run_is_not_failed_by_old_lines_off(reconciled):
    """The lines off on 10-20 failed that day's check; a run of a day no bill period covers judges
    no line, instead of failing again on October's."""
    result = reconciled.run_day("2026-11-02")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["reconciliation_within_tolerance"].passed
    assert reconciled.query("select count(*) from fct_invoice_reconciliation where status <> 'matched'")[0][0] >= 3


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
    project.run_days(days[0], days[-1])
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
