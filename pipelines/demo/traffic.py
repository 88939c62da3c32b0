"""Gateway traffic: the catalogue (models, pools, features, users), the plan and its planted events,
one day's true calls, what the gateway logged of them, and the files it wrote.

What the data looks like
------------------------
One gzip'd JSONL file per *write* day, ``gateway/requests_<YYYY-MM-DD>.jsonl.gz``, one canonical
gateway record per line (DESIGN.md section 1), written in arrival order:

- Interactive traffic follows a day curve (busy hour 14:00 UTC, trough around 04:00 UTC);
  Saturdays and Sundays carry 60% of a weekday's interactive traffic. Two nightly batch jobs run
  every day between 00:30 and 06:00 UTC: ``batch_tagging`` (self-hosted Qwen) and ``doc_digest``
  (OpenAI's Batch API and Anthropic's Message Batches, ``service_tier`` ``batch``, half price; every
  tenth call overflows to the ``standard`` tier at full price, declared batch work billed as
  interactive).
- Nine features with their own token shapes and model mixes (``FEATURES``): ``chat`` (conversations
  whose context grows turn by turn, Anthropic prompt caching), ``search_rag`` (4-12k token
  prompts, short answers; a fifth of them on the Azure OpenAI EU deployment, priced at Azure's
  catalog entry), ``summarise`` (long in, medium out), ``code_assist`` (medium in and out, mostly
  cache reads; half its OpenAI calls at the ``priority`` tier, its Anthropic cache writes with the
  1-hour TTL), ``autocomplete`` (short, mostly self-hosted Llama), ``voice`` (speech in and out:
  audio tokens inside input and output), ``contract_review`` (150k-420k token prompts, about half
  above gpt-6-luna's 272k-token context tier; reasoning tokens inside output), ``batch_tagging``
  and ``doc_digest``.
- Users are heavy-tailed (Zipf-Mandelbrot over 2,000 ids ``u_00001``..``u_02000``).
- Token convention is canonical: ``input_tokens`` counts every prompt token, cache reads
  (``cached_input_tokens``) and cache writes (``cache_creation_input_tokens``) included.
  OpenAI (and Azure OpenAI) reads are whole multiples of 128 tokens (at least 1,024) and OpenAI
  never reports writes; Anthropic reports both; self-hosted replicas report neither. The optional
  canonical counts (``cache_creation_1h_input_tokens``, ``audio_input_tokens``,
  ``audio_output_tokens``, ``reasoning_tokens``) and ``service_tier`` are written only when a call
  has them (a count above 0, a tier other than ``standard``).
- Delivery is at-least-once and files do not follow days: a few records from the last minutes
  of a day land in the next day's file, ~0.5% of records are delivered twice (the same line,
  sometimes in the next file), and every file has a few malformed lines of known kinds.
- Three cost-creep events are planted when the range has at least 30 days
  (``prompt_growth``, ``user_spike``, ``cache_collapse``); ``manifest.json`` records them with
  their exact days and factors, and every count a reader needs to check an ingest against.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

# ---------------------------------------------------------------------------------------------
# Catalogue: models, pools, features
# ---------------------------------------------------------------------------------------------

PROVIDER_OPENAI = "openai"
PROVIDER_ANTHROPIC = "anthropic"
PROVIDER_AZURE = "azure"  # Azure OpenAI deployments: OpenAI models at Azure's prices
PROVIDER_SELF_HOSTED = "self_hosted"

# Service tiers a call is billed at (the canonical ``service_tier``).
TIER_STANDARD = "standard"
TIER_BATCH = "batch"  # OpenAI Batch API, Anthropic Message Batches: half price, results within 24 h
TIER_PRIORITY = "priority"  # OpenAI priority processing: faster, dearer


@dataclass(frozen=True)
class ModelSpec:
    """A model the gateway routes to, with the latency shape used to fake ``duration_ms``."""

    name: str
    provider: str
    pool: str | None  # self-hosted serving pool; None for API models
    in_price_catalog: bool  # priced by the demo's catalog (fixtures/prices/litellm_2026_11.json)
    time_to_first_token_ms: float
    ms_per_output_token: float
    ms_per_1k_uncached_input_tokens: float
    # Providers ignore prompt caching below this prompt length (Anthropic: 1,024 for Sonnet,
    # 2,048 for Haiku; OpenAI: 1,024); None = the model is not served with prompt caching.
    min_cacheable_prompt_tokens: int | None
    # The catalog key that prices the calls when it is not the logged name: an Azure deployment
    # is priced at Azure's entry (``azure/<model>``), not at OpenAI's entry for the same model.
    catalog_key: str | None = None

    @property
    def price_key(self) -> str:
        return self.catalog_key or self.name


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gpt-4o-2024-08-06", PROVIDER_OPENAI, None, True, 450, 11, 35, 1024),
    ModelSpec("gpt-4o-mini", PROVIDER_OPENAI, None, True, 350, 7, 20, 1024),
    ModelSpec("gpt-4.1-mini", PROVIDER_OPENAI, None, True, 380, 8, 20, 1024),
    # Deliberately absent from the price catalog so the pipeline's "unpriced" path has data.
    ModelSpec("gpt-experimental-preview", PROVIDER_OPENAI, None, False, 700, 15, 40, 1024),
    # Speech in, speech out: audio tokens at their own (much higher) prices.
    ModelSpec("gpt-audio-mini", PROVIDER_OPENAI, None, True, 300, 6, 10, None),
    # A 922k-token context: prompts above 272k tokens are billed at the long-context price.
    ModelSpec("gpt-6-luna", PROVIDER_OPENAI, None, True, 900, 5, 1, None),
    # The EU data-zone deployment on Azure, as LiteLLM names it (azure/eu/<model>): 10% above
    # OpenAI's own price for the same model.
    ModelSpec(
        "eu/gpt-4o-2024-08-06", PROVIDER_AZURE, None, True, 480, 11, 35, 1024, catalog_key="azure/eu/gpt-4o-2024-08-06"
    ),
    ModelSpec("claude-sonnet-4-5-20250929", PROVIDER_ANTHROPIC, None, True, 650, 13, 40, 1024),
    ModelSpec("claude-haiku-4-5-20251001", PROVIDER_ANTHROPIC, None, True, 450, 8, 25, 2048),
    # Self-hosted models are priced by GPU-hours, not tokens: not in the catalog on purpose.
    ModelSpec("llama-3.1-8b-instruct", PROVIDER_SELF_HOSTED, "llama-8b-h100", False, 120, 9, 15, 0),
    ModelSpec("qwen2.5-32b-instruct", PROVIDER_SELF_HOSTED, "qwen-32b-a100", False, 300, 28, 60, 0),
)
MODEL_BY_NAME = {model.name: model for model in MODELS}
UNPRICED_API_MODEL = "gpt-experimental-preview"
AUDIO_MODEL = "gpt-audio-mini"
LONG_CONTEXT_MODEL = "gpt-6-luna"
AZURE_MODEL = "eu/gpt-4o-2024-08-06"
SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"


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
    audio_input_tokens: np.ndarray | None = None  # the spoken part of the prompt (<= input); None = none


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


def _voice_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # A text system prompt plus the user's speech (~10 audio tokens a second).
    audio_input_tokens = _lognormal_tokens(rng, 380, 0.5, size, 20, 6_000)
    text_tokens = 420 + rng.integers(0, 80, size)
    return PromptDraw(text_tokens + audio_input_tokens, np.zeros(size, dtype=np.int64), audio_input_tokens)


def _contract_review_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # Whole contracts with their exhibits, each new: nothing to cache. About half the prompts
    # cross the 272k-token context tier; a bounded range keeps one call's cost bounded.
    input_tokens = rng.integers(150_000, 420_000, size).astype(np.int64)
    return PromptDraw(input_tokens, np.zeros(size, dtype=np.int64))


def _doc_digest_prompts(rng: np.random.Generator, size: int) -> PromptDraw:
    # Yesterday's documents, one per request, sent through the providers' batch APIs.
    input_tokens = _lognormal_tokens(rng, 3_000, 0.5, size, 300, 30_000)
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
    service_tier: str = TIER_STANDARD  # the tier every API call of the feature is sent at
    # Share of the feature's OpenAI calls sent at the priority tier instead (latency-bound UIs).
    priority_ratio: float = 0.0
    # Every Nth call of the feature sent at the standard tier instead (0: none): a batch job's
    # overflow past its batch quota, declared batch work at interactive prices.
    standard_tier_every: int = 0
    # Anthropic: share of the feature's cache writes with the 1-hour TTL (dearer than 5 minutes).
    cache_write_1h_ratio: float = 0.0
    audio_output_ratio: float = 0.0  # share of output tokens that are speech
    reasoning_output_ratio: float = 0.0  # share of output tokens spent on hidden reasoning


FEATURES: tuple[FeatureProfile, ...] = (
    FeatureProfile(
        "chat",
        "assistant",
        "interactive",
        0.38,
        (
            (SONNET, 0.40),
            (HAIKU, 0.12),
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
        # EU customers' searches go to the EU data-zone deployment on Azure.
        (("gpt-4o-mini", 0.45), ("gpt-4.1-mini", 0.25), ("gpt-4o-2024-08-06", 0.10), (AZURE_MODEL, 0.20)),
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
        ((HAIKU, 0.45), ("gpt-4o-mini", 0.35), (SONNET, 0.20)),
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
        ((SONNET, 0.60), ("gpt-4.1-mini", 0.25), ("gpt-4o-2024-08-06", 0.15)),
        _code_assist_prompts,
        360,
        0.65,
        8_000,
        0.92,
        0.5,
        0.02,
        # Edits wait on the answer: half the OpenAI calls go at the priority tier. The repository
        # context is cached for an hour, across an editing session.
        priority_ratio=0.5,
        cache_write_1h_ratio=1.0,
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
    FeatureProfile(
        "voice",
        "assistant",
        "interactive",
        0.03,
        ((AUDIO_MODEL, 1.0),),
        _voice_prompts,
        420,
        0.45,
        4_000,
        0.0,
        0.0,
        0.0,
        audio_output_ratio=0.8,  # the spoken answer; the rest is its transcript
    ),
    FeatureProfile(
        "contract_review",
        "legal",
        "interactive",
        0.02,
        ((LONG_CONTEXT_MODEL, 1.0),),
        _contract_review_prompts,
        1_400,
        0.35,
        8_000,
        0.0,
        0.0,
        0.0,
        reasoning_output_ratio=0.6,
    ),
    FeatureProfile(
        "doc_digest",
        "docs",
        "batch",
        0.0,
        (("gpt-4.1-mini", 0.6), (HAIKU, 0.4)),
        _doc_digest_prompts,
        300,
        0.4,
        2_000,
        0.0,
        0.0,
        0.0,
        job="nightly_digest",
        service_tier=TIER_BATCH,
        standard_tier_every=10,
    ),
)
FEATURE_BY_NAME = {feature.name: feature for feature in FEATURES}
BATCH_FEATURE = "batch_tagging"  # the self-hosted nightly job
API_BATCH_FEATURE = "doc_digest"  # the nightly job sent through the providers' batch APIs

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
API_BATCH_SHARE_OF_WEEKDAY = 0.03  # the batch-API job's volume, likewise
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

ERROR_RATIO_BY_PROVIDER = {
    PROVIDER_OPENAI: 0.008,
    PROVIDER_AZURE: 0.008,
    PROVIDER_ANTHROPIC: 0.013,
    PROVIDER_SELF_HOSTED: 0.01,
}

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
# Planted billing discrepancies (kinds in ``manifest["billing_events"]``), billed in provider_bills.py.
LOST_LOGS_RATIO = 0.30  # share of the day's Anthropic calls the gateway never logged
PRICE_CHANGE_MODEL = "gpt-4o-mini"
PRICE_CHANGE_FACTOR = Decimal("1.25")
FINE_TUNING_LINE_ITEM = "fine-tuning training, gpt-4o-mini-2024-07-18"
FINE_TUNING_MODEL = "gpt-4o-mini-2024-07-18"
FINE_TUNING_PROJECT = "data"  # project proj_data: a team with no OpenAI gateway traffic
FINE_TUNING_USD = Decimal("42.00")
DOUBLE_COUNTED_CACHE_MODEL = HAIKU

# The pools the planted GPU findings are about (gpus.py bills them).
FOCUS_POOL = "llama-8b-h100"
GPU_HOURS_CSV_POOL = "qwen-32b-a100"

# Random streams: each (seed, stream, key) gets its own generator.
STREAM_USERS = 1
STREAM_DAY = 2
STREAM_MALFORMED = 3
STREAM_LOST_LOGS = 4
STREAM_TELEMETRY = 5

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
    rng = np.random.default_rng([seed, STREAM_USERS])
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
# No prompt caching: a minimum no prompt reaches.
_MODEL_MIN_CACHEABLE = np.array(
    [model.min_cacheable_prompt_tokens or np.iinfo(np.int64).max for model in MODELS], dtype=np.int64
)
_SERVICE_TIERS = [TIER_STANDARD, TIER_BATCH, TIER_PRIORITY]
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
    "service_tier": pl.String,  # standard, batch or priority; null for self-hosted (field omitted)
    "cache_creation_1h_input_tokens": pl.Int64,  # the 1-hour share of cache_creation_input_tokens
    "audio_input_tokens": pl.Int64,  # inside input_tokens
    "audio_output_tokens": pl.Int64,  # inside output_tokens
    "reasoning_tokens": pl.Int64,  # inside output_tokens
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


def daily_request_counts(plan: GenerationPlan, day: dt.date, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(interactive, self-hosted batch, batch-API, extra spike) request counts for a day, before
    delivery faults."""
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
    api_batch_mean = (
        plan.requests_per_day * API_BATCH_SHARE_OF_WEEKDAY * growth * rng.lognormal(0.0, DAILY_VOLUME_SIGMA)
    )
    api_batch_count = int(rng.poisson(api_batch_mean))
    spike_count = 0
    for event in plan.events_of("user_spike", day):
        rank = plan.user_ids_by_rank.index(event.user_id)
        usual_requests = (interactive_count + batch_count + api_batch_count) * plan.user_rank_weights[rank]
        spike_count += int(round((event.factor - 1) * usual_requests))
    return interactive_count, batch_count, api_batch_count, spike_count


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
    rng = np.random.default_rng([plan.seed, STREAM_DAY, day.toordinal()])
    interactive_count, batch_count, api_batch_count, spike_count = daily_request_counts(plan, day, rng)
    requests = _draw_requests(
        plan, day, rng, interactive_count, batch_count, spike_count, request_id_tag="", api_batch_count=api_batch_count
    )
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
    api_batch_count: int = 0,
) -> dict[str, np.ndarray | pl.Series]:
    """Draw the requests of one day as column arrays (no delivery columns yet)."""
    batch_count += api_batch_count  # both nightly jobs run in the batch window
    row_count = interactive_count + batch_count + spike_count
    batch_code = _FEATURE_NAMES.index(BATCH_FEATURE)

    feature_code = np.concatenate(
        [
            rng.choice(_INTERACTIVE_FEATURE_CODES, interactive_count, p=_INTERACTIVE_FEATURE_SHARES),
            np.full(batch_count - api_batch_count, batch_code),
            np.full(api_batch_count, _FEATURE_NAMES.index(API_BATCH_FEATURE)),
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
    audio_input_tokens = np.zeros(row_count, dtype=np.int64)
    audio_output_ratio = np.zeros(row_count)
    reasoning_output_ratio = np.zeros(row_count)
    cache_write_1h_ratio = np.zeros(row_count)
    cache_warm = np.empty(row_count, dtype=bool)
    tail_write_ratio = np.empty(row_count)
    gateway_cache_hit = np.empty(row_count, dtype=bool)
    service_tier_code = np.zeros(row_count, dtype=np.int64)
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
        if prompts.audio_input_tokens is not None:
            audio_input_tokens[rows] = prompts.audio_input_tokens
        output_tokens[rows] = _lognormal_tokens(
            rng, feature.output_median_tokens, feature.output_sigma, rows.size, 1, feature.output_max_tokens
        )
        cache_warm[rows] = rng.random(rows.size) < feature.prompt_cache_warm_ratio
        tail_write_ratio[rows] = feature.cache_write_tail_ratio
        gateway_cache_hit[rows] = rng.random(rows.size) < feature.gateway_cache_hit_ratio
        audio_output_ratio[rows] = feature.audio_output_ratio
        reasoning_output_ratio[rows] = feature.reasoning_output_ratio
        cache_write_1h_ratio[rows] = feature.cache_write_1h_ratio
        service_tier_code[rows] = _SERVICE_TIERS.index(feature.service_tier)
        if feature.standard_tier_every:
            service_tier_code[rows[:: feature.standard_tier_every]] = _SERVICE_TIERS.index(TIER_STANDARD)
        if feature.priority_ratio:
            openai_rows = rows[_MODEL_PROVIDER_CODE[model_code[rows]] == _PROVIDERS.index(PROVIDER_OPENAI)]
            prioritised = openai_rows[rng.random(openai_rows.size) < feature.priority_ratio]
            service_tier_code[prioritised] = _SERVICE_TIERS.index(TIER_PRIORITY)
    # Self-hosted replicas have no service tiers.
    service_tier_code[_MODEL_PROVIDER_CODE[model_code] == _PROVIDERS.index(PROVIDER_SELF_HOSTED)] = -1

    for event in plan.events_of("prompt_growth", day):
        grown = feature_code == _FEATURE_NAMES.index(event.feature)
        # The extra tokens are document text after the shared prefix, so the prefix is unchanged.
        input_tokens[grown] = np.rint(input_tokens[grown] * event.factor).astype(np.int64)

    cached_input_tokens, cache_creation_input_tokens = _prompt_cache_tokens(
        model_code, input_tokens, prefix_tokens, cache_warm, tail_write_ratio
    )
    # The 1-hour share of the writes (the rest keep the default 5-minute TTL).
    cache_creation_1h_input_tokens = np.rint(cache_creation_input_tokens * cache_write_1h_ratio).astype(np.int64)

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
    cache_creation_1h_input_tokens[is_error] = 0
    # Audio and reasoning tokens are inside input and output tokens, as providers report them.
    audio_output_tokens = np.rint(output_tokens * audio_output_ratio).astype(np.int64)
    reasoning_tokens = np.rint(output_tokens * reasoning_output_ratio).astype(np.int64)

    duration_ms = _duration_ms(
        rng, model_code, input_tokens, cached_input_tokens, output_tokens, gateway_cache_hit, is_error
    )

    replica_number = np.floor(rng.random(row_count) * np.maximum(_MODEL_REPLICA_COUNT[model_code], 1)).astype(np.int64)
    feature_omitted = rng.random(row_count) < MISSING_FEATURE_RATIO
    user_omitted = rng.random(row_count) < MISSING_USER_RATIO
    # Ids are unique within a day by construction and carry the day, so unique across days.
    sequence = rng.permutation(row_count)

    day_start_ms = epoch_ms(day)
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
        "service_tier": _null_where(
            pl.Series(_SERVICE_TIERS, dtype=pl.String).gather(np.maximum(service_tier_code, 0)), service_tier_code < 0
        ),
        "cache_creation_1h_input_tokens": cache_creation_1h_input_tokens,
        "audio_input_tokens": audio_input_tokens,
        "audio_output_tokens": audio_output_tokens,
        "reasoning_tokens": reasoning_tokens,
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

    # OpenAI (and Azure OpenAI) caches automatically and reports hits in 128-token steps from 1,024 up.
    openai_style = np.isin(provider_code, [_PROVIDERS.index(PROVIDER_OPENAI), _PROVIDERS.index(PROVIDER_AZURE)])
    openai_hit = openai_style & cacheable & cache_warm
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
    next_midnight_ms = epoch_ms(day) + DAY_MS
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


def epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def _ms_to_datetime(epoch_ms: np.ndarray) -> pl.Series:
    return pl.Series(epoch_ms, dtype=pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


# ---------------------------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------------------------


def canonical_json_line() -> pl.Expr:
    """One compact JSON object per record of a day frame, keys in DESIGN.md order.

    Built from string expressions rather than ``write_ndjson`` because a missing ``feature`` or
    ``user_id`` must be *omitted* while ``pool``/``replica_id`` are written as JSON ``null``; the
    optional counts (1-hour cache writes, audio, reasoning) and ``service_tier`` appear only when
    the call has them (a count above 0, a tier other than ``standard``). The
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

    def optional_count_field(name: str) -> pl.Expr:
        # Optional canonical counts are written only when the call has some: most calls have none.
        return (
            pl.when(pl.col(name) > 0).then(pl.concat_str([pl.lit(f',"{name}":'), number(name)])).otherwise(pl.lit(""))
        )

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
            optional_count_field("cache_creation_1h_input_tokens"),
            optional_count_field("audio_input_tokens"),
            optional_count_field("audio_output_tokens"),
            optional_count_field("reasoning_tokens"),
            # The standard tier is the default: only batch and priority calls say theirs.
            pl.when(pl.col("service_tier").is_null() | (pl.col("service_tier") == TIER_STANDARD))
            .then(pl.lit(""))
            .otherwise(pl.concat_str([pl.lit(',"service_tier":'), text("service_tier")])),
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
    rng = np.random.default_rng([plan.seed, STREAM_MALFORMED, write_day.toordinal()])
    count = max(MIN_MALFORMED_PER_FILE, int(rng.poisson(MALFORMED_RATIO * good_line_count)))
    # Tag "x" keeps their request ids apart from every good record's id.
    requests = _draw_requests(plan, write_day, rng, count, 0, 0, request_id_tag="x")
    ts_ms = requests["ts_ms"]
    source = _to_frame(requests, arrival_ms=ts_ms, duplicate_arrival_ms=np.full(count, -1))
    source_lines = source.select(canonical_json_line())["line"].to_list()
    kinds = [
        MALFORMED_KINDS[(file_index * MIN_MALFORMED_PER_FILE + index) % len(MALFORMED_KINDS)] for index in range(count)
    ]
    lines = [_corrupt(line, kind, rng) for line, kind in zip(source_lines, kinds, strict=True)]
    arrival_ms = epoch_ms(write_day) + np.sort(rng.integers(0, DAY_MS, count))
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
        rng = np.random.default_rng([plan.seed, STREAM_LOST_LOGS, day.toordinal()])
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


def request_file_name(day: dt.date) -> str:
    return f"requests_{day.isoformat()}.jsonl.gz"


def write_gateway(
    out_dir: Path,
    plan: GenerationPlan,
    on_true_day: Callable[[dt.date, pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, int]], None],
) -> tuple[list[dict], dict[str, dict], dict]:
    """Write ``OUT/gateway/requests_<YYYY-MM-DD>.jsonl.gz`` for every write day of the plan.

    ``on_true_day(day, true_calls, logged, lost, removed)`` sees each record day's true calls before
    they are dropped, so the billing and GPU ledgers add up the same truth. Earlier request files
    this run does not write are removed. Returns the manifest's ``files``, ``per_day`` and ``totals``.
    """
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
            on_true_day(write_day, true_frame, frame, lost, removed)
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
    totals = {
        "lines": sum(entry["lines"] for entry in files),
        "records": sum(counts["records"] for counts in per_day.values()),
        "duplicate_lines": sum(counts["duplicate_lines"] for counts in per_day.values()),
        "malformed_lines": sum(malformed_by_kind.values()),
        "malformed_by_kind": malformed_by_kind,
        "late_arrivals": sum(counts["late_arrivals"] for counts in per_day.values()),
        "gateway_cache_hits": gateway_cache_hits,
        "error_records": error_records,
        "lost_records": lost_records,
    }
    return files, per_day, totals


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_last_day(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
