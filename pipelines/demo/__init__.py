"""Seeded demo data: gateway request logs of a team running LLM features on APIs and own GPUs,
the provider bills for the same calls, and the GPU bills, telemetry and load test of its pools.

Split by what it simulates: ``traffic`` (catalogue, plan and planted events, the true calls and the
gateway's log files), ``provider_bills`` (OpenAI/Anthropic exports and invoices), ``gpus`` (FOCUS
and GPU-hours billing, nvidia-smi telemetry, the load test) and ``manifest`` (the truth a reader
checks an ingest against). Not on the runtime path: only this package and the CLI import it.

Everything is a function of (seed, start_date, days, requests_per_day): same arguments, same
bytes. Each day draws from its own random stream keyed by (seed, date), so a day's records do
not depend on how many days were generated before it.

``build_day_frame`` returns one day's unique good records (the true calls) as a polars DataFrame
before serialisation, so later generators (provider invoices, GPU billing) can aggregate the same
truth; ``gateway_view`` turns it into what the gateway logged.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipelines.demo.gpus import GpuLedger, write_gpu
from pipelines.demo.manifest import truth_manifest, write_manifest
from pipelines.demo.provider_bills import PRICE_CATALOG_FIXTURE, BillingLedger, load_token_prices, write_billing
from pipelines.demo.traffic import plan_generation, write_gateway
from pipelines.resources.files import fixture

__all__ = ["generate"]


def generate(
    out_dir: Path,
    *,
    start_date: dt.date,
    days: int,
    requests_per_day: int,
    seed: int = 7,
    price_catalog: Path | None = None,
) -> dict:
    """Write the gateway logs, the provider billing exports and ``OUT/manifest.json``.

    Files: ``gateway/requests_<YYYY-MM-DD>.jsonl.gz`` (what the gateway logged), and per calendar
    month the range touches ``openai/costs_<YYYY-MM>.json`` (Costs API page),
    ``openai/usage_<YYYY-MM>.json`` (Usage API completions page),
    ``anthropic/cost_report_<YYYY-MM>.json`` and ``anthropic/usage_report_<YYYY-MM>.json``
    (Admin API reports), plus ``invoices/invoice_<YYYY-MM>.csv`` for each complete month (Azure
    OpenAI bills there only). The exports bill the TRUE calls (``build_day_frame``) at the
    providers' actual prices (by service tier, context tier, cache-write TTL and audio), from
    ``price_catalog`` (default: the packaged ``prices/litellm_2026_11.json``); the logs are
    ``gateway_view`` of them, so the planted ``billing_events`` separate the two.

    ``requests_per_day`` is the weekday volume at ``start_date`` (interactive plus the nightly
    batch); weekends carry 60% of the interactive part, traffic grows 0.1% a day with ~3% daily
    noise, and a user spike adds its extra requests on top. There is one file per *write* day:
    the ``days`` days of the range plus the day after, which receives late and replayed lines of
    the last day. Earlier ``requests_*.jsonl.gz`` files in ``OUT/gateway`` (and billing files in
    the billing folders) that this run does not write are removed, so a glob over a folder sees
    exactly this run.

    GPU files (``gpus`` module docstring): ``gpu_billing/focus_<YYYY-MM>.csv`` and
    ``gpu_billing/gpu_hours_<YYYY-MM>.csv`` per month,
    ``gpu_telemetry/nvidia_smi_<replica>_<day>.csv`` per interactive replica and day, and
    ``loadtest/llama-8b-h100.csv``; stale files in those folders are removed too.

    Returns the manifest (also written to ``manifest.json``): counts per file, per day and in
    total, the planted events and billing events, billed USD per provider and day, invoice
    totals, GPU billing, busy time and events (``gpu``, ``gpu_events``), and the models,
    features and pools the data uses.
    """
    plan = plan_generation(start_date=start_date, days=days, requests_per_day=requests_per_day, seed=seed)
    ledger = BillingLedger(plan, load_token_prices(price_catalog or fixture(PRICE_CATALOG_FIXTURE)))
    out_dir = Path(out_dir)
    gpu_ledger = GpuLedger(plan, out_dir)

    def add_true_day(
        day: dt.date, true_calls: pl.DataFrame, logged: pl.DataFrame, lost: pl.DataFrame, removed: dict[str, int]
    ) -> None:
        ledger.add_day(day, true_calls, logged, lost)
        gpu_ledger.add_day(day, true_calls, removed)

    files, per_day, totals = write_gateway(out_dir, plan, add_true_day)
    billing = write_billing(out_dir, plan, ledger)
    gpu, gpu_events = write_gpu(out_dir, plan, gpu_ledger)
    manifest = truth_manifest(
        plan,
        files=files,
        per_day=per_day,
        totals=totals,
        billing_events=ledger.event_manifests(),
        billing=billing,
        gpu_events=gpu_events,
        gpu=gpu,
    )
    write_manifest(out_dir, manifest)
    return manifest
