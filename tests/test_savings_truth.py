"""Planted savings (pipelines/demo/savings.py, `costwatch generate --savings`): 30 days of a team's
traffic in which each lever of the savings spec has a dollar truth worked by the generator in Decimal
from the calls and the catalog, run through the whole daily pipeline. Every planted finding must come
out with its dollars to 1e-6, and nothing else may be flagged at or above savings.min_monthly_usd:
the negative controls (an instruction block below every cache minimum, a job already on a self-hosted
batch pool, short self-hosted calls, healthy caching) raise nothing.

Prompt caching's truth is a simulation, so this test runs its own: a plain Python loop over the
generated records (read back with `json`) that follows the spec's cache policy simulation v1 step by
step, with claude-sonnet-4-5's prices written out below by hand.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal as D

import pytest
from conftest import open_project
from test_pricing import CURRENT_CATALOG
from test_savings import LEVERS_PER_CALL, kit_cells, merge_kits

from pipelines.demo.savings import CatalogPrices, generate_savings

pytestmark = pytest.mark.slow(seconds=120)

START = dt.date(2026, 10, 1)
DAYS = 30
END = START + dt.timedelta(days=DAYS - 1)
MIN_MONTHLY_USD = 1  # low, so that a false finding of a dollar a month shows

# claude-sonnet-4-5 (current catalog), USD per token: input, cache read, 5-minute and 1-hour cache
# writes, output. Anthropic's minimum cacheable prefix for Sonnet 4.5 is 1,024 tokens.
SONNET_IN, SONNET_READ, SONNET_WRITE_5M, SONNET_WRITE_1H, SONNET_OUT = (
    D("3e-6"),
    D("3e-7"),
    D("3.75e-6"),
    D("6e-6"),
    D("1.5e-5"),
)
SONNET_MIN_PREFIX = 1_024


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    with open_project(tmp_path_factory.mktemp("planted")) as project:
        manifest = generate_savings(project.root / "inputs", start_date=START, days=DAYS)
        pools = {
            name: settings | {"load_test": f"inputs/{settings['load_test']}"}
            for name, settings in manifest["pools"].items()
        }
        project.write_config(
            start_date=START.isoformat(),
            sources={
                "gateway_logs": [{"path": "inputs/gateway/*.jsonl.gz", "format": "canonical"}],
                "gpu_billing": [{"path": "inputs/gpu_billing/gpu_hours_*.csv", "format": "gpu_hours_csv"}],
            },
            pools=pools,
            prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"},
            savings={
                "routes": manifest["routes"],
                "service_accounts": manifest["service_accounts"],
                "min_monthly_usd": MIN_MONTHLY_USD,
                "selfhost_candidates": {
                    model: candidate | {"load_test": f"inputs/{candidate['load_test']}"}
                    for model, candidate in manifest["selfhost_candidates"].items()
                },
            },
        )
        project.run_days(START.isoformat(), END.isoformat())
        findings = project.query_dicts("select * from fct_savings_opportunities where day = $day", {"day": END})
        yield project, manifest, findings


def _key(row: dict) -> tuple:
    return (row["kind"], row["feature"], row["provider"], row["model"], row["target"])


def _records(project, manifest: dict) -> list[dict]:
    records = []
    for entry in manifest["files"]:
        if not entry["path"].startswith("gateway/"):
            continue
        with gzip.open(project.root / "inputs" / entry["path"], "rt", encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle)
    return records


def _ms(ts: str) -> int:
    at = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return int(at.timestamp() * 1000)


def reference_cache_simulation(records: list[dict], ttl_s: int, write_price: D) -> dict[dt.date, D]:
    """Cache policy simulation v1, one call at a time, for calls that cache nothing today (as
    support_bot): per day, actual cost - counterfactual cost."""
    last_touch: dict[str, int] = {}
    savings: dict[dt.date, D] = {}
    for record in sorted(records, key=lambda r: (_ms(r["ts"]), r["request_id"])):
        at = _ms(record["ts"])
        eligible = [(tokens, prefix) for tokens, prefix in record["prefix_hashes"] if tokens >= SONNET_MIN_PREFIX]
        alive = [
            tokens for tokens, prefix in eligible if prefix in last_touch and at - last_touch[prefix] <= ttl_s * 1000
        ]
        reads = max(alive, default=0)  # Anthropic reads any length: no rounding
        writes = max((tokens for tokens, _ in eligible), default=0) - reads
        prompt, answer = record["input_tokens"], record["output_tokens"]
        actual = prompt * SONNET_IN + answer * SONNET_OUT
        counterfactual = (
            (prompt - reads - writes) * SONNET_IN + reads * SONNET_READ + writes * write_price + answer * SONNET_OUT
        )
        day = dt.date.fromisoformat(record["ts"][:10])
        savings[day] = savings.get(day, D(0)) + actual - counterfactual
        for _, prefix in eligible:  # every eligible checkpoint is written or refreshed
            last_touch[prefix] = at
    return savings


def test_every_planted_finding_comes_out_with_its_dollars(planted):
    _, manifest, findings = planted
    by_key = {_key(row): row for row in findings}
    priced = [event for event in manifest["savings_events"] if event["estimated_savings_usd"] is not None]
    assert len(priced) == 13
    for event in priced:
        key = (event["kind"], event["feature"], event["provider"], event["model"], event["target"])
        assert key in by_key, key
        row = by_key[key]
        assert abs(row["estimated_savings_usd"] - D(event["estimated_savings_usd"])) <= D("1e-6"), key
        assert (row["basis"], row["requests_affected"]) == (event["basis"], event["requests_affected"]), key
        assert row["period_start"].isoformat() == manifest["window"]["start"]
        if "evidence_level" in event:
            assert row["evidence_level"] == event["evidence_level"], key


def test_caching_not_enabled_saves_what_an_independent_simulation_says(planted):
    project, manifest, findings = planted
    support = [record for record in _records(project, manifest) if record["feature"] == "support_bot"]
    short = reference_cache_simulation(support, 300, SONNET_WRITE_5M)
    long = reference_cache_simulation(support, 3_600, SONNET_WRITE_1H)
    days = project.query_dicts(
        "select day, savings_usd_ttl_short, savings_usd_ttl_long, requests_with_prefix_hashes"
        " from fct_prompt_cache_opportunity_daily where feature = 'support_bot' order by day"
    )
    assert [row["day"] for row in days] == sorted(short)
    for row in days:
        assert row["savings_usd_ttl_short"] == short[row["day"]], row["day"]
        assert row["savings_usd_ttl_long"] == long[row["day"]], row["day"]
    window_start = dt.date.fromisoformat(manifest["window"]["start"])
    in_window = [day for day in short if day >= window_start]
    short_total, long_total = sum(short[day] for day in in_window), sum(long[day] for day in in_window)
    assert short_total > long_total > 0  # 0.5-4 minute gaps: the short lifetime keeps it warm for less
    (finding,) = [row for row in findings if row["kind"] == "prompt_cache" and row["feature"] == "support_bot"]
    assert (finding["target"], finding["basis"]) == ("ttl_short", "upper_bound")
    assert abs(finding["estimated_savings_usd"] - short_total) <= D("1e-6")
    support_in_window = [r for r in support if dt.date.fromisoformat(r["ts"][:10]) >= window_start]
    assert finding["requests_affected"] == len(support_in_window)


def test_nothing_else_is_flagged(planted):
    """At or above min_monthly_usd, the findings are the plants' and no others: none for the
    negative controls, and no lever fires on a feature it was not planted in."""
    _, manifest, findings = planted
    planted_keys = {
        (event["kind"], event["feature"], event["provider"], event["model"], event.get("target", ""))
        for event in manifest["savings_events"]
    }
    # The prompt-cache plant's target is the lifetime the simulation picks (asserted above).
    planted_keys = {key if key[0] != "prompt_cache" else key[:4] + ("ttl_short",) for key in planted_keys}
    flagged = {
        _key(row)
        for row in findings
        if row["monthly_savings_usd"] is not None and row["monthly_savings_usd"] >= MIN_MONTHLY_USD
    }
    assert flagged == planted_keys
    for control in manifest["negative_controls"]:
        raised = [
            _key(row)
            for row in findings
            if row["basis"] != "exposure"  # spend in scope, asserted below: not a suggestion
            and control.get("feature", row["feature"]) == row["feature"]
            and control.get("model", row["model"]) == row["model"]
            and ("*" in control["kinds"] or row["kind"] in control["kinds"])
        ]
        assert raised == [], control["why"]


def test_the_self_host_trigger_moves_the_steady_model_and_leaves_the_spiky_one(planted):
    """fct_selfhost_trigger as of the last day, against the generator's Decimal arithmetic of the
    spec's formula: the bands, the costs (ops prorated), the break-even volume and the verdicts."""
    project, manifest, _ = planted
    rows = {
        row["model"]: row
        for row in project.query_dicts("select * from fct_selfhost_trigger where day = $day", {"day": END})
    }
    assert set(rows) == set(manifest["selfhost_trigger"])
    for model, truth in manifest["selfhost_trigger"].items():
        row = rows[model]
        for column in ("candidate", "requests", "replicas_low", "replicas_high", "verdict"):
            assert row[column] == truth[column], (model, column)
        for column in ("api_cost_usd", "ops_usd", "selfhost_cost_low_usd", "selfhost_cost_high_usd"):
            assert abs(row[column] - D(truth[column])) <= D("1e-6"), (model, column)
        assert abs(row["break_even_tokens_per_month"] - int(truth["break_even_tokens_per_month"])) <= 1, model
    steady, spiky = rows["gpt-4.1-mini"], rows["gpt-4.1-nano"]
    assert (steady["weeks_above_trigger"], spiky["weeks_above_trigger"]) == (4, 0)
    assert steady["hourly_cv"] < 0.01 and spiky["hourly_cv"] > 1  # one call every 2 minutes; one minute a day


# The minimum cacheable prefix of each model the plants call, from the providers' docs (Anthropic:
# 4,096 tokens for Haiku 4.5, 1,024 for Sonnet 4.5; OpenAI 1,024; Gemini 2.5 Pro 4,096).
MIN_PREFIX = {
    "claude-haiku-4-5": 4_096,
    "claude-sonnet-4-5": 1_024,
    "gpt-4o": 1_024,
    "gpt-4o-mini": 1_024,
    "gpt-4.1": 1_024,
    "gpt-4.1-mini": 1_024,
    "gpt-4.1-nano": 1_024,
    "gemini-2.5-pro": 4_096,
}


def test_exposure_rows_state_the_spend_a_missing_signal_hides(planted):
    """Basis exposure, no estimate: per feature and model, the plain prompt spend of calls without
    prefix_hashes long enough to cache (prompt_cache / log_prefix_hashes), and summarise's calls
    cut by their cap (cap_output / finish_length), priced here from the records and the catalog."""
    project, manifest, findings = planted
    prices = CatalogPrices(CURRENT_CATALOG)
    start = dt.date.fromisoformat(manifest["window"]["start"])
    unhashed: dict[tuple, D] = {}
    cut = D(0)
    for record in _records(project, manifest):
        if record["provider"] == "self_hosted" or record["status"] != "ok" or record["ts"][:10] < start.isoformat():
            continue
        model, tier = record["model"], record.get("service_tier", "standard")
        if "prefix_hashes" not in record and record["input_tokens"] >= MIN_PREFIX[model]:
            plain = record["input_tokens"] - record["cached_input_tokens"] - record["cache_creation_input_tokens"]
            long_context = record["input_tokens"] > 200_000
            key = (record["feature"], model)
            unhashed[key] = unhashed.get(key, D(0)) + plain * prices.rate(
                model, "input_cost_per_token", tier, long_context
            )
        if record.get("finish_reason") == "length":
            cut += record["input_tokens"] * prices.rate(model, "input_cost_per_token") + record[
                "output_tokens"
            ] * prices.rate(model, "output_cost_per_token")
    exposure = {
        (row["kind"], row["feature"], row["model"], row["target"]): row
        for row in findings
        if row["basis"] == "exposure"
    }
    expected = {
        ("prompt_cache", feature, model, "log_prefix_hashes"): usd for (feature, model), usd in unhashed.items()
    }
    expected[("cap_output", "summarise", "gpt-4.1", "finish_length")] = cut
    assert set(exposure) == set(expected)
    for key, usd in expected.items():
        row = exposure[key]
        assert abs(row["spend_in_scope_usd"] - usd) <= D("1e-6"), key
        assert (row["estimated_savings_usd"], row["monthly_savings_usd"], row["confidence"]) == (None, None, "low")
    # None of them reached Slack's digest or alerts: they estimate nothing.
    digest = project.query_dicts("select savings_findings from fct_daily_digest where day = $day", {"day": END})[0]
    assert all(finding["basis"] != "exposure" for finding in digest["savings_findings"])


def test_the_eval_kit_of_the_right_size_finding_is_stratified_day_by_day(planted):
    """The eval kit of the planted right-size move, worked in Python from the generated records:
    each day's calls of the feature and model in prompt x answer deciles, 2 per cell by the
    smallest md5 of the id, then 2 per cell again across the window's days (at most 200)."""
    project, manifest, findings = planted
    (finding,) = [row for row in findings if row["kind"] == "right_size_model"]
    window = dt.date.fromisoformat(manifest["window"]["start"])
    days: dict[str, dict[str, tuple[int, int]]] = {}
    for record in _records(project, manifest):
        if (
            (record["feature"], record["model"]) == (finding["feature"], finding["model"])
            and record.get("status", "ok") == "ok"
            and not record.get("gateway_cache_hit")
            and dt.date.fromisoformat(record["ts"][:10]) >= window
        ):
            days.setdefault(record["ts"][:10], {})[record["request_id"]] = (
                record["input_tokens"],
                record["output_tokens"],
            )
    kit = merge_kits([kit_cells(calls) for calls in days.values()])
    calls = sum(len(calls) for calls in days.values())
    assert finding["requests_in_scope"] == calls > 10 * len(kit)  # far more calls than the kit keeps
    assert 100 < len(kit) <= 200
    assert json.loads(finding["evidence"])["eval_kit_request_ids"] == [r for _, _, r in kit]


def test_the_combined_upper_bound_is_the_largest_fired_lever_per_call(planted):
    """savings_per_basis's upper_bound total against a plain loop over the per-call savings of the
    window: per feature x provider x model, the levers of its upper-bound findings; per call the
    largest of their savings (0 if none saves) plus what they cost on it; a month's worth; per
    model or pool the larger of that and a finding on all of it (feature '')."""
    project, _, findings = planted
    upper = [
        row
        for row in findings
        if row["basis"] == "upper_bound" and row["status"] == "open" and row["monthly_savings_usd"] >= MIN_MONTHLY_USD
    ]
    (start,), (days_observed,) = {row["period_start"] for row in upper}, {row["days_observed"] for row in upper}
    fired: dict[tuple, set] = {}
    for row in upper:
        if row["feature"]:
            lever = f"prompt_cache:{row['target']}" if row["kind"] == "prompt_cache" else row["kind"]
            fired.setdefault((row["feature"], row["provider"], row["model"]), set()).add(lever)
    per_call: dict[tuple, dict[str, D]] = {}
    for lever, (table, saving) in LEVERS_PER_CALL.items():
        for feature, provider, model, request_id, usd in project.query(
            f"select feature, provider, model, request_id, {saving} from {table}"  # noqa: S608 (constants)
            " where day between $start and $end",
            {"start": start, "end": END},
        ):
            if usd and lever in fired.get((feature, provider, model), ()):
                per_call.setdefault((feature, provider, model, request_id), {})[lever] = usd
    window: dict[tuple, D] = {}
    for (feature, provider, model, _), savings in per_call.items():
        call = max([D(0), *savings.values()]) + sum(min(D(0), usd) for usd in savings.values())
        window[(feature, provider, model)] = window.get((feature, provider, model), D(0)) + call
    per_model: dict[tuple, D] = {}
    for (_, provider, model), usd in window.items():
        monthly = (usd * D("30.44") / days_observed).quantize(D("0.000001"))
        per_model[(provider, model)] = per_model.get((provider, model), D(0)) + monthly
    for row in upper:
        if not row["feature"]:
            key = (row["provider"], row["model"])
            per_model[key] = max(per_model.get(key, D(0)), row["monthly_savings_usd"])
    expected = sum(per_model.values())
    ((findings_counted, total),) = project.query(
        "select findings, monthly_savings_usd from savings_per_basis(fct_savings_opportunities,"
        " fct_savings_overlap_daily, $day, $min) where basis = 'upper_bound'",
        {"day": END, "min": MIN_MONTHLY_USD},
    )
    assert findings_counted == len(upper)
    assert abs(total - expected) <= D("0.01"), (total, expected)
    # Never more than the findings summed; two levers act on the same calls somewhere here.
    assert total <= sum(row["monthly_savings_usd"] for row in upper)
    assert any(len(levers) > 1 for levers in fired.values()), fired
