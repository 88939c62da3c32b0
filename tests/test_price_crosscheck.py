"""Cross-check (issue 11): the pipeline prices random requests over the whole current LiteLLM catalog
as LiteLLM's own cost calculator does, to 1e-9 USD per request.

The independent side is the `litellm` package (a dev dependency, the release that shipped this
catalog). Both sides price with the catalog completed by the dated rules file
(`pipelines/sources/price_rules.yml`: a rule fills only a field the entry lacks), which the test
expands itself. LiteLLM is handed each call's entry as the deployment's price table, the path a
LiteLLM proxy prices deployments with: `cost_per_token(..., requested_model_info_override=entry,
service_tier=...)` for standard, flex and priority calls, `batch_cost_calculator(..., model_info=
entry)` for Batch API calls, and `StandardBuiltInToolCostTracking` (Perplexity: its own calculator's
search charge) for web searches. Handing the entry over matters: LiteLLM's name lookup keeps only
the fields its `ModelInfo` type declares, so it would not see e.g. `*_above_100k_tokens_batches` or
`cache_creation_input_token_cost_above_1hr_batches`. The call's time is LiteLLM's billing time, so
no figure depends on when the test runs. LiteLLM computes in binary floats (~1e-16 relative),
costwatch in exact decimals: 1e-9 USD per call is far above the float noise. Where costwatch
deliberately differs from LiteLLM 1.110 (listed below and in the README), the difference is applied
to LiteLLM's side, so the rest of the call is still compared.

Requests are drawn (seeded) over every catalog entry priced by the token in the chat, completion and
responses modes: prompt sizes in every context tier of the entry and on each threshold, cache
reads, 5-minute and 1-hour cache writes, audio in and out, reasoning tokens, service tiers,
web-search calls. They are written as canonical gateway records, named as gateways log them
(provider and bare model, LiteLLM's `provider/model` string, OTel provider names, LiteLLM's own
`model_map_key` tag), and run through the daily job: ingest, staging, `fct_requests`. Each row's
`price_key` must also be the entry LiteLLM's lookup (`cost_per_token`) finds for the logged name.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import fnmatch
import importlib
import io
import json
import logging
import os
import random
import re
from decimal import Decimal

import dagster as dg
import pytest
import yaml
from conftest import REPO, Project

pytestmark = pytest.mark.slow  # ~4,500 calls priced twice and one daily run; part of `make test` all the same

CATALOG = REPO / "fixtures" / "prices" / "litellm_2026_11.json"
# A Friday: DeepSeek reads its off-peak weekdays in UTC (weekday windows all day), Tencent in
# Asia/Shanghai, where from 16:00 UTC it is Saturday (off-peak all day).
DAY = dt.date(2026, 11, 20)
SEED = 11
TOLERANCE = Decimal("1e-9")
MODES = ("chat", "completion", "responses")

# Providers with a Batch API (LiteLLM has a batch route for them); other providers' calls are
# never batch, so a batch tier is drawn only here or where the entry has `*_batches` prices.
BATCH_API_PROVIDERS = {"openai", "azure", "anthropic", "vertex_ai", "bedrock", "gemini"}
# Providers whose responses report a flex/priority service tier even for a model without tier
# prices (then billed at standard prices): a small share of their calls draw an unpriced tier.
TIER_REPORTING_PROVIDERS = {"openai", "azure", "anthropic", "vertex_ai", "gemini"}
# The OTel GenAI provider names (`gen_ai.provider.name` / `gen_ai.system`) of some LiteLLM providers.
OTEL_PROVIDER_NAMES = {"azure": "azure.ai.openai", "vertex_ai": "gcp.vertex_ai", "bedrock": "aws.bedrock",
                       "gemini": "gcp.gemini"}  # fmt: skip

# No entry is left out. Deliberate differences from LiteLLM 1.110 (README, "Token and price rules"),
# each applied to LiteLLM's side here so the rest of the call is still compared:
# - `input_cost_per_request` is billed once per call (LiteLLM's token calculator never reads it);
# - web searches in a Batch API call are billed as in any other tier (LiteLLM's batch route adds no
#   tool cost): the tool calculator's figure is added to the batch route's;
# - a flex or priority call to an entry with no price of that tier is a standard call (LiteLLM would
#   then price 1-hour cache writes above a context tier at the base tier's 1-hour price).

THRESHOLD_KEY = re.compile(r"_above_(\d+)(k?)_tokens")
RULES = REPO / "pipelines" / "sources" / "price_rules.yml"


def _complete(catalog: dict) -> dict:
    """The catalog with the fields the dated rules file fills where an entry lacks them (its header
    says how: the catalog's own field wins, rules run in order, `{context}`/`{tier}`/`{base}` range
    over the context tiers, service tiers and bases the entry prices). Both sides price with it."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["rules"]
    completed = {}
    for key, raw in catalog.items():
        entry = dict(raw) if isinstance(raw, dict) else raw
        for rule in rules if isinstance(entry, dict) else ():
            provider = entry.get("litellm_provider") or ""
            if rule.get("providers") and not any(fnmatch.fnmatchcase(provider, p) for p in rule["providers"]):
                continue
            if "models" in rule and not re.search(rule["models"], key):
                continue
            if "not_models" in rule and re.search(rule["not_models"], key):
                continue
            if "value" in rule:  # a per-search price: `field.size`
                field, size = rule["fills"].split(".")
                if size not in (entry.get(field) or {}):
                    entry[field] = {**(entry.get(field) or {}), size: rule["value"]}
                continue
            variants = {("", "")} | {
                (context.group(0) if (context := THRESHOLD_KEY.search(field)) else "",
                 next((t for t in ("_batches", "_priority", "_flex") if field.endswith(t)), ""))
                for field in entry
            }  # fmt: skip
            for context, tier in sorted(variants):
                for base in rule.get("bases", [""]):
                    names = {"context": context, "tier": tier, "base": base}
                    source, target = rule["from"].format(**names), rule["fills"].format(**names)
                    if isinstance(entry.get(source), (int, float)) and target not in entry:
                        entry[target] = entry[source] * rule["ratio"]
        completed[key] = entry
    return completed


def _thresholds(entry: dict) -> list[int]:
    """Prompt sizes (tokens) where an entry's price changes: `*_above_<N>k_tokens` fields and the
    lower bounds of a `tiered_pricing` table."""
    found = set()
    for field, value in entry.items():
        match = THRESHOLD_KEY.search(field)
        if match and value is not None:
            found.add(int(match.group(1)) * (1000 if match.group(2) else 1))
    for tier in entry.get("tiered_pricing") or []:
        if isinstance(tier, dict) and tier.get("range"):
            found.add(int(tier["range"][0]))
    found.discard(0)
    return sorted(found)


def _table_top(entry: dict) -> int | None:
    tiers = [tier for tier in entry.get("tiered_pricing") or [] if isinstance(tier, dict) and tier.get("range")]
    return int(max(tier["range"][1] for tier in tiers)) if tiers else None


def _token_priced(entry: object) -> bool:
    """A chat/completion/responses entry with a per-token price (flat or in a tiered table)."""
    if not isinstance(entry, dict) or entry.get("mode") not in MODES:
        return False
    if entry.get("input_cost_per_token") is not None:
        return True
    tiers = entry.get("tiered_pricing")
    return isinstance(tiers, list) and any(isinstance(tier, dict) and "input_cost_per_token" in tier for tier in tiers)


def _prices_tier(entry: dict, tier: str) -> bool:
    suffix = "_batches" if tier == "batch" else f"_{tier}"
    return any(field.endswith(suffix) or f"{suffix}_" in field for field in entry)


class LiteLLM:
    """LiteLLM's own cost calculator with our catalog as its price map (no network)."""

    def __init__(self, catalog: dict):
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before the import: never fetch the price map
        self.litellm = importlib.import_module("litellm")
        logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
        with contextlib.redirect_stdout(io.StringIO()):  # register_model prints a provider hint per key
            self.litellm.register_model(catalog)
        self.types = importlib.import_module("litellm.types.utils")
        calculator = importlib.import_module("litellm.cost_calculator")
        self.cost_per_token, self.batch_cost = calculator.cost_per_token, calculator.batch_cost_calculator
        self.tools = importlib.import_module(
            "litellm.litellm_core_utils.llm_cost_calc.tool_call_cost_tracking"
        ).StandardBuiltInToolCostTracking
        self.pinned_billing_time = importlib.import_module("litellm._internal_context").pinned_billing_time
        self.perplexity_cost = importlib.import_module("litellm.llms.perplexity.cost_calculator").cost_per_token
        self.xai_tool_usage = importlib.import_module(
            "litellm.llms.xai.cost_calculator"
        ).apply_server_side_tool_usage_details_to_usage
        self.providers = set(self.litellm.provider_list)

    def provider(self, key: str, entry: dict) -> str:
        """The provider a gateway routes the entry's calls to (LiteLLM's `custom_llm_provider`)."""
        declared = entry["litellm_provider"]
        if declared in self.providers:
            return declared
        prefix = key.split("/", 1)[0] if "/" in key else None
        if prefix in self.providers:
            return prefix
        return "vertex_ai" if declared.startswith("vertex_ai") else declared

    def key(self, model: str, provider: str) -> str:
        """The catalog entry LiteLLM prices `model` from `provider` with: cost_per_token's lookup
        (`provider/model`, then `model`, then `model` without its first segment), then
        get_model_info, as the provider's calculator calls it."""
        model_cost, prefix = self.litellm.model_cost, f"{provider}/"
        while model.startswith(prefix + prefix):  # a repeated provider segment is dropped first
            model = model[len(prefix) :]
        qualified = model if model.startswith(prefix) else prefix + model
        unprefixed = model.split("/", 1)[1] if "/" in model else model
        name = next((name for name in (qualified, model, unprefixed) if name in model_cost), None)
        if name is not None:
            return name
        with contextlib.redirect_stdout(io.StringIO()):  # its calculator's own lookup, which prefixes the provider
            return self.litellm.get_model_info(model=model, custom_llm_provider=provider)["key"]

    def usage(self, request: dict):
        types = self.types
        written, written_1h = request["cache_creation_input_tokens"], request["cache_creation_1h_input_tokens"]
        searches = request["web_search_requests"]
        return types.Usage(
            prompt_tokens=request["input_tokens"],
            completion_tokens=request["output_tokens"],
            total_tokens=request["input_tokens"] + request["output_tokens"],
            prompt_tokens_details=types.PromptTokensDetailsWrapper(
                cached_tokens=request["cached_input_tokens"],
                cache_creation_tokens=written,
                cache_creation_token_details=types.CacheCreationTokenDetails(
                    ephemeral_5m_input_tokens=written - written_1h, ephemeral_1h_input_tokens=written_1h
                ) if written else None,
                audio_tokens=request["audio_input_tokens"],
                web_search_requests=searches or None,  # where Gemini/Vertex report searches
            ),
            completion_tokens_details=types.CompletionTokensDetailsWrapper(
                reasoning_tokens=request["reasoning_tokens"], audio_tokens=request["audio_output_tokens"]
            ),
            server_tool_use=types.ServerToolUse(web_search_requests=searches) if searches else None,  # the others
        )  # fmt: skip

    def cost(self, request: dict, model: str, provider: str, entry: dict) -> float:
        """USD of one call as LiteLLM prices it (float), plus the deliberate differences above."""
        usage = self.usage(request)
        if provider == "xai" and request["web_search_requests"]:  # where LiteLLM's xAI transformation puts them
            self.xai_tool_usage(usage, {"web_search_calls": request["web_search_requests"]})
        tier = request["service_tier"]
        ts = dt.datetime.fromisoformat(request["ts"].replace("Z", "+00:00"))
        tokens = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
        with (
            self.pinned_billing_time(ts),
            contextlib.redirect_stdout(io.StringIO()),
        ):  # the call's time as LiteLLM's billing time
            if tier == "batch":
                prompt, completion = self.batch_cost(usage=usage, model=model, custom_llm_provider=provider,
                                                     model_info=entry)  # fmt: skip
            else:
                prompt, completion = self.cost_per_token(
                    model=model, custom_llm_provider=provider, usage_object=usage, requested_model_info_override=entry,
                    service_tier=tier if tier != "standard" and _prices_tier(entry, tier) else None, **tokens,
                )  # fmt: skip
            tools = 0.0
            if request["web_search_requests"] and provider == "perplexity":
                # LiteLLM's Perplexity calculator bills the searches inside its token cost (the tool
                # tracker adds 0 for perplexity): its figure for the searches alone.
                searches = self.types.Usage(
                    prompt_tokens=0,
                    completion_tokens=0,
                    total_tokens=0,
                    prompt_tokens_details={"web_search_requests": request["web_search_requests"]},
                )
                tools = sum(self.perplexity_cost(model=model, usage=searches))
            elif request["web_search_requests"]:
                tools = self.tools.get_cost_for_built_in_tools(
                    model=model, response_object=self.types.ModelResponse(model=model), usage=usage,
                    custom_llm_provider=provider,
                )  # fmt: skip
        fee = float(entry.get("input_cost_per_request") or 0.0)
        return prompt + completion + tools + fee


def _draw(rng: random.Random, index: int, key: str, entry: dict, provider: str) -> dict:
    """One call to the entry: its prompt size in one of the entry's context tiers (or on a
    threshold), its cache, audio, reasoning, web search and service tier at random."""
    thresholds = _thresholds(entry)
    ceiling = entry.get("max_input_tokens") if isinstance(entry.get("max_input_tokens"), int) else 0
    ceiling = max(ceiling, 2 * thresholds[-1] if thresholds else 0, 8_000)
    if (table_top := _table_top(entry)) is not None:
        ceiling = min(ceiling, table_top)
    if thresholds and rng.random() < 0.3:
        prompt = rng.choice(thresholds) + rng.choice((0, 1))  # on the boundary and one token past it
    else:
        bounds = [0, *(t for t in thresholds if t < ceiling), ceiling]
        tier = rng.randrange(len(bounds) - 1)
        prompt = rng.randint(bounds[tier] + 1, bounds[tier + 1])
    cached = rng.randint(1, prompt // 2) if prompt > 1 and rng.random() < 0.5 else 0
    written = rng.randint(1, (prompt - cached) // 2) if prompt - cached > 1 and rng.random() < 0.4 else 0
    written_1h = rng.randint(0, written) if written and rng.random() < 0.5 else 0
    has_audio = "input_cost_per_audio_token" in entry or "output_cost_per_audio_token" in entry
    audio_in = rng.randint(1, prompt - cached - written) if prompt - cached - written > 0 and rng.random() < (
        0.6 if has_audio else 0.05) else 0  # fmt: skip
    output = rng.randint(0, 30_000)
    reasoning = rng.randint(1, output) if output and rng.random() < 0.4 else 0
    audio_out = rng.randint(1, output - reasoning) if output - reasoning > 0 and rng.random() < (
        0.6 if has_audio else 0.05) else 0  # fmt: skip
    searches = rng.randint(1, 3) if rng.random() < (0.5 if "search_context_cost_per_query" in entry else 0.05) else 0
    tiers = ["standard"]
    if provider in BATCH_API_PROVIDERS or _prices_tier(entry, "batch"):
        tiers.append("batch")
    tiers += [tier for tier in ("flex", "priority") if _prices_tier(entry, tier)]
    if provider in TIER_REPORTING_PROVIDERS and rng.random() < 0.1:
        tiers = ["flex", "priority"]
    ts = dt.datetime.combine(DAY, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60)))
    return {
        "request_id": f"x{index:05d}",
        "ts": ts.isoformat() + "Z",
        "feature": "crosscheck",
        "user_id": f"u{index % 17}",
        "status": "ok",
        "input_tokens": prompt,
        "cached_input_tokens": cached,
        "cache_creation_input_tokens": written,
        "cache_creation_1h_input_tokens": written_1h,
        "audio_input_tokens": audio_in,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
        "audio_output_tokens": audio_out,
        "web_search_requests": searches,
        "service_tier": rng.choice(tiers),
    }


def _name(rng: random.Random, key: str, provider: str) -> tuple[dict, str]:
    """How a gateway logs a call to the entry: (the record's provider and model, the model name
    LiteLLM is handed)."""
    bare = key[len(provider) + 1 :] if key.startswith(f"{provider}/") else key
    form = rng.random()
    if form < 0.15 and bare != key:  # LiteLLM's own `provider/model` string
        return {"provider": provider, "model": key}, key
    if form < 0.3 and provider in OTEL_PROVIDER_NAMES:
        return {"provider": OTEL_PROVIDER_NAMES[provider], "model": bare}, bare
    return {"provider": provider, "model": bare}, bare


def _calls(raw: dict, catalog: dict, litellm: LiteLLM) -> list[dict]:
    """The seeded draw over the catalog as published (`raw`): one call per entry, a second one on
    entries with context or service tiers (so every tier boundary is met more than once), each with
    LiteLLM's key and its cost from the completed `catalog`."""
    rng = random.Random(SEED)
    calls = []
    for key in sorted(raw):
        entry = raw[key]
        if not _token_priced(entry):
            continue
        provider = litellm.provider(key, entry)
        rounds = 2 if _thresholds(entry) or any(_prices_tier(entry, t) for t in ("batch", "flex", "priority")) else 1
        if "off_peak_pricing" in entry:  # calls at random times of the day fall on both sides of its windows
            rounds = 6
        for _ in range(rounds):
            naming, litellm_model = _name(rng, key, provider)
            request = _draw(rng, len(calls), key, entry, provider) | naming
            litellm_key = litellm.key(litellm_model, provider)
            if rng.random() < 0.1:  # a LiteLLM spend-log row carries the key LiteLLM priced with
                request["tags"] = {"model_map_key": litellm_key}
            calls.append(
                {
                    "drawn_key": key,
                    "record": request,
                    "litellm_key": litellm_key,
                    "litellm_usd": litellm.cost(request, litellm_model, provider, catalog[litellm_key]),
                }
            )
    return calls


@pytest.fixture(scope="module")
def crosscheck(tmp_path_factory):
    """The calls, LiteLLM's figure for each, and fct_requests' row for each (one daily run)."""
    raw = json.loads(CATALOG.read_text(encoding="utf-8"))
    catalog = _complete(raw)
    litellm = LiteLLM(catalog)
    calls = _calls(raw, catalog, litellm)
    root = tmp_path_factory.mktemp("crosscheck")
    (root / "inputs").mkdir()
    (root / "dagster_home").mkdir()
    settings = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8"))
    with dg.instance_for_test(temp_dir=str(root / "dagster_home"), overrides=settings) as instance:
        project = Project(root=root, instance=instance)
        project.write_config(prices={"catalog": str(CATALOG), "effective_from": "2026-11-01"})
        project.write_jsonl("calls.jsonl", [call["record"] for call in calls])
        project.run_day(DAY.isoformat())
        rows = {row["request_id"]: row for row in project.query_dicts("select * from fct_requests")}
    yield {"catalog": raw, "calls": calls, "rows": rows}


def _class(call: dict, row: dict | None) -> str:
    """What kind of call disagrees: provider, service tier and the usage it has."""
    record = call["record"]
    parts = [call["litellm_key"].split("/")[0] if "/" in call["litellm_key"] else "-", record["service_tier"]]
    parts += [name for name, field in (("read", "cached_input_tokens"), ("write", "cache_creation_input_tokens"),
              ("write1h", "cache_creation_1h_input_tokens"), ("audio_in", "audio_input_tokens"),
              ("audio_out", "audio_output_tokens"), ("reasoning", "reasoning_tokens"),
              ("search", "web_search_requests")) if record[field]]  # fmt: skip
    return " ".join(parts) if row is not None else "missing row"


def test_the_draw_covers_the_whole_catalog_and_every_rule(crosscheck):
    catalog, calls = crosscheck["catalog"], crosscheck["calls"]
    eligible = {key for key, entry in catalog.items() if _token_priced(entry)}
    assert len(eligible) > 3_500
    assert {call["drawn_key"] for call in calls} == eligible
    assert len(calls) >= 1_000
    records = [call["record"] for call in calls]
    crossed = sum(
        1 for call in calls
        if any(call["record"]["input_tokens"] > t for t in _thresholds(catalog[call["litellm_key"]]))
    )  # fmt: skip
    on_threshold = sum(
        1 for call in calls if call["record"]["input_tokens"] in _thresholds(catalog[call["litellm_key"]])
    )
    tiers = collections.Counter(record["service_tier"] for record in records)
    used = {field: sum(1 for record in records if record[field]) for field in (
        "cached_input_tokens", "cache_creation_input_tokens", "cache_creation_1h_input_tokens", "audio_input_tokens",
        "audio_output_tokens", "reasoning_tokens", "web_search_requests")}  # fmt: skip
    assert crossed > 300 and on_threshold > 50, (crossed, on_threshold)
    assert min(tiers.values()) > 100 and set(tiers) == {"standard", "batch", "flex", "priority"}, tiers
    assert min(used.values()) > 200, used
    assert sum(1 for record in records if record["provider"] in OTEL_PROVIDER_NAMES.values()) > 50
    is_off_peak = importlib.import_module("litellm.litellm_core_utils.llm_cost_calc.utils")._is_off_peak
    off_peak = [
        is_off_peak(catalog[call["litellm_key"]]["off_peak_pricing"], dt.datetime.fromisoformat(call["record"]["ts"]))
        for call in calls
        if "off_peak_pricing" in catalog[call["litellm_key"]]
    ]
    assert sum(off_peak) > 10 and len(off_peak) - sum(off_peak) > 10, off_peak  # both sides of the windows
    assert sum(1 for record in records if "model_map_key" in (record.get("tags") or {})) > 200


def test_every_call_costs_what_litellm_prices_it_at(crosscheck):
    calls, rows = crosscheck["calls"], crosscheck["rows"]
    mismatches: dict[str, list[str]] = collections.defaultdict(list)
    largest = Decimal(0)
    for call in calls:
        record, row = call["record"], rows.get(call["record"]["request_id"])
        expected = Decimal(repr(call["litellm_usd"]))
        ours = None if row is None else row["cost_usd"]
        difference = None if ours is None else abs(ours - expected)
        if difference is not None and difference <= TOLERANCE:
            largest = max(largest, difference)
            continue
        mismatches[_class(call, row)].append(
            f"{record['request_id']} {record['provider']}/{record['model']} key={call['litellm_key']} "
            f"tier={record['service_tier']} P={record['input_tokens']} ours={ours} litellm={expected}"
        )
    report = "\n".join(f"{cls} ({len(found)}): {found[0]}" for cls, found in sorted(mismatches.items()))
    assert not mismatches, f"{sum(map(len, mismatches.values()))} of {len(calls)} calls disagree:\n{report}"
    print(f"\n{len(calls)} calls agree with LiteLLM; largest difference {largest} USD")


def test_each_call_is_priced_from_the_entry_litellm_uses(crosscheck):
    calls, rows = crosscheck["calls"], crosscheck["rows"]
    wrong = [
        (call["record"]["provider"], call["record"]["model"], call["litellm_key"], rows[r]["price_key"])
        for call in calls
        if (r := call["record"]["request_id"]) in rows and rows[r]["price_key"] != call["litellm_key"]
    ]
    assert not wrong, f"{len(wrong)} calls priced from another entry than LiteLLM's, e.g. {wrong[:10]}"
