"""End to end on generated data: what the generator planted (its manifest is the truth) is what
the marts find, and nothing else is flagged. Runs through the `costwatch run` command."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal as D
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, generated_config, read_generated_records

from pipelines.cli import main as costwatch
from pipelines.demo import generate
from pipelines.resources.instance import open_instance

pytestmark = pytest.mark.slow

START = dt.date(2026, 10, 1)
DAYS = 30
# The demo's catalog: the current LiteLLM one, with the tier prices and Azure entries it needs.
CATALOG = REPO / "fixtures" / "prices" / "litellm_2026_11.json"
REASONS = {  # generator's malformed kinds -> costwatch's quarantine reasons
    "truncated_json": "bad_json",
    "garbage_text": "bad_json",
    "missing_request_id": "missing_request_id",
    "negative_output_tokens": "negative:output_tokens",
    "cached_exceeds_input": "cached_exceeds_input",
    "bad_timestamp": "bad_ts",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    manifest = generate(root / "inputs", start_date=START, days=DAYS, requests_per_day=3000, seed=3)
    config = generated_config(START, CATALOG)
    (root / "costwatch.yaml").write_text(yaml.safe_dump(config))
    (root / "dagster_home").mkdir()
    last = START + dt.timedelta(days=DAYS)  # one more day: the file of late arrivals after the range
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        assert (
            costwatch(
                ["--config", str(root / "costwatch.yaml"), "run", "--from", START.isoformat(), "--to", last.isoformat()]
            )
            == 0
        )
    conn = duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)
    yield manifest, conn
    conn.close()


@pytest.fixture(scope="module")
def demo_config(demo, tmp_path_factory):
    return next(tmp_path_factory.getbasetemp().glob("demo*/costwatch.yaml"))


def rows(conn, sql, params=None):
    conn.execute(sql, params or {})
    names = [d[0] for d in conn.description]
    return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def event(manifest, kind):
    return next(e for e in manifest["billing_events"] if e["kind"] == kind)


def test_every_line_is_accounted_for_against_the_generator(demo):
    manifest, conn = demo
    lines, kept, quarantined, duplicates = conn.execute(
        "select sum(lines), sum(kept), sum(quarantined), sum(duplicates) from gateway_ingest_audit"
    ).fetchone()
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
    for model in ("claude-sonnet-4-5", "claude-haiku-4-5"):
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
    assert missing == {("claude-sonnet-4-5", lost_day), ("claude-haiku-4-5", lost_day)}
    haiku_days = {
        r[0]
        for r in conn.execute(
            "select day from fct_token_reconciliation where model_family = 'claude-haiku-4-5'"
        ).fetchall()
    }
    assert double == haiku_days - {lost_day}


def test_nothing_unplanted_is_flagged(demo):
    manifest, conn = demo
    lost_day = dt.date.fromisoformat(event(manifest, "lost_logs")["start_day"])
    price_start = dt.date.fromisoformat(event(manifest, "unannounced_price_change")["start_day"])
    for row in rows(conn, "select * from fct_invoice_reconciliation where status <> 'matched'"):
        explained = (
            row["line_key"].startswith("fine-tuning")  # billed_without_logs, planted
            or row["line_key"] == "gpt-experimental-preview"  # the catalog has no price for it, planted
            or row["line_key"] == "claude-haiku-4-5"  # cached tokens double counted every day, planted
            or (row["day"] == lost_day and row["provider"] == "anthropic")  # lost logs, planted
            or (row["line_key"] == "gpt-4o-mini" and row["period_start"] >= price_start)  # price change
        )
        assert explained, row
    token_findings = {
        r[0]
        for r in conn.execute(
            "select distinct finding from fct_token_reconciliation where finding <> 'matched'"
        ).fetchall()
    }
    assert token_findings <= {"cached_tokens_double_counted", "logs_missing_calls"}


def test_allocation_equals_every_days_bill_exactly(demo):
    _, conn = demo
    mismatches = conn.execute(
        """
        with billed as (select period_start as day, provider, round(sum(billed_usd), 6) as billed_usd
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
        {"p": some_provider, "d": some_day},
    ).fetchone()
    assert allocated == D(amount).quantize(D("0.000001"))


@pytest.fixture(scope="module")
def billed_records(demo, demo_config):
    """The generated calls a provider bills (status ok, no gateway cache hit, not self-hosted), as
    read back from the gateway files with plain `json`, by request id."""
    manifest, _ = demo
    records = read_generated_records(demo_config.parent / "inputs", manifest)
    return {
        r["request_id"]: r
        for r in records
        if r["status"] == "ok" and not r["gateway_cache_hit"] and r["provider"] != "self_hosted"
    }


def priced(conn, request_ids):
    """fct_requests' cost, price key, context tier and service tier of some requests, by id."""
    return {
        row["request_id"]: row
        for row in rows(
            conn,
            "select request_id, cost_usd, price_key, price_tier, service_tier from fct_requests "
            "where request_id in (select unnest($ids))",
            {"ids": list(request_ids)},
        )
    }


def published(key, field):
    """A price from the catalog file's own JSON text, exact."""
    entry = json.loads(CATALOG.read_text())[key]
    return D(repr(entry[field]))


def test_catalog_prices_the_demo_relies_on():
    # USD per million tokens, as the providers publish them (and the 2026-11 catalog has them).
    per_million = D(1_000_000)
    assert published("gpt-4.1-mini", "input_cost_per_token") * per_million == D("0.4")
    assert published("gpt-4.1-mini", "input_cost_per_token_batches") * per_million == D("0.2")
    assert published("gpt-4.1-mini", "output_cost_per_token_priority") * per_million == D("2.8")
    assert published("claude-haiku-4-5-20251001", "output_cost_per_token_batches") * per_million == D("2.5")
    assert published("claude-sonnet-4-5-20250929", "cache_creation_input_token_cost_above_1hr") * per_million == D("6")
    assert published("gpt-6-luna", "input_cost_per_token_above_272k_tokens") * per_million == D("0.2")
    assert published("gpt-audio-mini", "input_cost_per_audio_token") * per_million == D("10")
    assert published("azure/eu/gpt-4o-2024-08-06", "input_cost_per_token") * per_million == D("2.75")
    assert published("gpt-4o-2024-08-06", "input_cost_per_token") * per_million == D("2.5")


def test_batch_calls_are_priced_at_half_the_standard_price(demo, billed_records):
    _, conn = demo
    batch = {i: r for i, r in billed_records.items() if r.get("service_tier") == "batch"}
    assert {r["model"] for r in batch.values()} == {"gpt-4.1-mini", "claude-haiku-4-5-20251001"}
    found = priced(conn, batch)
    assert set(found) == set(batch)
    # Standard rates (USD/token) from the published per-million prices; batch is 50% of them.
    standard = {
        "gpt-4.1-mini": (D("0.4e-6"), D("1.6e-6")),
        "claude-haiku-4-5-20251001": (D("1e-6"), D("5e-6")),
    }
    for request_id, record in batch.items():
        input_rate, output_rate = standard[record["model"]]
        assert record["cached_input_tokens"] == record["cache_creation_input_tokens"] == 0  # nothing cached
        expected = (record["input_tokens"] * input_rate + record["output_tokens"] * output_rate) / 2
        assert found[request_id]["cost_usd"] == expected, record
        assert (found[request_id]["service_tier"], found[request_id]["price_tier"]) == ("batch", "base")


def test_long_prompts_are_priced_at_the_context_tier_price(demo, billed_records):
    _, conn = demo
    contracts = {i: r for i, r in billed_records.items() if r["model"] == "gpt-6-luna"}
    long_prompts = {i for i, r in contracts.items() if r["input_tokens"] > 272_000}
    assert 0.3 < len(long_prompts) / len(contracts) < 0.7
    found = priced(conn, contracts)
    for request_id, record in contracts.items():
        # gpt-6-luna: $0.10 in / $0.50 out per million; above 272k prompt tokens $0.20 / $0.75,
        # for every token of the call. Reasoning tokens are output tokens.
        input_rate, output_rate, tier = (
            (D("0.2e-6"), D("0.75e-6"), "above_272k")
            if request_id in long_prompts
            else (D("0.1e-6"), D("0.5e-6"), "base")
        )
        expected = record["input_tokens"] * input_rate + record["output_tokens"] * output_rate
        assert found[request_id]["cost_usd"] == expected, record
        assert (found[request_id]["price_key"], found[request_id]["price_tier"]) == ("gpt-6-luna", tier)


def test_azure_calls_are_priced_at_azures_entry_not_openais(demo, billed_records):
    _, conn = demo
    azure = {i: r for i, r in billed_records.items() if r["provider"] == "azure"}
    assert {r["model"] for r in azure.values()} == {"eu/gpt-4o-2024-08-06"}
    found = priced(conn, azure)
    assert set(found) == set(azure)
    for request_id, record in azure.items():
        uncached = record["input_tokens"] - record["cached_input_tokens"]
        # Azure EU data zone: $2.75 in, $1.375 cached, $11 out per million: 10% above OpenAI's own
        # $2.50 / $1.25 / $10 for the same model.
        openai_price = (
            uncached * D("2.5e-6") + record["cached_input_tokens"] * D("1.25e-6") + record["output_tokens"] * D("10e-6")
        )
        assert found[request_id]["cost_usd"] == openai_price * D("1.1"), record
        assert found[request_id]["price_key"] == "azure/eu/gpt-4o-2024-08-06"


def test_priority_one_hour_writes_and_audio_are_priced_by_hand(demo, billed_records):
    _, conn = demo

    def tokens(record, name):
        return record.get(name, 0)

    def expected(record):
        model = record["model"]
        cached, creation = record["cached_input_tokens"], record["cache_creation_input_tokens"]
        one_hour, audio_in, audio_out = (
            tokens(record, "cache_creation_1h_input_tokens"),
            tokens(record, "audio_input_tokens"),
            tokens(record, "audio_output_tokens"),
        )
        text_in = record["input_tokens"] - cached - creation - audio_in
        text_out = record["output_tokens"] - audio_out
        if model == "gpt-4.1-mini" and record.get("service_tier") == "priority":
            # Priority: $0.70 in, $0.175 cached, $2.80 out per million (standard $0.40/$0.10/$1.60).
            return text_in * D("0.7e-6") + cached * D("0.175e-6") + text_out * D("2.8e-6")
        if model == "claude-sonnet-4-5-20250929":
            # $3 in, $0.30 read, $3.75 5-minute write, $6 1-hour write (2x input), $15 out per million.
            return (
                text_in * D("3e-6")
                + cached * D("0.3e-6")
                + (creation - one_hour) * D("3.75e-6")
                + one_hour * D("6e-6")
                + text_out * D("15e-6")
            )
        if model == "gpt-audio-mini":
            # Text $0.60 in / $2.40 out, audio $10 in / $20 out per million.
            return text_in * D("0.6e-6") + audio_in * D("10e-6") + text_out * D("2.4e-6") + audio_out * D("20e-6")
        return None

    cases = {
        "priority": [r for r in billed_records.values() if r.get("service_tier") == "priority"],
        "one_hour_writes": [r for r in billed_records.values() if tokens(r, "cache_creation_1h_input_tokens")],
        "audio": [r for r in billed_records.values() if tokens(r, "audio_input_tokens")],
    }
    for name, records in cases.items():
        records = [r for r in records if expected(r) is not None]
        assert len(records) > 100, name
        found = priced(conn, [r["request_id"] for r in records])
        off = [
            (r, found[r["request_id"]]["cost_usd"], expected(r))
            for r in records
            if found[r["request_id"]]["cost_usd"] != expected(r)
        ]
        assert off == [], (name, off[:3])
    priority = priced(conn, [r["request_id"] for r in cases["priority"]])
    assert {row["service_tier"] for row in priority.values()} == {"priority"}


def gpu_event(manifest, kind):
    return next(e for e in manifest["gpu_events"] if e["kind"] == kind)


def test_the_idle_weekend_shows_as_zero_utilization_at_full_idle_cost(demo):
    manifest, conn = demo
    weekend = gpu_event(manifest, "idle_weekend")
    rows_of = {r["day"]: r for r in rows(conn, "select * from fct_gpu_utilization_daily where pool = 'qwen-32b-a100'")}
    idle_days = [dt.date.fromisoformat(day) for day in weekend["effect"]["days"]]
    for day in idle_days:
        assert rows_of[day]["utilization"] == 0 and rows_of[day]["busy_method"] == "request_activity"
    assert sum(rows_of[day]["idle_cost_usd"] for day in idle_days) == D(weekend["effect"]["idle_usd"])
    assert all(row["utilization"] > 0 for day, row in rows_of.items() if day not in idle_days)


def test_the_over_provisioned_pool_plans_fewer_replicas_than_it_pays_for(demo):
    manifest, conn = demo
    event = gpu_event(manifest, "over_provisioned_pool")["effect"]
    plans = rows(
        conn,
        "select * from fct_capacity_plan where pool = 'llama-8b-h100' and day <= $last",
        {"last": START + dt.timedelta(days=DAYS - 1)},
    )
    assert {plan["billed_replicas"] for plan in plans} == {event["billed_replicas"]}
    assert max(plan["replicas_needed"] for plan in plans) == event["replicas_needed"]
    assert {plan["per_replica_rps"] for plan in plans} == {float(event["per_replica_rps"])}
    busiest = max(plans, key=lambda plan: plan["peak_rps"])
    assert busiest["peak_rps"] == pytest.approx(float(event["peak_rps"]), abs=1e-6)
    assert busiest["day"] == dt.date.fromisoformat(event["peak_day"])
    # Busy time from telemetry, day by day, as the generator measured it.
    daily = manifest["gpu"]["daily"]["llama-8b-h100"]
    for row in rows(conn, "select * from fct_gpu_utilization_daily where pool = 'llama-8b-h100'"):
        truth = daily.get(row["day"].isoformat())
        if truth:
            assert row["busy_method"] == "telemetry"
            assert row["billed_gpu_hours"] == pytest.approx(float(truth["billed_gpu_hours"]))
            assert row["busy_gpu_hours"] == pytest.approx(float(truth["busy_gpu_hours"]), abs=1e-5)
            assert row["gpu_cost_usd"] == D(truth["billed_usd"])
    (advice,) = {
        r[0]
        for r in conn.execute("select recommendation from fct_api_vs_selfhost where pool = 'llama-8b-h100'").fetchall()
    } or {None}
    assert advice.startswith(("move to API", "consolidate replicas"))


def test_gpu_cost_splits_add_back_up_to_the_pool_cost_every_day(demo):
    _, conn = demo
    for split in ("fct_gpu_cost_by_feature_daily", "fct_selfhost_unit_cost_daily"):
        off = conn.execute(
            f"""
            select u.day, u.pool, u.gpu_cost_usd, s.split_usd
            from fct_gpu_utilization_daily u
            join (select day, pool, sum(gpu_cost_usd) as split_usd from {split} group by all) s using (day, pool)
            where abs(u.gpu_cost_usd - s.split_usd) > 0.00001
            """  # noqa: S608 (a mart name from the loop's constants)
        ).fetchall()
        assert off == [], split


EXPECTED_DRIVER = {
    "prompt_growth": "input_tokens_per_request",
    "cache_collapse": "cache_hit_rate",
    "user_spike": "volume",
}


def episodes(conn):
    """Anomaly episodes as alerts see them: anomalous days of one dimension x key, apart by at
    most 2 normal days. Only days the generator covers (not the late-arrivals day after it)."""
    return rows(
        conn,
        """
        with flagged as (
            select *, coalesce(day - lag(day) over (partition by dimension, key order by day), 99) as gap
            from fct_spend_anomalies where is_anomaly and day < $end
        ),
        numbered as (
            select *, sum(case when gap > 3 then 1 else 0 end) over (partition by dimension, key order by day) as run
            from flagged
        )
        select dimension, key, min(day) as first_day, max(day) as last_day,
               arg_min(top_driver, day) as first_top_driver, sum(impact_usd) as impact_usd
        from numbered group by dimension, key, run order by first_day
    """,
        {"end": START + dt.timedelta(days=DAYS)},
    )


def test_every_planted_cost_creep_is_detected_within_a_day_with_its_driver(demo):
    manifest, conn = demo
    found = episodes(conn)
    for planted in manifest["events"]:
        start = dt.date.fromisoformat(planted["start_day"])
        dimension, key = (
            ("user", planted["user_id"]) if planted["kind"] == "user_spike" else ("feature", planted["feature"])
        )
        hits = [
            e
            for e in found
            if (e["dimension"], e["key"]) == (dimension, key)
            and start <= e["first_day"] <= start + dt.timedelta(days=1)
        ]
        assert hits, (planted, [e for e in found if e["key"] == key])
        assert hits[0]["first_top_driver"] == EXPECTED_DRIVER[planted["kind"]], hits[0]


def related_keys(conn, planted):
    """The dimension x keys a planted event moves: its feature or user, and the total, providers,
    models and features that carry its traffic."""
    column, value = (
        ("user_id", planted["user_id"]) if planted["kind"] == "user_spike" else ("feature", planted["feature"])
    )
    keys = {("total", "all"), ("user" if column == "user_id" else "feature", value)}
    for provider, model, feature in conn.execute(
        f"select distinct provider, model, feature from fct_spend_daily where {column} = $value and cost_usd > 0",  # noqa: S608 (user_id or feature)
        {"value": value},
    ).fetchall():
        keys |= {("provider", provider), ("model", model), ("feature", feature)}
    return keys


def test_clean_stretches_raise_at_most_one_false_alert_per_30_days(demo):
    manifest, conn = demo
    lost_day = dt.date.fromisoformat(event(manifest, "lost_logs")["start_day"])
    false = []
    for found in episodes(conn):
        explained = (
            found["first_day"] == lost_day
            and found["key"] in ("all", "anthropic")
            or any(
                (found["dimension"], found["key"]) in related_keys(conn, planted)
                and found["first_day"] >= dt.date.fromisoformat(planted["start_day"])
                and (
                    planted["end_day"] is None
                    or found["first_day"] <= dt.date.fromisoformat(planted["end_day"]) + dt.timedelta(days=1)
                )
                for planted in manifest["events"]
            )
        )
        if not explained:
            false.append(found)
    assert len(false) <= DAYS / 30, false


def test_alerts_are_queued_once_and_a_rerun_sends_nothing_new(demo):
    manifest, conn = demo
    kinds = dict(conn.execute("select kind, count(*) from alerts_outbox group by kind").fetchall())
    assert kinds["digest"] == DAYS + 1  # one a day
    assert kinds["anomaly"] >= len(manifest["events"])
    assert kinds.get("budget", 0) >= 1  # chat's $40 budget is crossed in October
    budget_ids = [r[0] for r in conn.execute("select alert_id from alerts_outbox where kind = 'budget'").fetchall()]
    assert len(budget_ids) == len(set(budget_ids))
    # The demo's days are long past (START is fixed): every alert is older than alerts.max_age_days
    # (2), so expired, never posted; without Slack credentials none would have been anyway.
    assert {r[0] for r in conn.execute("select distinct status from alerts_outbox").fetchall()} == {"expired"}


def test_the_summary_prints_every_section_from_the_read_only_warehouse(demo, demo_config, capsys):
    from pipelines.report.summary import SECTIONS, print_summary
    from pipelines.resources.config import load_config

    _, conn = demo
    print_summary(load_config(demo_config), START, START + dt.timedelta(days=DAYS - 1))
    out = capsys.readouterr().out
    for title in SECTIONS:
        assert title in out
    # The headline leads with the last day's total cost and its split, summed here from the
    # independent marts: the GPU cost from the utilization mart, the API part from the bills.
    last = START + dt.timedelta(days=DAYS - 1)
    (gpu, idle) = conn.execute(
        "select sum(gpu_cost_usd), sum(idle_cost_usd) from fct_gpu_utilization_daily where day = $last", {"last": last}
    ).fetchone()
    api = _api_cost(conn, last, last)
    total = (api + gpu).quantize(D("0.01"))
    assert f"costwatch: {last}: ${total:,} total cost (" in out
    assert f"idle ${idle.quantize(D('0.01')):,})" in out


def _api_cost(conn, first, last) -> D:
    """API money of the days, the way a bill reader would add it: a provider-day with a one-day bill
    costs its bill; one without costs its calls at catalog prices (fct_requests)."""
    (api,) = conn.execute(
        """
        with bills as (
            select period_start as day, provider, sum(billed_usd) as usd from stg_provider_costs
            where is_daily and period_start between $first and $last group by all
        ),
        estimates as (
            select day, provider, sum(cost_usd) as usd from fct_requests
            where day between $first and $last and cost_usd is not null group by all
        )
        select coalesce(sum(bills.usd), 0)
            + coalesce((select sum(usd) from estimates where not exists (
                select 1 from bills where bills.day = estimates.day and bills.provider = estimates.provider)), 0)
        from bills
        """,
        {"first": first, "last": last},
    ).fetchone()
    return D(api)


def test_total_cost_is_every_bill_estimate_and_gpu_hour_of_the_range(demo):
    """fct_total_cost_daily over the whole range against the bills, the requests and the GPU bill,
    added up independently; each feature's parts add up to its total."""
    _, conn = demo
    first, last = START, START + dt.timedelta(days=DAYS)
    (total, api, gpu, parts_off) = conn.execute(
        "select sum(total_cost_usd), sum(api_cost_usd), sum(gpu_cost_usd),"
        " max(abs(total_cost_usd - api_billed_usd - api_estimated_usd - gpu_busy_cost_usd - gpu_idle_cost_usd))"
        " from fct_total_cost_daily"
    ).fetchone()
    (gpu_billed,) = conn.execute("select sum(gpu_cost_usd) from fct_gpu_utilization_daily").fetchone()
    assert parts_off == 0
    assert gpu_billed > 0 and abs(gpu - gpu_billed) <= D("0.01")  # micro-dollar rounding per feature row
    assert abs(api - _api_cost(conn, first, last)) <= D("0.01")
    assert total == api + gpu


def test_query_is_read_only(demo, demo_config, capsys):
    assert costwatch(["--config", str(demo_config), "query", "select count(*) as n from fct_spend_daily"]) == 0
    assert costwatch(["--config", str(demo_config), "query", "drop table fct_spend_daily"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_query_csv_round_trips_every_row_and_column_exactly(demo, demo_config, tmp_path, capsys):
    _, conn = demo
    sql = "select day, feature, total_cost_usd, cost_per_1k_requests_usd from fct_total_cost_daily order by all"
    out = tmp_path / "total.csv"
    # --config after the subcommand is accepted as well as before it.
    assert costwatch(["query", "--config", str(demo_config), sql, "--format", "csv", "--output", str(out)]) == 0
    expected = conn.execute(sql).fetchall()
    assert f"{len(expected):,} rows written to {out} (csv)" in capsys.readouterr().err
    with out.open(newline="", encoding="utf-8") as handle:
        header, *lines = list(csv.reader(handle))
    assert header == ["day", "feature", "total_cost_usd", "cost_per_1k_requests_usd"]
    assert len(lines) == len(expected) > 0
    for line, row in zip(lines, expected, strict=True):
        assert dt.date.fromisoformat(line[0]) == row[0] and line[1] == row[1]
        assert D(line[2]) == row[2]  # every digit of the DECIMAL, no float on the way
        assert (float(line[3]) if line[3] else None) == row[3]


def test_query_json_keeps_exact_money_and_prints_no_traceback(demo, demo_config, capsys):
    _, conn = demo
    sql = "select feature, sum(total_cost_usd) as usd from fct_total_cost_daily group by all order by all"
    assert costwatch(["--config", str(demo_config), "query", sql, "--format", "json"]) == 0
    parsed = json.loads(capsys.readouterr().out, parse_float=D)
    assert [(item["feature"], item["usd"]) for item in parsed] == conn.execute(sql).fetchall()

    assert costwatch(["--config", str(demo_config), "query", "select * from no_such_table"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("costwatch: Catalog Error") and "Traceback" not in err and err.count("\n") == 1


def test_query_table_shows_every_column_and_says_how_many_rows_it_left_out(demo, demo_config, capsys):
    _, conn = demo
    sql = "select * from fct_total_cost_daily"
    assert costwatch(["--config", str(demo_config), "query", sql, "--max-rows", "5"]) == 0
    out = capsys.readouterr().out
    (rows,) = conn.execute("select count(*) from fct_total_cost_daily").fetchone()
    columns = [column[0] for column in conn.execute(sql).description]
    header = out.splitlines()[0].split()
    assert header == columns  # no column hidden, however wide
    assert f"({rows:,} rows; {rows - 5:,} not shown: pass --max-rows or --format csv --output FILE)" in out


# --------------------------------------------------------------------------- the report, in a real browser


# FOCUS 1.2 (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec at tag v1.2, specification/columns): the
# mandatory columns, and the rules an export's rows must keep, written out from the spec's text.
FOCUS_MANDATORY = {
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
}  # fmt: skip
FOCUS_CONDITIONAL_OR_RECOMMENDED = {
    "ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "ContractedUnitPrice", "ListUnitPrice", "PricingCategory",
    "ResourceId", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "Tags",
}  # fmt: skip
FOCUS_NOT_NULL = {"BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName",
    "ListCost", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "ChargeFrequency"}  # fmt: skip
FOCUS_NUMERIC = {"BilledCost", "ConsumedQuantity", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "ListCost", "ListUnitPrice", "PricingQuantity"}  # fmt: skip
FOCUS_EXAMPLES = REPO / "fixtures" / "focus" / "spec_examples"


def _key_values(text: str) -> dict:
    """FOCUS KeyValueFormat: a JSON object of unique keys with scalar values."""
    pairs = json.loads(text, object_pairs_hook=lambda items: items)
    assert len({key for key, _ in pairs}) == len(pairs), text
    assert all(not isinstance(value, (list, dict, tuple)) for _, value in pairs), text
    return dict(pairs)


def test_focus_export_keeps_the_spec_rules_and_adds_up_to_the_total_cost_mart(demo, demo_config, tmp_path, capsys):
    _, conn = demo
    first, last = (
        START + dt.timedelta(days=DAYS - 10),
        START + dt.timedelta(days=DAYS - 1),
    )  # 10 days: the rules and sums
    out = tmp_path / "focus.csv"
    command = ["--config", str(demo_config), "export", "--focus", "--from", str(first), "--to", str(last)]
    assert costwatch([*command, "--output", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        header, *lines = list(csv.reader(handle))
    assert f"{len(lines):,} rows in {out}" in capsys.readouterr().out
    records = [dict(zip(header, line, strict=True)) for line in lines]

    # Columns: every mandatory one; the rest FOCUS-defined or custom (x_), custom ones last.
    assert FOCUS_MANDATORY <= set(header)
    focus = [c for c in header if not c.startswith("x_")]
    assert set(focus) <= FOCUS_MANDATORY | FOCUS_CONDITIONAL_OR_RECOMMENDED
    assert header[: len(focus)] == focus
    # Laid out like the spec's AI token examples: their FOCUS 1.2 columns, units and meters.
    example_rows = [r for path in FOCUS_EXAMPLES.glob("*.csv") for r in csv.DictReader(path.open(encoding="utf-8"))]
    assert {c for c in example_rows[0] if c in FOCUS_MANDATORY | FOCUS_CONDITIONAL_OR_RECOMMENDED} <= set(header)
    usage = [r for r in records if r["ChargeCategory"] == "Usage"]
    token_rows = [r for r in usage if r["ConsumedUnit"] == "Tokens"]
    for example in example_rows:
        ours = [r for r in token_rows if r["SkuMeter"] == example["SkuMeter"]]
        assert ours, example["SkuMeter"]
        assert {(r["PricingUnit"], r["ServiceCategory"], r["ServiceSubcategory"]) for r in ours} == {
            (example["PricingUnit"], example["ServiceCategory"], example["ServiceSubcategory"])
        }
        details = _key_values(example["SkuPriceDetails"])
        assert all(
            {k: _key_values(r["SkuPriceDetails"]).get(k) for k in ("TokenDirection", "TokenCacheAction")}
            == {k: details.get(k) for k in ("TokenDirection", "TokenCacheAction")}
            for r in ours
        )

    timestamp = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
    numeric = re.compile(r"-?\d+(\.\d+)?")  # NumericFormat as written here: no exponent, no sign for positive
    for r in records:
        assert all(r[c] != "" for c in FOCUS_NOT_NULL), r
        assert all(numeric.fullmatch(r[c]) for c in FOCUS_NUMERIC if r[c]), r
        assert all(timestamp.fullmatch(r[c]) for c in header if c.endswith(("PeriodStart", "PeriodEnd"))), r
        start = dt.datetime.fromisoformat(r["ChargePeriodStart"])
        assert dt.datetime.fromisoformat(r["ChargePeriodEnd"]) - start == dt.timedelta(days=1)
        assert r["BillingPeriodStart"] == start.replace(day=1).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert r["ChargeCategory"] in {"Usage", "Adjustment"} and r["ChargeClass"] == ""
        assert D(r["BilledCost"]) == D(r["EffectiveCost"]) == D(r["ListCost"]) == D(r["ContractedCost"])
        assert (r["PricingUnit"] == "") == (r["PricingQuantity"] == "")
        assert (r["ConsumedUnit"] == "") == (r["ConsumedQuantity"] == "")
        assert r["SkuPriceDetails"] == "" or r["SkuPriceId"] != ""
        for column in ("SkuPriceDetails", "Tags"):
            if r[column]:
                assert all(k[0].isupper() or k.startswith("x_") for k in _key_values(r[column])) or column == "Tags"
        if r["ChargeCategory"] == "Usage":
            assert D(r["ConsumedQuantity"]) > 0
            assert all(r[c] for c in ("PricingCategory", "ListUnitPrice", "ContractedUnitPrice", "SkuId", "SkuPriceId"))
            product = D(r["ListUnitPrice"]) * D(r["PricingQuantity"])
            if r["ConsumedUnit"] == "Tokens":
                assert product == D(r["ListCost"]), r  # exact: tokens x catalog price
            else:
                assert abs(product - D(r["ListCost"])) <= D("1e-9"), r  # a GPU-hour price is a quotient
        else:
            assert r["ConsumedQuantity"] == r["ListUnitPrice"] == r["SkuId"] == r["PricingCategory"] == ""

    # The money: per day x feature, the export adds up to fct_total_cost_daily.
    exported: dict = {}
    for r in records:
        key = (dt.date.fromisoformat(r["ChargePeriodStart"][:10]), _key_values(r["Tags"])["feature"])
        exported[key] = exported.get(key, D(0)) + D(r["BilledCost"])
    mart = {
        (day, feature): total
        for day, feature, total in conn.execute(
            "select day, feature, total_cost_usd from fct_total_cost_daily where day between $first and $last"
            " and total_cost_usd <> 0",
            {"first": first, "last": last},
        ).fetchall()
    }
    assert set(exported) == set(mart)
    assert max(abs(exported[key] - mart[key]) for key in mart) <= D("1e-9")
    # And the tokens: cache reads per model, against the calls billed (not through fct_requests.charges).
    (cache_reads,) = conn.execute(
        "select sum(cached_input_tokens) from fct_requests where day between $first and $last and priced"
        " and pricing_basis <> 'gpu_billing' and status = 'ok' and not gateway_cache_hit",
        {"first": first, "last": last},
    ).fetchone()
    assert cache_reads > 0
    assert (
        sum(D(r["ConsumedQuantity"]) for r in token_rows if r["SkuMeter"] == "Cache Read Input Tokens") == cache_reads
    )

    # The default period: the month to date of the latest day with costs, as Parquet.
    parquet = tmp_path / "focus.parquet"
    assert costwatch(["--config", str(demo_config), "export", "--focus", "--output", str(parquet)]) == 0
    (latest,) = conn.execute("select max(day) from fct_total_cost_daily where total_cost_usd <> 0").fetchone()
    starts = pq.read_table(parquet, columns=["ChargePeriodStart"]).column(0).to_pylist()
    assert (min(starts), max(starts)) == (f"{latest.replace(day=1)}T00:00:00Z", f"{latest}T00:00:00Z")
    assert costwatch([*command[:4], "--from", str(last), "--to", str(first)]) == 2
    assert "is after" in capsys.readouterr().err


def _expected_marks(chart: dict) -> int:
    """What the page must draw for a chart's rows: a bar per positive value (stacked, grouped), or a
    line per series with a value plus a marker per marked point (lines)."""
    if chart["kind"] in ("stacked", "grouped"):
        return sum(1 for row in chart["rows"] if (row["y"] or 0) > 0)
    series = {row["series"] for row in chart["rows"] if row["y"] is not None}
    return len(series) + sum(1 for row in chart["rows"] if row.get("marked"))


def test_the_report_loads_in_a_browser_without_errors_and_draws_every_chart(demo, demo_config, tmp_path, capsys):
    from browser import dom_and_console, screenshot, svg_attributes

    from pipelines.report.html import report_data
    from pipelines.resources.config import load_config

    day = START + dt.timedelta(days=DAYS - 1)
    assert costwatch(["report", "--config", str(demo_config), "--date", day.isoformat()]) == 0
    path = Path(capsys.readouterr().out.strip().split(": ", 1)[1])
    assert path.name == f"costwatch_{day}.html" and path.exists()
    text = path.read_text(encoding="utf-8")
    # Nothing from the network: no external script, style, image or link (the SVG namespace is a name).
    assert not re.search(r"""(src|href)\s*=|<link\b|@import|url\(""", text)

    dom, console = dom_and_console(path.as_uri(), tmp_path / "chrome")
    assert console == []  # no error, no warning, nothing logged
    drawn = {svg["data-chart"]: svg for svg in svg_attributes(dom) if "data-chart" in svg}
    charts = report_data(load_config(demo_config), day)["charts"]
    assert list(drawn) == [chart["name"] for chart in charts]
    for chart in charts:
        expected = _expected_marks(chart)
        assert expected > 0, f"{chart['name']}: the demo should give this chart data"
        assert int(drawn[chart["name"]]["data-marks"]) == expected, chart["name"]
    # The anomalies the warehouse found in the period are the markers on the spend series.
    (anomalies,) = (
        demo[1]
        .execute(
            "select count(*) from fct_spend_anomalies where dimension = 'total' and is_anomaly and day between $f and $l",
            {"f": max(day - dt.timedelta(days=59), START), "l": day},
        )
        .fetchone()
    )
    spend = next(chart for chart in charts if chart["name"] == "spend_anomalies")
    assert sum(1 for row in spend["rows"] if row["marked"]) == anomalies
    # What to change: the day's open findings of at least savings.min_monthly_usd ($100), one row
    # each, surest basis first, as the warehouse holds them (exposure rows by their spend in scope).
    listed = (
        demo[1]
        .execute(
            "select finding_key from fct_savings_opportunities where day = $day and status = 'open'"
            " and coalesce(monthly_savings_usd, spend_in_scope_usd * 30.44 / days_observed) >= 100",
            {"day": day},
        )
        .fetchall()
    )
    table = dom.split('<table class="savings">', 1)[1].split("</table>", 1)[0]
    assert listed and table.count("<tr>") == 1 + len(listed)  # the header row, then one per finding
    order = ["measured", "price rule", "validated", "upper bound", "exposure"]
    shown = [row.split("<td>", 1)[1].split("</td>", 1)[0] for row in table.split("<tr>")[2:]]
    assert shown == sorted(shown, key=order.index)

    screenshot(path.as_uri(), tmp_path / "costwatch_report.png", tmp_path / "chrome")


def test_the_dagster_asset_page_of_the_total_cost_mart_renders(demo, demo_config, tmp_path):
    """The real Dagster webserver on the demo's instance; a real browser opens the total-cost mart's page."""
    from browser import dom_and_console, screenshot

    root = demo_config.parent
    port = _free_port()
    environment = os.environ | {"DAGSTER_HOME": str(root / "dagster_home"), "COSTWATCH_CONFIG": str(demo_config)}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-m", "pipelines.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=root, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/server_info", server)
        # The "join the community" dialog shows once per instance; mark it seen as its Skip button does.
        request = urllib.request.Request(
            f"{base}/graphql", data=json.dumps({"query": "mutation { setNuxSeen }"}).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(request, timeout=30).read()
        # The job page lists a job's runs by its code location (Pipeline.runs): the CLI's runs are there.
        query = (
            '{ repositoryOrError(repositorySelector: {repositoryLocationName: "pipelines.definitions", '
            'repositoryName: "__repository__"}) { ... on Repository { pipelines { name runs { runId status } } } } }'
        )
        request = urllib.request.Request(
            f"{base}/graphql", data=json.dumps({"query": query}).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        jobs = json.loads(urllib.request.urlopen(request, timeout=30).read())["data"]["repositoryOrError"]["pipelines"]
        listed = {run["runId"] for job in jobs if job["name"] == "costwatch_daily" for run in job["runs"]}
        with open_instance(root / "dagster_home") as instance:
            cli_runs = {run.run_id for run in instance.get_runs(dg.RunsFilter(job_name="costwatch_daily"))}
        assert cli_runs and listed == cli_runs
        url = f"{base}/assets/fct_total_cost_daily"
        dom, _ = dom_and_console(url, tmp_path / "chrome", wait_ms=15000)
        assert "fct_total_cost_daily" in dom and "total_total_cost_usd" in dom
        assert "Join the Dagster community" not in dom
        screenshot(url, tmp_path / "dagster_total_cost_asset.png", tmp_path / "chrome", size="1400,1000", wait_ms=15000)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, "dagster-webserver exited"
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout_s} s")
