"""Planted savings opportunities: gateway logs in which each lever of the savings spec has a known
dollar truth, and negative controls that must raise nothing (``costwatch generate --savings``).

Each feature below is one plant (or one control) of a small team's traffic, with the savings signals
the canonical record carries (``prompt_hash``, ``prefix_hashes``, ``finish_reason``, ``max_tokens``,
``workload``, ``service_tier``). Token sizes come from small sets whose largest value is common, so a
feature's own prompt and answer tails (p90, p95) stay empty unless a plant puts something there; every
``prompt_hash`` is unique unless a plant repeats it.

The truth of each plant is worked in Decimal from the calls as generated and the catalog's own fields
(``CatalogPrices``: no fallback rule, a missing price is an error), over the savings window ending on
the last day. It is written to ``OUT/manifest.json`` as ``savings_events``: one entry per finding the
plant must raise (kind, feature, provider, model, target, basis, window, estimated savings in USD as
text), plus ``negative_controls`` (feature and the kinds it must not raise). Prompt caching's truth is
a simulation, so the plant records its setup and the test simulates it on its own.

Everything is a function of (seed, start_date, days): same arguments, same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import numpy as np

from pipelines.demo.gpus import loadtest_csv, loadtest_rows, loadtest_slo_cut
from pipelines.demo.manifest import decimal_text, write_manifest
from pipelines.demo.provider_bills import PRICE_CATALOG_FIXTURE
from pipelines.resources.files import fixture

__all__ = ["CatalogPrices", "SavingsCall", "generate_savings", "savings_calls"]

WINDOW_DAYS = 28  # savings.window_days (the default): the truths are over the window ending on the last day
SAVINGS_MANIFEST_VERSION = 1
# The plants' days are fixed offsets of a 30-day range: the window of the last day, plus its first
# day's day before (cache warm-up) and one more, so growth has a full baseline.
MIN_DAYS = 30

SONNET = "claude-sonnet-4-5"
HAIKU = "claude-haiku-4-5"
GPT_4O = "gpt-4o"
GPT_4O_MINI = "gpt-4o-mini"
GPT_41 = "gpt-4.1"
GPT_41_MINI = "gpt-4.1-mini"
GPT_41_NANO = "gpt-4.1-nano"
GEMINI_PRO = "gemini-2.5-pro"
LLAMA = "llama-3.1-8b-instruct"
PROVIDERS = {SONNET: "anthropic", HAIKU: "anthropic", GPT_4O: "openai", GPT_4O_MINI: "openai", GPT_41: "openai"}
PROVIDERS |= {GPT_41_MINI: "openai", GPT_41_NANO: "openai", GEMINI_PRO: "gcp.gemini", LLAMA: "self_hosted"}
# The routes the plants are judged by (savings.routes): only code_assist's model has a sibling, so a
# routing finding elsewhere would be a false one.
ROUTES = {GPT_4O: GPT_4O_MINI}

SUPPORT_PREFIX_TOKENS = 3_000  # support_bot's system prompt, identical on every call, never cached
CHAT_PREFIX_TOKENS = 5_000  # chat's system prompt, cached (5-minute writes)
CHAT_STAMPED_DAYS = range(21, 26)  # day offsets on which chat's system prompt carries a timestamp
SUMMARISE_INSTRUCTION_TOKENS = 700  # below every provider's minimum cacheable prefix
TRUNCATED_EVERY = 25  # 4 % of summarise's calls are cut at max_tokens = 256
RAG_GROWTH_FROM = 19  # day offset from which 30 % of search_rag's calls carry 3,000 retrieved tokens more
RAG_EXTRA_TOKENS = 3_000
LOOP_DAY = 24  # day offset of the client loop (inbox_triage)
OVERFLOW_DAYS = range(14, 21)  # batch_tagging overflows to gpt-4.1 at the priority tier
LONG_CONTEXT_DAYS = range(9, 14)  # contract_review's 220k-token prompts: 10 a day, 50 in all
LONG_CONTEXT_TOKENS = 220_000
# autoscale: the interactive pool is billed 4 replicas around the clock; its calls need one replica
# most hours and more in two bursts a day (calls in one minute at hh:30).
AUTOSCALE_POOL = "llama-8b-h100"
AUTOSCALE_POOL_SETTINGS = {
    "gpu_type": "H100",
    "latency_slo_s": 1.3,  # the load test's batch of 2 (1.273 s), 1.571 requests/s per replica
    "headroom": 0.3,
    "warm_floor": 1,
    "load_test": f"loadtest/{AUTOSCALE_POOL}.csv",
}
BILLED_REPLICAS = 4
USD_PER_REPLICA_HOUR = Decimal("3.29")  # one H100 (Lambda's H100 SXM list price)
BURSTS = {10: 90, 15: 150}  # hour (UTC) -> calls in its busiest minute
SERVICE_ACCOUNT = "crm-bot"  # savings.service_accounts
# selfhost_trigger: doc_moderation sends a 160k-token document to gpt-4.1-mini every 2 minutes around
# the clock (steady, and dear enough for one self-hosted replica); weekly_report sends 200 small
# calls to gpt-4.1-nano in one minute a day (spiky and cheap: stay on the API). Both have a candidate.
MODERATION_MODEL = GPT_41_MINI
REPORT_MODEL = GPT_41_NANO
SELFHOST_CANDIDATE = {
    "model": "llama-3.1-8b-instruct",
    "gpu_type": "H100",
    "gpus_per_replica": 1,
    "usd_per_gpu_hour": 1.0,
    "load_test": f"loadtest/{AUTOSCALE_POOL}.csv",
    "latency_slo_s": 5,
    "headroom": 0.3,
    "warm_floor": 1,
    "ops_usd_per_month": 50,
    "margin": 0.3,
    "quality_note": "team eval 2026-09: 97% vs 98% on 400 cases",
}


@dataclass
class SavingsCall:
    """One canonical gateway record, as the fields the savings levers read."""

    request_id: str
    ts: dt.datetime
    feature: str
    user_id: str
    model: str
    input_tokens: int
    output_tokens: int
    prompt_hash: str
    cached_input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    service_tier: str = "standard"
    workload: str = "interactive"
    job: str | None = None
    status: str = "ok"
    finish_reason: str | None = "stop"
    max_tokens: int | None = None
    prefix_hashes: list[list] | None = None
    pool: str | None = None
    stream: bool | None = None

    @property
    def provider(self) -> str:
        return PROVIDERS[self.model]

    @property
    def billed(self) -> bool:
        return self.status == "ok" and self.provider != "self_hosted"

    def record(self) -> dict:
        writes = self.cache_write_5m_tokens + self.cache_write_1h_tokens
        record = {
            "request_id": self.request_id,
            "ts": self.ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.ts.microsecond // 1000:03d}Z",
            "provider": self.provider,
            "model": self.model,
            "feature": self.feature,
            "user_id": self.user_id,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_creation_input_tokens": writes,
            "output_tokens": self.output_tokens,
            "status": self.status,
            "workload": self.workload,
            "prompt_hash": self.prompt_hash,
        }
        optional = {
            "cache_creation_1h_input_tokens": self.cache_write_1h_tokens or None,
            "service_tier": None if self.service_tier == "standard" else self.service_tier,
            "finish_reason": self.finish_reason if self.status == "ok" else None,
            "max_tokens": self.max_tokens,
            "prefix_hashes": self.prefix_hashes,
            "pool": self.pool,
            "replica_id": f"{self.pool}-0" if self.pool else None,
            "stream": self.stream,
        }
        record |= {key: value for key, value in optional.items() if value is not None}
        record["tags"] = {"team": "savings", **({"job": self.job} if self.job else {})}
        return record


class CatalogPrices:
    """USD per token straight from the LiteLLM catalog's fields: a price the catalog lacks is an
    error, never a rule, so a truth is the catalog's arithmetic and nothing else."""

    _TIERS = {"standard": "", "batch": "_batches", "priority": "_priority"}

    def __init__(self, catalog_path: Path):
        self.catalog = json.loads(Path(catalog_path).read_text(encoding="utf-8"))

    def rate(self, model: str, field_name: str, tier: str = "standard", long_context: bool = False) -> Decimal:
        name = field_name + ("_above_200k_tokens" if long_context else "") + self._TIERS[tier]
        value = self.catalog[model].get(name)
        if value is None:
            raise KeyError(f"{model}: the catalog has no {name}")
        return Decimal(str(value))

    def cost(
        self, call: SavingsCall, *, model: str | None = None, tier: str | None = None, base: bool = False
    ) -> Decimal:
        """The call as billed (or at another model or tier, the same tokens); ``base`` prices a
        long prompt at the base context tier's rates."""
        model = model or call.model
        tier = tier or call.service_tier
        long_context = call.input_tokens > 200_000 and not base

        def rate(name: str) -> Decimal:
            return self.rate(model, name, tier, long_context)

        uncached = (
            call.input_tokens - call.cached_input_tokens - call.cache_write_5m_tokens - call.cache_write_1h_tokens
        )
        usd = uncached * rate("input_cost_per_token") + call.output_tokens * rate("output_cost_per_token")
        if call.cached_input_tokens:
            usd += call.cached_input_tokens * rate("cache_read_input_token_cost")
        if call.cache_write_5m_tokens:
            usd += call.cache_write_5m_tokens * rate("cache_creation_input_token_cost")
        if call.cache_write_1h_tokens:
            usd += call.cache_write_1h_tokens * rate("cache_creation_input_token_cost_above_1hr")
        return usd


def _choice(rng: np.random.Generator, values: tuple[int, ...], size: int) -> list[int]:
    return [int(value) for value in rng.choice(values, size=size)]


def _arrivals(rng: np.random.Generator, day: dt.date, start_h: int, end_h: int, gap_s: tuple[int, int]) -> list:
    """Arrival times from start_h to end_h UTC, gaps uniform in gap_s seconds (ms precision)."""
    at = dt.datetime.combine(day, dt.time(start_h), tzinfo=dt.UTC)
    end = dt.datetime.combine(day, dt.time(end_h), tzinfo=dt.UTC)
    times = []
    while True:
        at += dt.timedelta(milliseconds=int(rng.integers(gap_s[0] * 1000, gap_s[1] * 1000 + 1)))
        if at >= end:
            return times
        times.append(at)


def _spread(day: dt.date, start_h: int, end_h: int, count: int) -> list:
    """``count`` arrival times evenly spread over start_h..end_h UTC."""
    start = dt.datetime.combine(day, dt.time(start_h), tzinfo=dt.UTC)
    step_ms = (end_h - start_h) * 3_600_000 // count
    return [start + dt.timedelta(milliseconds=n * step_ms) for n in range(count)]


def _day_calls(seed: int, day: dt.date, offset: int) -> list[SavingsCall]:
    """Every call of one day (offset = days since the first), in no particular order."""
    rng = np.random.default_rng([seed, 11, day.toordinal()])
    calls: list[SavingsCall] = []
    tag = day.strftime("%Y%m%d")

    def request_id_of(feature: str, n: int) -> str:
        return f"sv-{tag}-{feature}-{n:05d}"

    def new(feature: str, n: int, at: dt.datetime, model: str, **fields) -> SavingsCall:
        request_id = request_id_of(feature, n)
        fields.setdefault("prompt_hash", f"ph-{request_id}")
        fields.setdefault("user_id", f"{feature}-user-{int(rng.integers(0, 40))}")
        call = SavingsCall(request_id=request_id, ts=at, feature=feature, model=model, **fields)
        calls.append(call)
        return call

    # caching_not_enabled: support_bot sends the same 3,000-token system prompt every 0.5-4 minutes in
    # business hours, on claude-sonnet-4-5 with caching off (no reads, no writes).
    times = _arrivals(rng, day, 9, 17, (30, 240))
    for n, (at, question, answer) in enumerate(
        zip(times, _choice(rng, (200, 400, 600, 800), len(times)), _choice(rng, (350, 500), len(times)), strict=True)
    ):
        request_id = request_id_of("support_bot", n)
        size = SUPPORT_PREFIX_TOKENS + question
        new(
            "support_bot",
            n,
            at,
            SONNET,
            input_tokens=size,
            output_tokens=answer,
            prefix_hashes=[[SUPPORT_PREFIX_TOKENS, "support-system-v1"], [size, f"pre-{request_id}"]],
        )

    # chat caches its 5,000-token system prompt (healthy: the first call of the day writes it, the rest
    # read it), except on CHAT_STAMPED_DAYS, when a timestamp in it makes every call write a new one.
    stamped = offset in CHAT_STAMPED_DAYS
    times = _arrivals(rng, day, 8, 18, (40, 200))
    for n, (at, question, answer) in enumerate(
        zip(times, _choice(rng, (300, 600, 900, 1200), len(times)), _choice(rng, (150, 300), len(times)), strict=True)
    ):
        request_id = request_id_of("chat", n)
        size = CHAT_PREFIX_TOKENS + question
        system = f"chat-system-{request_id}" if stamped else "chat-system-v3"
        writes = n == 0 or stamped
        new(
            "chat",
            n,
            at,
            SONNET,
            input_tokens=size,
            output_tokens=answer,
            cached_input_tokens=0 if writes else CHAT_PREFIX_TOKENS,
            cache_write_5m_tokens=CHAT_PREFIX_TOKENS if writes else 0,
            prefix_hashes=[[CHAT_PREFIX_TOKENS, system], [size, f"pre-{request_id}"]],
        )

    # declared_batch_on_standard: nightly_enrich declares workload = batch and is billed at standard.
    for n, (at, size, answer) in enumerate(
        zip(_spread(day, 1, 3, 200), _choice(rng, (1_800, 2_400), 200), _choice(rng, (200, 400), 200), strict=True)
    ):
        new(
            "nightly_enrich",
            n,
            at,
            HAIKU,
            input_tokens=size,
            output_tokens=answer,
            cached_input_tokens=1_000 if n % 2 else 0,
            workload="batch",
            job="nightly_enrich",
            user_id="etl-bot",
        )

    # inferred_batch: crm_sync, a nightly sync from the service account crm-bot, logged as
    # interactive work that does not stream (nobody declared it batch).
    for n, (at, size, answer) in enumerate(
        zip(_spread(day, 2, 4, 300), _choice(rng, (1_500, 2_500), 300), _choice(rng, (100, 200), 300), strict=True)
    ):
        new("crm_sync", n, at, HAIKU, input_tokens=size, output_tokens=answer, stream=False, user_id=SERVICE_ACCOUNT)

    # batch_tagging runs on a self-hosted pool (a control); on OVERFLOW_DAYS 300 calls overflow to
    # gpt-4.1 at the priority tier (priority_on_batch).
    for n, at in enumerate(_spread(day, 0, 6, 300)):
        new(
            "batch_tagging",
            n,
            at,
            LLAMA,
            input_tokens=600,
            output_tokens=40,
            workload="batch",
            job="batch_tagging",
            pool="llama-batch",
            user_id="tagger",
        )
    if offset in OVERFLOW_DAYS:
        for n, (at, size, answer) in enumerate(
            zip(_spread(day, 2, 6, 300), _choice(rng, (3_000, 4_000), 300), _choice(rng, (40, 80), 300), strict=True)
        ):
            new(
                "batch_tagging",
                1_000 + n,
                at,
                GPT_41,
                input_tokens=size,
                output_tokens=answer,
                service_tier="priority",
                workload="batch",
                job="batch_tagging",
                user_id="tagger",
            )

    # easy_on_frontier: code_assist sends 80 % of its calls to gpt-4o and 20 % to gpt-4o-mini (a
    # natural experiment, the same error rate on both: every 50th call of each fails); 35 % of the
    # calls are easy (at most 1,500 prompt and 150 answer tokens).
    times = _spread(day, 8, 20, 400)
    models = [GPT_4O_MINI if draw < 0.2 else GPT_4O for draw in rng.random(400)]
    easy = rng.random(400) < 0.35
    seen: dict[str, int] = {}
    for n, (at, model, is_easy) in enumerate(zip(times, models, easy, strict=True)):
        seen[model] = seen.get(model, 0) + 1
        failed = seen[model] % 50 == 0
        size = _choice(rng, (600, 1_200) if is_easy else (3_000, 6_000), 1)[0]
        answer = _choice(rng, (60, 120) if is_easy else (400, 800), 1)[0]
        new(
            "code_assist",
            n,
            at,
            model,
            input_tokens=size,
            output_tokens=0 if failed else answer,
            status="error" if failed else "ok",
        )

    # rag_context_bloat: search_rag's prompts are 2,000 tokens; from RAG_GROWTH_FROM on, 3 in 10
    # calls carry RAG_EXTRA_TOKENS retrieved tokens more.
    for n, (at, answer) in enumerate(zip(_spread(day, 7, 21, 200), _choice(rng, (200, 300), 200), strict=True)):
        grown = offset >= RAG_GROWTH_FROM and n % 10 in (0, 3, 6)
        new("search_rag", n, at, GPT_41, input_tokens=2_000 + (RAG_EXTRA_TOKENS if grown else 0), output_tokens=answer)

    # truncation_retries: every 25th summarise call is cut at max_tokens = 256 and sent again 20 s
    # later with max_tokens = 1,024 (a new prompt_hash, the same prefixes). Each call has its own user,
    # so nothing else looks like a retry. The 700-token instruction block is below every minimum
    # cacheable prefix (a control).
    for n, (at, document) in enumerate(
        zip(_spread(day, 8, 18, 250), _choice(rng, (1_000, 2_000, 3_000), 250), strict=True)
    ):
        size = SUMMARISE_INSTRUCTION_TOKENS + document
        request_id = request_id_of("summarise", n)
        prefixes = [[SUMMARISE_INSTRUCTION_TOKENS, "summarise-instructions"], [size, f"pre-{request_id}"]]
        user_id = f"summarise-user-{tag}-{n}"
        if n % TRUNCATED_EVERY == 0:
            new(
                "summarise",
                n,
                at,
                GPT_41,
                input_tokens=size,
                output_tokens=256,
                finish_reason="length",
                max_tokens=256,
                prefix_hashes=prefixes,
                user_id=user_id,
            )
            # OpenAI caches on its own: the re-sent prompt is read from the cache, in 128-token steps.
            new(
                "summarise",
                1_000 + n,
                at + dt.timedelta(seconds=20),
                GPT_41,
                input_tokens=size,
                output_tokens=350,
                max_tokens=1_024,
                prefix_hashes=prefixes,
                user_id=user_id,
                cached_input_tokens=size // 128 * 128,
            )
        else:
            answer = _choice(rng, (150, 250, 350), 1)[0]
            new(
                "summarise",
                n,
                at,
                GPT_41,
                input_tokens=size,
                output_tokens=answer,
                max_tokens=1_024,
                prefix_hashes=prefixes,
                user_id=user_id,
            )

    # duplicate_loop: inbox_triage's usual calls, and on LOOP_DAY one user's client loop re-sends each
    # prompt 6 times within 25 s, a new prompt every 2 minutes for an hour.
    for n, (at, size, answer) in enumerate(
        zip(_spread(day, 8, 20, 200), _choice(rng, (2_000, 4_000), 200), _choice(rng, (100, 200), 200), strict=True)
    ):
        new("inbox_triage", n, at, GPT_41, input_tokens=size, output_tokens=answer)
    if offset == LOOP_DAY:
        start = dt.datetime.combine(day, dt.time(14), tzinfo=dt.UTC)
        for prompt in range(30):
            for attempt in range(6):
                at = start + dt.timedelta(seconds=120 * prompt + 5 * attempt)
                new(
                    "inbox_triage",
                    1_000 + 6 * prompt + attempt,
                    at,
                    GPT_41,
                    input_tokens=4_000,
                    output_tokens=200,
                    prompt_hash=f"ph-loop-{tag}-{prompt}",
                    user_id="inbox-loop",
                )

    # long_context_tier: contract_review's 220k-token prompts on gemini-2.5-pro, 10 a day.
    if offset in LONG_CONTEXT_DAYS:
        for n, at in enumerate(_spread(day, 10, 15, 10)):
            new("contract_review", n, at, GEMINI_PRO, input_tokens=LONG_CONTEXT_TOKENS, output_tokens=1_000)

    # doc_moderation: one 160k-token document every 2 minutes, all day; weekly_report: 200 calls at 09:00.
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    for n in range(720):
        new(
            "doc_moderation",
            n,
            start + dt.timedelta(seconds=120 * n + 30),
            MODERATION_MODEL,
            input_tokens=160_000,
            output_tokens=50,
        )
    start = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    for n in range(200):
        new(
            "weekly_report",
            n,
            start + dt.timedelta(milliseconds=300 * n),
            REPORT_MODEL,
            input_tokens=2_000,
            output_tokens=300,
        )

    # autocomplete's short calls on the self-hosted pool (a control for the API levers), with a burst
    # minute in each hour of BURSTS (the autoscale plant).
    for n, at in enumerate(_spread(day, 8, 20, 300)):
        new("autocomplete", n, at, LLAMA, input_tokens=300, output_tokens=20, pool=AUTOSCALE_POOL)
    for hour, count in BURSTS.items():
        start = dt.datetime.combine(day, dt.time(hour, 30), tzinfo=dt.UTC)
        for n in range(count):
            at = start + dt.timedelta(milliseconds=n * 60_000 // count)
            new("autocomplete", 1_000 * hour + n, at, LLAMA, input_tokens=300, output_tokens=20, pool=AUTOSCALE_POOL)
    return calls


def savings_calls(seed: int, start_date: dt.date, days: int) -> list[SavingsCall]:
    """Every call of the range, in (ts, request_id) order."""
    calls = [
        call for offset in range(days) for call in _day_calls(seed, start_date + dt.timedelta(days=offset), offset)
    ]
    return sorted(calls, key=lambda call: (call.ts, call.request_id))


def _event(
    plant: str, kind: str, call: SavingsCall, target: str, basis: str, usd: Decimal, affected: int, **extra
) -> dict:
    return {
        "plant": plant,
        "kind": kind,
        "feature": call.feature,
        "provider": call.provider,
        "model": call.model,
        "target": target,
        "basis": basis,
        "requests_affected": affected,
        "estimated_savings_usd": decimal_text(usd),
        **extra,
    }


def savings_truth(
    calls: list[SavingsCall], prices: CatalogPrices, window: tuple[dt.date, dt.date]
) -> tuple[list[dict], dict]:
    """The findings the plants must raise as of the window's last day, each with its dollars, and
    fct_selfhost_trigger's figures per model with a candidate."""
    start, end = window
    billed = [call for call in calls if call.billed and start <= call.ts.date() <= end]

    def of(feature: str, model: str | None = None, **where) -> list[SavingsCall]:
        return [
            call
            for call in billed
            if call.feature == feature
            and (model is None or call.model == model)
            and all(getattr(call, name) == value for name, value in where.items())
        ]

    events = []
    stamped = [call for call in of("chat") if call.prefix_hashes[0][1] != "chat-system-v3"]
    premium = sum(
        call.cache_write_5m_tokens
        * (prices.rate(call.model, "cache_creation_input_token_cost") - prices.rate(call.model, "input_cost_per_token"))
        for call in stamped
    )
    events.append(
        _event("cache_writes_never_read", "cache_write_waste", stamped[0], "", "measured", premium, len(stamped))
    )

    enrich = of("nightly_enrich")
    saving = sum(prices.cost(call) - prices.cost(call, tier="batch") for call in enrich)
    events.append(_event("declared_batch_on_standard", "batch", enrich[0], "batch", "price_rule", saving, len(enrich)))

    synced = of("crm_sync")
    saving = sum(prices.cost(call) - prices.cost(call, tier="batch") for call in synced)
    events.append(_event("inferred_batch", "batch", synced[0], "batch_if_tolerant", "upper_bound", saving, len(synced)))

    overflow = of("batch_tagging", GPT_41)
    for kind, target in (("service_tier", "standard"), ("batch", "batch")):
        saving = sum(prices.cost(call) - prices.cost(call, tier=target) for call in overflow)
        events.append(_event("priority_on_batch", kind, overflow[0], target, "price_rule", saving, len(overflow)))

    frontier = of("code_assist", GPT_4O)
    easy = [call for call in frontier if call.input_tokens <= 1_500 and call.output_tokens <= 150]
    for kind, moved in (("route_by_difficulty", easy), ("right_size_model", frontier)):
        saving = sum(prices.cost(call) - prices.cost(call, model=GPT_4O_MINI) for call in moved)
        events.append(
            _event(
                "easy_on_frontier",
                kind,
                frontier[0],
                GPT_4O_MINI,
                "upper_bound",
                saving,
                len(moved),
                evidence_level="proxy_supported",
            )
        )

    # Growth is measured per day: the calls affected are those of the days whose prompts grew.
    grown = [call for call in of("search_rag") if call.input_tokens > 2_000]
    grown_days = {call.ts.date() for call in grown}
    on_grown_days = [call for call in of("search_rag") if call.ts.date() in grown_days]
    saving = sum(RAG_EXTRA_TOKENS * prices.rate(call.model, "input_cost_per_token") for call in grown)
    events.append(_event("rag_context_bloat", "trim_input", grown[0], "growth", "measured", saving, len(on_grown_days)))

    cut = of("summarise", finish_reason="length")
    saving = sum(prices.cost(call) for call in cut)
    events.append(_event("truncation_retries", "truncation_retries", cut[0], "", "measured", saving, len(cut)))

    loop = [call for call in of("inbox_triage") if call.user_id == "inbox-loop"]
    # Attempts 2..6 of each prompt (request numbers 1,000 + 6 x prompt + attempt).
    repeats = [call for call in loop if (int(call.request_id.rsplit("-", 1)[1]) - 1_000) % 6 != 0]
    saving = sum(prices.cost(call) for call in repeats)
    events.append(_event("duplicate_loop", "duplicate_calls", loop[0], "", "measured", saving, len(repeats)))

    long = of("contract_review")
    saving = sum(prices.cost(call) - prices.cost(call, base=True) for call in long)
    events.append(
        _event("long_context_tier", "long_context_tier", long[0], "base_tier", "price_rule", saving, len(long))
    )

    events.append(_autoscale_truth(calls, window))
    trigger = {
        model: _selfhost_trigger_truth(calls, prices, window, model) for model in (MODERATION_MODEL, REPORT_MODEL)
    }
    moderation = trigger[MODERATION_MODEL]
    saving = Decimal(moderation["api_cost_usd"]) - Decimal(moderation["selfhost_cost_high_usd"])
    events.append(
        {
            "plant": "selfhost_trigger",
            "kind": "selfhost_trigger",
            "feature": "",
            "provider": "openai",
            "model": MODERATION_MODEL,
            "target": SELFHOST_CANDIDATE["model"],
            "basis": "upper_bound",
            "requests_affected": moderation["requests"],
            "estimated_savings_usd": decimal_text(saving),
            "trigger": moderation,
        }
    )

    support = of("support_bot")
    events.append(
        {
            "plant": "caching_not_enabled",
            "kind": "prompt_cache",
            "feature": "support_bot",
            "provider": support[0].provider,
            "model": SONNET,
            "basis": "upper_bound",
            "requests_affected": len(support),
            "prefix_tokens": SUPPORT_PREFIX_TOKENS,
            "estimated_savings_usd": None,  # a simulation: tests/test_savings_truth.py runs its own
        }
    )
    return events, trigger


def _slo_rate(latency_slo_s: float) -> tuple[Decimal, dict]:
    """One replica's rate within an SLO (the load test's largest batch within it, as written in
    the CSV), and that row of the load test."""
    rows = loadtest_rows()
    cut = loadtest_slo_cut(rows, latency_slo_s)
    return Decimal(cut["requests_per_s"]), next(row for row in rows if row["batch_size"] == cut["batch_size"])


def _autoscale_truth(calls: list[SavingsCall], window: tuple[dt.date, dt.date]) -> dict:
    """Each hour: needed = ceil(busiest minute's calls / 60 / per-replica rate x (1 + headroom)),
    planned = max(warm floor, needed, the same day's next hour's need); the saving is the billed
    replicas above the plan at the hourly price."""
    rate, _ = _slo_rate(AUTOSCALE_POOL_SETTINGS["latency_slo_s"])
    headroom = Decimal(str(AUTOSCALE_POOL_SETTINGS["headroom"]))
    per_minute: dict[tuple[dt.date, int, int], int] = {}
    requests = 0
    for call in calls:
        if call.pool == AUTOSCALE_POOL and window[0] <= call.ts.date() <= window[1]:
            minute = (call.ts.date(), call.ts.hour, call.ts.minute)
            per_minute[minute] = per_minute.get(minute, 0) + 1
            requests += 1
    peaks: dict[tuple[dt.date, int], int] = {}  # (day, hour) -> calls in its busiest minute
    for (day, hour, _), count in per_minute.items():
        peaks[(day, hour)] = max(peaks.get((day, hour), 0), count)
    saving = Decimal(0)
    planned_hours = 0
    day = window[0]
    while day <= window[1]:
        needed = []
        for hour in range(24):
            peak = peaks.get((day, hour), 0)
            need = Decimal(peak) / 60 / rate * (1 + headroom)
            needed.append(_ceil(need))
        for hour in range(24):
            ahead = needed[hour + 1] if hour < 23 else 0
            planned = max(AUTOSCALE_POOL_SETTINGS["warm_floor"], needed[hour], ahead)
            planned_hours += planned
            saving += max(BILLED_REPLICAS - planned, 0) * USD_PER_REPLICA_HOUR
        day += dt.timedelta(days=1)
    return {
        "plant": "autoscale",
        "kind": "autoscale",
        "feature": "",
        "provider": "self_hosted",
        "model": AUTOSCALE_POOL,
        "target": "hourly_schedule",
        "basis": "upper_bound",
        "requests_affected": requests,
        "planned_replica_hours": planned_hours,
        "estimated_savings_usd": decimal_text(saving),
    }


def _selfhost_trigger_truth(
    calls: list[SavingsCall], prices: CatalogPrices, window: tuple[dt.date, dt.date], model: str
) -> dict:
    """fct_selfhost_trigger as of the window's last day, by the spec's formula: per hour, the busiest
    minute's prompt and output tokens per second against one replica's (the load test's fastest
    rate within the SLO x its prompt and output sizes); low and high bands of replicas, never under
    the warm floor; GPU cost per hour plus ops prorated by hours / (30.44 x 24)."""
    candidate = SELFHOST_CANDIDATE
    rps, best = _slo_rate(candidate["latency_slo_s"])
    capacity_in, capacity_out = rps * best["prompt_tokens"], rps * best["output_tokens"]
    headroom, floor = Decimal(str(candidate["headroom"])), candidate["warm_floor"]
    per_minute: dict[tuple[dt.date, int, int], list[int]] = {}
    api_cost, requests, tokens = Decimal(0), 0, 0
    for call in calls:
        if call.model == model and call.billed and window[0] <= call.ts.date() <= window[1]:
            minute = per_minute.setdefault((call.ts.date(), call.ts.hour, call.ts.minute), [0, 0])
            minute[0] += call.input_tokens
            minute[1] += call.output_tokens
            api_cost += prices.cost(call)
            requests += 1
            tokens += call.input_tokens + call.output_tokens
    peaks: dict[tuple[dt.date, int], list[int]] = {}  # (day, hour) -> busiest minute's [input, output]
    for (day, hour, _), (minute_input, minute_output) in per_minute.items():
        peak = peaks.setdefault((day, hour), [0, 0])
        peak[0], peak[1] = max(peak[0], minute_input), max(peak[1], minute_output)
    gpu_low, gpu_high, replicas_low, replicas_high, hours = Decimal(0), Decimal(0), 0, 0, 0
    day = window[0]
    while day <= window[1]:
        for hour in range(24):
            peak_input, peak_output = peaks.get((day, hour), (0, 0))
            input_tps, output_tps = Decimal(peak_input) / 60, Decimal(peak_output) / 60
            low = max(floor, _ceil(max(input_tps / capacity_in, output_tps / capacity_out) * (1 + headroom)))
            high = max(floor, _ceil((input_tps / capacity_in + output_tps / capacity_out) * (1 + headroom)))
            rate = candidate["gpus_per_replica"] * Decimal(str(candidate["usd_per_gpu_hour"]))
            gpu_low, gpu_high = gpu_low + low * rate, gpu_high + high * rate
            replicas_low, replicas_high, hours = max(replicas_low, low), max(replicas_high, high), hours + 1
        day += dt.timedelta(days=1)
    ops = (Decimal(candidate["ops_usd_per_month"]) * hours / (Decimal("30.44") * 24)).quantize(Decimal("1e-6"))
    margin = Decimal(str(candidate["margin"]))
    days = hours // 24
    break_even = (1 + margin) * (gpu_high + ops) / api_cost * tokens * Decimal("30.44") / days
    return {
        "model": model,
        "candidate": candidate["model"],
        "requests": requests,
        "api_cost_usd": decimal_text(api_cost),
        "replicas_low": replicas_low,
        "replicas_high": replicas_high,
        "ops_usd": decimal_text(ops),
        "selfhost_cost_low_usd": decimal_text(gpu_low + ops),
        "selfhost_cost_high_usd": decimal_text(gpu_high + ops),
        "break_even_tokens_per_month": decimal_text(break_even.quantize(Decimal(1))),
    }


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _write_pool_files(out_dir: Path, start_date: dt.date, days: int) -> list[dict]:
    """The autoscale pool's GPU bill (``gpu_billing/gpu_hours_<YYYY-MM>.csv``: BILLED_REPLICAS
    replicas, 24 hours a day) and its load test (``loadtest/<pool>.csv``)."""
    written = []
    months: dict[str, list[list]] = {}
    for offset in range(days):
        day = start_date + dt.timedelta(days=offset)
        for replica in range(BILLED_REPLICAS):
            row = [day.isoformat(), AUTOSCALE_POOL, f"{AUTOSCALE_POOL}-r{replica}", "H100", 1, 24]
            months.setdefault(day.strftime("%Y-%m"), []).append(row + [decimal_text(24 * USD_PER_REPLICA_HOUR)])
    billing = out_dir / "gpu_billing"
    billing.mkdir(parents=True, exist_ok=True)
    for stale in billing.glob("gpu_hours_*.csv"):
        stale.unlink()
    for month, rows in months.items():
        path = billing / f"gpu_hours_{month}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["day", "pool", "replica_id", "gpu_type", "gpu_count", "hours", "usd"])
            writer.writerows(rows)
        written.append({"path": f"gpu_billing/{path.name}", "records": len(rows)})
    path = out_dir / AUTOSCALE_POOL_SETTINGS["load_test"]
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = loadtest_rows()
    path.write_text(loadtest_csv(rows), encoding="utf-8", newline="")
    written.append({"path": AUTOSCALE_POOL_SETTINGS["load_test"], "records": len(rows)})
    return written


NEGATIVE_CONTROLS = [
    {
        "feature": "summarise",
        "kinds": ["prompt_cache", "cap_output", "gateway_cache", "duplicate_calls"],
        "why": "a 700-token instruction block, below every minimum cacheable prefix; cut answers re-sent are not duplicates",
    },
    {"feature": "batch_tagging", "kinds": ["*"], "model": LLAMA, "why": "already on a self-hosted batch pool"},
    {"feature": "autocomplete", "kinds": ["*"], "why": "short calls on a self-hosted pool"},
    {"model": REPORT_MODEL, "kinds": ["*"], "why": "spiky and cheap: a self-hosted replica would idle"},
    {"feature": "chat", "kinds": ["prompt_cache"], "why": "healthy caching: the prefix is read within 5 minutes"},
]


def generate_savings(
    out_dir: Path, *, start_date: dt.date, days: int, seed: int = 7, price_catalog: Path | None = None
) -> dict:
    """Write ``OUT/gateway/requests_<YYYY-MM-DD>.jsonl.gz`` (one per day, canonical records) and
    ``OUT/manifest.json`` with ``savings_events`` as of the last day; returns the manifest."""
    if days < MIN_DAYS:
        raise ValueError(f"the savings plants need at least {MIN_DAYS} days (a window and two days before it)")
    out_dir = Path(out_dir)
    gateway = out_dir / "gateway"
    gateway.mkdir(parents=True, exist_ok=True)
    for stale in gateway.glob("requests_*.jsonl.gz"):
        stale.unlink()
    calls = savings_calls(seed, start_date, days)
    files = []
    for offset in range(days):
        day = start_date + dt.timedelta(days=offset)
        lines = [json.dumps(call.record(), separators=(",", ":")) for call in calls if call.ts.date() == day]
        path = gateway / f"requests_{day.isoformat()}.jsonl.gz"
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
        files.append({"path": f"gateway/{path.name}", "records": len(lines)})
    files += _write_pool_files(out_dir, start_date, days)
    end = start_date + dt.timedelta(days=days - 1)
    window = (end - dt.timedelta(days=WINDOW_DAYS - 1), end)
    catalog = Path(price_catalog or fixture(PRICE_CATALOG_FIXTURE))
    events, trigger = savings_truth(calls, CatalogPrices(catalog), window)
    manifest = {
        "savings_manifest_version": SAVINGS_MANIFEST_VERSION,
        "format": "canonical",
        "seed": seed,
        "start_date": start_date.isoformat(),
        "end_date": end.isoformat(),
        "days": days,
        "price_catalog": catalog.name,
        "window": {"start": window[0].isoformat(), "end": window[1].isoformat(), "days": WINDOW_DAYS},
        "routes": ROUTES,
        "service_accounts": [SERVICE_ACCOUNT],
        # The pool as the config must name it (load_test relative to OUT).
        "pools": {AUTOSCALE_POOL: AUTOSCALE_POOL_SETTINGS},
        "files": files,
        "savings_events": events,
        # fct_selfhost_trigger as of the last day: one model to move, one to leave on the API.
        "selfhost_candidates": {MODERATION_MODEL: SELFHOST_CANDIDATE, REPORT_MODEL: SELFHOST_CANDIDATE},
        "selfhost_trigger": {
            MODERATION_MODEL: trigger[MODERATION_MODEL] | {"verdict": "consider_selfhost"},
            REPORT_MODEL: trigger[REPORT_MODEL] | {"verdict": "stay_on_api"},
        },
        "negative_controls": NEGATIVE_CONTROLS,
    }
    write_manifest(out_dir, manifest)
    return manifest
