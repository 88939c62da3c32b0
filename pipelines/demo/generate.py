"""Seeded demo data: gateway request logs of a team running LLM features on APIs and own GPUs.

What the data looks like
------------------------
One gzip'd JSONL file per *write* day, ``gateway/requests_<YYYY-MM-DD>.jsonl.gz``, one canonical
gateway record per line (DESIGN.md section 1), written in arrival order:

- Interactive traffic follows a day curve (busy hour 14:00 UTC, trough around 04:00 UTC);
  Saturdays and Sundays carry 60% of a weekday's interactive traffic. A nightly batch job
  (``batch_tagging``, self-hosted Qwen) runs every day between 00:30 and 06:00 UTC.
- Six features with their own token shapes and model mixes (``FEATURES``): ``chat`` (conversations
  whose context grows turn by turn, Anthropic prompt caching), ``search_rag`` (4-12k token
  prompts, short answers), ``summarise`` (long in, medium out), ``code_assist`` (medium in and out,
  mostly cache reads), ``autocomplete`` (short, mostly self-hosted Llama) and ``batch_tagging``.
- Users are heavy-tailed (Zipf-Mandelbrot over 2,000 ids ``u_00001``..``u_02000``).
- Token convention is canonical: ``input_tokens`` counts every prompt token, cache reads
  (``cached_input_tokens``) and cache writes (``cache_creation_input_tokens``) included.
  OpenAI reads are whole multiples of 128 tokens (at least 1,024) and OpenAI never reports
  writes; Anthropic reports both; self-hosted replicas report neither.
- Delivery is at-least-once and files do not follow days: a few records from the last minutes
  of a day land in the next day's file, ~0.5% of records are delivered twice (the same line,
  sometimes in the next file), and every file has a few malformed lines of known kinds.
- Three cost-creep events are planted when the range has at least 30 days
  (``prompt_growth``, ``user_spike``, ``cache_collapse``); ``manifest.json`` records them with
  their exact days and factors, and every count a reader needs to check an ingest against.

Provider billing
----------------
The same days are billed by the providers, from the TRUE calls (``build_day_frame``): every call
with status ok that the gateway did not answer from its cache, at the provider's actual price
(the LiteLLM catalog ``fixtures/prices/model_prices.json``; ``OFF_CATALOG_PRICES`` for the preview
model the catalog lacks), bucketed by the UTC day of ``ts``. Per calendar month touched:
``openai/costs_<YYYY-MM>.json`` and ``openai/usage_<YYYY-MM>.json`` (Costs and Usage API pages,
``project_id`` = ``proj_<team>``), ``anthropic/cost_report_<YYYY-MM>.json`` (amounts in cents)
and ``anthropic/usage_report_<YYYY-MM>.json`` (``workspace_id`` = ``wrk_<team>``; uncached input
excludes cache reads and writes), and for each complete month ``invoices/invoice_<YYYY-MM>.csv``.
The log files are ``gateway_view`` of the truth, and the differences are planted and recorded
in ``manifest["billing_events"]`` with their effect in numbers: ``lost_logs`` (one day ~30% of
Anthropic calls never logged), ``unannounced_price_change`` (gpt-4o-mini billed at 1.25x to the
end of the range), ``billed_without_logs`` (a 42 USD fine-tuning line item) when the range has
at least 30 days, and on every day ``cached_tokens_double_counted`` (Haiku's logged input
counts its cache reads twice).

Self-hosted GPUs
----------------
The two pools run their replicas 24/7 and are billed whether busy or not (``POOLS``):

- ``gpu_billing/focus_<YYYY-MM>.csv``: Google Cloud's FOCUS 1.2-style cost-and-usage export for
  ``llama-8b-h100`` (4 x ``a3-highgpu-1g``, 1 H100 each, 11.06 USD per instance-hour): the FOCUS 1.0
  columns of the public sample export in its order and quoting (strings quoted, numbers and
  ``NULL`` bare), plus ``SkuPriceDetails`` (``GpuCount``, ``InstanceType``) and
  ``ServiceSubcategory``; one Usage row per replica per hour, tagged ``costwatch-pool`` /
  ``costwatch-replica``, and two non-GPU rows per month (a disk, internet egress) with no pool tag.
- ``gpu_billing/gpu_hours_<YYYY-MM>.csv``: ``day,pool,replica_id,gpu_type,gpu_count,hours,usd`` for
  ``qwen-32b-a100`` (2 replicas x 2 A100, 1.29 USD per GPU-hour), one row per replica per day.
- ``gpu_telemetry/nvidia_smi_<replica_id>_<YYYY-MM-DD>.csv``: ``nvidia-smi --format=csv`` logs of
  every ``llama-8b-h100`` replica, one sample a minute; utilization.gpu is the share of that minute
  covered by the union of the replica's calls [ts, ts + duration_ms] (true calls, which for the
  self-hosted pools are exactly the logged ones), stochastically rounded, plus rare 1-point blips.
- ``loadtest/llama-8b-h100.csv``: throughput and latency against batch size on one replica, in
  the columns of the public H200 batching curve; the 5 s latency SLO cuts it at batch 64.

``manifest["gpu"]`` holds billed GPU-hours and USD per pool and day, busy minutes per replica and
day from the telemetry, each day's busiest hour, and the load test's SLO cut. Two findings are
planted with at least 30 days and recorded in ``manifest["gpu_events"]``: ``over_provisioned_pool``
(``llama-8b-h100`` billed for 4 replicas while its busiest hour needs 1 at the SLO rate with 30%
headroom) and ``idle_weekend`` (the nightly batch job skips one Saturday and Sunday: no
``qwen-32b-a100`` calls in the truth nor the logs, full billing).

Everything is a function of (seed, start_date, days, requests_per_day): same arguments, same
bytes. Each day draws from its own random stream keyed by (seed, date), so a day's records do
not depend on how many days were generated before it.

``build_day_frame`` returns one day's unique good records (the true calls) as a polars DataFrame
before serialisation, so later generators (provider invoices, GPU billing) can aggregate the same
truth; ``gateway_view`` turns it into what the gateway logged.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

MANIFEST_VERSION = 3  # 2: provider billing exports, billing_events, lost_records;
#                        3: GPU billing, GPU telemetry, load test, gpu_events, manifest["gpu"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

# ---------------------------------------------------------------------------------------------
# Catalogue: models, pools, features
# ---------------------------------------------------------------------------------------------

PROVIDER_OPENAI = "openai"
PROVIDER_ANTHROPIC = "anthropic"
PROVIDER_SELF_HOSTED = "self_hosted"


@dataclass(frozen=True)
class ModelSpec:
    """A model the gateway routes to, with the latency shape used to fake ``duration_ms``."""

    name: str
    provider: str
    pool: str | None  # self-hosted serving pool; None for API models
    in_price_catalog: bool  # key present in fixtures/prices/model_prices.json
    time_to_first_token_ms: float
    ms_per_output_token: float
    ms_per_1k_uncached_input_tokens: float
    # Providers ignore prompt caching below this prompt length (Anthropic: 1,024 for Sonnet,
    # 2,048 for Haiku; OpenAI: 1,024).
    min_cacheable_prompt_tokens: int


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gpt-4o-2024-08-06", PROVIDER_OPENAI, None, True, 450, 11, 35, 1024),
    ModelSpec("gpt-4o-mini", PROVIDER_OPENAI, None, True, 350, 7, 20, 1024),
    ModelSpec("gpt-4.1-mini", PROVIDER_OPENAI, None, True, 380, 8, 20, 1024),
    # Deliberately absent from the price catalog so the pipeline's "unpriced" path has data.
    ModelSpec("gpt-experimental-preview", PROVIDER_OPENAI, None, False, 700, 15, 40, 1024),
    ModelSpec("claude-3-5-sonnet-20241022", PROVIDER_ANTHROPIC, None, True, 650, 13, 40, 1024),
    ModelSpec("claude-3-5-haiku-20241022", PROVIDER_ANTHROPIC, None, True, 450, 8, 25, 2048),
    # Self-hosted models are priced by GPU-hours, not tokens: not in the catalog on purpose.
    ModelSpec("llama-3.1-8b-instruct", PROVIDER_SELF_HOSTED, "llama-8b-h100", False, 120, 9, 15, 0),
    ModelSpec("qwen2.5-32b-instruct", PROVIDER_SELF_HOSTED, "qwen-32b-a100", False, 300, 28, 60, 0),
)
MODEL_BY_NAME = {model.name: model for model in MODELS}
UNPRICED_API_MODEL = "gpt-experimental-preview"


@dataclass(frozen=True)
class PoolSpec:
    """A self-hosted serving pool: one model on identical GPU replicas."""

    name: str
    model: str
    replica_count: int
    gpu_type: str
    gpus_per_replica: int
    workload: str

    @property
    def replica_ids(self) -> list[str]:
        return [f"{self.name}-r{index}" for index in range(self.replica_count)]


POOLS: tuple[PoolSpec, ...] = (
    PoolSpec("llama-8b-h100", "llama-3.1-8b-instruct", 4, "H100", 1, "interactive"),
    # A 32B model in bf16 plus KV cache does not fit one 80 GB A100.
    PoolSpec("qwen-32b-a100", "qwen2.5-32b-instruct", 2, "A100", 2, "batch"),
)
POOL_BY_NAME = {pool.name: pool for pool in POOLS}


@dataclass(frozen=True)
class PromptDraw:
    """Prompt sizes for a batch of requests of one feature (tokens)."""

    input_tokens: np.ndarray  # all prompt tokens
    cacheable_prefix_tokens: np.ndarray  # leading tokens identical to a recent prompt (<= input)


def _lognormal_tokens(
    rng: np.random.Generator, median: float, sigma: float, size: int, low: int, high: int
) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(np.log(median), sigma, size)), low, high).astype(np.int64)


def _chat_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # A conversation re-sends the system prompt and every earlier turn, so the prompt grows with
    # the turn number; everything before the new user message is a reusable prefix.
    system_prompt_tokens = 1_350 + rng.integers(0, 120, size)
    turn_number = np.minimum(rng.geometric(0.28, size), 40)
    earlier_turns_tokens = np.rint((turn_number - 1) * rng.lognormal(np.log(330), 0.35, size)).astype(np.int64)
    new_message_tokens = _lognormal_tokens(rng, 90, 0.9, size, 3, 4_000)
    prefix = system_prompt_tokens + earlier_turns_tokens
    return PromptDraw(prefix + new_message_tokens, prefix)


def _search_rag_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # Retrieved passages differ per query; only the instructions in front are shared.
    input_tokens = _lognormal_tokens(rng, 7_000, 0.28, size, 4_000, 12_000)
    return PromptDraw(input_tokens, np.minimum(np.full(size, 1_150, dtype=np.int64), input_tokens))


def _summarise_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # Each document is new; the short instruction block is below every provider's cache minimum.
    input_tokens = _lognormal_tokens(rng, 5_200, 0.6, size, 600, 90_000)
    return PromptDraw(input_tokens, np.minimum(np.full(size, 700, dtype=np.int64), input_tokens))


def _code_assist_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # Repository context is re-sent on every edit, so most of the prompt is a reusable prefix.
    input_tokens = _lognormal_tokens(rng, 3_400, 0.55, size, 600, 60_000)
    prefix = np.rint(input_tokens * rng.uniform(0.55, 0.9, size)).astype(np.int64)
    return PromptDraw(input_tokens, prefix)


def _autocomplete_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    input_tokens = _lognormal_tokens(rng, 650, 0.5, size, 50, 8_000)
    return PromptDraw(input_tokens, input_tokens // 2)


def _batch_tagging_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    input_tokens = _lognormal_tokens(rng, 450, 0.4, size, 60, 4_000)
    return PromptDraw(input_tokens, np.zeros(size, dtype=np.int64))


@dataclass(frozen=True)
class FeatureProfile:
    """A product feature: who owns it, how much traffic it gets, its token shape and model mix."""

    name: str
    team: str
    workload: str  # "interactive" or "batch"
    share_of_interactive_requests: float  # 0 for the batch feature
    model_mix: tuple[tuple[str, float], ...]  # (model name, share of this feature's requests)
    draw_prompts: Callable[[np.random.Generator, int], PromptDraw]
    output_median_tokens: float
    output_sigma: float
    output_max_tokens: int
    prompt_cache_warm_ratio: float  # share of requests whose prefix is still in the provider cache
    # Anthropic: share of the non-prefix tail written to the cache for the next call.
    cache_write_tail_ratio: float
    gateway_cache_hit_ratio: float  # exact-repeat prompts answered by the gateway's cache
    job: str | None = None  # tags.job for batch jobs


FEATURES: tuple[FeatureProfile, ...] = (
    FeatureProfile(
        "chat",
        "assistant",
        "interactive",
        0.38,
        (
            ("claude-3-5-sonnet-20241022", 0.40),
            ("claude-3-5-haiku-20241022", 0.12),
            ("gpt-4o-mini", 0.22),
            ("gpt-4o-2024-08-06", 0.10),
            ("llama-3.1-8b-instruct", 0.154),
            # ~0.2% of all requests: an A/B experiment on an unreleased, unpriced model.
            (UNPRICED_API_MODEL, 0.006),
        ),
        _chat_prompts,
        280,
        0.7,
        4_000,
        0.85,
        1.0,
        0.02,
    ),
    FeatureProfile(
        "search_rag",
        "search",
        "interactive",
        0.22,
        (("gpt-4o-mini", 0.55), ("gpt-4.1-mini", 0.30), ("gpt-4o-2024-08-06", 0.15)),
        _search_rag_prompts,
        150,
        0.5,
        1_500,
        0.6,
        0.0,
        0.09,
    ),
    FeatureProfile(
        "summarise",
        "docs",
        "interactive",
        0.10,
        (("claude-3-5-haiku-20241022", 0.45), ("gpt-4o-mini", 0.35), ("claude-3-5-sonnet-20241022", 0.20)),
        _summarise_prompts,
        420,
        0.45,
        4_000,
        0.5,
        0.0,
        0.03,
    ),
    FeatureProfile(
        "code_assist",
        "devtools",
        "interactive",
        0.13,
        (("claude-3-5-sonnet-20241022", 0.60), ("gpt-4.1-mini", 0.25), ("gpt-4o-2024-08-06", 0.15)),
        _code_assist_prompts,
        360,
        0.65,
        8_000,
        0.92,
        0.5,
        0.02,
    ),
    FeatureProfile(
        "autocomplete",
        "devtools",
        "interactive",
        0.17,
        (("llama-3.1-8b-instruct", 0.85), ("gpt-4o-mini", 0.15)),
        _autocomplete_prompts,
        38,
        0.6,
        512,
        0.7,
        0.0,
        0.07,
    ),
    FeatureProfile(
        "batch_tagging",
        "data",
        "batch",
        0.0,
        (("qwen2.5-32b-instruct", 1.0),),
        _batch_tagging_prompts,
        24,
        0.35,
        200,
        0.0,
        0.0,
        0.0,
        job="nightly_tagging",
    ),
)
FEATURE_BY_NAME = {feature.name: feature for feature in FEATURES}
BATCH_FEATURE = "batch_tagging"

# ---------------------------------------------------------------------------------------------
# Traffic shape and delivery faults
# ---------------------------------------------------------------------------------------------

# Relative interactive traffic per UTC hour: busy hour 14:00, trough 04:00.
INTERACTIVE_HOURLY_WEIGHTS = np.array(
    [
        0.30,
        0.22,
        0.16,
        0.12,
        0.10,
        0.11,
        0.15,
        0.25,
        0.42,
        0.60,
        0.74,
        0.84,
        0.90,
        0.95,
        1.00,
        0.97,
        0.90,
        0.82,
        0.74,
        0.66,
        0.58,
        0.50,
        0.43,
        0.36,
    ]
)
BATCH_WINDOW_START_MS = 30 * MINUTE_MS  # nightly batch job, 00:30-06:00 UTC
BATCH_WINDOW_END_MS = 6 * HOUR_MS

BATCH_SHARE_OF_WEEKDAY = 0.12  # the nightly job's volume, as a share of a weekday's requests
WEEKEND_INTERACTIVE_RATIO = 0.6
DAILY_GROWTH_RATIO = 0.001  # organic growth of all traffic per day
DAILY_VOLUME_SIGMA = 0.03  # day-to-day noise (lognormal sigma) on top of weekday/weekend

USER_COUNT = 2_000
# Zipf-Mandelbrot weight 1 / (rank + offset) ** exponent: top user ~5% of requests,
# top 1% of users ~38%, bottom half of users ~7%.
USER_RANK_OFFSET = 5
USER_RANK_EXPONENT = 1.2
MISSING_USER_RATIO = 0.03
MISSING_FEATURE_RATIO = 0.01

ERROR_RATIO_BY_PROVIDER = {PROVIDER_OPENAI: 0.008, PROVIDER_ANTHROPIC: 0.013, PROVIDER_SELF_HOSTED: 0.01}

# Delivery: the gateway flushes a record once the call ends; around midnight some records wait
# for the next flush and land in the next day's file.
LATE_WINDOW_MS = 10 * MINUTE_MS
LATE_RAMP = 1.5  # late probability rises from 0 at 23:50 to 1 at 23:56:40 and stays there
LATE_FLUSH_MAX_MS = 15 * MINUTE_MS
DUPLICATE_RATIO = 0.005
DUPLICATE_REPLAY_RATIO = 0.15  # duplicates replayed hours later (often into the next file)

MALFORMED_RATIO = 0.0001
MIN_MALFORMED_PER_FILE = 3
MALFORMED_KINDS = (
    "truncated_json",
    "garbage_text",
    "missing_request_id",
    "negative_output_tokens",
    "cached_exceeds_input",
    "bad_timestamp",
)
GARBAGE_LINES = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
    "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>",
    "WARN gateway.flush: buffer overflow, dropped 17 spans",
)

# Events are planted only when there is history to compare against.
MIN_DAYS_FOR_EVENTS = 30
MIN_EVENT_OFFSET_DAYS = 14
USER_SPIKE_DAYS = 3
USER_SPIKE_RANK = 40  # a mid-sized customer, so a x20 jump stands out

# Provider billing (``OUT/openai``, ``OUT/anthropic``, ``OUT/invoices``): what the providers
# bill for the TRUE calls, at their actual prices. Token prices come from the LiteLLM catalog.
PRICE_CATALOG_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "prices" / "model_prices.json"
BILLED_PROVIDERS = (PROVIDER_ANTHROPIC, PROVIDER_OPENAI)
# What OpenAI bills for the preview model the catalog does not know (USD per token): billed
# money the pipeline cannot estimate, so the reconciliation shows it as unpriced spend.
OFF_CATALOG_PRICES = {
    UNPRICED_API_MODEL: {
        "input_cost_per_token": "0.000005",
        "cache_read_input_token_cost": "0.0000025",
        "output_cost_per_token": "0.00002",
    },
}
USD_QUANTUM = Decimal("1e-10")  # every billed amount is rounded to 10 decimals of a dollar
# Planted billing discrepancies (kinds in ``manifest["billing_events"]``).
LOST_LOGS_RATIO = 0.30  # share of the day's Anthropic calls the gateway never logged
PRICE_CHANGE_MODEL = "gpt-4o-mini"
PRICE_CHANGE_FACTOR = Decimal("1.25")
FINE_TUNING_LINE_ITEM = "fine-tuning training, gpt-4o-mini-2024-07-18"
FINE_TUNING_MODEL = "gpt-4o-mini-2024-07-18"
FINE_TUNING_PROJECT = "data"  # project proj_data: a team with no OpenAI gateway traffic
FINE_TUNING_USD = Decimal("42.00")
DOUBLE_COUNTED_CACHE_MODEL = "claude-3-5-haiku-20241022"

# Self-hosted GPUs (``OUT/gpu_billing``, ``OUT/gpu_telemetry``, ``OUT/loadtest``). Replicas run
# 24/7 whether busy or not. The interactive pool is billed by Google Cloud in a FOCUS export and
# has nvidia-smi telemetry; the batch pool is billed in a simple GPU-hours CSV.
FOCUS_POOL = "llama-8b-h100"
GPU_HOURS_CSV_POOL = "qwen-32b-a100"
FOCUS_INSTANCE_TYPE = "a3-highgpu-1g"
FOCUS_USD_PER_INSTANCE_HOUR = Decimal("11.06")
GPU_HOURS_USD_PER_GPU_HOUR = Decimal("1.29")
GPU_NAME = "NVIDIA H100 80GB HBM3"  # as nvidia-smi names it
GPU_MEMORY_TOTAL_MIB = 81_559
# vLLM-style serving keeps weights, CUDA context and a fixed KV-cache block pool resident.
GPU_MEMORY_USED_MIB = 16_872
GPU_PCI_BUS_ID = "00000000:04:00.0"  # one GPU per a3-highgpu-1g VM
TELEMETRY_SAMPLE_MS = MINUTE_MS
MINUTES_PER_DAY = DAY_MS // MINUTE_MS
TELEMETRY_BLIP_RATIO = 0.02  # samples reading 1 point above the true busy share (idle: 1 %)
LATENCY_SLO_S = 5
CAPACITY_HEADROOM = Decimal("0.3")
LOADTEST_BATCH_SIZES = tuple(2**power for power in range(9))  # 1..256
NON_GPU_ROWS_PER_MONTH = 2

# Random streams: each (seed, stream, key) gets its own generator.
_STREAM_USERS = 1
_STREAM_DAY = 2
_STREAM_MALFORMED = 3
_STREAM_LOST_LOGS = 4
_STREAM_TELEMETRY = 5

_WRITE_CHUNK_ROWS = 100_000

# ---------------------------------------------------------------------------------------------
# The plan: everything that is fixed for the whole range
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantedEvent:
    """A cost-creep event hidden in the data; ``end_day`` is inclusive, None = to the end."""

    kind: str
    start_day: dt.date
    end_day: dt.date | None
    factor: float
    description: str
    feature: str | None = None
    user_id: str | None = None

    def active_on(self, day: dt.date) -> bool:
        return self.start_day <= day and (self.end_day is None or day <= self.end_day)

    def to_manifest(self) -> dict:
        return {
            "kind": self.kind,
            "feature": self.feature,
            "user_id": self.user_id,
            "start_day": self.start_day.isoformat(),
            "end_day": self.end_day.isoformat() if self.end_day else None,
            "factor": self.factor,
            "description": self.description,
        }


@dataclass(frozen=True)
class BillingEvent:
    """A planted disagreement between gateway logs and provider bills; days are inclusive."""

    kind: str
    provider: str
    start_day: dt.date
    end_day: dt.date
    description: str
    model: str | None = None
    line_item: str | None = None
    factor: float | None = None
    project_id: str | None = None

    def active_on(self, day: dt.date) -> bool:
        return self.start_day <= day <= self.end_day

    def to_manifest(self, effect: dict) -> dict:
        return {
            "kind": self.kind,
            "provider": self.provider,
            "model": self.model,
            "line_item": self.line_item,
            "project_id": self.project_id,
            "start_day": self.start_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "factor": self.factor,
            "description": self.description,
            "effect": effect,
        }


@dataclass(frozen=True)
class GpuEvent:
    """A planted GPU finding on a self-hosted pool; days are inclusive."""

    kind: str
    pool: str
    start_day: dt.date
    end_day: dt.date
    description: str

    def active_on(self, day: dt.date) -> bool:
        return self.start_day <= day <= self.end_day

    def to_manifest(self, effect: dict) -> dict:
        return {
            "kind": self.kind,
            "pool": self.pool,
            "start_day": self.start_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "description": self.description,
            "effect": effect,
        }


@dataclass(frozen=True)
class GenerationPlan:
    """Arguments plus what is drawn once per range: user ids by popularity and the events."""

    start_date: dt.date
    days: int
    requests_per_day: int
    seed: int
    user_ids_by_rank: tuple[str, ...]
    user_rank_weights: np.ndarray = field(compare=False, repr=False)  # sums to 1
    events: tuple[PlantedEvent, ...] = ()
    billing_events: tuple[BillingEvent, ...] = ()
    gpu_events: tuple[GpuEvent, ...] = ()

    @property
    def end_date(self) -> dt.date:
        """Last day whose requests are generated (inclusive)."""
        return self.start_date + dt.timedelta(days=self.days - 1)

    @property
    def record_days(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=offset) for offset in range(self.days)]

    @property
    def write_days(self) -> list[dt.date]:
        """Days that get a file: the range plus one, for late and replayed deliveries."""
        return [self.start_date + dt.timedelta(days=offset) for offset in range(self.days + 1)]

    def events_of(self, kind: str, day: dt.date) -> list[PlantedEvent]:
        return [event for event in self.events if event.kind == kind and event.active_on(day)]

    def billing_events_of(self, kind: str, day: dt.date) -> list[BillingEvent]:
        return [event for event in self.billing_events if event.kind == kind and event.active_on(day)]

    def gpu_events_of(self, kind: str, day: dt.date) -> list[GpuEvent]:
        return [event for event in self.gpu_events if event.kind == kind and event.active_on(day)]


def plan_generation(*, start_date: dt.date, days: int, requests_per_day: int, seed: int = 7) -> GenerationPlan:
    """Fix users and planted events for a range; deterministic in its arguments."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if requests_per_day < 1:
        raise ValueError(f"requests_per_day must be >= 1, got {requests_per_day}")
    rng = np.random.default_rng([seed, _STREAM_USERS])
    # Popularity is not alphabetical: shuffle which id holds which rank.
    user_numbers = rng.permutation(USER_COUNT) + 1
    user_ids_by_rank = tuple(f"u_{number:05d}" for number in user_numbers)
    ranks = np.arange(1, USER_COUNT + 1)
    weights = 1.0 / (ranks + USER_RANK_OFFSET) ** USER_RANK_EXPONENT
    weights /= weights.sum()
    events = _plant_events(start_date, days, user_ids_by_rank[USER_SPIKE_RANK - 1])
    return GenerationPlan(
        start_date=start_date,
        days=days,
        requests_per_day=requests_per_day,
        seed=seed,
        user_ids_by_rank=user_ids_by_rank,
        user_rank_weights=weights,
        events=events,
        billing_events=_plant_billing_events(start_date, days, events),
        gpu_events=_plant_gpu_events(start_date, days),
    )


def _plant_events(start_date: dt.date, days: int, spike_user_id: str) -> tuple[PlantedEvent, ...]:
    if days < MIN_DAYS_FOR_EVENTS:
        return ()

    def day_at(fraction: float) -> dt.date:
        return start_date + dt.timedelta(days=max(MIN_EVENT_OFFSET_DAYS, int(days * fraction)))

    spike_start = day_at(0.60)
    return (
        PlantedEvent(
            kind="prompt_growth",
            feature="summarise",
            start_day=day_at(0.40),
            end_day=None,
            factor=3.0,
            description="summarise sends whole documents: input tokens per request x3 "
            "(the cacheable instruction prefix is unchanged)",
        ),
        PlantedEvent(
            kind="user_spike",
            user_id=spike_user_id,
            start_day=spike_start,
            end_day=spike_start + dt.timedelta(days=USER_SPIKE_DAYS - 1),
            factor=20.0,
            description="one user's script loops: the user's requests x20, spread evenly over "
            "the day across the interactive features",
        ),
        PlantedEvent(
            kind="cache_collapse",
            feature="code_assist",
            start_day=day_at(0.75),
            end_day=None,
            factor=0.0,
            description="code_assist prompt-cache reads drop to 0: former cache reads are billed "
            "as uncached input (input_tokens unchanged, cached_input_tokens = 0)",
        ),
    )


def _plant_billing_events(
    start_date: dt.date, days: int, creep_events: tuple[PlantedEvent, ...]
) -> tuple[BillingEvent, ...]:
    """Bills versus logs. The double count is how the gateway logs Haiku, so it is on every day
    of every range (a day's log lines then depend only on (seed, day)); the others need history.
    """
    end_date = start_date + dt.timedelta(days=days - 1)
    double_count = BillingEvent(
        kind="cached_tokens_double_counted",
        provider=PROVIDER_ANTHROPIC,
        start_day=start_date,
        end_day=end_date,
        model=DOUBLE_COUNTED_CACHE_MODEL,
        factor=None,
        description="the gateway logs this model's input_tokens as true input + "
        "cached_input_tokens (cache reads counted twice); bills and usage carry the "
        "true counts",
    )
    if days < MIN_DAYS_FOR_EVENTS:
        return (double_count,)
    taken = {event.start_day for event in creep_events}

    def free_day_at(fraction: float) -> dt.date:
        day = start_date + dt.timedelta(days=max(MIN_EVENT_OFFSET_DAYS, int(days * fraction)))
        while day in taken:  # never on the day a cost-creep event starts
            day += dt.timedelta(days=1)
        taken.add(day)
        return day

    lost_day = free_day_at(0.50)
    fine_tuning_day = free_day_at(0.55)
    price_change_start = free_day_at(0.85)
    return (
        BillingEvent(
            kind="lost_logs",
            provider=PROVIDER_ANTHROPIC,
            start_day=lost_day,
            end_day=lost_day,
            factor=LOST_LOGS_RATIO,
            description=f"~{LOST_LOGS_RATIO:.0%} of the day's Anthropic calls never reached the "
            "gateway log files (nor their duplicates); bills and usage include them",
        ),
        BillingEvent(
            kind="unannounced_price_change",
            provider=PROVIDER_OPENAI,
            start_day=price_change_start,
            end_day=end_date,
            model=PRICE_CHANGE_MODEL,
            factor=float(PRICE_CHANGE_FACTOR),
            description=f"OpenAI bills {PRICE_CHANGE_MODEL} at {PRICE_CHANGE_FACTOR}x the catalog "
            "price for every token kind; the price catalog does not know",
        ),
        BillingEvent(
            kind="billed_without_logs",
            provider=PROVIDER_OPENAI,
            start_day=fine_tuning_day,
            end_day=fine_tuning_day,
            model=FINE_TUNING_MODEL,
            line_item=FINE_TUNING_LINE_ITEM,
            project_id=f"proj_{FINE_TUNING_PROJECT}",
            description=f"a {FINE_TUNING_USD} USD fine-tuning job billed by OpenAI with no gateway traffic behind it",
        ),
        double_count,
    )


def _plant_gpu_events(start_date: dt.date, days: int) -> tuple[GpuEvent, ...]:
    """GPU findings: the interactive pool is billed for more replicas than its peak needs (the
    whole range), and the nightly batch job skips one full weekend while its GPUs stay billed."""
    if days < MIN_DAYS_FOR_EVENTS:
        return ()
    end_date = start_date + dt.timedelta(days=days - 1)
    first = start_date + dt.timedelta(days=max(MIN_EVENT_OFFSET_DAYS, int(days * 0.3)))
    saturday = first + dt.timedelta(days=(5 - first.weekday()) % 7)
    sunday = saturday + dt.timedelta(days=1)
    assert sunday <= end_date, "a 30-day range always holds a weekend after day 14"
    interactive = POOL_BY_NAME[FOCUS_POOL]
    batch = POOL_BY_NAME[GPU_HOURS_CSV_POOL]
    return (
        GpuEvent(
            kind="over_provisioned_pool",
            pool=interactive.name,
            start_day=start_date,
            end_day=end_date,
            description=f"{interactive.name} is billed for {interactive.replica_count} replicas "
            "around the clock while its busiest hour needs far fewer at the load "
            "test's SLO rate (with headroom)",
        ),
        GpuEvent(
            kind="idle_weekend",
            pool=batch.name,
            start_day=saturday,
            end_day=sunday,
            description=f"the nightly {BATCH_FEATURE} job on {batch.name} does not run on "
            "Saturday and Sunday (no calls in the logs nor in the truth), but its "
            "replicas are billed as usual",
        ),
    )


# ---------------------------------------------------------------------------------------------
# One day's records
# ---------------------------------------------------------------------------------------------

_MODEL_NAMES = [model.name for model in MODELS]
_MODEL_INDEX = {name: index for index, name in enumerate(_MODEL_NAMES)}
_PROVIDERS = sorted({model.provider for model in MODELS})
_MODEL_PROVIDER_CODE = np.array([_PROVIDERS.index(model.provider) for model in MODELS])
_MODEL_MIN_CACHEABLE = np.array([model.min_cacheable_prompt_tokens for model in MODELS])
_MODEL_TTFT_MS = np.array([model.time_to_first_token_ms for model in MODELS])
_MODEL_MS_PER_OUTPUT = np.array([model.ms_per_output_token for model in MODELS])
_MODEL_MS_PER_1K_INPUT = np.array([model.ms_per_1k_uncached_input_tokens for model in MODELS])
_MODEL_POOL = [model.pool for model in MODELS]
_MODEL_REPLICA_COUNT = np.array([POOL_BY_NAME[model.pool].replica_count if model.pool else 0 for model in MODELS])
_FEATURE_NAMES = [feature.name for feature in FEATURES]
_INTERACTIVE_FEATURE_CODES = np.array(
    [code for code, feature in enumerate(FEATURES) if feature.workload == "interactive"]
)
_INTERACTIVE_FEATURE_SHARES = np.array(
    [FEATURES[code].share_of_interactive_requests for code in _INTERACTIVE_FEATURE_CODES]
)
_INTERACTIVE_FEATURE_SHARES = _INTERACTIVE_FEATURE_SHARES / _INTERACTIVE_FEATURE_SHARES.sum()

# Schema of the frame ``build_day_frame`` returns (canonical fields first, then helpers).
DAY_FRAME_SCHEMA = {
    "request_id": pl.String,
    "ts": pl.Datetime("ms", "UTC"),
    "duration_ms": pl.Int64,
    "provider": pl.String,
    "model": pl.String,
    "feature": pl.String,  # null = field omitted in the JSON line
    "user_id": pl.String,  # null = field omitted in the JSON line
    "input_tokens": pl.Int64,
    "cached_input_tokens": pl.Int64,
    "cache_creation_input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "gateway_cache_hit": pl.Boolean,
    "status": pl.String,
    "pool": pl.String,  # null for API models (JSON null)
    "replica_id": pl.String,  # null for API models and gateway cache hits (JSON null)
    "workload": pl.String,
    "team": pl.String,  # tags.team
    "job": pl.String,  # tags.job, batch only
    "arrival_ts": pl.Datetime("ms", "UTC"),  # when the line reached a file; file day = its UTC day
    "duplicate_arrival_ts": pl.Datetime("ms", "UTC"),  # second delivery of the same line, or null
}


def daily_request_counts(plan: GenerationPlan, day: dt.date, rng: np.random.Generator) -> tuple[int, int, int]:
    """(interactive, batch, extra spike) request counts for a day, before delivery faults."""
    growth = (1 + DAILY_GROWTH_RATIO) ** (day - plan.start_date).days
    weekday_ratio = WEEKEND_INTERACTIVE_RATIO if day.weekday() >= 5 else 1.0
    interactive_mean = (
        plan.requests_per_day
        * (1 - BATCH_SHARE_OF_WEEKDAY)
        * weekday_ratio
        * growth
        * rng.lognormal(0.0, DAILY_VOLUME_SIGMA)
    )
    batch_mean = plan.requests_per_day * BATCH_SHARE_OF_WEEKDAY * growth * rng.lognormal(0.0, DAILY_VOLUME_SIGMA)
    interactive_count = int(rng.poisson(interactive_mean))
    batch_count = int(rng.poisson(batch_mean))
    spike_count = 0
    for event in plan.events_of("user_spike", day):
        rank = plan.user_ids_by_rank.index(event.user_id)
        usual_requests = (interactive_count + batch_count) * plan.user_rank_weights[rank]
        spike_count += int(round((event.factor - 1) * usual_requests))
    return interactive_count, batch_count, spike_count


def build_day_frame(plan: GenerationPlan, day: dt.date) -> pl.DataFrame:
    """Every unique good record whose UTC ``ts`` falls on ``day``, sorted by ``ts``.

    Columns are ``DAY_FRAME_SCHEMA``: the canonical fields (null ``feature``/``user_id`` mean the
    field is omitted from the JSON line) plus ``team``/``job`` (the tags), ``arrival_ts`` (the
    file a line lands in is the UTC day of its arrival) and ``duplicate_arrival_ts`` (a second
    delivery of the identical line, or null).
    """
    return _true_day_frame(plan, day)[0]


def _true_day_frame(plan: GenerationPlan, day: dt.date) -> tuple[pl.DataFrame, dict[str, int]]:
    """``build_day_frame`` plus the calls an idle pool did not make: {pool: removed records}.

    A pool's idle day removes its rows after every draw, so the day's other records are the same
    as without the event.
    """
    rng = np.random.default_rng([plan.seed, _STREAM_DAY, day.toordinal()])
    interactive_count, batch_count, spike_count = daily_request_counts(plan, day, rng)
    requests = _draw_requests(plan, day, rng, interactive_count, batch_count, spike_count, request_id_tag="")
    frame = _add_delivery(requests, day, rng)
    removed: dict[str, int] = {}
    for event in plan.gpu_events_of("idle_weekend", day):
        idle = (pl.col("pool") == event.pool).fill_null(False)
        removed[event.pool] = frame.select(idle.sum()).item()
        frame = frame.filter(~idle)
    return frame, removed


def _draw_requests(
    plan: GenerationPlan,
    day: dt.date,
    rng: np.random.Generator,
    interactive_count: int,
    batch_count: int,
    spike_count: int,
    request_id_tag: str,
) -> dict[str, np.ndarray | pl.Series]:
    """Draw the requests of one day as column arrays (no delivery columns yet)."""
    row_count = interactive_count + batch_count + spike_count
    batch_code = _FEATURE_NAMES.index(BATCH_FEATURE)

    feature_code = np.concatenate(
        [
            rng.choice(_INTERACTIVE_FEATURE_CODES, interactive_count, p=_INTERACTIVE_FEATURE_SHARES),
            np.full(batch_count, batch_code),
            rng.choice(_INTERACTIVE_FEATURE_CODES, spike_count, p=_INTERACTIVE_FEATURE_SHARES),
        ]
    )
    hourly_weights = INTERACTIVE_HOURLY_WEIGHTS / INTERACTIVE_HOURLY_WEIGHTS.sum()
    ms_of_day = np.concatenate(
        [
            rng.choice(24, size=interactive_count, p=hourly_weights) * HOUR_MS
            + rng.integers(0, HOUR_MS, interactive_count),
            rng.integers(BATCH_WINDOW_START_MS, BATCH_WINDOW_END_MS, batch_count),
            # A looping script ignores the working day.
            rng.integers(0, DAY_MS, spike_count),
        ]
    )
    user_rank = np.concatenate(
        [
            rng.choice(USER_COUNT, size=interactive_count + batch_count, p=plan.user_rank_weights),
            np.full(spike_count, _spike_user_rank(plan, day)),
        ]
    )
    # Put rows in time order now, while only three columns exist, so the frame needs no sort.
    time_order = np.argsort(ms_of_day, kind="stable")
    feature_code, ms_of_day, user_rank = (feature_code[time_order], ms_of_day[time_order], user_rank[time_order])
    del time_order

    model_code = np.empty(row_count, dtype=np.int64)
    input_tokens = np.empty(row_count, dtype=np.int64)
    prefix_tokens = np.empty(row_count, dtype=np.int64)
    output_tokens = np.empty(row_count, dtype=np.int64)
    cache_warm = np.empty(row_count, dtype=bool)
    tail_write_ratio = np.empty(row_count)
    gateway_cache_hit = np.empty(row_count, dtype=bool)
    for code, feature in enumerate(FEATURES):
        rows = np.flatnonzero(feature_code == code)
        if rows.size == 0:
            continue
        mix_codes = np.array([_MODEL_INDEX[name] for name, _ in feature.model_mix])
        mix_shares = np.array([share for _, share in feature.model_mix])
        model_code[rows] = rng.choice(mix_codes, size=rows.size, p=mix_shares / mix_shares.sum())
        prompts = feature.draw_prompts(rng, rows.size)
        input_tokens[rows] = prompts.input_tokens
        prefix_tokens[rows] = prompts.cacheable_prefix_tokens
        output_tokens[rows] = _lognormal_tokens(
            rng, feature.output_median_tokens, feature.output_sigma, rows.size, 1, feature.output_max_tokens
        )
        cache_warm[rows] = rng.random(rows.size) < feature.prompt_cache_warm_ratio
        tail_write_ratio[rows] = feature.cache_write_tail_ratio
        gateway_cache_hit[rows] = rng.random(rows.size) < feature.gateway_cache_hit_ratio

    for event in plan.events_of("prompt_growth", day):
        grown = feature_code == _FEATURE_NAMES.index(event.feature)
        # The extra tokens are document text after the shared prefix, so the prefix is unchanged.
        input_tokens[grown] = np.rint(input_tokens[grown] * event.factor).astype(np.int64)

    cached_input_tokens, cache_creation_input_tokens = _prompt_cache_tokens(
        model_code, input_tokens, prefix_tokens, cache_warm, tail_write_ratio
    )

    for event in plan.events_of("cache_collapse", day):
        collapsed = feature_code == _FEATURE_NAMES.index(event.feature)
        cached_input_tokens[collapsed] = np.rint(cached_input_tokens[collapsed] * event.factor).astype(np.int64)

    provider_code = _MODEL_PROVIDER_CODE[model_code]
    error_ratio = np.array([ERROR_RATIO_BY_PROVIDER[provider] for provider in _PROVIDERS])[provider_code]
    is_error = (rng.random(row_count) < error_ratio) & ~gateway_cache_hit
    # A failed call produced nothing and the provider reports no cache usage for it.
    output_tokens[is_error] = 0
    cached_input_tokens[is_error] = 0
    cache_creation_input_tokens[is_error] = 0

    duration_ms = _duration_ms(
        rng, model_code, input_tokens, cached_input_tokens, output_tokens, gateway_cache_hit, is_error
    )

    replica_number = np.floor(rng.random(row_count) * np.maximum(_MODEL_REPLICA_COUNT[model_code], 1)).astype(np.int64)
    feature_omitted = rng.random(row_count) < MISSING_FEATURE_RATIO
    user_omitted = rng.random(row_count) < MISSING_USER_RATIO
    # Ids are unique within a day by construction and carry the day, so unique across days.
    sequence = rng.permutation(row_count)

    day_start_ms = _epoch_ms(day)
    feature_names = pl.Series(_FEATURE_NAMES, dtype=pl.String).gather(feature_code)
    return {
        "request_id": _request_ids(day, request_id_tag, sequence),
        "ts_ms": day_start_ms + ms_of_day,
        "duration_ms": duration_ms,
        "provider": pl.Series(_PROVIDERS, dtype=pl.String).gather(provider_code),
        "model": pl.Series(_MODEL_NAMES, dtype=pl.String).gather(model_code),
        "feature": _null_where(feature_names, feature_omitted),
        "user_id": _null_where(pl.Series(plan.user_ids_by_rank, dtype=pl.String).gather(user_rank), user_omitted),
        "input_tokens": input_tokens,
        "cached_input_tokens": cached_input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "output_tokens": output_tokens,
        "gateway_cache_hit": gateway_cache_hit,
        "status": np.where(is_error, "error", "ok"),
        "pool": pl.Series(_MODEL_POOL, dtype=pl.String).gather(model_code),
        "replica_number": np.where(gateway_cache_hit, -1, replica_number),
        "workload": _feature_attribute("workload", feature_code),
        "team": _feature_attribute("team", feature_code),
        "job": _feature_attribute("job", feature_code),
        "ms_of_day": ms_of_day,
    }


def _feature_attribute(attribute: str, feature_code: np.ndarray) -> pl.Series:
    values = [getattr(feature, attribute) for feature in FEATURES]
    return pl.Series(values, dtype=pl.String).gather(feature_code)


def _spike_user_rank(plan: GenerationPlan, day: dt.date) -> int:
    spikes = plan.events_of("user_spike", day)
    return plan.user_ids_by_rank.index(spikes[0].user_id) if spikes else 0


def _prompt_cache_tokens(
    model_code: np.ndarray,
    input_tokens: np.ndarray,
    prefix_tokens: np.ndarray,
    cache_warm: np.ndarray,
    tail_write_ratio: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(cache reads, cache writes) per request under each provider's caching rules."""
    provider_code = _MODEL_PROVIDER_CODE[model_code]
    cacheable = prefix_tokens >= _MODEL_MIN_CACHEABLE[model_code]
    cached_input_tokens = np.zeros_like(input_tokens)
    cache_creation_input_tokens = np.zeros_like(input_tokens)

    # OpenAI caches automatically and reports hits in 128-token steps from 1,024 up.
    openai_hit = (provider_code == _PROVIDERS.index(PROVIDER_OPENAI)) & cacheable & cache_warm
    cached_input_tokens[openai_hit] = (prefix_tokens[openai_hit] // 128) * 128

    # Anthropic reads the prefix when its cache entry is warm, writes it when cold, and writes
    # the new tail so the next call (the next conversation turn) can read it.
    anthropic = (provider_code == _PROVIDERS.index(PROVIDER_ANTHROPIC)) & cacheable
    tail_write = np.rint((input_tokens - prefix_tokens) * tail_write_ratio).astype(np.int64)
    anthropic_read = anthropic & cache_warm
    anthropic_cold = anthropic & ~cache_warm
    cached_input_tokens[anthropic_read] = prefix_tokens[anthropic_read]
    cache_creation_input_tokens[anthropic_read] = tail_write[anthropic_read]
    cache_creation_input_tokens[anthropic_cold] = prefix_tokens[anthropic_cold] + tail_write[anthropic_cold]
    return cached_input_tokens, cache_creation_input_tokens


def _duration_ms(
    rng: np.random.Generator,
    model_code: np.ndarray,
    input_tokens: np.ndarray,
    cached_input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    gateway_cache_hit: np.ndarray,
    is_error: np.ndarray,
) -> np.ndarray:
    row_count = model_code.size
    uncached_input_tokens = input_tokens - cached_input_tokens
    generation_ms = (
        _MODEL_TTFT_MS[model_code]
        + uncached_input_tokens / 1000 * _MODEL_MS_PER_1K_INPUT[model_code]
        + output_tokens * _MODEL_MS_PER_OUTPUT[model_code]
    )
    duration = generation_ms * rng.lognormal(0.0, 0.25, row_count)
    # The gateway answers a cache hit from memory.
    duration[gateway_cache_hit] = 2 + rng.lognormal(np.log(12), 0.5, int(gateway_cache_hit.sum()))
    # Errors: rate limits fail fast, server errors take a while, timeouts hit the 60 s limit.
    error_count = int(is_error.sum())
    error_kind = rng.choice(3, size=error_count, p=[0.5, 0.35, 0.15])
    duration[is_error] = np.choose(
        error_kind,
        [
            rng.lognormal(np.log(180), 0.4, error_count),
            rng.lognormal(np.log(2_500), 0.6, error_count),
            60_000 + rng.integers(0, 500, error_count),
        ],
    )
    return np.rint(duration).astype(np.int64)


def _add_delivery(requests: dict, day: dt.date, rng: np.random.Generator) -> pl.DataFrame:
    """Attach when each line reached a file, and when (if ever) it was delivered again."""
    ms_of_day = requests["ms_of_day"]
    row_count = ms_of_day.size
    ts_ms = requests["ts_ms"]

    # Records are flushed once the call ends.
    flush_delay_ms = 1 + np.rint(rng.exponential(800, row_count)).astype(np.int64)
    arrival_ms = ts_ms + requests["duration_ms"] + flush_delay_ms
    # Records from the last minutes of the day can miss the midnight file rotation.
    share_of_late_window = np.clip((ms_of_day - (DAY_MS - LATE_WINDOW_MS)) / LATE_WINDOW_MS, 0.0, 1.0)
    late_probability = np.minimum(1.0, LATE_RAMP * share_of_late_window)
    held_for_next_flush = rng.random(row_count) < late_probability
    next_midnight_ms = _epoch_ms(day) + DAY_MS
    arrival_ms = np.where(
        held_for_next_flush, next_midnight_ms + rng.integers(0, LATE_FLUSH_MAX_MS, row_count), arrival_ms
    )

    # At-least-once delivery: a retry seconds later, or a replay from a dead-letter queue hours
    # later. Replays stay under 23 h so everything lands at most one file after the range.
    delivered_twice = rng.random(row_count) < DUPLICATE_RATIO
    replayed = rng.random(row_count) < DUPLICATE_REPLAY_RATIO
    redelivery_delay_ms = np.where(
        replayed,
        rng.integers(HOUR_MS, 23 * HOUR_MS, row_count),
        500 + np.rint(rng.exponential(5_000, row_count)).astype(np.int64),
    )
    duplicate_arrival_ms = np.where(delivered_twice, arrival_ms + redelivery_delay_ms, -1)
    return _to_frame(requests, arrival_ms, duplicate_arrival_ms)


def _to_frame(requests: dict, arrival_ms: np.ndarray, duplicate_arrival_ms: np.ndarray) -> pl.DataFrame:
    """Typed day frame (``DAY_FRAME_SCHEMA``) from drawn columns; -1 = no duplicate delivery."""
    columns = {name: value for name, value in requests.items() if name not in ("ts_ms", "ms_of_day")}
    frame = pl.DataFrame(
        {
            **columns,
            "ts": _ms_to_datetime(requests["ts_ms"]),
            "arrival_ts": _ms_to_datetime(arrival_ms),
            "duplicate_arrival_ts": _ms_to_datetime(duplicate_arrival_ms),
        }
    )
    frame = frame.with_columns(
        # Gateway cache hits never reached a replica.
        replica_id=pl.when(pl.col("pool").is_not_null() & (pl.col("replica_number") >= 0)).then(
            pl.format("{}-r{}", pl.col("pool"), pl.col("replica_number"))
        ),
        duplicate_arrival_ts=pl.when(pl.lit(pl.Series(duplicate_arrival_ms >= 0))).then(pl.col("duplicate_arrival_ts")),
    )
    return frame.select([pl.col(name).cast(dtype) for name, dtype in DAY_FRAME_SCHEMA.items()])


def _request_ids(day: dt.date, tag: str, sequence: np.ndarray) -> pl.Series:
    """``req_<YYYYMMDD>_<tag><8-digit sequence>``: unique within the day and tag."""
    prefix = f"req_{day.strftime('%Y%m%d')}_{tag}"
    return pl.select(
        pl.concat_str(
            [
                pl.lit(prefix),
                pl.lit(pl.Series(sequence, dtype=pl.Int64)).cast(pl.String).str.zfill(8),
            ]
        )
    ).to_series()


def _null_where(series: pl.Series, mask: np.ndarray) -> pl.Series:
    return (
        pl.select(pl.when(pl.lit(pl.Series(mask))).then(None).otherwise(pl.lit(series))).to_series().alias(series.name)
    )


def _epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def _ms_to_datetime(epoch_ms: np.ndarray) -> pl.Series:
    return pl.Series(epoch_ms, dtype=pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


# ---------------------------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------------------------


def canonical_json_line() -> pl.Expr:
    """One compact JSON object per record of a day frame, keys in DESIGN.md order.

    Built from string expressions rather than ``write_ndjson`` because a missing ``feature`` or
    ``user_id`` must be *omitted* while ``pool``/``replica_id`` are written as JSON ``null``. The
    generator's strings never hold quotes, backslashes or control characters, so none are escaped.
    """

    def text(name: str) -> pl.Expr:
        return pl.concat_str([pl.lit('"'), pl.col(name), pl.lit('"')])

    def optional_text_field(name: str) -> pl.Expr:
        return (
            pl.when(pl.col(name).is_null())
            .then(pl.lit(""))
            .otherwise(pl.concat_str([pl.lit(f',"{name}":"'), pl.col(name), pl.lit('"')]))
        )

    def nullable_text(name: str) -> pl.Expr:
        return pl.when(pl.col(name).is_null()).then(pl.lit("null")).otherwise(text(name))

    def number(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String)

    tags = pl.concat_str(
        [
            pl.lit('{"team":'),
            text("team"),
            pl.when(pl.col("job").is_null())
            .then(pl.lit(""))
            .otherwise(pl.concat_str([pl.lit(',"job":'), text("job")])),
            pl.lit("}"),
        ]
    )
    return pl.concat_str(
        [
            pl.lit('{"request_id":'),
            text("request_id"),
            pl.lit(',"ts":"'),
            pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
            pl.lit('"'),
            pl.lit(',"duration_ms":'),
            number("duration_ms"),
            pl.lit(',"provider":'),
            text("provider"),
            pl.lit(',"model":'),
            text("model"),
            optional_text_field("feature"),
            optional_text_field("user_id"),
            pl.lit(',"input_tokens":'),
            number("input_tokens"),
            pl.lit(',"cached_input_tokens":'),
            number("cached_input_tokens"),
            pl.lit(',"cache_creation_input_tokens":'),
            number("cache_creation_input_tokens"),
            pl.lit(',"output_tokens":'),
            number("output_tokens"),
            pl.lit(',"gateway_cache_hit":'),
            pl.when(pl.col("gateway_cache_hit")).then(pl.lit("true")).otherwise(pl.lit("false")),
            pl.lit(',"status":'),
            text("status"),
            pl.lit(',"pool":'),
            nullable_text("pool"),
            pl.lit(',"replica_id":'),
            nullable_text("replica_id"),
            pl.lit(',"workload":'),
            text("workload"),
            pl.lit(',"tags":'),
            tags,
            pl.lit("}"),
        ]
    ).alias("line")


# A file's lines before serialisation: good lines point at a day-frame row, lines carried over
# from an earlier day or malformed lines hold their text.
_DELIVERY_SCHEMA = {
    "arrival_ts": pl.Datetime("ms", "UTC"),
    "row": pl.UInt32,
    "line": pl.String,
    "delivery": pl.String,  # "first", "duplicate" or "malformed"
    "record_day": pl.Date,  # UTC day of the record's ts; null for malformed lines
    "malformed_kind": pl.String,
}


def _deliveries_of(frame: pl.DataFrame) -> pl.DataFrame:
    """Every line a day's records produce: one first delivery per record plus the duplicates."""
    indexed = frame.with_row_index("row")
    first = indexed.select(
        pl.col("arrival_ts"),
        pl.col("row"),
        pl.lit(None, pl.String).alias("line"),
        pl.lit("first").alias("delivery"),
        pl.col("ts").dt.date().alias("record_day"),
        pl.lit(None, pl.String).alias("malformed_kind"),
    )
    duplicate = indexed.filter(pl.col("duplicate_arrival_ts").is_not_null()).select(
        pl.col("duplicate_arrival_ts").alias("arrival_ts"),
        pl.col("row"),
        pl.lit(None, pl.String).alias("line"),
        pl.lit("duplicate").alias("delivery"),
        pl.col("ts").dt.date().alias("record_day"),
        pl.lit(None, pl.String).alias("malformed_kind"),
    )
    return pl.concat([first, duplicate]).cast(_DELIVERY_SCHEMA)


def _with_text(deliveries: pl.DataFrame, frame: pl.DataFrame | None) -> pl.DataFrame:
    """Fill ``line`` for deliveries that point at a frame row, and drop the pointer."""
    if frame is None or deliveries["row"].null_count() == deliveries.height:
        return deliveries.with_columns(pl.lit(None, pl.UInt32).alias("row"))
    frame_lines = frame.select(pl.all().gather(deliveries["row"])).select(canonical_json_line())
    return deliveries.with_columns(
        pl.coalesce(pl.col("line"), frame_lines["line"]).alias("line"), pl.lit(None, pl.UInt32).alias("row")
    )


def _malformed_deliveries(
    plan: GenerationPlan, write_day: dt.date, file_index: int, good_line_count: int
) -> pl.DataFrame:
    """The broken lines of one file, each derived from a fresh request of that day.

    Kinds rotate from file to file so that even tiny files cover every kind over a few days.
    """
    rng = np.random.default_rng([plan.seed, _STREAM_MALFORMED, write_day.toordinal()])
    count = max(MIN_MALFORMED_PER_FILE, int(rng.poisson(MALFORMED_RATIO * good_line_count)))
    # Tag "x" keeps their request ids apart from every good record's id.
    requests = _draw_requests(plan, write_day, rng, count, 0, 0, request_id_tag="x")
    ts_ms = requests["ts_ms"]
    source = _to_frame(requests, arrival_ms=ts_ms, duplicate_arrival_ms=np.full(count, -1))
    source_lines = source.select(canonical_json_line())["line"].to_list()
    kinds = [
        MALFORMED_KINDS[(file_index * MIN_MALFORMED_PER_FILE + index) % len(MALFORMED_KINDS)] for index in range(count)
    ]
    lines = [_corrupt(line, kind, rng) for line, kind in zip(source_lines, kinds)]
    arrival_ms = _epoch_ms(write_day) + np.sort(rng.integers(0, DAY_MS, count))
    return pl.DataFrame(
        {
            "arrival_ts": _ms_to_datetime(arrival_ms),
            "row": pl.Series([None] * count, dtype=pl.UInt32),
            "line": lines,
            "delivery": ["malformed"] * count,
            "record_day": pl.Series([None] * count, dtype=pl.Date),
            "malformed_kind": kinds,
        }
    ).cast(_DELIVERY_SCHEMA)


def _corrupt(line: str, kind: str, rng: np.random.Generator) -> str:
    if kind == "truncated_json":
        # A cut JSON object never closes its brace, so it can never parse.
        return line[: int(len(line) * rng.uniform(0.3, 0.9))]
    if kind == "garbage_text":
        return GARBAGE_LINES[int(rng.integers(len(GARBAGE_LINES)))]
    record = json.loads(line)
    if kind == "missing_request_id":
        del record["request_id"]
    elif kind == "negative_output_tokens":
        record["output_tokens"] = -max(1, record["output_tokens"])
    elif kind == "cached_exceeds_input":
        record["cached_input_tokens"] = record["input_tokens"] + 512
    elif kind == "bad_timestamp":
        record["ts"] = "not-a-time"
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return json.dumps(record, separators=(",", ":"))


def _write_gzip_lines(path: Path, file_rows: pl.DataFrame, frame: pl.DataFrame | None) -> None:
    """Write the lines in order, serialising frame rows chunk by chunk to bound memory."""
    temporary_path = path.with_name(path.name + ".tmp")
    with (
        open(temporary_path, "wb") as raw,
        gzip.GzipFile(
            # No file name and a fixed mtime in the header keep the bytes reproducible.
            filename="",
            mode="wb",
            fileobj=raw,
            compresslevel=1,
            mtime=0,
        ) as compressed,
    ):
        for chunk in file_rows.iter_slices(_WRITE_CHUNK_ROWS):
            buffer = io.BytesIO()
            _with_text(chunk, frame).select("line").write_csv(buffer, include_header=False, quote_style="never")
            compressed.write(buffer.getbuffer())
    os.replace(temporary_path, path)


# ---------------------------------------------------------------------------------------------
# What the gateway logged versus what the providers billed
# ---------------------------------------------------------------------------------------------


def gateway_view(plan: GenerationPlan, day: dt.date, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the records the gateway logged, the true calls it lost) for a day's ``build_day_frame``.

    ``build_day_frame`` is the truth the providers bill; the log files are written from the first
    element: the lost-logs day misses a share of its Anthropic calls, and the double-count model's
    ``input_tokens`` include its cache reads twice (so cached + creation <= input still holds).
    """
    lost_mask = np.zeros(frame.height, dtype=bool)
    for event in plan.billing_events_of("lost_logs", day):
        rng = np.random.default_rng([plan.seed, _STREAM_LOST_LOGS, day.toordinal()])
        lost_mask |= (frame["provider"] == event.provider).to_numpy() & (rng.random(frame.height) < event.factor)
    if lost_mask.any():
        lost_series = pl.Series(lost_mask)
        logged, lost = frame.filter(~lost_series), frame.filter(lost_series)
    else:
        logged, lost = frame, frame.clear()
    for event in plan.billing_events_of("cached_tokens_double_counted", day):
        logged = logged.with_columns(
            input_tokens=pl.when(pl.col("model") == event.model)
            .then(pl.col("input_tokens") + pl.col("cached_input_tokens"))
            .otherwise(pl.col("input_tokens"))
        )
    return logged, lost


# A billed call: the provider answered (status ok) and the gateway did not answer from its cache.
_BILLED = (pl.col("status") == "ok") & ~pl.col("gateway_cache_hit") & pl.col("provider").is_in(list(BILLED_PROVIDERS))
# Token kinds a provider bills: (kind, catalog price key).
_TOKEN_KINDS = (
    ("uncached_input", "input_cost_per_token"),
    ("cache_read", "cache_read_input_token_cost"),
    ("cache_creation", "cache_creation_input_token_cost"),
    ("output", "output_cost_per_token"),
)
OPENAI_COST_KINDS = {"uncached_input": "input", "cache_read": "cached input", "output": "output"}
ANTHROPIC_TOKEN_TYPES = {
    "uncached_input": "uncached_input_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_creation": "cache_creation.ephemeral_5m_input_tokens",
    "output": "output_tokens",
}


def billed_usage(frame: pl.DataFrame) -> pl.DataFrame:
    """Billed calls of a day frame summed per provider × team × model, tokens split by kind."""
    return (
        frame.lazy()
        .filter(_BILLED)
        .group_by("provider", "team", "model")
        .agg(
            requests=pl.len(),
            input_tokens=pl.col("input_tokens").sum(),
            uncached_input=(
                pl.col("input_tokens") - pl.col("cached_input_tokens") - pl.col("cache_creation_input_tokens")
            ).sum(),
            cache_read=pl.col("cached_input_tokens").sum(),
            cache_creation=pl.col("cache_creation_input_tokens").sum(),
            output=pl.col("output_tokens").sum(),
        )
        .sort("provider", "team", "model")
        .collect()
    )


def load_token_prices(catalog_path: Path) -> dict[str, dict[str, Decimal]]:
    """Exact per-token prices of every API model the generator routes to, by token kind."""
    catalog = json.loads(Path(catalog_path).read_text(encoding="utf-8"))
    prices: dict[str, dict[str, Decimal]] = {}
    for model in MODELS:
        if model.provider not in BILLED_PROVIDERS:
            continue
        entry = catalog.get(model.name) if model.in_price_catalog else OFF_CATALOG_PRICES[model.name]
        if entry is None:
            raise ValueError(f"{catalog_path}: no entry for {model.name}")
        kinds = {}
        for kind, key in _TOKEN_KINDS:
            value = entry.get(key)
            if value is None:
                if kind == "cache_creation" and model.provider == PROVIDER_OPENAI:
                    continue  # OpenAI never reports cache writes
                raise ValueError(f"{catalog_path}: {model.name} has no {key}")
            kinds[kind] = Decimal(repr(value) if isinstance(value, float) else str(value))
        prices[model.name] = kinds
    return prices


def _usd(tokens: int, price: Decimal) -> Decimal:
    return (Decimal(tokens) * price).quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)


def _usd_text(amount: Decimal) -> str:
    """A USD amount with exactly 10 decimals, never in exponent notation."""
    return format(amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_UP), "f")


def _decimal_text(amount: Decimal) -> str:
    """Plain decimal text without trailing zeros: Decimal('42.00') -> '42'."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "0") else text


@dataclass(frozen=True)
class CostLine:
    """One billed line of one day: tokens of one kind of one model for one team, or a fee."""

    day: dt.date
    provider: str
    team: str
    model: str
    kind: str | None  # a ``_TOKEN_KINDS`` kind; None for a non-token line item (fine-tuning)
    tokens: int
    usd: Decimal
    line_item: str | None = None  # non-token line items only


class BillingLedger:
    """Collects, day by day, what the providers bill and how the logs differ from it."""

    def __init__(self, plan: GenerationPlan, prices: dict[str, dict[str, Decimal]]):
        self.plan = plan
        self.prices = prices
        self.usage: list[tuple[dt.date, dict]] = []  # one per day × provider × team × model
        self.costs: list[CostLine] = []
        self.effects: dict[str, dict] = {event.kind: {} for event in plan.billing_events}

    def catalog_usd(self, usage: pl.DataFrame) -> dict[str, Decimal]:
        """USD per model of aggregated usage at catalog (or off-catalog) price."""
        totals: dict[str, Decimal] = {}
        for row in usage.iter_rows(named=True):
            prices = self.prices[row["model"]]
            totals[row["model"]] = totals.get(row["model"], Decimal(0)) + sum(
                (_usd(row[kind], price) for kind, price in prices.items()), Decimal(0)
            )
        return totals

    def add_day(self, day: dt.date, frame: pl.DataFrame, logged: pl.DataFrame, lost: pl.DataFrame) -> None:
        """Bill a day's true calls (``frame``); ``logged``/``lost`` come from ``gateway_view``."""
        usage = billed_usage(frame)
        price_changes = self.plan.billing_events_of("unannounced_price_change", day)
        lines: list[CostLine] = []
        for row in usage.iter_rows(named=True):
            self.usage.append((day, row))
            factor = Decimal(1)
            for event in price_changes:
                if event.provider == row["provider"] and event.model == row["model"]:
                    factor *= PRICE_CHANGE_FACTOR
            for kind, catalog_price in self.prices[row["model"]].items():
                if row[kind]:
                    lines.append(
                        CostLine(
                            day,
                            row["provider"],
                            row["team"],
                            row["model"],
                            kind,
                            row[kind],
                            _usd(row[kind], catalog_price * factor),
                        )
                    )
        for event in self.plan.billing_events_of("billed_without_logs", day):
            lines.append(
                CostLine(
                    day,
                    event.provider,
                    FINE_TUNING_PROJECT,
                    event.model,
                    None,
                    0,
                    FINE_TUNING_USD,
                    line_item=event.line_item,
                )
            )
        self.costs.extend(lines)
        self._record_effects(day, usage, lines, logged, lost, price_changes)

    def _record_effects(
        self,
        day: dt.date,
        usage: pl.DataFrame,
        lines: list[CostLine],
        logged: pl.DataFrame,
        lost: pl.DataFrame,
        price_changes: list[BillingEvent],
    ) -> None:
        iso_day = day.isoformat()
        for event in self.plan.billing_events_of("lost_logs", day):
            lost_usage = billed_usage(lost.filter(pl.col("provider") == event.provider))
            by_model = self.catalog_usd(lost_usage)
            self.effects[event.kind] = {
                "lost_records": lost.height,
                "lost_billed_records": int(lost_usage["requests"].sum()),
                "lost_usd": _usd_text(sum(by_model.values(), Decimal(0))),
                "lost_usd_by_model": {model: _usd_text(usd) for model, usd in sorted(by_model.items())},
                # True token counts of the lost billed calls (input includes cache reads/writes).
                "lost_tokens_by_model": {
                    row["model"]: {
                        "requests": row["requests"],
                        "input_tokens": row["input_tokens"],
                        "cached_input_tokens": row["cache_read"],
                        "cache_creation_input_tokens": row["cache_creation"],
                        "output_tokens": row["output"],
                    }
                    for row in lost_usage.group_by("model")
                    .agg(pl.col("requests", "input_tokens", "cache_read", "cache_creation", "output").sum())
                    .sort("model")
                    .iter_rows(named=True)
                },
            }
        for event in price_changes:
            model_usage = usage.filter(pl.col("model") == event.model)
            catalog = self.catalog_usd(model_usage).get(event.model, Decimal(0))
            billed = sum((line.usd for line in lines if line.model == event.model and line.kind), Decimal(0))
            effect = self.effects[event.kind]
            effect.setdefault("catalog_usd", Decimal(0))
            effect.setdefault("billed_usd", Decimal(0))
            effect.setdefault("extra_usd_by_day", {})
            effect["catalog_usd"] += catalog
            effect["billed_usd"] += billed
            effect["extra_usd_by_day"][iso_day] = billed - catalog
        for event in self.plan.billing_events_of("billed_without_logs", day):
            effect = self.effects[event.kind]
            effect["billed_usd"] = _usd_text(FINE_TUNING_USD)
            effect["gateway_records"] = 0
        for event in self.plan.billing_events_of("cached_tokens_double_counted", day):
            # Only the columns needed: a filter of the whole frame would copy every column.
            of_model = pl.col("model") == event.model
            extra_tokens, billed_extra = logged.select(
                pl.col("cached_input_tokens").filter(of_model).sum(),
                pl.col("cached_input_tokens").filter(of_model & _BILLED).sum().alias("billed"),
            ).row(0)
            overestimate = _usd(billed_extra, self.prices[event.model]["uncached_input"])
            effect = self.effects[event.kind]
            effect.setdefault("extra_logged_input_tokens", 0)
            effect.setdefault("overestimate_usd", Decimal(0))
            effect.setdefault("by_day", {})
            effect["extra_logged_input_tokens"] += extra_tokens
            effect["overestimate_usd"] += overestimate
            effect["by_day"][iso_day] = {
                "extra_logged_input_tokens": extra_tokens,
                "extra_billed_call_input_tokens": billed_extra,
                "overestimate_usd": _usd_text(overestimate),
            }

    def event_manifests(self) -> list[dict]:
        entries = []
        for event in self.plan.billing_events:
            effect = dict(self.effects[event.kind])
            if event.kind == "unannounced_price_change":
                effect = {
                    "catalog_usd": _usd_text(effect.get("catalog_usd", Decimal(0))),
                    "billed_usd": _usd_text(effect.get("billed_usd", Decimal(0))),
                    "extra_usd": _usd_text(
                        effect.get("billed_usd", Decimal(0)) - effect.get("catalog_usd", Decimal(0))
                    ),
                    "extra_usd_by_day": {
                        day: _usd_text(usd) for day, usd in effect.get("extra_usd_by_day", {}).items()
                    },
                }
            elif event.kind == "cached_tokens_double_counted":
                effect["extra_logged_input_tokens"] = effect.get("extra_logged_input_tokens", 0)
                effect["overestimate_usd"] = _usd_text(effect.get("overestimate_usd", Decimal(0)))
                effect["by_day"] = effect.get("by_day", {})
                effect["input_price_usd_per_token"] = _decimal_text(self.prices[event.model]["uncached_input"])
                effect["note"] = (
                    "overestimate_usd = extra input tokens of billed calls (status "
                    "ok, no gateway cache hit) x the catalog input price"
                )
            entries.append(event.to_manifest(effect))
        return entries


def _month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _unix_seconds(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400


def _month_last_day(day: dt.date) -> dt.date:
    next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return next_month - dt.timedelta(days=1)


_DECIMAL_MARK = "\x00decimal:"


def _json_text(document: dict) -> str:
    """Sorted-key JSON; Decimals marked by ``_decimal_number`` are written as exact numbers."""
    text = json.dumps(document, indent=2, sort_keys=True)
    return re.sub(r'"\\u0000decimal:(-?[0-9.]+)"', r"\1", text) + "\n"


def _decimal_number(amount: Decimal) -> str:
    """A JSON number with a decimal point (42.0, not 42), as float-based API servers write it."""
    text = _decimal_text(amount)
    return _DECIMAL_MARK + (text if "." in text else text + ".0")


def _write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = path.with_name(path.name + ".tmp")
    temporary_path.write_text(text, encoding="utf-8", newline="")
    os.replace(temporary_path, path)


INVOICE_COLUMNS = ("invoice_id", "provider", "period_start", "period_end", "line_item", "model", "amount", "currency")


def billing_file_names(month: str) -> dict[str, str]:
    return {
        "openai_costs": f"openai/costs_{month}.json",
        "openai_usage": f"openai/usage_{month}.json",
        "anthropic_cost_report": f"anthropic/cost_report_{month}.json",
        "anthropic_usage_report": f"anthropic/usage_report_{month}.json",
        "invoice": f"invoices/invoice_{month}.csv",
    }


_BILLING_GLOBS = (
    ("openai", "costs_*.json"),
    ("openai", "usage_*.json"),
    ("anthropic", "cost_report_*.json"),
    ("anthropic", "usage_report_*.json"),
    ("invoices", "invoice_*.csv"),
)


def write_billing(out_dir: Path, plan: GenerationPlan, ledger: BillingLedger) -> dict:
    """Write the provider exports and invoices; return ``manifest["billing"]``."""
    days_by_month: dict[str, list[dt.date]] = {}
    for day in plan.record_days:
        days_by_month.setdefault(_month_key(day), []).append(day)
    costs_by_day: dict[tuple[str, dt.date], list[CostLine]] = {}
    for line in ledger.costs:
        costs_by_day.setdefault((line.provider, line.day), []).append(line)
    usage_by_day: dict[tuple[str, dt.date], list[dict]] = {}
    for day, row in ledger.usage:
        usage_by_day.setdefault((row["provider"], day), []).append(row)

    files: list[dict] = []
    written: set[str] = set()
    for folder, _ in _BILLING_GLOBS:  # present even when empty, like the gateway folder
        (out_dir / folder).mkdir(parents=True, exist_ok=True)

    def emit(relative: str, text: str, provider: str, kind: str, month: str, rows: int) -> None:
        _write_text_atomically(out_dir / relative, text)
        written.add(relative)
        files.append({"path": relative, "provider": provider, "kind": kind, "month": month, "rows": rows})

    daily_usd: dict[str, dict[str, str]] = {provider: {} for provider in BILLED_PROVIDERS}
    monthly_usd: dict[str, dict[str, str]] = {provider: {} for provider in BILLED_PROVIDERS}
    invoices: dict[str, dict] = {}
    for month, days in days_by_month.items():
        names = billing_file_names(month)
        for provider in BILLED_PROVIDERS:
            month_total = Decimal(0)
            for day in days:
                day_total = sum((line.usd for line in costs_by_day.get((provider, day), [])), Decimal(0))
                daily_usd[provider][day.isoformat()] = _usd_text(day_total)
                month_total += day_total
            monthly_usd[provider][month] = _usd_text(month_total)

        buckets = [_openai_cost_bucket(day, costs_by_day.get((PROVIDER_OPENAI, day), [])) for day in days]
        emit(
            names["openai_costs"],
            _json_text(_openai_page(buckets)),
            PROVIDER_OPENAI,
            "openai_costs",
            month,
            sum(len(bucket["results"]) for bucket in buckets),
        )
        buckets = [_openai_usage_bucket(day, usage_by_day.get((PROVIDER_OPENAI, day), [])) for day in days]
        emit(
            names["openai_usage"],
            _json_text(_openai_page(buckets)),
            PROVIDER_OPENAI,
            "openai_usage",
            month,
            sum(len(bucket["results"]) for bucket in buckets),
        )
        buckets = [_anthropic_cost_bucket(day, costs_by_day.get((PROVIDER_ANTHROPIC, day), [])) for day in days]
        emit(
            names["anthropic_cost_report"],
            _json_text(_anthropic_page(buckets)),
            PROVIDER_ANTHROPIC,
            "anthropic_cost_report",
            month,
            sum(len(bucket["results"]) for bucket in buckets),
        )
        buckets = [_anthropic_usage_bucket(day, usage_by_day.get((PROVIDER_ANTHROPIC, day), [])) for day in days]
        emit(
            names["anthropic_usage_report"],
            _json_text(_anthropic_page(buckets)),
            PROVIDER_ANTHROPIC,
            "anthropic_usage_report",
            month,
            sum(len(bucket["results"]) for bucket in buckets),
        )

        first_day, last_day = days[0].replace(day=1), _month_last_day(days[0])
        if days[0] == first_day and days[-1] == last_day:
            rows = _invoice_rows(
                month, first_day, last_day, [line for line in ledger.costs if _month_key(line.day) == month]
            )
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(INVOICE_COLUMNS)
            writer.writerows([[row[column] for column in INVOICE_COLUMNS] for row in rows])
            emit(names["invoice"], buffer.getvalue(), "all", "invoice", month, len(rows))
            totals = {provider: Decimal(0) for provider in BILLED_PROVIDERS}
            for row in rows:
                totals[row["provider"]] += Decimal(row["amount"])
            invoices[month] = {
                "path": names["invoice"],
                "period_start": first_day.isoformat(),
                "period_end": last_day.isoformat(),
                "totals_usd": {provider: str(total) for provider, total in totals.items()},
            }

    for folder, pattern in _BILLING_GLOBS:
        for stale in sorted((out_dir / folder).glob(pattern)):
            if f"{folder}/{stale.name}" not in written:
                stale.unlink()

    return {
        "price_catalog": PRICE_CATALOG_PATH.name,
        "billed_calls": "status ok and not a gateway cache hit, providers "
        f"{' and '.join(BILLED_PROVIDERS)}, bucketed by the UTC day of ts; "
        "amounts are USD rounded half-up to 10 decimals per result row",
        "off_catalog_prices": OFF_CATALOG_PRICES,
        "projects": "OpenAI project_id = proj_<tags.team>, Anthropic workspace_id = wrk_<tags.team>",
        "files": files,
        "daily_usd": daily_usd,
        "monthly_usd": monthly_usd,
        "invoices": invoices,
    }


def _openai_page(buckets: list[dict]) -> dict:
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def _anthropic_page(buckets: list[dict]) -> dict:
    return {"data": buckets, "has_more": False, "next_page": None}


def _openai_bucket(day: dt.date, results: list[dict]) -> dict:
    start = _unix_seconds(day)
    return {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}


def _anthropic_bucket(day: dt.date, results: list[dict]) -> dict:
    return {
        "starting_at": f"{day.isoformat()}T00:00:00Z",
        "ending_at": f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00Z",
        "results": results,
    }


def _openai_line_item(line: CostLine) -> str:
    return line.line_item or f"{line.model}, {OPENAI_COST_KINDS[line.kind]}"


def _openai_cost_bucket(day: dt.date, lines: list[CostLine]) -> dict:
    results = [
        {
            "object": "organization.costs.result",
            "amount": {"value": _decimal_number(line.usd), "currency": "usd"},
            "line_item": _openai_line_item(line),
            "project_id": f"proj_{line.team}",
        }
        for line in sorted(lines, key=lambda line: (line.team, _openai_line_item(line)))
    ]
    return _openai_bucket(day, results)


def _openai_usage_bucket(day: dt.date, rows: list[dict]) -> dict:
    results = [
        {
            "object": "organization.usage.completions.result",
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output"],
            "input_cached_tokens": row["cache_read"],
            "input_audio_tokens": 0,
            "output_audio_tokens": 0,
            "num_model_requests": row["requests"],
            "project_id": f"proj_{row['team']}",
            "user_id": None,
            "api_key_id": None,
            "model": row["model"],
            "batch": False,
        }
        for row in sorted(rows, key=lambda row: (row["team"], row["model"]))
    ]
    return _openai_bucket(day, results)


def _anthropic_cost_bucket(day: dt.date, lines: list[CostLine]) -> dict:
    results = [
        {
            "currency": "USD",
            "amount": _decimal_text(line.usd * 100),
            "workspace_id": f"wrk_{line.team}",
            "description": None,
            "cost_type": "tokens",
            "context_window": "0-200k",
            "model": line.model,
            "service_tier": "standard",
            "token_type": ANTHROPIC_TOKEN_TYPES[line.kind],
        }
        for line in sorted(lines, key=lambda line: (line.team, line.model, ANTHROPIC_TOKEN_TYPES[line.kind]))
    ]
    return _anthropic_bucket(day, results)


def _anthropic_usage_bucket(day: dt.date, rows: list[dict]) -> dict:
    results = [
        {
            "uncached_input_tokens": row["uncached_input"],
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": row["cache_creation"]},
            "cache_read_input_tokens": row["cache_read"],
            "output_tokens": row["output"],
            "server_tool_use": {"web_search_requests": 0},
            "api_key_id": None,
            "workspace_id": f"wrk_{row['team']}",
            "model": row["model"],
            "service_tier": "standard",
            "context_window": "0-200k",
        }
        for row in sorted(rows, key=lambda row: (row["team"], row["model"]))
    ]
    return _anthropic_bucket(day, results)


def _invoice_rows(month: str, first_day: dt.date, last_day: dt.date, lines: list[CostLine]) -> list[dict]:
    """One row per provider × model ("<model> usage") plus each non-token line item.

    A non-token line item (fine-tuning) has an empty ``model``: it is not token usage of a model,
    and readers treat a row with a model as that model's token charge.
    """
    amounts: dict[tuple[str, str, str], Decimal] = {}
    for line in lines:
        key = (line.provider, line.line_item or f"{line.model} usage", "" if line.line_item else line.model)
        amounts[key] = amounts.get(key, Decimal(0)) + line.usd
    return [
        {
            "invoice_id": f"INV-{provider}-{month}",
            "provider": provider,
            "period_start": first_day.isoformat(),
            "period_end": last_day.isoformat(),
            "line_item": line_item,
            "model": model,
            "amount": str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
            "currency": "USD",
        }
        for (provider, line_item, model), amount in sorted(amounts.items())
    ]


# ---------------------------------------------------------------------------------------------
# Self-hosted GPUs: billing exports, nvidia-smi telemetry and a load test
# ---------------------------------------------------------------------------------------------

# Google Cloud's FOCUS export (FOCUS 1.2 style): the FOCUS 1.0 columns of the public sample in
# its order (including its row ``Id``), then the 1.2 columns ``SkuPriceDetails`` and
# ``ServiceSubcategory``.
FOCUS_COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "Id",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "SkuPriceDetails",
    "ServiceSubcategory",
)
FOCUS_PROVIDER = "Google Cloud"
FOCUS_REGION = "us-central1"
FOCUS_REGION_NAME = "Iowa"
FOCUS_PROJECT = "costwatch-serving"
FOCUS_BILLING_ACCOUNT = "01B2C3-D4E5F6-A7B8C9"
FOCUS_GPU_SKU = "9A53-4C7E-1F02"
FOCUS_POOL_TAG = "costwatch-pool"
FOCUS_REPLICA_TAG = "costwatch-replica"
_FOCUS_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")
_FOCUS_COST_QUANTUM = Decimal("1e-11")  # the sample writes costs with 11 decimals
_FOCUS_QUANTITY_QUANTUM = Decimal("1e-15")  # ... and ConsumedQuantity with 15

GPU_HOURS_COLUMNS = ("day", "pool", "replica_id", "gpu_type", "gpu_count", "hours", "usd")
NVIDIA_SMI_HEADER = (
    "timestamp, name, pci.bus_id, utilization.gpu [%], utilization.memory [%], "
    "memory.used [MiB], memory.total [MiB], power.draw [W], clocks.current.sm [MHz]"
)
LOADTEST_COLUMNS = (
    "gpu",
    "model_shape",
    "params_b",
    "dtype",
    "engine",
    "batch_size",
    "prompt_tokens",
    "output_tokens",
    "prefill_s",
    "request_latency_s",
    "requests_per_s",
    "output_tokens_per_s",
    "peak_mem_gib",
)
LOADTEST_MODEL_SHAPE = "llama-3.1-8b"
LOADTEST_ENGINE = "vllm-0.6.3/torch-2.4.0+cu124"

_GPU_GLOBS = (
    ("gpu_billing", "focus_*.csv"),
    ("gpu_billing", "gpu_hours_*.csv"),
    ("gpu_telemetry", "nvidia_smi_*.csv"),
    ("loadtest", "*.csv"),
)


def pool_usd_per_instance_hour(pool: PoolSpec) -> Decimal:
    """What one replica (one VM) of a pool costs per hour."""
    if pool.name == FOCUS_POOL:
        return FOCUS_USD_PER_INSTANCE_HOUR
    return GPU_HOURS_USD_PER_GPU_HOUR * pool.gpus_per_replica


def focus_resource_id(replica_index: int) -> str:
    """The stable Compute Engine instance of a FOCUS-billed replica."""
    zone = _FOCUS_ZONES[replica_index % len(_FOCUS_ZONES)]
    return (
        f"//compute.googleapis.com/projects/{FOCUS_PROJECT}/zones/{zone}/instances/"
        f"{7_182_640_553_019_281_000 + 7_919 * replica_index}"
    )


def replica_busy_intervals(frame: pl.DataFrame, pool: PoolSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(replica index, start ms, end ms) of every call a replica of ``pool`` served.

    A call occupies its replica over [ts, ts + duration_ms], errors included (a timeout holds the
    replica for 60 s); gateway cache hits never reached a replica (``replica_id`` null).
    """
    mapping = {replica_id: index for index, replica_id in enumerate(pool.replica_ids)}
    start = pl.col("ts").dt.epoch("ms")
    served = (
        frame.lazy()
        .filter((pl.col("pool") == pool.name) & pl.col("replica_id").is_not_null())
        .select(
            pl.col("replica_id").replace_strict(mapping, return_dtype=pl.Int64).alias("replica"),
            start.alias("start"),
            (start + pl.col("duration_ms")).alias("end"),
        )
        .collect()
    )
    return (served["replica"].to_numpy(), served["start"].to_numpy(), served["end"].to_numpy())


def covered_ms_per_minute(starts: np.ndarray, ends: np.ndarray, day_start_ms: int) -> np.ndarray:
    """Milliseconds of each minute of the day covered by the union of [start, end) intervals."""
    covered = np.zeros(MINUTES_PER_DAY, dtype=np.int64)
    if starts.size == 0:
        return covered
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    # Merge overlapping intervals: a new run starts where a call begins after every earlier one
    # has ended.
    running_end = np.maximum.accumulate(ends)
    new_run = np.empty(starts.size, dtype=bool)
    new_run[0] = True
    new_run[1:] = starts[1:] > running_end[:-1]
    run_first = np.flatnonzero(new_run)
    run_last = np.append(run_first[1:] - 1, starts.size - 1)
    day_end_ms = day_start_ms + DAY_MS
    run_start = np.clip(starts[run_first], day_start_ms, day_end_ms)
    run_end = np.clip(running_end[run_last], day_start_ms, day_end_ms)
    run_length = run_end - run_start
    length_before = np.concatenate([[0], np.cumsum(run_length)])
    # covered_until(t) = length of the runs before the last run starting at or before t, plus
    # the part of that run before t.
    bounds = day_start_ms + np.arange(MINUTES_PER_DAY + 1, dtype=np.int64) * MINUTE_MS
    run = np.searchsorted(run_start, bounds, side="right") - 1
    safe = np.maximum(run, 0)
    covered_until = np.where(
        run >= 0, length_before[safe] + np.minimum(np.maximum(bounds - run_start[safe], 0), run_length[safe]), 0
    )
    return np.diff(covered_until)


def _nvidia_smi_text(plan: GenerationPlan, day: dt.date, covered_ms: np.ndarray) -> tuple[list[str], np.ndarray]:
    """One nvidia-smi CSV log per replica (rows of ``covered_ms``), and its utilization.gpu.

    utilization.gpu of the sample stamped in minute m = the covered share of minute m in percent,
    stochastically rounded (floor(x + U[0, 1)), unbiased), plus a 1-point blip on ~2% of
    samples, capped at 100: 0-1 % when idle, within 2 points of the covered share otherwise.
    """
    replicas = covered_ms.shape[0]
    rng = np.random.default_rng([plan.seed, _STREAM_TELEMETRY, day.toordinal()])
    shape = (replicas, MINUTES_PER_DAY)
    utilization = np.minimum(
        100, (np.floor(covered_ms / (MINUTE_MS / 100) + rng.random(shape)) + (rng.random(shape) < TELEMETRY_BLIP_RATIO))
    ).astype(np.int64)
    memory_utilization = np.rint(utilization * rng.uniform(0.25, 0.40, shape)).astype(np.int64)
    power_centiwatts = np.rint((69.5 + 3.1 * utilization + rng.normal(0.0, 0.8, shape)) * 100).astype(np.int64)
    clock_mhz = 1980 - 15 * np.floor(utilization / 100 * rng.uniform(0, 21, shape)).astype(np.int64)
    # `nvidia-smi -l 60` from when the exporter started: a fixed sub-second offset per replica
    # and day, then exactly 60 s apart (so utilization x interval is exact); each sample lands
    # inside the minute it describes.
    offset_ms = rng.integers(0, 1_000, (replicas, 1))
    sample_ms = _epoch_ms(day) + np.arange(MINUTES_PER_DAY) * TELEMETRY_SAMPLE_MS + offset_ms
    texts = []
    for replica in range(replicas):
        samples = pl.DataFrame(
            {
                "ms": sample_ms[replica],
                "util": utilization[replica],
                "mem": memory_utilization[replica],
                "power": power_centiwatts[replica],
                "clock": clock_mhz[replica],
            }
        )
        lines = samples.select(
            pl.concat_str(
                [
                    pl.col("ms").cast(pl.Datetime("ms")).dt.strftime("%Y/%m/%d %H:%M:%S%.3f"),
                    pl.lit(f", {GPU_NAME}, {GPU_PCI_BUS_ID}, "),
                    pl.col("util").cast(pl.String),
                    pl.lit(" %, "),
                    pl.col("mem").cast(pl.String),
                    pl.lit(f" %, {GPU_MEMORY_USED_MIB} MiB, {GPU_MEMORY_TOTAL_MIB} MiB, "),
                    (pl.col("power") // 100).cast(pl.String),
                    pl.lit("."),
                    (pl.col("power") % 100).cast(pl.String).str.zfill(2),
                    pl.lit(" W, "),
                    pl.col("clock").cast(pl.String),
                    pl.lit(" MHz"),
                ]
            ).alias("line")
        )["line"]
        texts.append(NVIDIA_SMI_HEADER + "\n" + "\n".join(lines.to_list()) + "\n")
    return texts, utilization


def telemetry_file_name(replica_id: str, day: dt.date) -> str:
    return f"gpu_telemetry/nvidia_smi_{replica_id}_{day.isoformat()}.csv"


def focus_file_name(month: str) -> str:
    return f"gpu_billing/focus_{month}.csv"


def gpu_hours_file_name(month: str) -> str:
    return f"gpu_billing/gpu_hours_{month}.csv"


def loadtest_file_name(pool: str) -> str:
    return f"loadtest/{pool}.csv"


def loadtest_rows() -> list[dict]:
    """A replica of the interactive pool under load: 512 prompt + 128 output tokens per call.

    Prefill is compute-bound (~36k tokens/s); a decode step costs 9.2 ms plus a part growing
    with the batch, so the rate rises then flattens while latency climbs from ~1.2 s to ~9 s.
    Values are rounded like the public H200 curve (``requests_per_s`` = batch / latency).
    """
    prompt_tokens, output_tokens = 512, 128
    rows = []
    for batch_size in LOADTEST_BATCH_SIZES:
        prefill_s = 0.012 + batch_size * prompt_tokens / 36_000
        latency_s = round(prefill_s + output_tokens * (0.0092 + 0.00023 * batch_size**0.9), 4)
        rows.append(
            {
                "gpu": GPU_NAME,
                "model_shape": LOADTEST_MODEL_SHAPE,
                "params_b": 8.03,
                "dtype": "bfloat16",
                "engine": LOADTEST_ENGINE,
                "batch_size": batch_size,
                "prompt_tokens": prompt_tokens,
                "output_tokens": output_tokens,
                "prefill_s": round(prefill_s, 4),
                "request_latency_s": latency_s,
                "requests_per_s": round(batch_size / latency_s, 3),
                "output_tokens_per_s": round(batch_size * output_tokens / latency_s, 1),
                # bf16 weights + KV cache of 640 tokens per sequence + activations.
                "peak_mem_gib": round(15.31 + batch_size * 0.088125, 2),
            }
        )
    return rows


def loadtest_slo_cut(rows: list[dict], latency_slo_s: float = LATENCY_SLO_S) -> dict:
    """The largest batch whose latency meets the SLO, and its rate as written in the CSV."""
    within = [row for row in rows if row["request_latency_s"] <= latency_slo_s]
    best = max(within, key=lambda row: row["batch_size"])
    return {
        "batch_size": best["batch_size"],
        "request_latency_s": best["request_latency_s"],
        "requests_per_s": repr(best["requests_per_s"]),
    }


def replicas_needed(peak_hour_requests: int, per_replica_rps: Decimal, headroom: Decimal = CAPACITY_HEADROOM) -> int:
    """ceil(peak_rps / per_replica_rps x (1 + headroom)), peak_rps = busiest hour's calls / 3600."""
    needed = Decimal(peak_hour_requests) / 3600 / per_replica_rps * (1 + headroom)
    return int(needed.to_integral_value(rounding=ROUND_CEILING))


def _six_decimals(value: Decimal) -> str:
    return format(value.quantize(Decimal("1e-6"), rounding=ROUND_HALF_UP), "f")


class _Bare(str):
    """A FOCUS field written without quotes (numbers); plain ``str`` is quoted, None is NULL."""


def _focus_line(row: dict) -> str:
    fields = []
    for column in FOCUS_COLUMNS:
        value = row.get(column)
        if value is None:
            fields.append("NULL")
        elif isinstance(value, _Bare):
            fields.append(str(value))
        else:
            fields.append('"' + value.replace('"', '""') + '"')
    return ",".join(fields)


def _focus_cost(value: Decimal) -> _Bare:
    return _Bare(format(value.quantize(_FOCUS_COST_QUANTUM), "f"))


def _focus_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _focus_common(month_start: dt.date) -> dict:
    next_month = _month_last_day(month_start) + dt.timedelta(days=1)
    return {
        "BillingAccountId": FOCUS_BILLING_ACCOUNT,
        "BillingAccountName": "costwatch-demo",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": _focus_time(dt.datetime.combine(next_month, dt.time())),
        "BillingPeriodStart": _focus_time(dt.datetime.combine(month_start, dt.time())),
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": FOCUS_PROVIDER,
        "PricingCategory": "Standard",
        "ProviderName": FOCUS_PROVIDER,
        "PublisherName": FOCUS_PROVIDER,
        "RegionId": FOCUS_REGION,
        "RegionName": FOCUS_REGION_NAME,
        "SubAccountId": FOCUS_PROJECT,
        "SubAccountName": FOCUS_PROJECT,
    }


def _focus_row_id(day: dt.date, slot: int) -> _Bare:
    """A stable row id: the same (day, slot) always gets the same Id, in any range."""
    return _Bare(str((day.toordinal() - 700_000) * 1_000 + slot))


def _focus_gpu_rows(day: dt.date, pool: PoolSpec) -> list[dict]:
    """One Usage row per replica per hour of ``day``: every VM runs 24/7, busy or not."""
    common = _focus_common(day.replace(day=1))
    price = FOCUS_USD_PER_INSTANCE_HOUR
    cost = _focus_cost(price)
    rows = []
    for hour in range(24):
        start = dt.datetime.combine(day, dt.time(hour))
        for index, replica_id in enumerate(pool.replica_ids):
            rows.append(
                {
                    **common,
                    "AvailabilityZone": _FOCUS_ZONES[index % len(_FOCUS_ZONES)],
                    "BilledCost": cost,
                    "ContractedCost": cost,
                    "ContractedUnitPrice": cost,
                    "EffectiveCost": cost,
                    "ListCost": cost,
                    "ListUnitPrice": _decimal_text(price),
                    "ChargeDescription": f"{pool.gpus_per_replica} x NVIDIA H100 80GB "
                    f"{FOCUS_INSTANCE_TYPE} running in {FOCUS_REGION}",
                    "ChargePeriodStart": _focus_time(start),
                    "ChargePeriodEnd": _focus_time(start + dt.timedelta(hours=1)),
                    "ConsumedQuantity": _Bare(format(Decimal(1).quantize(_FOCUS_QUANTITY_QUANTUM), "f")),
                    "ConsumedUnit": "Hours",
                    "PricingQuantity": _focus_cost(Decimal(1)),
                    "PricingUnit": "Hours",
                    "ResourceId": focus_resource_id(index),
                    "ResourceName": f"serving-{replica_id}",
                    "ResourceType": "instance",
                    "ServiceCategory": "Compute",
                    "ServiceName": "Compute Engine",
                    "ServiceSubcategory": "Virtual Machines",
                    "Id": _focus_row_id(day, hour * 10 + index),
                    "SkuId": FOCUS_GPU_SKU,
                    "SkuPriceId": f"{FOCUS_GPU_SKU}-ondemand-{FOCUS_REGION}",
                    "Tags": json.dumps({FOCUS_POOL_TAG: pool.name, FOCUS_REPLICA_TAG: replica_id}),
                    "SkuPriceDetails": json.dumps(
                        {"InstanceType": FOCUS_INSTANCE_TYPE, "GpuCount": pool.gpus_per_replica}
                    ),
                }
            )
    return rows


def _focus_non_gpu_rows(day: dt.date) -> list[dict]:
    """Two charges of the same project that are not GPU time: a model-weights disk (tagged, but
    with no pool tag) and internet egress (untagged). Both cover ``day``."""
    common = _focus_common(day.replace(day=1))
    start = dt.datetime.combine(day, dt.time())
    period = {"ChargePeriodStart": _focus_time(start), "ChargePeriodEnd": _focus_time(start + dt.timedelta(days=1))}
    disk_gib_hours, disk_price = Decimal(500 * 24), Decimal("0.000232877")
    egress_gib, egress_price = Decimal(180), Decimal("0.12")
    return [
        {
            **common,
            **period,
            "AvailabilityZone": _FOCUS_ZONES[0],
            "BilledCost": _focus_cost(disk_gib_hours * disk_price),
            "ContractedCost": _focus_cost(disk_gib_hours * disk_price),
            "ContractedUnitPrice": _focus_cost(disk_price),
            "EffectiveCost": _focus_cost(disk_gib_hours * disk_price),
            "ListCost": _focus_cost(disk_gib_hours * disk_price),
            "ListUnitPrice": _decimal_text(disk_price),
            "ChargeDescription": f"SSD backed PD Capacity in {FOCUS_REGION}",
            "ConsumedQuantity": _Bare(format(disk_gib_hours.quantize(_FOCUS_QUANTITY_QUANTUM), "f")),
            "ConsumedUnit": "GiB-Hours",
            "PricingQuantity": _focus_cost(disk_gib_hours),
            "PricingUnit": "GiB-Hours",
            "ResourceId": f"//compute.googleapis.com/projects/{FOCUS_PROJECT}/zones/"
            f"{_FOCUS_ZONES[0]}/disks/model-weights-ssd",
            "ResourceName": "model-weights-ssd",
            "ResourceType": "disk",
            "ServiceCategory": "Storage",
            "ServiceName": "Compute Engine",
            "ServiceSubcategory": "Block Storage",
            "Id": _focus_row_id(day, 900),
            "SkuId": "D973-5D65-BAB2",
            "SkuPriceId": f"D973-5D65-BAB2-ondemand-{FOCUS_REGION}",
            "Tags": json.dumps({"costwatch-env": "prod"}),
            "SkuPriceDetails": json.dumps({"DiskType": "pd-ssd", "DiskSpace": 500}),
        },
        {
            **common,
            **period,
            "AvailabilityZone": None,
            "BilledCost": _focus_cost(egress_gib * egress_price),
            "ContractedCost": _focus_cost(egress_gib * egress_price),
            "ContractedUnitPrice": _focus_cost(egress_price),
            "EffectiveCost": _focus_cost(egress_gib * egress_price),
            "ListCost": _focus_cost(egress_gib * egress_price),
            "ListUnitPrice": _decimal_text(egress_price),
            "ChargeDescription": "Network Internet Data Transfer Out from Americas to Americas",
            "ConsumedQuantity": _Bare(format(egress_gib.quantize(_FOCUS_QUANTITY_QUANTUM), "f")),
            "ConsumedUnit": "GiB",
            "PricingQuantity": _focus_cost(egress_gib),
            "PricingUnit": "GiB",
            "ResourceId": None,
            "ResourceName": None,
            "ResourceType": None,
            "ServiceCategory": "Networking",
            "ServiceName": "Networking",
            "ServiceSubcategory": "Network Connectivity",
            "Id": _focus_row_id(day, 901),
            "SkuId": "9DE9-9092-B3BC",
            "SkuPriceId": f"9DE9-9092-B3BC-ondemand-{FOCUS_REGION}",
            "Tags": None,
            "SkuPriceDetails": None,
        },
    ]


class GpuLedger:
    """Collects, day by day, what the self-hosted pools are billed and how busy they were, and
    writes each day's nvidia-smi logs as it goes."""

    def __init__(self, plan: GenerationPlan, out_dir: Path):
        self.plan = plan
        self.out_dir = out_dir
        self.telemetry_pool = POOL_BY_NAME[FOCUS_POOL]
        self.daily: dict[str, dict[str, dict]] = {pool.name: {} for pool in POOLS}
        self.busy_minutes: dict[str, dict[str, str]] = {
            replica_id: {} for replica_id in self.telemetry_pool.replica_ids
        }
        self.utilization_sum: dict[str, int] = {}  # day -> sum of utilization.gpu [%] of pool
        self.hourly_peaks: dict[str, list[tuple[str, int, int]]] = {pool.name: [] for pool in POOLS}
        self.removed: dict[str, dict[str, int]] = {pool.name: {} for pool in POOLS}
        self.files: list[dict] = []
        self.written: set[str] = set()
        # Calls of the telemetry pool that started before midnight and still ran after it: the
        # GPU is busy with them in the next day's first minutes. Nothing runs into the range's
        # first day: the logs hold no call before the range.
        empty = np.zeros(0, dtype=np.int64)
        self.carried: tuple[np.ndarray, np.ndarray, np.ndarray] = (empty, empty, empty)

    def emit(self, relative: str, text: str, entry: dict) -> None:
        _write_text_atomically(self.out_dir / relative, text)
        self.written.add(relative)
        self.files.append({"path": relative, **entry})

    def add_day(self, day: dt.date, frame: pl.DataFrame, removed: dict[str, int]) -> None:
        """Account one day's TRUE calls (``_true_day_frame``) and write its telemetry."""
        iso_day = day.isoformat()
        day_start_ms = _epoch_ms(day)
        hourly = (
            frame.lazy()
            .filter(pl.col("pool").is_not_null() & pl.col("replica_id").is_not_null())
            .group_by("pool", pl.col("ts").dt.hour().alias("hour"))
            .len()
            .collect()
        )
        for pool in POOLS:
            replica, start, end = replica_busy_intervals(frame, pool)
            # Busy time from the logs, as a reader of one day's logs sees it: per replica the
            # union of the calls that started that day, clipped at midnight.
            log_busy_ms = sum(
                int(covered_ms_per_minute(start[replica == index], end[replica == index], day_start_ms).sum())
                for index in range(pool.replica_count)
            )
            per_hour = np.zeros(24, dtype=np.int64)
            of_pool = hourly.filter(pl.col("pool") == pool.name)
            per_hour[of_pool["hour"].to_numpy()] = of_pool["len"].to_numpy()
            peak_hour = int(np.argmax(per_hour))  # the earliest of equally busy hours
            self.hourly_peaks[pool.name].append((iso_day, peak_hour, int(per_hour[peak_hour])))
            instance_hours = Decimal(24 * pool.replica_count)
            entry = {
                "replicas": pool.replica_count,
                "billed_gpu_hours": _decimal_text(instance_hours * pool.gpus_per_replica),
                "billed_usd": _decimal_text(instance_hours * pool_usd_per_instance_hour(pool)),
                "log_busy_gpu_hours": _six_decimals(Decimal(log_busy_ms * pool.gpus_per_replica) / HOUR_MS),
                "served_requests": int(per_hour.sum()),
                "peak_hour": peak_hour,
                "peak_hour_requests": int(per_hour[peak_hour]),
            }
            if removed.get(pool.name):
                entry["removed_requests"] = removed[pool.name]
                self.removed[pool.name][iso_day] = removed[pool.name]
            if pool.name == self.telemetry_pool.name:
                carried_replica, carried_start, carried_end = self.carried
                late = end > day_start_ms + DAY_MS
                self.carried = (replica[late], start[late], end[late])
                replica = np.concatenate([carried_replica, replica])
                start = np.concatenate([carried_start, start])
                end = np.concatenate([carried_end, end])
                covered = np.stack(
                    [
                        covered_ms_per_minute(start[replica == index], end[replica == index], day_start_ms)
                        for index in range(pool.replica_count)
                    ]
                )
                texts, utilization = _nvidia_smi_text(self.plan, day, covered)
                for index, replica_id in enumerate(pool.replica_ids):
                    self.emit(
                        telemetry_file_name(replica_id, day),
                        texts[index],
                        {
                            "kind": "nvidia_smi",
                            "pool": pool.name,
                            "replica_id": replica_id,
                            "day": iso_day,
                            "rows": MINUTES_PER_DAY,
                        },
                    )
                    # Each sample stands for its minute: busy minutes = sum(util %) / 100.
                    self.busy_minutes[replica_id][iso_day] = str(Decimal(int(utilization[index].sum())).scaleb(-2))
                self.utilization_sum[iso_day] = int(utilization.sum())
                entry["busy_gpu_hours"] = _six_decimals(Decimal(int(utilization.sum()) * pool.gpus_per_replica) / 6_000)
            self.daily[pool.name][iso_day] = entry


def write_gpu(out_dir: Path, plan: GenerationPlan, ledger: GpuLedger) -> tuple[dict, list[dict]]:
    """Write the GPU billing exports and the load test; return (``manifest["gpu"]``,
    ``manifest["gpu_events"]``). Telemetry is already written by ``ledger.add_day``."""
    for folder, _ in _GPU_GLOBS:
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    focus_pool = POOL_BY_NAME[FOCUS_POOL]
    csv_pool = POOL_BY_NAME[GPU_HOURS_CSV_POOL]
    days_by_month: dict[str, list[dt.date]] = {}
    for day in plan.record_days:
        days_by_month.setdefault(_month_key(day), []).append(day)

    billed_from_files: dict[tuple[str, str], Decimal] = {}
    non_gpu_rows: list[dict] = []
    for month, days in days_by_month.items():
        lines = [",".join(f'"{column}"' for column in FOCUS_COLUMNS)]
        row_count = 0
        for day in days:
            rows = _focus_gpu_rows(day, focus_pool)
            key = (focus_pool.name, day.isoformat())
            billed_from_files[key] = sum((Decimal(row["BilledCost"]) for row in rows), Decimal(0))
            if day == days[0]:
                extra = _focus_non_gpu_rows(day)
                rows += extra
                non_gpu_rows += [
                    {
                        "month": month,
                        "Id": int(row["Id"]),
                        "ServiceCategory": row["ServiceCategory"],
                        "ChargeDescription": row["ChargeDescription"],
                        "BilledCost": _decimal_text(Decimal(row["BilledCost"])),
                    }
                    for row in extra
                ]
            lines += [_focus_line(row) for row in rows]
            row_count += len(rows)
        ledger.emit(
            focus_file_name(month),
            "\n".join(lines) + "\n",
            {"kind": "focus", "pool": focus_pool.name, "month": month, "rows": row_count},
        )

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(GPU_HOURS_COLUMNS)
        for day in days:
            for replica_id in csv_pool.replica_ids:
                usd = (24 * csv_pool.gpus_per_replica * GPU_HOURS_USD_PER_GPU_HOUR).quantize(Decimal("0.01"))
                writer.writerow(
                    [day.isoformat(), csv_pool.name, replica_id, csv_pool.gpu_type, csv_pool.gpus_per_replica, 24, usd]
                )
                key = (csv_pool.name, day.isoformat())
                billed_from_files[key] = billed_from_files.get(key, Decimal(0)) + usd
        ledger.emit(
            gpu_hours_file_name(month),
            buffer.getvalue(),
            {"kind": "gpu_hours", "pool": csv_pool.name, "month": month, "rows": len(days) * csv_pool.replica_count},
        )

    for (pool_name, iso_day), usd in billed_from_files.items():
        if Decimal(ledger.daily[pool_name][iso_day]["billed_usd"]) != usd:
            raise AssertionError(f"{pool_name} {iso_day}: files bill {usd}")

    rows = loadtest_rows()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOADTEST_COLUMNS)
    writer.writerows([[row[column] for column in LOADTEST_COLUMNS] for row in rows])
    ledger.emit(
        loadtest_file_name(focus_pool.name),
        buffer.getvalue(),
        {"kind": "loadtest", "pool": focus_pool.name, "rows": len(rows)},
    )
    cut = loadtest_slo_cut(rows)

    for folder, pattern in _GPU_GLOBS:
        for stale in sorted((out_dir / folder).glob(pattern)):
            if f"{folder}/{stale.name}" not in ledger.written:
                stale.unlink()

    totals = {}
    for pool in POOLS:
        daily = ledger.daily[pool.name].values()
        totals[pool.name] = {
            "billed_gpu_hours": _decimal_text(sum((Decimal(d["billed_gpu_hours"]) for d in daily), Decimal(0))),
            "billed_usd": _decimal_text(sum((Decimal(d["billed_usd"]) for d in daily), Decimal(0))),
            "log_busy_gpu_hours": _six_decimals(sum((Decimal(d["log_busy_gpu_hours"]) for d in daily), Decimal(0))),
            "served_requests": sum(d["served_requests"] for d in daily),
        }
    focus_busy = Decimal(sum(ledger.utilization_sum.values()) * focus_pool.gpus_per_replica)
    totals[focus_pool.name]["busy_gpu_hours"] = _six_decimals(focus_busy / 6_000)

    gpu_manifest = {
        "pools": {
            focus_pool.name: {
                "billing_export": "focus",
                "files": "gpu_billing/focus_<YYYY-MM>.csv",
                "provider": FOCUS_PROVIDER,
                "instance_type": FOCUS_INSTANCE_TYPE,
                "gpu_type": focus_pool.gpu_type,
                "gpus_per_instance": focus_pool.gpus_per_replica,
                "usd_per_instance_hour": _decimal_text(FOCUS_USD_PER_INSTANCE_HOUR),
                "usd_per_gpu_hour": _decimal_text(FOCUS_USD_PER_INSTANCE_HOUR / focus_pool.gpus_per_replica),
                "resource_ids": {
                    replica_id: focus_resource_id(index) for index, replica_id in enumerate(focus_pool.replica_ids)
                },
                "tags": {"pool": FOCUS_POOL_TAG, "replica": FOCUS_REPLICA_TAG},
                "telemetry": "gpu_telemetry/nvidia_smi_<replica_id>_<YYYY-MM-DD>.csv",
                "loadtest": loadtest_file_name(focus_pool.name),
            },
            csv_pool.name: {
                "billing_export": "gpu_hours_csv",
                "files": "gpu_billing/gpu_hours_<YYYY-MM>.csv",
                "gpu_type": csv_pool.gpu_type,
                "gpus_per_instance": csv_pool.gpus_per_replica,
                "usd_per_instance_hour": _decimal_text(pool_usd_per_instance_hour(csv_pool)),
                "usd_per_gpu_hour": _decimal_text(GPU_HOURS_USD_PER_GPU_HOUR),
                "telemetry": None,
                "loadtest": None,
            },
        },
        "definitions": {
            "billed_gpu_hours": "instance hours x GPUs per instance; every replica is billed 24 h a day, busy or not",
            "busy_minutes": "per replica and day: sum over the day's 60 s nvidia-smi samples of "
            "utilization.gpu [%] / 100; a sample stands for the UTC minute its "
            "timestamp falls in, which includes calls that started the day "
            "before and ran past midnight",
            "busy_gpu_hours": "sum of busy_minutes over the pool's replicas x GPUs per replica "
            "/ 60, rounded to 6 decimals (telemetry pools only)",
            "log_busy_gpu_hours": "busy time from the logs: per replica, the union of the "
            "[ts, ts + duration_ms] of its calls whose ts is on the UTC "
            "day (errors included), clipped at the next midnight; x GPUs "
            "per replica, rounded to 6 decimals",
            "telemetry_timestamps": "a fixed sub-second offset per replica and day, then "
            "exactly 60 s apart: 1,440 samples, 24 h of samples",
            "utilization_gpu": "floor(covered share of the minute x 100 + U[0, 1)) + 1 on ~2% "
            "of samples, at most 100: 0-1 % when idle, within 2 points of "
            "the covered share",
            "served_requests": "calls that reached a replica (replica_id set: gateway cache "
            "hits excluded, errors included), by the UTC day of ts",
            "peak_hour_requests": "served_requests in the day's busiest UTC hour of ts "
            "(peak_rps = peak_hour_requests / 3600)",
            "focus_gpu_rows": f"rows with a {FOCUS_POOL_TAG} tag (and GpuCount in "
            "SkuPriceDetails); the others are not GPU time",
        },
        "telemetry": {
            "sample_interval_s": TELEMETRY_SAMPLE_MS // 1000,
            "samples_per_day": MINUTES_PER_DAY,
            "gpu_name": GPU_NAME,
            "memory_used_mib": GPU_MEMORY_USED_MIB,
            "memory_total_mib": GPU_MEMORY_TOTAL_MIB,
        },
        "loadtest": {
            "path": loadtest_file_name(focus_pool.name),
            "pool": focus_pool.name,
            "gpu": GPU_NAME,
            "model_shape": LOADTEST_MODEL_SHAPE,
            "latency_slo_s": LATENCY_SLO_S,
            "slo_batch_size": cut["batch_size"],
            "slo_request_latency_s": repr(cut["request_latency_s"]),
            "requests_per_s_at_slo": cut["requests_per_s"],
        },
        "focus_non_gpu_rows": non_gpu_rows,
        "files": ledger.files,
        "daily": ledger.daily,
        "busy_minutes": ledger.busy_minutes,
        "totals": totals,
    }
    return gpu_manifest, _gpu_event_manifests(plan, ledger, cut, totals)


def _gpu_event_manifests(plan: GenerationPlan, ledger: GpuLedger, cut: dict, totals: dict) -> list[dict]:
    entries = []
    for event in plan.gpu_events:
        pool = POOL_BY_NAME[event.pool]
        if event.kind == "over_provisioned_pool":
            # The busiest hour of the range; the earliest one when several tie.
            peak_day, peak_hour, peak_requests = min(
                ledger.hourly_peaks[pool.name], key=lambda peak: (-peak[2], peak[0], peak[1])
            )
            per_replica_rps = Decimal(cut["requests_per_s"])
            needed = replicas_needed(peak_requests, per_replica_rps)
            billed_hours = Decimal(totals[pool.name]["billed_gpu_hours"])
            busy_hours = Decimal(totals[pool.name]["busy_gpu_hours"])
            excess = pool.replica_count - needed
            effect = {
                "billed_replicas": pool.replica_count,
                "billed_gpu_hours": totals[pool.name]["billed_gpu_hours"],
                "billed_usd": totals[pool.name]["billed_usd"],
                "busy_gpu_hours": totals[pool.name]["busy_gpu_hours"],
                "utilization": _six_decimals(busy_hours / billed_hours),
                "peak_day": peak_day,
                "peak_hour": peak_hour,
                "peak_hour_requests": peak_requests,
                "peak_rps": _six_decimals(Decimal(peak_requests) / 3600),
                "per_replica_rps": cut["requests_per_s"],
                "slo_batch_size": cut["batch_size"],
                "latency_slo_s": LATENCY_SLO_S,
                "headroom": _decimal_text(CAPACITY_HEADROOM),
                "replicas_needed": needed,
                "excess_replicas": excess,
                "excess_usd": _decimal_text(excess * 24 * plan.days * pool_usd_per_instance_hour(pool)),
                "note": "replicas_needed = ceil(peak_rps / per_replica_rps x (1 + headroom)); "
                "peak over every hour of the range; excess_usd = excess_replicas x 24 h "
                "x days x USD per instance-hour",
            }
        elif event.kind == "idle_weekend":
            days = [
                event.start_day + dt.timedelta(days=offset)
                for offset in range((event.end_day - event.start_day).days + 1)
            ]
            idle_hours = Decimal(24 * len(days) * pool.replica_count * pool.gpus_per_replica)
            effect = {
                "days": [day.isoformat() for day in days],
                "weekdays": [day.strftime("%A") for day in days],
                "removed_requests": {
                    day.isoformat(): ledger.removed[pool.name].get(day.isoformat(), 0) for day in days
                },
                "served_requests": sum(ledger.daily[pool.name][day.isoformat()]["served_requests"] for day in days),
                "idle_gpu_hours": _decimal_text(idle_hours),
                "idle_usd": _decimal_text(idle_hours * GPU_HOURS_USD_PER_GPU_HOUR),
                "billed_usd": _decimal_text(
                    sum((Decimal(ledger.daily[pool.name][day.isoformat()]["billed_usd"]) for day in days), Decimal(0))
                ),
                "note": "idle_usd = 24 h x days x replicas x GPUs per replica x USD per GPU-hour",
            }
        else:
            raise ValueError(f"unknown GPU event {event.kind!r}")
        entries.append(event.to_manifest(effect))
    return entries


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def request_file_name(day: dt.date) -> str:
    return f"requests_{day.isoformat()}.jsonl.gz"


def generate(
    out_dir: Path,
    *,
    start_date: dt.date,
    days: int,
    requests_per_day: int,
    seed: int = 7,
    price_catalog: Path = PRICE_CATALOG_PATH,
) -> dict:
    """Write the gateway logs, the provider billing exports and ``OUT/manifest.json``.

    Files: ``gateway/requests_<YYYY-MM-DD>.jsonl.gz`` (what the gateway logged), and per calendar
    month the range touches ``openai/costs_<YYYY-MM>.json`` (Costs API page),
    ``openai/usage_<YYYY-MM>.json`` (Usage API completions page),
    ``anthropic/cost_report_<YYYY-MM>.json`` and ``anthropic/usage_report_<YYYY-MM>.json``
    (Admin API reports), plus ``invoices/invoice_<YYYY-MM>.csv`` for each complete month. The
    exports bill the TRUE calls (``build_day_frame``) at the providers' actual prices; the logs
    are ``gateway_view`` of them, so the planted ``billing_events`` separate the two.

    ``requests_per_day`` is the weekday volume at ``start_date`` (interactive plus the nightly
    batch); weekends carry 60% of the interactive part, traffic grows 0.1% a day with ~3% daily
    noise, and a user spike adds its extra requests on top. There is one file per *write* day:
    the ``days`` days of the range plus the day after, which receives late and replayed lines of
    the last day. Earlier ``requests_*.jsonl.gz`` files in ``OUT/gateway`` (and billing files in
    the billing folders) that this run does not write are removed, so a glob over a folder sees
    exactly this run.

    GPU files (module docstring): ``gpu_billing/focus_<YYYY-MM>.csv`` and
    ``gpu_billing/gpu_hours_<YYYY-MM>.csv`` per month,
    ``gpu_telemetry/nvidia_smi_<replica>_<day>.csv`` per interactive replica and day, and
    ``loadtest/llama-8b-h100.csv``; stale files in those folders are removed too.

    Returns the manifest (also written to ``manifest.json``): counts per file, per day and in
    total, the planted events and billing events, billed USD per provider and day, invoice
    totals, GPU billing, busy time and events (``gpu``, ``gpu_events``), and the models,
    features and pools the data uses.
    """
    plan = plan_generation(start_date=start_date, days=days, requests_per_day=requests_per_day, seed=seed)
    ledger = BillingLedger(plan, load_token_prices(price_catalog))
    out_dir = Path(out_dir)
    gpu_ledger = GpuLedger(plan, out_dir)
    gateway_dir = out_dir / "gateway"
    gateway_dir.mkdir(parents=True, exist_ok=True)
    file_names = {request_file_name(day) for day in plan.write_days}
    for stale in sorted(gateway_dir.glob("requests_*.jsonl.gz")):
        if stale.name not in file_names:
            stale.unlink()

    per_day: dict[str, dict] = {}
    files: list[dict] = []
    malformed_by_kind = {kind: 0 for kind in MALFORMED_KINDS}
    gateway_cache_hits = 0
    error_records = 0
    lost_records = 0
    # Lines that arrive in a later file than their record's day, already serialised.
    carried = pl.DataFrame(schema=_DELIVERY_SCHEMA)

    for file_index, write_day in enumerate(plan.write_days):
        frame = None
        own = pl.DataFrame(schema=_DELIVERY_SCHEMA)
        if write_day <= plan.end_date:
            true_frame, removed = _true_day_frame(plan, write_day)
            frame, lost = gateway_view(plan, write_day, true_frame)
            ledger.add_day(write_day, true_frame, frame, lost)
            gpu_ledger.add_day(write_day, true_frame, removed)
            del true_frame
            deliveries = _deliveries_of(frame)
            arrives_today = deliveries["arrival_ts"].dt.date() == write_day
            own = deliveries.filter(arrives_today)
            carried = pl.concat([carried, _with_text(deliveries.filter(~arrives_today), frame)])
            per_day[write_day.isoformat()] = {
                "records": frame.height,
                "duplicate_lines": int((deliveries["delivery"] == "duplicate").sum()),
                "late_arrivals": int(((deliveries["delivery"] == "first") & ~arrives_today).sum()),
                "malformed_lines": 0,
                # True calls of the day the gateway never logged (in bills, not in any file).
                "lost_records": lost.height,
            }
            gateway_cache_hits += int(frame["gateway_cache_hit"].sum())
            error_records += int((frame["status"] == "error").sum())
            lost_records += lost.height
        else:
            per_day[write_day.isoformat()] = {
                "records": 0,
                "duplicate_lines": 0,
                "late_arrivals": 0,
                "malformed_lines": 0,
                "lost_records": 0,
            }

        carried_day = carried["arrival_ts"].dt.date()
        from_earlier_days = carried.filter(carried_day == write_day)
        carried = carried.filter(carried_day > write_day)
        malformed = _malformed_deliveries(plan, write_day, file_index, own.height + from_earlier_days.height)
        file_rows = pl.concat([from_earlier_days, own, malformed]).sort("arrival_ts", maintain_order=True)

        relative_path = Path("gateway") / request_file_name(write_day)
        _write_gzip_lines(out_dir / relative_path, file_rows, frame)

        for kind, kind_count in malformed["malformed_kind"].value_counts(sort=True).iter_rows():
            malformed_by_kind[kind] += kind_count
        per_day[write_day.isoformat()]["malformed_lines"] = malformed.height
        good_rows = file_rows.filter(pl.col("delivery") != "malformed")
        files.append(
            {
                "path": relative_path.as_posix(),
                "day": write_day.isoformat(),
                "lines": file_rows.height,
                "first_delivery_lines": int((file_rows["delivery"] == "first").sum()),
                "duplicate_lines": int((file_rows["delivery"] == "duplicate").sum()),
                "malformed_lines": malformed.height,
                "late_lines": int(((good_rows["delivery"] == "first") & (good_rows["record_day"] < write_day)).sum()),
                "record_days": [day.isoformat() for day in good_rows["record_day"].unique().sort()],
            }
        )
        del frame, file_rows, own

    if carried.height:
        raise AssertionError("every delivery must land within one day after the range")
    billing = write_billing(out_dir, plan, ledger)
    gpu, gpu_events = write_gpu(out_dir, plan, gpu_ledger)

    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "format": "canonical",
        "seed": seed,
        "start_date": start_date.isoformat(),
        "end_date": plan.end_date.isoformat(),
        "days": days,
        "requests_per_day": requests_per_day,
        "files": files,
        "totals": {
            "lines": sum(entry["lines"] for entry in files),
            "records": sum(counts["records"] for counts in per_day.values()),
            "duplicate_lines": sum(counts["duplicate_lines"] for counts in per_day.values()),
            "malformed_lines": sum(malformed_by_kind.values()),
            "malformed_by_kind": malformed_by_kind,
            "late_arrivals": sum(counts["late_arrivals"] for counts in per_day.values()),
            "gateway_cache_hits": gateway_cache_hits,
            "error_records": error_records,
            "lost_records": lost_records,
        },
        "per_day": per_day,
        "events": [event.to_manifest() for event in plan.events],
        "billing_events": ledger.event_manifests(),
        "billing": billing,
        "gpu_events": gpu_events,
        "gpu": gpu,
        "models": {
            model.name: {"provider": model.provider, "pool": model.pool, "in_price_catalog": model.in_price_catalog}
            for model in MODELS
        },
        "features": [
            {
                "name": feature.name,
                "team": feature.team,
                "workload": feature.workload,
                "models": {name: share for name, share in feature.model_mix},
            }
            for feature in FEATURES
        ],
        "pools": {
            pool.name: {
                "model": pool.model,
                "replicas": pool.replica_ids,
                "gpu_type": pool.gpu_type,
                "gpus_per_replica": pool.gpus_per_replica,
                "workload": pool.workload,
            }
            for pool in POOLS
        },
        "users": {
            "count": USER_COUNT,
            "missing_user_ratio": MISSING_USER_RATIO,
            "missing_feature_ratio": MISSING_FEATURE_RATIO,
        },
        "volume": {
            "weekend_interactive_ratio": WEEKEND_INTERACTIVE_RATIO,
            "batch_share_of_weekday": BATCH_SHARE_OF_WEEKDAY,
            "daily_growth_ratio": DAILY_GROWTH_RATIO,
            "interactive_peak_hour_utc": int(np.argmax(INTERACTIVE_HOURLY_WEIGHTS)),
            "batch_window_utc": ["00:30", "06:00"],
        },
    }
    manifest_path = out_dir / "manifest.json"
    temporary_manifest = manifest_path.with_name(manifest_path.name + ".tmp")
    temporary_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary_manifest, manifest_path)
    return manifest
