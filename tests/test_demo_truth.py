"""End to end on generated data: what the generator planted (its manifest is the truth) is what
the marts find, and nothing else is flagged. Runs through the `costwatch run` command."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import duckdb
import pytest
import yaml

from conftest import CATALOG
from pipelines.cli import main as costwatch
from pipelines.lib.generate import generate

pytestmark = pytest.mark.slow

START = dt.date(2026, 10, 1)
DAYS = 30
REASONS = {  # generator's malformed kinds -> costwatch's quarantine reasons
    "truncated_json": "bad_json", "garbage_text": "bad_json", "missing_request_id": "missing_request_id",
    "negative_output_tokens": "negative:output_tokens", "cached_exceeds_input": "cached_exceeds_input",
    "bad_timestamp": "bad_ts",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    manifest = generate(root / "inputs", start_date=START, days=DAYS, requests_per_day=3000, seed=3)
    config = {
        "data_dir": "data",
        "start_date": START.isoformat(),
        "sources": {
            "gateway_logs": [{"path": "inputs/gateway/*.jsonl.gz", "format": "canonical"}],
            "provider_costs": [
                {"path": "inputs/openai/costs_*.json", "format": "openai_costs"},
                {"path": "inputs/anthropic/cost_report_*.json", "format": "anthropic_cost_report"},
                {"path": "inputs/invoices/invoice_*.csv", "format": "invoice_csv"},
            ],
            "provider_usage": [
                {"path": "inputs/openai/usage_*.json", "format": "openai_usage"},
                {"path": "inputs/anthropic/usage_report_*.json", "format": "anthropic_usage_report"},
            ],
        },
        "prices": {"catalog": str(CATALOG), "effective_from": "2025-09-01"},
        # Small lines at 3,000 requests a day: judge them by percent, with a 5-cent floor.
        "reconciliation": {"tolerance_pct": 0.02, "tolerance_usd": 0.05},
    }
    (root / "costwatch.yaml").write_text(yaml.safe_dump(config))
    (root / "dagster_home").mkdir()
    last = START + dt.timedelta(days=DAYS)  # one more day: the file of late arrivals after the range
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        assert costwatch(["--config", str(root / "costwatch.yaml"), "run", "--from", START.isoformat(),
                          "--to", last.isoformat()]) == 0
    conn = duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)
    yield manifest, conn
    conn.close()


def rows(conn, sql, params=None):
    conn.execute(sql, params or {})
    names = [d[0] for d in conn.description]
    return [dict(zip(names, row)) for row in conn.fetchall()]


def event(manifest, kind):
    return next(e for e in manifest["billing_events"] if e["kind"] == kind)


def test_every_line_is_accounted_for_against_the_generator(demo):
    manifest, conn = demo
    lines, kept, quarantined, duplicates = conn.execute(
        "select sum(lines), sum(kept), sum(quarantined), sum(duplicates) from gateway_ingest_audit").fetchone()
    assert lines == manifest["totals"]["lines"] == kept + quarantined + duplicates
    assert kept == manifest["totals"]["records"]
    assert duplicates == manifest["totals"]["duplicate_lines"]
    expected = {}
    for kind, count in manifest["totals"]["malformed_by_kind"].items():
        expected[REASONS[kind]] = expected.get(REASONS[kind], 0) + count
    assert dict(conn.execute("select reason, count(*) from gateway_quarantine group by 1").fetchall()) == expected


def test_planted_billing_discrepancies_appear_with_the_right_status(demo):
    manifest, conn = demo
    off = rows(conn, "select * from fct_invoice_reconciliation where status <> 'matched'")
    found = {(r["granularity"], r["status"], r["line_key"], r["day"]) for r in off}

    lost = event(manifest, "lost_logs")
    lost_day = dt.date.fromisoformat(lost["start_day"])
    for model in ("claude-3-5-sonnet", "claude-3-5-haiku"):
        assert ("day", "over", model, lost_day) in found

    fine_tuning = event(manifest, "billed_without_logs")
    (row,) = [r for r in off if r["status"] == "billed_without_logs" and r["granularity"] == "day"]
    assert (row["day"], row["billed_usd"]) == (dt.date.fromisoformat(fine_tuning["start_day"]), D("42"))

    price = event(manifest, "unannounced_price_change")
    (finding,) = rows(conn, "select * from fct_price_findings where finding = 'stale_price'")
    assert (finding["model_family"], finding["first_day"]) == ("gpt-4o-mini", dt.date.fromisoformat(price["start_day"]))
    assert finding["billed_to_estimated_ratio"] == pytest.approx(1.25, rel=1e-4)

    tokens = rows(conn, "select * from fct_token_reconciliation where finding <> 'matched'")
    double = {r["day"] for r in tokens if r["finding"] == "cached_tokens_double_counted"}
    missing = {(r["model_family"], r["day"]) for r in tokens if r["finding"] == "logs_missing_calls"}
    assert missing == {("claude-3-5-sonnet", lost_day), ("claude-3-5-haiku", lost_day)}
    haiku_days = {r[0] for r in conn.execute(
        "select day from fct_token_reconciliation where model_family = 'claude-3-5-haiku'").fetchall()}
    assert double == haiku_days - {lost_day}


def test_nothing_unplanted_is_flagged(demo):
    manifest, conn = demo
    lost_day = dt.date.fromisoformat(event(manifest, "lost_logs")["start_day"])
    price_start = dt.date.fromisoformat(event(manifest, "unannounced_price_change")["start_day"])
    for row in rows(conn, "select * from fct_invoice_reconciliation where status <> 'matched'"):
        explained = (
            row["line_key"].startswith("fine-tuning")  # billed_without_logs, planted
            or row["line_key"] == "gpt-experimental-preview"  # the catalog has no price for it, planted
            or row["line_key"] == "claude-3-5-haiku"  # cached tokens double counted every day, planted
            or (row["day"] == lost_day and row["provider"] == "anthropic")  # lost logs, planted
            or (row["line_key"] == "gpt-4o-mini" and row["period_start"] >= price_start)  # price change
        )
        assert explained, row
    token_findings = {r[0] for r in conn.execute(
        "select distinct finding from fct_token_reconciliation where finding <> 'matched'").fetchall()}
    assert token_findings <= {"cached_tokens_double_counted", "logs_missing_calls"}


def test_allocation_equals_every_days_bill_to_the_cent(demo):
    _, conn = demo
    mismatches = conn.execute(
        """
        with billed as (select period_start as day, provider, round(sum(billed_usd), 2) as billed_usd
                        from stg_provider_costs where is_daily group by all),
             allocated as (select day, provider, sum(allocated_usd) as allocated_usd
                           from fct_allocated_spend_daily group by all)
        select * from billed full outer join allocated using (day, provider)
        where billed.billed_usd is distinct from allocated.allocated_usd
        """
    ).fetchall()
    assert mismatches == []
    manifest, _ = demo
    billed_by_day = manifest["billing"]["daily_usd"]
    some_provider, days = next(iter(billed_by_day.items()))
    some_day, amount = next(iter(days.items()))
    (allocated,) = conn.execute(
        "select sum(allocated_usd) from fct_allocated_spend_daily where provider = $p and day = $d",
        {"p": some_provider, "d": some_day}).fetchone()
    assert allocated == D(amount).quantize(D("0.01"))
