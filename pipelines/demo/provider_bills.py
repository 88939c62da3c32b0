"""Provider billing: what OpenAI, Anthropic and Azure bill for the true calls, as exports and invoices.

The same days are billed by the providers, from the TRUE calls (``build_day_frame``): every call
with status ok that the gateway did not answer from its cache, at the provider's actual price
(the LiteLLM catalog ``fixtures/prices/litellm_2026_11.json`` and the providers' published rules,
``PriceBook``; ``OFF_CATALOG_PRICES`` for the preview model the catalog lacks), bucketed by the UTC
day of ``ts``. A call is billed by the dimensions the providers bill by: its service tier (batch
and priority calls at their own prices), its context tier (a prompt above the model's
``*_above_<N>k_tokens`` threshold bills every token at the long-context price), 5-minute and
1-hour cache writes, and audio tokens apart from text. Per calendar month touched:
``openai/costs_<YYYY-MM>.json`` and ``openai/usage_<YYYY-MM>.json`` (Costs and Usage API pages,
``project_id`` = ``proj_<team>``; line items such as ``gpt-4o-mini, cached input``,
``priority | gpt-4.1-mini, output``, ``batch | gpt-4.1-mini, input``,
``gpt-6-luna, input, long context``, ``gpt-audio-mini audio, output``),
``anthropic/cost_report_<YYYY-MM>.json`` (amounts in cents, by ``service_tier``,
``context_window`` and ``token_type``) and ``anthropic/usage_report_<YYYY-MM>.json``
(``workspace_id`` = ``wrk_<team>``; uncached input excludes cache reads and writes), and for each
complete month ``invoices/invoice_<YYYY-MM>.csv``. Azure OpenAI has no daily export here: its
calls are billed on the monthly invoice only, at Azure's catalog entry (``azure/eu/...``).
The log files are ``gateway_view`` of the truth, and the differences are planted and recorded
in ``manifest["billing_events"]`` with their effect in numbers: ``lost_logs`` (one day ~30% of
Anthropic calls never logged), ``unannounced_price_change`` (gpt-4o-mini billed at 1.25x to the
end of the range), ``billed_without_logs`` (a 42 USD fine-tuning line item) when the range has
at least 30 days, and on every day ``cached_tokens_double_counted`` (Haiku's logged input
counts its cache reads twice).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

from pipelines.demo.manifest import decimal_text, write_text_atomically
from pipelines.demo.traffic import (
    AUDIO_MODEL,
    FINE_TUNING_PROJECT,
    FINE_TUNING_USD,
    MODEL_BY_NAME,
    MODELS,
    PRICE_CHANGE_FACTOR,
    PROVIDER_ANTHROPIC,
    PROVIDER_AZURE,
    PROVIDER_OPENAI,
    TIER_BATCH,
    TIER_PRIORITY,
    TIER_STANDARD,
    UNPRICED_API_MODEL,
    BillingEvent,
    GenerationPlan,
    month_key,
    month_last_day,
)
from pipelines.sources.values import to_decimal

# Provider billing (``OUT/openai``, ``OUT/anthropic``, ``OUT/invoices``): what the providers
# bill for the TRUE calls, at their actual prices. Token prices come from the LiteLLM catalog.
# The current catalog: the only one with the tier prices (priority, long context, 1-hour writes)
# and the Azure entries the demo's models need.
PRICE_CATALOG_FIXTURE = "prices/litellm_2026_11.json"  # under fixtures/, shipped as package data
BILLED_PROVIDERS = (PROVIDER_ANTHROPIC, PROVIDER_OPENAI)  # daily cost and usage exports
INVOICED_PROVIDERS = (PROVIDER_ANTHROPIC, PROVIDER_AZURE, PROVIDER_OPENAI)  # the monthly invoice
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

# Published rules for prices a catalog entry may lack; the entry's own field always wins.
# Batch APIs bill half the standard price: https://platform.openai.com/docs/guides/batch,
# https://docs.anthropic.com/en/docs/build-with-claude/batch-processing#pricing
BATCH_PRICE_RATIO = Decimal("0.5")
# Anthropic 1-hour cache writes cost 2x the base input price:
# https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#pricing
CACHE_WRITE_1H_INPUT_RATIO = Decimal("2")

# A billed call: the provider answered (status ok) and the gateway did not answer from its cache.
_BILLED = (pl.col("status") == "ok") & ~pl.col("gateway_cache_hit") & pl.col("provider").is_in(list(INVOICED_PROVIDERS))
# Token kinds a provider bills apart, each a disjoint share of the call's tokens, and the catalog
# field of its standard base price. Reasoning tokens are output tokens (no demo model prices them
# apart); text input is what is left of the prompt after cache reads, writes and audio.
TOKEN_PRICE_FIELDS = {
    "uncached_input": "input_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_creation": "cache_creation_input_token_cost",  # 5-minute writes
    "cache_creation_1h": "cache_creation_input_token_cost_above_1hr",
    "audio_input": "input_cost_per_audio_token",
    "output": "output_cost_per_token",  # text output, reasoning included
    "audio_output": "output_cost_per_audio_token",
}
TOKEN_KINDS = tuple(TOKEN_PRICE_FIELDS)
_TIER_SUFFIXES = {TIER_STANDARD: "", TIER_BATCH: "_batches", TIER_PRIORITY: "_priority"}
_CONTEXT_TIER_FIELD = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")
OPENAI_COST_KINDS = {
    "uncached_input": "input",
    "cache_read": "cached input",
    "cache_creation": "cache writes",
    "audio_input": "input",
    "output": "output",
    "audio_output": "output",
}
ANTHROPIC_TOKEN_TYPES = {
    "uncached_input": "uncached_input_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_creation": "cache_creation.ephemeral_5m_input_tokens",
    "cache_creation_1h": "cache_creation.ephemeral_1h_input_tokens",
    "output": "output_tokens",
}


class PriceBook:
    """Exact per-token prices of the API models the generator routes to, by token kind, service
    tier and context tier, from their catalog entries (``ModelSpec.price_key``) and the rules above.
    """

    def __init__(self, catalog_path: Path):
        catalog = json.loads(Path(catalog_path).read_text(encoding="utf-8"))
        self.catalog_name = Path(catalog_path).name
        self.entries: dict[str, dict] = {}
        self.context_tier_tokens: dict[str, int] = {}  # model -> prompt size above which long context applies
        for model in MODELS:
            if model.provider not in INVOICED_PROVIDERS:
                continue
            entry = catalog.get(model.price_key) if model.in_price_catalog else OFF_CATALOG_PRICES[model.name]
            if entry is None:
                raise ValueError(f"{catalog_path}: no entry {model.price_key!r} for {model.name}")
            self.entries[model.name] = entry
            thresholds = sorted(
                int(match.group(1)) * 1000 for match in map(_CONTEXT_TIER_FIELD.match, entry) if match is not None
            )
            if len(thresholds) > 1:
                raise ValueError(f"{model.price_key}: the demo bills one context tier, the entry has {thresholds}")
            if thresholds:
                self.context_tier_tokens[model.name] = thresholds[0]

    def price(self, model: str, kind: str, service_tier: str = TIER_STANDARD, long_context: bool = False) -> Decimal:
        """USD per token of ``kind`` for a call of ``model`` at a service tier and context tier."""
        entry = self.entries[model]
        above = f"_above_{self.context_tier_tokens[model] // 1000}k_tokens" if long_context else ""
        value = entry.get(TOKEN_PRICE_FIELDS[kind] + above + _TIER_SUFFIXES[service_tier])
        if value is not None:
            return to_decimal(value)
        if kind == "cache_creation_1h" and MODEL_BY_NAME[model].provider == PROVIDER_ANTHROPIC:
            return CACHE_WRITE_1H_INPUT_RATIO * self.price(model, "uncached_input", service_tier, long_context)
        if service_tier == TIER_BATCH:
            return BATCH_PRICE_RATIO * self.price(model, kind, TIER_STANDARD, long_context)
        if long_context and TOKEN_PRICE_FIELDS[kind] + _TIER_SUFFIXES[service_tier] in entry:
            return self.price(model, kind, service_tier, False)  # the tier does not change this kind
        raise ValueError(f"{model}: no {service_tier} price for {kind} (long context: {long_context})")

    def usd(self, row: dict, factor: Decimal = Decimal(1)) -> dict[str, Decimal]:
        """USD per token kind of one ``billed_usage`` row (kinds with tokens only)."""
        return {
            kind: _usd(row[kind], self.price(row["model"], kind, row["service_tier"], row["long_context"]) * factor)
            for kind in TOKEN_KINDS
            if row[kind]
        }


def billed_usage(frame: pl.DataFrame, context_tier_tokens: dict[str, int]) -> pl.DataFrame:
    """Billed calls of a day frame summed per provider × team × model × service tier × context
    tier (``long_context``: the prompt is above the model's threshold), tokens split by kind."""
    threshold = pl.col("model").replace_strict(context_tier_tokens, default=None, return_dtype=pl.Int64)
    return (
        frame.lazy()
        .filter(_BILLED)
        .with_columns(long_context=(pl.col("input_tokens") > threshold).fill_null(False))
        .group_by("provider", "team", "model", "service_tier", "long_context")
        .agg(
            requests=pl.len(),
            input_tokens=pl.col("input_tokens").sum(),
            uncached_input=(
                pl.col("input_tokens")
                - pl.col("cached_input_tokens")
                - pl.col("cache_creation_input_tokens")
                - pl.col("audio_input_tokens")
            ).sum(),
            cache_read=pl.col("cached_input_tokens").sum(),
            cache_creation=(pl.col("cache_creation_input_tokens") - pl.col("cache_creation_1h_input_tokens")).sum(),
            cache_creation_1h=pl.col("cache_creation_1h_input_tokens").sum(),
            audio_input=pl.col("audio_input_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
            output=(pl.col("output_tokens") - pl.col("audio_output_tokens")).sum(),
            audio_output=pl.col("audio_output_tokens").sum(),
            reasoning_tokens=pl.col("reasoning_tokens").sum(),
        )
        .sort("provider", "team", "model", "service_tier", "long_context")
        .collect()
    )


def load_token_prices(catalog_path: Path) -> PriceBook:
    return PriceBook(catalog_path)


def _unix_seconds(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400


def _usd(tokens: int, price: Decimal) -> Decimal:
    return (Decimal(tokens) * price).quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)


def _usd_text(amount: Decimal) -> str:
    """A USD amount with exactly 10 decimals, never in exponent notation."""
    return format(amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_UP), "f")


@dataclass(frozen=True)
class CostLine:
    """One billed line of one day: tokens of one kind of one model for one team, or a fee."""

    day: dt.date
    provider: str
    team: str
    model: str
    kind: str | None  # a ``TOKEN_KINDS`` kind; None for a non-token line item (fine-tuning)
    tokens: int
    usd: Decimal
    line_item: str | None = None  # non-token line items only
    service_tier: str = TIER_STANDARD
    long_context: bool = False  # billed at the model's long-context (above-threshold) prices


class BillingLedger:
    """Collects, day by day, what the providers bill and how the logs differ from it."""

    def __init__(self, plan: GenerationPlan, prices: PriceBook):
        self.plan = plan
        self.prices = prices
        # One per day × provider × team × model × service tier × context tier.
        self.usage: list[tuple[dt.date, dict]] = []
        self.costs: list[CostLine] = []
        self.effects: dict[str, dict] = {event.kind: {} for event in plan.billing_events}

    def billed_usage(self, frame: pl.DataFrame) -> pl.DataFrame:
        return billed_usage(frame, self.prices.context_tier_tokens)

    def catalog_usd(self, usage: pl.DataFrame) -> dict[str, Decimal]:
        """USD per model of aggregated usage at catalog (or off-catalog) price."""
        totals: dict[str, Decimal] = {}
        for row in usage.iter_rows(named=True):
            totals[row["model"]] = totals.get(row["model"], Decimal(0)) + sum(self.prices.usd(row).values(), Decimal(0))
        return totals

    def add_day(self, day: dt.date, frame: pl.DataFrame, logged: pl.DataFrame, lost: pl.DataFrame) -> None:
        """Bill a day's true calls (``frame``); ``logged``/``lost`` come from ``gateway_view``."""
        usage = self.billed_usage(frame)
        price_changes = self.plan.billing_events_of("unannounced_price_change", day)
        lines: list[CostLine] = []
        for row in usage.iter_rows(named=True):
            self.usage.append((day, row))
            factor = Decimal(1)
            for event in price_changes:
                if event.provider == row["provider"] and event.model == row["model"]:
                    factor *= PRICE_CHANGE_FACTOR
            for kind, usd in self.prices.usd(row, factor).items():
                lines.append(
                    CostLine(
                        day,
                        row["provider"],
                        row["team"],
                        row["model"],
                        kind,
                        row[kind],
                        usd,
                        service_tier=row["service_tier"],
                        long_context=row["long_context"],
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
            lost_usage = self.billed_usage(lost.filter(pl.col("provider") == event.provider))
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
                        "cache_creation_input_tokens": row["cache_creation"] + row["cache_creation_1h"],
                        "cache_creation_1h_input_tokens": row["cache_creation_1h"],
                        "output_tokens": row["output_tokens"],
                    }
                    for row in lost_usage.group_by("model")
                    .agg(
                        pl.col(
                            "requests",
                            "input_tokens",
                            "cache_read",
                            "cache_creation",
                            "cache_creation_1h",
                            "output_tokens",
                        ).sum()
                    )
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
            # The double-counted reads are on standard-tier calls (the batch job caches nothing).
            overestimate = _usd(billed_extra, self.prices.price(event.model, "uncached_input"))
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
                effect["input_price_usd_per_token"] = decimal_text(self.prices.price(event.model, "uncached_input"))
                effect["note"] = (
                    "overestimate_usd = extra input tokens of billed calls (status "
                    "ok, no gateway cache hit) x the catalog input price"
                )
            entries.append(event.to_manifest(effect))
        return entries


_DECIMAL_MARK = "\x00decimal:"


def _json_text(document: dict) -> str:
    """Sorted-key JSON; Decimals marked by ``_decimal_number`` are written as exact numbers."""
    text = json.dumps(document, indent=2, sort_keys=True)
    return re.sub(r'"\\u0000decimal:(-?[0-9.]+)"', r"\1", text) + "\n"


def _decimal_number(amount: Decimal) -> str:
    """A JSON number with a decimal point (42.0, not 42), as float-based API servers write it."""
    text = decimal_text(amount)
    return _DECIMAL_MARK + (text if "." in text else text + ".0")


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
        days_by_month.setdefault(month_key(day), []).append(day)
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
        write_text_atomically(out_dir / relative, text)
        written.add(relative)
        files.append({"path": relative, "provider": provider, "kind": kind, "month": month, "rows": rows})

    daily_usd: dict[str, dict[str, str]] = {provider: {} for provider in BILLED_PROVIDERS}
    monthly_usd: dict[str, dict[str, str]] = {provider: {} for provider in INVOICED_PROVIDERS}
    invoices: dict[str, dict] = {}
    for month, days in days_by_month.items():
        names = billing_file_names(month)
        for provider in INVOICED_PROVIDERS:
            month_total = Decimal(0)
            for day in days:
                day_total = sum((line.usd for line in costs_by_day.get((provider, day), [])), Decimal(0))
                if provider in BILLED_PROVIDERS:  # Azure bills monthly only
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

        first_day, last_day = days[0].replace(day=1), month_last_day(days[0])
        if days[0] == first_day and days[-1] == last_day:
            rows = _invoice_rows(
                month, first_day, last_day, [line for line in ledger.costs if month_key(line.day) == month]
            )
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(INVOICE_COLUMNS)
            writer.writerows([[row[column] for column in INVOICE_COLUMNS] for row in rows])
            emit(names["invoice"], buffer.getvalue(), "all", "invoice", month, len(rows))
            totals = {provider: Decimal(0) for provider in INVOICED_PROVIDERS}
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
        "price_catalog": ledger.prices.catalog_name,
        "billed_calls": "status ok and not a gateway cache hit, providers "
        f"{', '.join(INVOICED_PROVIDERS)}, bucketed by the UTC day of ts; "
        "amounts are USD rounded half-up to 10 decimals per result row; "
        f"{PROVIDER_AZURE} on the monthly invoice only (no daily export)",
        "price_rules": {
            "batch_price_ratio": decimal_text(BATCH_PRICE_RATIO),
            "anthropic_cache_write_1h_to_input_ratio": decimal_text(CACHE_WRITE_1H_INPUT_RATIO),
            "note": "used only where the catalog entry lacks the field; long context = prompt "
            "(input_tokens, all prompt tokens) above the entry's *_above_<N>k_tokens threshold",
        },
        "context_tier_tokens": dict(sorted(ledger.prices.context_tier_tokens.items())),
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


_OPENAI_TIER_PREFIXES = {TIER_STANDARD: "", TIER_BATCH: "batch | ", TIER_PRIORITY: "priority | "}
_AUDIO_KINDS = ("audio_input", "audio_output")


def _openai_line_item(line: CostLine) -> str:
    """The Costs API's ``line_item``: ``[<tier> | ]<model>[ <modality>], <token kind>[, long context]``;
    an audio model's lines say their modality (``gpt-audio-mini audio, input``, ``... text, output``)."""
    if line.line_item:
        return line.line_item
    model = line.model
    if line.model == AUDIO_MODEL:
        model += " audio" if line.kind in _AUDIO_KINDS else " text"
    long_context = ", long context" if line.long_context else ""
    return f"{_OPENAI_TIER_PREFIXES[line.service_tier]}{model}, {OPENAI_COST_KINDS[line.kind]}{long_context}"


def _openai_cost_bucket(day: dt.date, lines: list[CostLine]) -> dict:
    results = [
        {
            "object": "organization.costs.result",
            "amount": {"value": _decimal_number(line.usd), "currency": "usd"},
            "line_item": _openai_line_item(line),
            "project_id": f"proj_{line.team}",
            # Tokens billed on a token line; a fee line (fine-tuning) has none.
            **({"quantity": line.tokens} if line.kind else {}),
        }
        for line in sorted(lines, key=lambda line: (line.team, _openai_line_item(line)))
    ]
    return _openai_bucket(day, results)


# OpenAI's Usage API groups by project, model, batch and service tier; a long-context split is
# not one of its dimensions, so those rows are summed.
_OPENAI_USAGE_SUMS = ("requests", "input_tokens", "cache_read", "audio_input", "output_tokens", "audio_output")


def _openai_usage_bucket(day: dt.date, rows: list[dict]) -> dict:
    grouped: dict[tuple[str, str, str], dict[str, int]] = {}
    for row in rows:
        key = (row["team"], row["model"], row["service_tier"])
        sums = grouped.setdefault(key, dict.fromkeys(_OPENAI_USAGE_SUMS, 0))
        for name in _OPENAI_USAGE_SUMS:
            sums[name] += row[name]
    results = [
        {
            "object": "organization.usage.completions.result",
            "input_tokens": sums["input_tokens"],
            "output_tokens": sums["output_tokens"],
            "input_cached_tokens": sums["cache_read"],
            "input_audio_tokens": sums["audio_input"],
            "output_audio_tokens": sums["audio_output"],
            "num_model_requests": sums["requests"],
            "project_id": f"proj_{team}",
            "user_id": None,
            "api_key_id": None,
            "model": model,
            "batch": service_tier == TIER_BATCH,
            # The Usage API's word for the standard tier is "default".
            "service_tier": "default" if service_tier == TIER_STANDARD else service_tier,
        }
        for (team, model, service_tier), sums in sorted(grouped.items())
    ]
    return _openai_bucket(day, results)


def _anthropic_context_window(long_context: bool) -> str:
    return "200k-1M" if long_context else "0-200k"


def _anthropic_cost_bucket(day: dt.date, lines: list[CostLine]) -> dict:
    results = [
        {
            "currency": "USD",
            "amount": decimal_text(line.usd * 100),
            "workspace_id": f"wrk_{line.team}",
            "description": None,
            "cost_type": "tokens",
            "context_window": _anthropic_context_window(line.long_context),
            "model": line.model,
            "service_tier": line.service_tier,
            "token_type": ANTHROPIC_TOKEN_TYPES[line.kind],
        }
        for line in sorted(
            lines,
            key=lambda line: (
                line.team,
                line.model,
                line.service_tier,
                line.long_context,
                ANTHROPIC_TOKEN_TYPES[line.kind],
            ),
        )
    ]
    return _anthropic_bucket(day, results)


def _anthropic_usage_bucket(day: dt.date, rows: list[dict]) -> dict:
    results = [
        {
            "uncached_input_tokens": row["uncached_input"],
            "cache_creation": {
                "ephemeral_1h_input_tokens": row["cache_creation_1h"],
                "ephemeral_5m_input_tokens": row["cache_creation"],
            },
            "cache_read_input_tokens": row["cache_read"],
            "output_tokens": row["output_tokens"],
            "server_tool_use": {"web_search_requests": 0},
            "api_key_id": None,
            "workspace_id": f"wrk_{row['team']}",
            "model": row["model"],
            "service_tier": row["service_tier"],
            "context_window": _anthropic_context_window(row["long_context"]),
        }
        for row in sorted(rows, key=lambda row: (row["team"], row["model"], row["service_tier"], row["long_context"]))
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
