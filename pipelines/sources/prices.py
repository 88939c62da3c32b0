"""Price catalogs (LiteLLM's `model_prices_and_context_window.json` format), the dated price rules
and the config's overrides, resolved into the rates a request is billed at.

A catalog entry is a price model, not a price: context tiers (`*_above_200k_tokens`), service tiers
(`*_batches`, `*_priority`, `*_flex`), 5-minute and 1-hour cache writes, audio and reasoning tokens,
per-call and web-search fees, off-peak hours (`off_peak_pricing`), and the fallbacks between them
(no cache-read price: the input price; no flex price: the standard one). `entry_price_rows` resolves
one entry the way LiteLLM's cost calculator does (`litellm_core_utils/llm_cost_calc/utils.py`,
`cost_calculator.batch_cost_calculator`, version 1.110.2), at every prompt size where a rate changes,
so the SQL only picks a row and multiplies.

Prices are exact decimals from their JSON text, never binary floating point arithmetic, so a
hand-priced call matches to the digit.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import yaml

from pipelines.resources.config import CostwatchConfig
from pipelines.sources.values import NotADecimal, to_decimal

# USD per token (per call or per search for the fee components). 24 decimals: catalog prices such
# as 1.41953125e-07 carry 15, and a 1e-12 rounding times a million tokens would move a call by 1e-6.
PRICE_TYPE = pa.decimal128(30, 24)
_QUANTUM = Decimal("1e-24")
_ZERO = Decimal(0)

SERVICE_TIERS = ("standard", "batch", "flex", "priority")
# Per token. input/output are the text tokens left once the others are taken out of the totals.
TOKEN_COMPONENTS = (
    "input",
    "cache_read",
    "cache_write",  # 5-minute (the default lifetime)
    "cache_write_1h",
    "audio_input",
    "audio_cache_read",
    "output",
    "reasoning",
    "audio_output",
)
# `request`: USD per call; `web_search`: USD per search; `web_search_call`: USD once per call that
# searched at all (Gemini's per-grounded-prompt billing).
FEE_COMPONENTS = ("request", "web_search", "web_search_call")
PRICE_COMPONENTS = TOKEN_COMPONENTS + FEE_COMPONENTS

# An `off_peak_pricing` window: on the listed ISO weekdays (1 = Monday; NULL = every day) read in
# `weekday_timezone`, from start_minute (inclusive) to end_minute (exclusive) of the UTC day; a window
# that ends at or before its start wraps past midnight (equal: the whole day), as LiteLLM reads them.
OFF_PEAK_WINDOW_TYPE = pa.list_(
    pa.struct(
        [
            ("weekdays", pa.list_(pa.int64())),
            ("weekday_timezone", pa.string()),
            ("start_minute", pa.int64()),
            ("end_minute", pa.int64()),
        ]
    )
)

PRICE_SCHEMA = pa.schema(
    [
        ("model_key", pa.string()),
        ("litellm_provider", pa.string()),
        ("layer", pa.string()),  # 'catalog' or 'override' (an override replaces the whole entry)
        ("service_tier", pa.string()),
        ("off_peak", pa.bool_()),  # the entry's `off_peak_pricing` rates, billed inside its windows
        ("above_tokens", pa.int64()),  # the context tier: 0 = base, N = priced `_above_<N>_tokens`
        ("from_prompt_tokens", pa.int64()),  # the smallest prompt (input_tokens) the row applies to
        ("component", pa.string()),
        ("price_usd", PRICE_TYPE),
        ("price_field", pa.string()),  # the entry's field the price was read from, after fallbacks
        ("effective_from", pa.date32()),
        ("price_source", pa.string()),  # 'catalog:<file>', 'override' or 'rule:<rule id>'
        ("off_peak_windows", OFF_PEAK_WINDOW_TYPE),  # on off-peak rows: when they apply
    ]
)

RULES_FILE = Path(__file__).with_name("price_rules.yml")

# LiteLLM's service tier suffixes, longest first (its `get_cost_per_unit` falls back from a
# suffixed field to the plain one by removing the first it finds), and the canonical tiers' own.
_LITELLM_TIER_SUFFIXES = ("_ultrafast", "_priority", "_balanced", "_flex", "_fast", "_auto")
_NON_STANDARD_SUFFIXES = (*_LITELLM_TIER_SUFFIXES, "_batches")
_TIER_SUFFIX = {"standard": "", "flex": "_flex", "priority": "_priority"}
_THRESHOLD_PREFIXES = tuple(
    f"{base}_above_"
    for base in (
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
    )
)
_BATCH_TIER_KEY = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost"
    r"|cache_creation_input_token_cost_above_1hr|cache_creation_input_token_cost_above_12hr)"
    r"_above_(\d+k?)_tokens_batches$"
)
_ANY_THRESHOLD = re.compile(r"_above_(\d+(?:\.\d+)?k?)_tokens")
# Providers whose context tiers start AT the threshold (LiteLLM: `prompt_tokens >= N`); elsewhere above it.
_INCLUSIVE_THRESHOLD_PROVIDERS = frozenset({"xai"})


@dataclass(frozen=True)
class Price:
    """A resolved rate and the entry field it came from."""

    usd: Decimal
    field: str


# --------------------------------------------------------------------------- entries and rules


def _number(value: object) -> Decimal | None:
    try:
        return to_decimal(value)
    except (NotADecimal, ArithmeticError):
        return None


def parse_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog entry with every number (also inside `search_context_cost_per_query` and
    `tiered_pricing`) as an exact Decimal; other values as they are; nulls dropped."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            return _number(value)
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items() if item is not None}
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    parsed = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, str) and ("cost" in key or "price" in key) and _number(value) is not None:
            parsed[key] = _number(value)  # LiteLLM reads numeric text ("3e-7") as a price too
        else:
            parsed[key] = convert(value)
    return parsed


@dataclass(frozen=True)
class PriceRule:
    """One rule of price_rules.yml (see its header)."""

    id: str
    fills: str
    source: str
    from_field: str | None = None
    ratio: Decimal | None = None
    value: Decimal | None = None
    bases: tuple[str, ...] = ("",)
    providers: tuple[str, ...] = ()
    models: re.Pattern | None = None
    not_models: re.Pattern | None = None

    def applies_to(self, model_key: str, provider: str | None) -> bool:
        if self.providers and not any(fnmatch.fnmatchcase(provider or "", pattern) for pattern in self.providers):
            return False
        if self.models is not None and not self.models.search(model_key):
            return False
        return self.not_models is None or not self.not_models.search(model_key)


@cache
def load_rules(path: Path = RULES_FILE) -> tuple[dt.date, tuple[PriceRule, ...]]:
    """The rules file's review date and its rules, in order."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for spec in document["rules"]:
        rules.append(
            PriceRule(
                id=spec["id"],
                fills=spec["fills"],
                source=spec["source"],
                from_field=spec.get("from"),
                ratio=to_decimal(spec["ratio"]) if "ratio" in spec else None,
                value=to_decimal(spec["value"]) if "value" in spec else None,
                bases=tuple(spec.get("bases", ("",))),
                providers=tuple(spec.get("providers", ())),
                models=re.compile(spec["models"]) if "models" in spec else None,
                not_models=re.compile(spec["not_models"]) if "not_models" in spec else None,
            )
        )
    return document["as_of"], tuple(rules)


def _variants(entry: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (context tier, service tier suffix) the entry's price fields use, e.g. ('_above_200k_tokens', '')."""
    found = {("", "")}
    for key in entry:
        context = _ANY_THRESHOLD.search(key)
        tier = next((suffix for suffix in ("_batches", "_priority", "_flex") if key.endswith(suffix)), "")
        found.add((context.group(0) if context else "", tier))
    return found


def apply_rules(
    model_key: str, entry: Mapping[str, Any], rules: Iterable[PriceRule]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entry with the fields the rules fill, and which rule filled each (field -> rule id).
    A field the entry has is never replaced."""
    filled = dict(entry)
    filled_by: dict[str, str] = {}
    provider = entry.get("litellm_provider")
    for rule in rules:
        if not rule.applies_to(model_key, provider if isinstance(provider, str) else None):
            continue
        if rule.value is not None:
            field, _, size = rule.fills.partition(".")
            sizes = filled.get(field)
            if not isinstance(sizes, dict) or size not in sizes:
                filled[field] = {**(sizes if isinstance(sizes, dict) else {}), size: rule.value}
                filled_by[rule.fills] = rule.id
            continue
        for context, tier in sorted(_variants(filled)):
            for base in rule.bases:
                names = {"base": base, "context": context, "tier": tier}
                source, target = rule.from_field.format(**names), rule.fills.format(**names)
                price = filled.get(source)
                if isinstance(price, Decimal) and target not in filled:
                    filled[target] = price * rule.ratio
                    filled_by[target] = rule.id
    return filled, filled_by


# --------------------------------------------------------------------------- LiteLLM's rate resolution


def _threshold(text: str) -> Decimal:
    return Decimal(text.replace("k", "")) * (1000 if "k" in text else 1)


def _key_threshold(key: str) -> Decimal:
    return _threshold(key.rsplit("_above_", 1)[1].split("_tokens")[0])


def _exceeds(prompt_tokens: int, threshold: Decimal, inclusive: bool) -> bool:
    return prompt_tokens > threshold or (inclusive and prompt_tokens == threshold)


class _Entry:
    """One entry's fields and LiteLLM's ways of reading them."""

    def __init__(self, model_key: str, fields: Mapping[str, Any]):
        self.key = model_key
        self.fields = fields
        provider = fields.get("litellm_provider")
        self.provider = provider if isinstance(provider, str) else None
        self.inclusive = self.provider in _INCLUSIVE_THRESHOLD_PROVIDERS

    def raw(self, field: str) -> Price | None:
        value = self.fields.get(field)
        return Price(value, field) if isinstance(value, Decimal) else None

    def unit(self, field: str, default: Price | None) -> Price | None:
        """LiteLLM's `get_cost_per_unit`: the field, else the field without its service tier suffix."""
        price = self.raw(field)
        if price is not None:
            return price
        for suffix in _LITELLM_TIER_SUFFIXES:
            if suffix in field:
                fallback = self.raw(field.replace(suffix, ""))
                return fallback if fallback is not None else default
        return default

    def modality_field(self, field: str, prompt_tokens: int, inclusive: bool) -> str:
        """LiteLLM's `get_modality_token_cost_key`: the field's highest context tier the prompt crosses."""
        suffix = next((suffix for suffix in _NON_STANDARD_SUFFIXES if field.endswith(suffix)), "")
        base = field.removesuffix(suffix) if suffix else field
        crossed = [
            key
            for key in self.fields
            if key.startswith(f"{base}_above_")
            and key.endswith(("_tokens", f"_tokens{suffix}"))
            and self.raw(key) is not None
            and _exceeds(prompt_tokens, _key_threshold(key), inclusive)
        ]
        if not crossed:
            return field
        highest = max(crossed, key=_key_threshold)
        return f"{highest.removesuffix(suffix) if suffix else highest}{suffix}"

    def tiered_pricing_tier(self, prompt_tokens: int) -> dict | None:
        """LiteLLM's `select_tier_for_input`: range_start < prompt <= range_end, else the last tier."""
        tiers = self.fields.get("tiered_pricing")
        if not isinstance(tiers, list) or not tiers or prompt_tokens <= 0:
            return None
        ranged = sorted(
            (tier for tier in tiers if isinstance(tier, dict) and len(tier.get("range") or ()) == 2),
            key=lambda tier: tier["range"][0],
        )
        if not ranged:
            return None
        tier = next((t for t in ranged if t["range"][0] < prompt_tokens <= t["range"][1]), ranged[-1])
        return tier if isinstance(tier.get("input_cost_per_token"), Decimal) else None

    def thresholds(self) -> list[Decimal]:
        found = {_threshold(match.group(1)) for key in self.fields for match in _ANY_THRESHOLD.finditer(key)}
        for tier in self.fields.get("tiered_pricing") or ():
            if isinstance(tier, dict) and len(tier.get("range") or ()) == 2:
                found.add(Decimal(tier["range"][0]))
        return sorted(found)


def _tier_price(tier: dict, field: str, fallback: str | None = None) -> Price:
    """LiteLLM's `tier_rate` on a `tiered_pricing` entry."""
    value = tier.get(field)
    if isinstance(value, Decimal):
        return Price(value, f"tiered_pricing.{field}")
    if fallback is None:
        return Price(_ZERO, f"tiered_pricing.{field}")
    value = tier.get(fallback)
    return Price(value if isinstance(value, Decimal) else _ZERO, f"tiered_pricing.{fallback}")


def _reasoning(entry: _Entry, suffix: str, output: Price) -> Price:
    """LiteLLM's `_resolve_reasoning_token_cost`."""
    tier_reasoning = entry.raw(f"output_cost_per_reasoning_token{suffix}")
    if tier_reasoning is not None:
        return tier_reasoning
    if suffix and entry.raw(f"output_cost_per_token{suffix}") is not None:
        return output
    return entry.raw("output_cost_per_reasoning_token") or output


def _off_peak(entry: _Entry, field: str, standard: Price | None) -> Price | None:
    """LiteLLM's `_off_peak_rate`: the `off_peak_pricing` block's rate replaces the one that would apply."""
    value = entry.fields["off_peak_pricing"].get(field)
    return Price(value, f"off_peak_pricing.{field}") if isinstance(value, Decimal) else standard


def _standard_rates(entry: _Entry, service_tier: str, prompt_tokens: int, off_peak: bool = False) -> dict[str, Price]:
    """Rates of a standard, flex or priority call: LiteLLM's `generic_cost_per_token` and `_get_token_base_cost`;
    `off_peak`: inside the entry's `off_peak_pricing` windows (`apply_off_peak_pricing`)."""
    suffix = _TIER_SUFFIX[service_tier]
    inclusive = entry.inclusive
    tier = entry.tiered_pricing_tier(prompt_tokens)
    if tier is not None:
        # All-or-nothing tiers (Dashscope): the tier's rates for every token; no service tiers.
        input_price = _tier_price(tier, "input_cost_per_token")
        output = (
            _tier_price(tier, "output_cost_per_token")
            if "output_cost_per_token" in tier
            else entry.unit("output_cost_per_token", Price(_ZERO, "output_cost_per_token"))
        )
        cache_read = _tier_price(tier, "cache_read_input_token_cost", "input_cost_per_token")
        cache_write = _tier_price(tier, "cache_creation_input_token_cost", "input_cost_per_token")
        one_hour = tier.get("cache_creation_input_token_cost_above_1hr")
        cache_write_1h = (
            Price(one_hour, "tiered_pricing.cache_creation_input_token_cost_above_1hr")
            if isinstance(one_hour, Decimal)
            else cache_write
        )
        if off_peak:  # `_apply_off_peak_to_base_costs`: the tier's own 1-hour write price stays
            input_price = _off_peak(entry, "input_cost_per_token", input_price)
            output = _off_peak(entry, "output_cost_per_token", output)
            cache_read = _off_peak(entry, "cache_read_input_token_cost", cache_read)
            cache_write = _off_peak(entry, "cache_creation_input_token_cost", cache_write)
            if not isinstance(one_hour, Decimal):
                cache_write_1h = cache_write
        if "output_cost_per_reasoning_token" in tier or "output_cost_per_token" in tier:
            reasoning = _tier_price(tier, "output_cost_per_reasoning_token", "output_cost_per_token")
        else:
            reasoning = _reasoning(entry, suffix, output)
    else:
        input_price = entry.unit(f"input_cost_per_token{suffix}", Price(_ZERO, f"input_cost_per_token{suffix}"))
        output = entry.unit(f"output_cost_per_token{suffix}", Price(_ZERO, f"output_cost_per_token{suffix}"))
        if output.usd == 0:  # image generation models price their output as image tokens
            output = entry.unit("output_cost_per_image_token", None) or output
        cache_write = entry.unit(f"cache_creation_input_token_cost{suffix}", None)
        cache_read = entry.unit(f"cache_read_input_token_cost{suffix}", None)
        one_hour_field = f"cache_creation_input_token_cost_above_1hr{suffix}"
        threshold_fields = sorted(
            (
                key
                for key in entry.fields
                if key.startswith(_THRESHOLD_PREFIXES)
                and "_tokens" in key
                and (not key.endswith(_NON_STANDARD_SUFFIXES) or (suffix and key.endswith(suffix)))
                and entry.raw(key) is not None
            ),
            key=_key_threshold,
        )
        for key in threshold_fields:
            text = key.rsplit("_above_", 1)[1].split("_tokens")[0]
            if not _exceeds(prompt_tokens, _threshold(text), inclusive):
                continue
            input_price = entry.unit(f"input_cost_per_token_above_{text}_tokens{suffix}", input_price)
            output = entry.unit(f"output_cost_per_token_above_{text}_tokens{suffix}", output)
            cache_write = entry.unit(f"cache_creation_input_token_cost_above_{text}_tokens{suffix}", cache_write)
            tiered_one_hour = f"cache_creation_input_token_cost_above_1hr_above_{text}_tokens{suffix}"
            if entry.raw(tiered_one_hour) is not None:
                one_hour_field = tiered_one_hour
            cache_read = entry.unit(f"cache_read_input_token_cost_above_{text}_tokens{suffix}", cache_read)
        if off_peak:  # a cache price the entry lacks falls back to the off-peak input price
            input_price = _off_peak(entry, "input_cost_per_token", input_price)
            output = _off_peak(entry, "output_cost_per_token", output)
            cache_read = _off_peak(entry, "cache_read_input_token_cost", cache_read)
            cache_write = _off_peak(entry, "cache_creation_input_token_cost", cache_write)
        cache_read = cache_read or input_price
        cache_write = cache_write or input_price
        cache_write_1h = entry.unit(one_hour_field, None) or cache_write
        reasoning = _reasoning(entry, suffix, output)
    if off_peak:
        reasoning = _off_peak(entry, "output_cost_per_reasoning_token", reasoning)
    audio_field = entry.modality_field(f"input_cost_per_audio_token{suffix}", prompt_tokens, inclusive)
    if (
        entry.raw(audio_field) is None
        and entry.raw(audio_field.removesuffix(suffix) if suffix else audio_field) is None
    ):
        audio_input = input_price
    else:
        audio_input = entry.unit(audio_field, Price(_ZERO, audio_field))
    audio_output = entry.raw("output_cost_per_audio_token") or output
    if entry.provider in _INCLUSIVE_THRESHOLD_PROVIDERS:
        # xAI's calculator drops the completion details: reasoning and audio bill as output.
        reasoning = audio_output = output
    return {
        "input": input_price,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
        "audio_input": audio_input,
        "audio_cache_read": entry.unit(f"cache_read_input_audio_token_cost{suffix}", cache_read),
        "output": output,
        "reasoning": reasoning,
        "audio_output": audio_output,
    }


def _batch_rate(entry: _Entry, prefix: str, prompt_tokens: int) -> Price | None:
    """LiteLLM's `_batch_rate_for_prefix`: the batch price of the highest batch context tier crossed."""
    thresholds = {
        match.group(2)
        for key in entry.fields
        if (match := _BATCH_TIER_KEY.match(key)) is not None and match.group(1) == prefix and entry.raw(key)
    }
    crossed = next(
        (
            text
            for text in sorted(thresholds, key=_threshold, reverse=True)
            if _exceeds(prompt_tokens, _threshold(text), entry.inclusive)
        ),
        None,
    )
    flat = entry.raw(f"{prefix}_batches")
    if crossed is None:
        return flat
    return entry.raw(f"{prefix}_above_{crossed}_tokens_batches") or flat


def _batch_rates(entry: _Entry, prompt_tokens: int) -> dict[str, Price] | None:
    """Rates of a Batch API call: LiteLLM's `batch_cost_calculator`. None when the entry has no input price."""
    input_price = _batch_rate(entry, "input_cost_per_token", prompt_tokens)
    if input_price is None:
        standard_input = entry.raw("input_cost_per_token")
        if standard_input is None:
            return None
        half = Decimal("0.5")
        input_price = Price(standard_input.usd * half, f"{standard_input.field} / 2")
        cache_read_field = entry.raw("cache_read_input_token_cost")
        cache_read = Price(
            cache_read_field.usd * half if cache_read_field else _ZERO,
            "cache_read_input_token_cost / 2",
        )
        written = entry.raw("cache_creation_input_token_cost") or standard_input
        cache_write = Price(written.usd * half, f"{written.field} / 2")
        cache_write_1h = cache_write
        audio_input = input_price
        audio_cache_read = cache_read
    else:
        standard_read = entry.unit(entry.modality_field("cache_read_input_token_cost", prompt_tokens, False), None)
        cache_read = _batch_rate(entry, "cache_read_input_token_cost", prompt_tokens) or standard_read or input_price
        cache_write = _batch_rate(entry, "cache_creation_input_token_cost", prompt_tokens) or input_price
        cache_write_1h = _batch_rate(entry, "cache_creation_input_token_cost_above_1hr", prompt_tokens) or cache_write
        audio_field = entry.modality_field("input_cost_per_audio_token_batches", prompt_tokens, False)
        audio_input = entry.unit(audio_field, None) or entry.raw("input_cost_per_audio_token_batches") or input_price
        audio_cache_read = entry.raw("cache_read_input_audio_token_cost_batches") or cache_read
    # Every output token (reasoning and audio too) bills at the batch output price.
    output = _batch_rate(entry, "output_cost_per_token", prompt_tokens)
    if output is None:
        standard_output = entry.raw("output_cost_per_token")
        output = (
            Price(standard_output.usd / 2, f"{standard_output.field} / 2")
            if standard_output
            else Price(_ZERO, "output_cost_per_token")
        )
    return {
        "input": input_price,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
        "audio_input": audio_input,
        "audio_cache_read": audio_cache_read,
        "output": output,
        "reasoning": output,
        "audio_output": output,
    }


def _search_sizes(entry: _Entry) -> dict[str, Decimal]:
    sizes = entry.fields.get("search_context_cost_per_query")
    return {size: price for size, price in (sizes or {}).items() if isinstance(price, Decimal)}


def _fees(entry: _Entry) -> dict[str, Price]:
    """Per-call and web-search fees, as LiteLLM's built-in tool pricing routes them by provider."""
    fees: dict[str, Price] = {}
    per_call = entry.raw("input_cost_per_request")
    if per_call is not None:
        fees["request"] = per_call
    sizes = _search_sizes(entry)
    field = "search_context_cost_per_query.search_context_size_medium"
    provider = entry.provider or ""
    is_claude = "claude" in entry.key.lower()
    if provider == "perplexity":
        # Perplexity's calculator: the low-context-size price per search (or a legacy flat field).
        legacy = entry.raw("search_queries_cost_per_query")
        low = sizes.get("search_context_size_low")
        if legacy is not None:
            fees["web_search"] = legacy
        elif low is not None:
            fees["web_search"] = Price(low, "search_context_cost_per_query.search_context_size_low")
        return fees
    if provider == "xai":
        size = next(
            (
                size
                for size in ("search_context_size_medium", "search_context_size_low", "search_context_size_high")
                if sizes.get(size, _ZERO) > 0
            ),
            None,
        )
        if size is not None:
            fees["web_search"] = Price(sizes[size], f"search_context_cost_per_query.{size}")
        return fees
    medium = sizes.get("search_context_size_medium")
    if medium is None:
        return fees
    if provider == "gemini" or (provider.startswith("vertex_ai") and not is_claude):
        per_query = entry.fields.get("web_search_billing_unit") == "per_query"
        fees["web_search" if per_query else "web_search_call"] = Price(medium, field)
    else:
        fees["web_search"] = Price(medium, field)
    return fees


def _service_tiers(entry: _Entry) -> list[str]:
    """Tiers the entry prices apart; a flex or priority call on an entry without them bills standard."""
    tiers = ["standard", "batch"]
    for tier in ("flex", "priority"):
        suffix = _TIER_SUFFIX[tier]
        if any(key.endswith(suffix) or f"{suffix}_above_" in key for key in entry.fields):
            tiers.append(tier)
    return tiers


# LiteLLM's `_WEEKDAY_NUMBERS`.
_WEEKDAYS = {
    **{"mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3, "wednesday": 3},
    **{"thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "fri": 5, "friday": 5},
    **{"sat": 6, "saturday": 6, "sun": 7, "sunday": 7},
}


def _weekday(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)) and value == int(value) and 1 <= value <= 7:
        return int(value)
    return _WEEKDAYS.get(value.strip().lower()) if isinstance(value, str) else None


def _hours(value: object) -> list[tuple[int, int]]:
    """`"HH:MM-HH:MM"` windows (a string or a list of them) as UTC minutes of the day; malformed ones dropped."""
    texts = (
        [value]
        if isinstance(value, str)
        else [text for text in value if isinstance(text, str)]
        if isinstance(value, list)
        else []
    )
    found = []
    for text in texts:
        try:
            start, end = (dt.datetime.strptime(part.strip(), "%H:%M") for part in text.split("-"))
        except ValueError:
            continue
        found.append((start.hour * 60 + start.minute, end.hour * 60 + end.minute))
    return found


def _zone_name(value: object) -> str:
    """The weekday time zone as LiteLLM reads it: an IANA name, else UTC (also for a name no zone has)."""
    if isinstance(value, str) and value.strip():
        try:
            return ZoneInfo(value.strip()).key
        except (ValueError, ZoneInfoNotFoundError):
            return "UTC"
    return "UTC"


def off_peak_windows(entry: Mapping[str, Any]) -> list[dict] | None:
    """The entry's `off_peak_pricing` windows (LiteLLM's `_is_off_peak`: the every-day `hours_utc`,
    then each `windows` rule's hours on its weekdays); None when it has no usable window."""
    block = entry.get("off_peak_pricing")
    if not isinstance(block, Mapping):
        return None
    zone = _zone_name(block.get("weekday_timezone"))
    windows = [
        {"weekdays": None, "weekday_timezone": zone, "start_minute": start, "end_minute": end}
        for start, end in _hours(block.get("hours_utc"))
    ]
    for rule in block.get("windows") if isinstance(block.get("windows"), list) else ():
        if not isinstance(rule, Mapping):
            continue
        days = rule.get("weekdays")
        weekdays = (
            None if days is None else sorted({d for d in map(_weekday, days) if d}) if isinstance(days, list) else []
        )
        windows += [
            {"weekdays": weekdays, "weekday_timezone": zone, "start_minute": start, "end_minute": end}
            for start, end in _hours(rule.get("hours_utc"))
        ]
    return windows or None


def entry_price_rows(
    model_key: str,
    raw_entry: Mapping[str, Any],
    *,
    effective_from: dt.date,
    layer: str,
    source: str,
    rules: Iterable[PriceRule] | None = None,
) -> list[dict]:
    """One entry's `price_catalog` rows: for each service tier, the rates in force from each prompt
    size where one changes (the base from 0 tokens, then each context tier), after the rules; an entry
    with `off_peak_pricing` has them once more (`off_peak`, with its windows) for every tier but batch."""
    fields, filled_by = apply_rules(model_key, parse_entry(raw_entry), load_rules()[1] if rules is None else rules)
    entry = _Entry(model_key, fields)
    if entry.raw("input_cost_per_token") is None and not isinstance(fields.get("tiered_pricing"), list):
        return []  # e.g. LiteLLM's `sample_spec`, or per-image/per-second-only models
    thresholds = entry.thresholds()
    sizes = sorted({0, 1, *(int(n) for n in thresholds), *(int(n) + 1 for n in thresholds)})
    fees = _fees(entry)
    windows = off_peak_windows(fields)
    # LiteLLM's batch calculator ignores off-peak hours: batch calls have no off-peak rows.
    variants = [(tier, False) for tier in _service_tiers(entry)]
    variants += [(tier, True) for tier, _ in variants if windows and tier != "batch"]
    rows: list[dict] = []
    for service_tier, off_peak in variants:
        previous = None
        for prompt_tokens in sizes:
            if service_tier == "batch":
                rates = _batch_rates(entry, prompt_tokens)
                if rates is None:
                    break  # no token price to halve: a batch call bills as standard
            else:
                rates = _standard_rates(entry, service_tier, prompt_tokens, off_peak)
            rates = {**rates, **fees}
            if rates == previous:
                continue
            previous = rates
            above = max((int(n) for n in thresholds if _exceeds(prompt_tokens, n, entry.inclusive)), default=0)
            for component, price in rates.items():
                rule = filled_by.get(price.field)
                rows.append(
                    {
                        "model_key": model_key,
                        "litellm_provider": entry.provider,
                        "layer": layer,
                        "service_tier": service_tier,
                        "off_peak": off_peak,
                        "above_tokens": above,
                        "from_prompt_tokens": prompt_tokens,
                        "component": component,
                        "price_usd": price.usd.quantize(_QUANTUM),
                        "price_field": price.field,
                        "effective_from": effective_from,
                        "price_source": f"rule:{rule}" if rule else source,
                        "off_peak_windows": windows if off_peak else None,
                    }
                )
    return rows


def price_rows(config: CostwatchConfig, cache_dir: Path | None = None) -> pa.Table:
    """Every catalog version's entries with a token price, plus the config's overrides, resolved.
    With `cache_dir`, a catalog resolved before is read back from there (`_cached_catalog_rows`)."""
    tables = []
    for version in config.price_versions:
        catalog = version.catalog.read_bytes()
        digest = _resolution_digest(catalog, version.effective_from)
        if cache_dir is None:
            tables.append(_catalog_rows(version.catalog.name, catalog, version.effective_from, digest))
        else:
            tables.append(
                _cached_catalog_rows(version.catalog.name, catalog, version.effective_from, digest, cache_dir)
            )
    overrides: list[dict] = []
    for override in config.price_overrides:
        overrides.extend(
            entry_price_rows(
                override.model,
                override.prices,
                effective_from=override.effective_from,
                layer="override",
                source="override",
            )
        )
    return pa.concat_tables([*tables, pa.Table.from_pylist(overrides, schema=PRICE_SCHEMA)])


# What a catalog's resolved rows are a function of, besides the catalog itself and its effective
# date: the resolver's code and the dated rules it applies.
_RESOLVER_FILES = (Path(__file__), Path(__file__).with_name("values.py"), RULES_FILE)


def _resolution_digest(catalog: bytes, effective_from: dt.date) -> str:
    digest = hashlib.sha256()
    for part in (catalog, effective_from.isoformat().encode(), *(path.read_bytes() for path in _RESOLVER_FILES)):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:32]


# Resolved catalogs of this process by (file name, effective date, digest): a run over many days,
# or the UI's code server, resolves a catalog once, and any change to it is resolved again.
_RESOLVED: dict[tuple[str, dt.date, str], pa.Table] = {}


def _catalog_rows(name: str, catalog: bytes, effective_from: dt.date, digest: str) -> pa.Table:
    key = (name, effective_from, digest)
    if key not in _RESOLVED:
        rows: list[dict] = []
        for model_key, entry in sorted(json.loads(catalog.decode("utf-8")).items()):
            if isinstance(entry, dict):
                rows.extend(
                    entry_price_rows(
                        model_key, entry, effective_from=effective_from, layer="catalog", source=f"catalog:{name}"
                    )
                )
        _RESOLVED[key] = pa.Table.from_pylist(rows, schema=PRICE_SCHEMA)
    return _RESOLVED[key]


def _cached_catalog_rows(name: str, catalog: bytes, effective_from: dt.date, digest: str, cache_dir: Path) -> pa.Table:
    """A catalog's resolved rows, kept in `cache_dir` (Arrow IPC, exact types) under a digest of
    everything they are computed from: the catalog's bytes, its effective date, this resolver's
    code and the price rules (the file name is in the cache file's name). A run in a new process
    reads them back in milliseconds instead of resolving thousands of entries again (seconds); any
    change to those inputs is a new digest, so the catalog is resolved afresh and replaces the
    version's old file."""
    version = f"price_catalog.{name}.{effective_from}"  # one file per catalog version
    cached = cache_dir / f"{version}.{digest}.arrow"
    try:
        with pa.OSFile(str(cached), "rb") as source:
            table = pa.ipc.open_file(source).read_all()
        if table.schema.equals(PRICE_SCHEMA):
            return table
    except (OSError, pa.ArrowInvalid):  # not resolved yet, or a damaged file: resolve again
        pass
    table = _catalog_rows(name, catalog, effective_from, digest)
    cache_dir.mkdir(parents=True, exist_ok=True)
    written = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(written), "wb") as sink, pa.ipc.new_file(sink, PRICE_SCHEMA) as writer:
        writer.write_table(table)
    os.replace(written, cached)  # whole or absent: a reader never sees half a file
    for stale in cache_dir.glob(f"{glob.escape(version)}.*.arrow"):
        if stale != cached:
            stale.unlink(missing_ok=True)
    return table
