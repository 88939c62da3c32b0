"""Provider billing exports of the demo generator, checked against the gateway logs.

Every expected number is recomputed here from the raw files: the gzip'd log lines read with
``json`` and priced with ``Decimal`` from the catalog JSON (the catalog field for the call's
service tier and context tier, read here by name), and the exports read with ``json``/``csv``.
The manifest's planted billing events must explain every difference.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from conftest import read_generated_records

from pipelines.demo import generate
from pipelines.demo.traffic import build_day_frame, plan_generation

REPO_ROOT = Path(__file__).resolve().parents[1]
CATALOG = json.loads((REPO_ROOT / "fixtures" / "prices" / "litellm_2026_11.json").read_text())

START = dt.date(2026, 10, 1)
DAYS = 35
REQUESTS_PER_DAY = 1_500
DAY_LIST = [START + dt.timedelta(days=offset) for offset in range(DAYS)]
TOLERANCE = Decimal("0.000001")  # USD
HAIKU = "claude-haiku-4-5-20251001"
OPENAI_KINDS = {"input", "cached input", "output"}
# gpt-6-luna bills a prompt above 272k tokens (its `*_above_272k_tokens` fields) at the
# long-context price, every token of it; the other demo models have no context tier.
LONG_CONTEXT_TOKENS = {"gpt-6-luna": 272_000}
TIER_SUFFIX = {"standard": "", "batch": "_batches", "priority": "_priority"}

OPENAI_COST_KEYS = {"object", "amount", "line_item", "project_id"}
OPENAI_USAGE_KEYS = {
    "object",
    "input_tokens",
    "output_tokens",
    "input_cached_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "num_model_requests",
    "project_id",
    "user_id",
    "api_key_id",
    "model",
    "batch",
    "service_tier",
}
ANTHROPIC_COST_KEYS = {
    "currency",
    "amount",
    "workspace_id",
    "description",
    "cost_type",
    "context_window",
    "model",
    "service_tier",
    "token_type",
}
ANTHROPIC_USAGE_KEYS = {
    "uncached_input_tokens",
    "cache_creation",
    "cache_read_input_tokens",
    "output_tokens",
    "server_tool_use",
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
}
INVOICE_HEADER = ["invoice_id", "provider", "period_start", "period_end", "line_item", "model", "amount", "currency"]


def _price(manifest: dict, model: str, key: str, tier: str = "standard", long_context: bool = False) -> Decimal:
    """The catalog field ``key`` for a call's service tier and context tier (LiteLLM's naming:
    ``<key>[_above_272k_tokens][_batches|_priority]``); the entry must have it."""
    price_key = manifest["models"][model]["price_key"]
    entry = CATALOG[price_key] if price_key else manifest["billing"]["off_catalog_prices"][model]
    above = f"_above_{LONG_CONTEXT_TOKENS[model] // 1000}k_tokens" if long_context else ""
    value = entry[key + above + TIER_SUFFIX[tier]]
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def _record_usd(manifest: dict, record: dict) -> Decimal:
    """One call at the provider's price: text input, cache reads, 5-minute and 1-hour writes,
    audio input, text output (reasoning included) and audio output, each at its own field."""
    model, tier = record["model"], record.get("service_tier", "standard")
    long_context = record["input_tokens"] > LONG_CONTEXT_TOKENS.get(model, 10**12)
    cached, creation = record["cached_input_tokens"], record["cache_creation_input_tokens"]
    one_hour = record.get("cache_creation_1h_input_tokens", 0)
    audio_in, audio_out = record.get("audio_input_tokens", 0), record.get("audio_output_tokens", 0)
    parts = {
        "input_cost_per_token": record["input_tokens"] - cached - creation - audio_in,
        "cache_read_input_token_cost": cached,
        "cache_creation_input_token_cost": creation - one_hour,
        "cache_creation_input_token_cost_above_1hr": one_hour,
        "input_cost_per_audio_token": audio_in,
        "output_cost_per_token": record["output_tokens"] - audio_out,
        "output_cost_per_audio_token": audio_out,
    }
    return sum(
        (tokens * _price(manifest, model, key, tier, long_context) for key, tokens in parts.items() if tokens),
        Decimal(0),
    )


class LogTotals:
    """Billed calls in the logs (status ok, no gateway cache hit, a billing provider), priced."""

    def __init__(self, records: list[dict], manifest: dict):
        self.usd = collections.defaultdict(Decimal)  # (provider, day, model) -> naive log USD
        self.usd_by_tier = collections.defaultdict(Decimal)  # (..., service tier, long context) -> USD
        self.one_hour_writes = collections.Counter()  # (provider, day, model) -> 1-hour write tokens
        self.tokens = collections.defaultdict(collections.Counter)  # (prov, day, team, model)
        self.records_per_provider_day = collections.Counter()
        for record in records:
            day = dt.date.fromisoformat(record["ts"][:10])
            provider, model = record["provider"], record["model"]
            if provider not in ("openai", "anthropic", "azure"):
                continue
            self.records_per_provider_day[(provider, day)] += 1
            if record["status"] != "ok" or record["gateway_cache_hit"]:
                continue
            usd = _record_usd(manifest, record)
            self.usd[(provider, day, model)] += usd
            tier = record.get("service_tier", "standard")
            long_context = record["input_tokens"] > LONG_CONTEXT_TOKENS.get(model, 10**12)
            self.usd_by_tier[(provider, day, model, tier, long_context)] += usd
            self.one_hour_writes[(provider, day, model)] += record.get("cache_creation_1h_input_tokens", 0)
            self.tokens[(provider, day, record["tags"]["team"], model)].update(
                requests=1,
                input=record["input_tokens"],
                cached=record["cached_input_tokens"],
                creation=record["cache_creation_input_tokens"],
                creation_1h=record.get("cache_creation_1h_input_tokens", 0),
                audio_input=record.get("audio_input_tokens", 0),
                output=record["output_tokens"],
                audio_output=record.get("audio_output_tokens", 0),
                **{f"{tier}_requests": 1},
            )

    def cached_of(self, provider: str, day: dt.date, model: str) -> int:
        return sum(
            counts["cached"] for (p, d, _, m), counts in self.tokens.items() if (p, d, m) == (provider, day, model)
        )


def _load(path: Path) -> dict:
    return json.loads(path.read_text(), parse_float=Decimal)


class Exports:
    """The billing exports of one generated folder, summed per provider × day × model."""

    def __init__(self, out_dir: Path, manifest: dict):
        self.usd = collections.defaultdict(Decimal)  # (provider, day, model) -> billed USD
        self.other_items: list[tuple[dt.date, str, dict]] = []  # OpenAI non-token line items
        self.line_items = collections.defaultdict(Decimal)  # OpenAI (day, tier, long, model, kind) -> USD
        self.anthropic_lines = collections.defaultdict(Decimal)  # (day, tier, window, model, type) -> USD
        self.openai_usage: dict[tuple[dt.date, str, str, str], dict] = {}  # + service tier
        # Summed over service tiers (one row per tier) per day x workspace x model.
        self.anthropic_usage: dict[tuple[dt.date, str, str], collections.Counter] = {}
        self.anthropic_tiers = collections.defaultdict(set)
        self.buckets = collections.defaultdict(list)  # file kind -> [(day, results)]
        for entry in manifest["billing"]["files"]:
            path = out_dir / entry["path"]
            if entry["kind"] == "invoice":
                continue
            page = _load(path)
            assert page["has_more"] is False and page["next_page"] is None
            for bucket in page["data"]:
                if entry["provider"] == "openai":
                    assert page["object"] == "page" and bucket["object"] == "bucket"
                    day = dt.datetime.fromtimestamp(bucket["start_time"], dt.timezone.utc)
                    assert day.time() == dt.time(0)
                    assert bucket["end_time"] == bucket["start_time"] + 86_400
                    day = day.date()
                else:
                    day = dt.date.fromisoformat(bucket["starting_at"][:10])
                    assert bucket["starting_at"] == f"{day.isoformat()}T00:00:00Z"
                    assert bucket["ending_at"] == f"{day + dt.timedelta(days=1)}T00:00:00Z"
                self.buckets[entry["kind"]].append((day, bucket["results"]))
                for result in bucket["results"]:
                    getattr(self, f"_read_{entry['kind']}")(day, result)

    def _read_openai_costs(self, day: dt.date, result: dict) -> None:
        assert set(result) - {"quantity"} == OPENAI_COST_KEYS
        assert result["object"] == "organization.costs.result"
        assert result["amount"]["currency"] == "usd"
        value = result["amount"]["value"]
        assert isinstance(value, Decimal) and value == value.quantize(Decimal("1e-10"))
        # `[<tier> | ]<model>[ audio| text], <kind>[, long context]`
        tier, _, rest = result["line_item"].rpartition(" | ")
        assert tier in ("", "batch", "priority"), result["line_item"]
        rest, long_context = rest.removesuffix(", long context"), rest.endswith(", long context")
        model, _, kind = rest.rpartition(", ")
        model = model.removesuffix(" audio").removesuffix(" text")
        if kind in OPENAI_KINDS and not model.startswith("fine-tuning"):
            assert isinstance(result["quantity"], int) and result["quantity"] > 0  # the tokens billed
            self.usd[("openai", day, model)] += value
            self.line_items[(day, tier or "standard", long_context, model, kind)] += value
        else:
            assert "quantity" not in result
            self.other_items.append((day, result["line_item"], result))

    def _read_openai_usage(self, day: dt.date, result: dict) -> None:
        assert set(result) == OPENAI_USAGE_KEYS
        assert result["object"] == "organization.usage.completions.result"
        assert result["service_tier"] in ("default", "batch", "priority")
        assert result["batch"] is (result["service_tier"] == "batch")
        key = (day, result["project_id"], result["model"], result["service_tier"])
        assert key not in self.openai_usage, "one row per project x model x service tier"
        self.openai_usage[key] = result

    def _read_anthropic_cost_report(self, day: dt.date, result: dict) -> None:
        assert set(result) == ANTHROPIC_COST_KEYS
        assert (result["currency"], result["cost_type"], result["context_window"]) == ("USD", "tokens", "0-200k")
        assert result["service_tier"] in ("standard", "batch")
        assert result["token_type"] in (
            "uncached_input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation.ephemeral_5m_input_tokens",
            "cache_creation.ephemeral_1h_input_tokens",
        )
        assert isinstance(result["amount"], str)
        self.usd[("anthropic", day, result["model"])] += Decimal(result["amount"]) / 100
        key = (day, result["service_tier"], result["context_window"], result["model"], result["token_type"])
        self.anthropic_lines[key] += Decimal(result["amount"]) / 100

    def _read_anthropic_usage_report(self, day: dt.date, result: dict) -> None:
        assert set(result) == ANTHROPIC_USAGE_KEYS
        assert result["server_tool_use"] == {"web_search_requests": 0}
        key = (day, result["workspace_id"], result["model"])
        assert result["service_tier"] in ("standard", "batch")
        self.anthropic_tiers[key].add(result["service_tier"])
        summed = self.anthropic_usage.setdefault(key, collections.Counter())
        summed.update(
            uncached_input_tokens=result["uncached_input_tokens"],
            cache_read_input_tokens=result["cache_read_input_tokens"],
            ephemeral_5m_input_tokens=result["cache_creation"]["ephemeral_5m_input_tokens"],
            ephemeral_1h_input_tokens=result["cache_creation"]["ephemeral_1h_input_tokens"],
            output_tokens=result["output_tokens"],
        )

    def day_total(self, provider: str, day: dt.date) -> Decimal:
        total = sum((usd for (p, d, _), usd in self.usd.items() if (p, d) == (provider, day)), Decimal(0))
        if provider == "openai":
            total += sum((result["amount"]["value"] for d, _, result in self.other_items if d == day), Decimal(0))
        return total


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("billing")
    manifest = generate(out_dir, start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    records = read_generated_records(out_dir, manifest)
    logs = LogTotals(records, manifest)
    logs.request_ids = {record["request_id"]: record for record in records}
    return out_dir, manifest, logs, Exports(out_dir, manifest)


def _events(manifest: dict) -> dict[str, dict]:
    events = {event["kind"]: event for event in manifest["billing_events"]}
    assert len(events) == len(manifest["billing_events"])
    return events


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_files_written_and_shapes(generated):
    out_dir, manifest, _, exports = generated
    on_disk = sorted(
        f"{folder}/{path.name}"
        for folder in ("openai", "anthropic", "invoices")
        for path in (out_dir / folder).iterdir()
    )
    assert on_disk == sorted(entry["path"] for entry in manifest["billing"]["files"])
    assert on_disk == sorted(
        [
            "openai/costs_2026-10.json",
            "openai/costs_2026-11.json",
            "openai/usage_2026-10.json",
            "openai/usage_2026-11.json",
            "anthropic/cost_report_2026-10.json",
            "anthropic/cost_report_2026-11.json",
            "anthropic/usage_report_2026-10.json",
            "anthropic/usage_report_2026-11.json",
            # October is complete; 1-4 November is not, so it has no invoice yet.
            "invoices/invoice_2026-10.csv",
        ]
    )
    for kind, buckets in exports.buckets.items():
        assert [day for day, _ in buckets] == DAY_LIST, f"{kind}: one bucket per day, in order"
    for entry in manifest["billing"]["files"]:
        if entry["kind"] != "invoice":
            assert entry["rows"] == sum(
                len(results)
                for day, results in exports.buckets[entry["kind"]]
                if day.strftime("%Y-%m") == entry["month"]
            )


def test_event_days_and_kinds(generated):
    _, manifest, _, _ = generated
    events = _events(manifest)
    assert set(events) == {
        "lost_logs",
        "unannounced_price_change",
        "billed_without_logs",
        "cached_tokens_double_counted",
    }
    creep_starts = {_day(event["start_day"]) for event in manifest["events"]}
    for kind in ("lost_logs", "unannounced_price_change", "billed_without_logs"):
        assert _day(events[kind]["start_day"]) not in creep_starts
        assert _day(events[kind]["start_day"]) >= START + dt.timedelta(days=14)
    assert events["lost_logs"]["start_day"] == events["lost_logs"]["end_day"]
    assert events["billed_without_logs"]["start_day"] == events["billed_without_logs"]["end_day"]
    assert events["unannounced_price_change"]["end_day"] == DAY_LIST[-1].isoformat()
    assert events["unannounced_price_change"]["factor"] == 1.25
    double = events["cached_tokens_double_counted"]
    assert (double["start_day"], double["end_day"]) == (START.isoformat(), DAY_LIST[-1].isoformat())


def _expected_bill(manifest, logs, provider, day, model) -> Decimal:
    """What the provider should bill, from the logs plus the manifest's planted effects."""
    events = _events(manifest)
    expected = logs.usd.get((provider, day, model), Decimal(0))
    if model == HAIKU:
        # The logs count the cache reads twice, so pricing them naively overstates by
        # cached x input price; the manifest says by how much.
        overestimate = logs.cached_of(provider, day, model) * _price(manifest, model, "input_cost_per_token")
        by_day = events["cached_tokens_double_counted"]["effect"]["by_day"][day.isoformat()]
        assert abs(Decimal(by_day["overestimate_usd"]) - overestimate) <= TOLERANCE
        expected -= overestimate
    lost = events["lost_logs"]
    if provider == lost["provider"] and day == _day(lost["start_day"]):
        expected += Decimal(lost["effect"]["lost_usd_by_model"].get(model, "0"))
    change = events["unannounced_price_change"]
    if model == change["model"] and day >= _day(change["start_day"]):
        expected *= Decimal(repr(change["factor"]))
    return expected


def test_costs_equal_priced_logs_except_planted_events(generated):
    _, manifest, logs, exports = generated
    events = _events(manifest)
    planted_days = {_day(events[kind]["start_day"]) for kind in ("lost_logs", "billed_without_logs")}
    price_change = events["unannounced_price_change"]
    # Azure bills on the monthly invoice only (test_invoice_sums_daily_costs).
    keys = set(exports.usd) | {key for key in logs.usd if key[0] != "azure"}
    assert {model for _, _, model in keys} == {
        "gpt-4o-2024-08-06",
        "gpt-4o-mini",
        "gpt-4.1-mini",
        "gpt-audio-mini",
        "gpt-6-luna",
        "gpt-experimental-preview",
        "claude-sonnet-4-5-20250929",
        HAIKU,
    }
    clean_comparisons = 0
    for provider, day, model in sorted(keys):
        billed = exports.usd.get((provider, day, model), Decimal(0))
        expected = _expected_bill(manifest, logs, provider, day, model)
        assert abs(billed - expected) <= TOLERANCE, (provider, day, model, billed, expected)
        untouched = (
            day not in planted_days
            and model != HAIKU
            and not (model == price_change["model"] and day >= _day(price_change["start_day"]))
        )
        if untouched:  # no planted event: the bill is the logs priced at catalog
            assert abs(billed - logs.usd[(provider, day, model)]) <= TOLERANCE
            clean_comparisons += 1
    assert clean_comparisons > 4 * DAYS


def test_lost_logs(generated):
    _, manifest, logs, exports = generated
    lost = _events(manifest)["lost_logs"]
    day = _day(lost["start_day"])
    effect = lost["effect"]
    assert manifest["per_day"][day.isoformat()]["lost_records"] == effect["lost_records"] > 0
    assert manifest["totals"]["lost_records"] == effect["lost_records"]
    logged = logs.records_per_provider_day[("anthropic", day)]
    assert 0.25 < effect["lost_records"] / (logged + effect["lost_records"]) < 0.35
    # Lost means never written: no first delivery, no duplicate, in no file.
    truth = build_day_frame(
        plan_generation(start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7), day
    )
    missing = [request_id for request_id in truth["request_id"] if request_id not in logs.request_ids]
    assert len(missing) == effect["lost_records"]
    assert set(truth.filter(truth["request_id"].is_in(missing))["provider"]) == {"anthropic"}
    written_that_day = sum(record["ts"][:10] == day.isoformat() for record in logs.request_ids.values())
    assert written_that_day == manifest["per_day"][day.isoformat()]["records"]
    assert written_that_day == truth.height - effect["lost_records"]
    lost_usd = Decimal(effect["lost_usd"])
    assert lost_usd > 0
    assert lost_usd == sum(Decimal(usd) for usd in effect["lost_usd_by_model"].values())
    # The bill minus the (double-count corrected) logs is exactly the lost money.
    gap = sum(
        (
            exports.usd[("anthropic", day, model)]
            - _expected_bill(manifest, logs, "anthropic", day, model)
            + Decimal(effect["lost_usd_by_model"].get(model, "0"))
            for model in ("claude-sonnet-4-5-20250929", HAIKU)
        ),
        Decimal(0),
    )
    assert abs(gap - lost_usd) <= TOLERANCE
    # The usage report carries the lost calls' tokens too.
    for model, tokens in effect["lost_tokens_by_model"].items():
        usage = [result for (d, _, m), result in exports.anthropic_usage.items() if (d, m) == (day, model)]
        logged_tokens = collections.Counter()
        for (p, d, _, m), counts in logs.tokens.items():
            if (p, d, m) == ("anthropic", day, model):
                logged_tokens.update(counts)
        assert (
            sum(r["cache_read_input_tokens"] for r in usage) - logged_tokens["cached"] == tokens["cached_input_tokens"]
        )
        assert sum(r["output_tokens"] for r in usage) - logged_tokens["output"] == tokens["output_tokens"]


def test_unannounced_price_change(generated):
    _, manifest, logs, exports = generated
    change = _events(manifest)["unannounced_price_change"]
    start = _day(change["start_day"])
    extra_total = Decimal(0)
    for day in DAY_LIST:
        billed = exports.usd[("openai", day, change["model"])]
        catalog = logs.usd[("openai", day, change["model"])]
        factor = Decimal("1.25") if day >= start else Decimal(1)
        assert abs(billed - catalog * factor) <= TOLERANCE, day
        if day >= start:
            assert abs(Decimal(change["effect"]["extra_usd_by_day"][day.isoformat()]) - (billed - catalog)) <= TOLERANCE
            extra_total += billed - catalog
    assert set(change["effect"]["extra_usd_by_day"]) == {day.isoformat() for day in DAY_LIST if day >= start}
    assert abs(Decimal(change["effect"]["extra_usd"]) - extra_total) <= TOLERANCE
    assert extra_total > 0


def test_billed_without_logs(generated):
    _, manifest, logs, exports = generated
    fee = _events(manifest)["billed_without_logs"]
    assert [(day, line_item) for day, line_item, _ in exports.other_items] == [
        (_day(fee["start_day"]), "fine-tuning training, gpt-4o-mini-2024-07-18")
    ]
    ((_, _, result),) = exports.other_items
    assert result["amount"]["value"] == Decimal("42.00")
    assert result["project_id"] == fee["project_id"]
    assert fee["effect"]["billed_usd"] == "42.0000000000"
    assert not any(model == fee["model"] for _, _, model in logs.usd)


def test_double_counted_cache_reads_are_in_the_logs_only(generated):
    _, manifest, logs, exports = generated
    double = _events(manifest)["cached_tokens_double_counted"]
    assert double["model"] == HAIKU
    total_extra = 0
    for (_provider, day, team, model), counts in logs.tokens.items():
        if model != HAIKU:
            continue
        assert counts["cached"] + counts["creation"] <= counts["input"]
        usage = exports.anthropic_usage[(day, f"wrk_{team}", model)]
        true_input = (
            usage["uncached_input_tokens"]
            + usage["cache_read_input_tokens"]
            + usage["ephemeral_5m_input_tokens"]
            + usage["ephemeral_1h_input_tokens"]
        )
        if day != _day(_events(manifest)["lost_logs"]["start_day"]):
            assert counts["input"] - true_input == counts["cached"]
    for day in DAY_LIST:
        extra = double["effect"]["by_day"][day.isoformat()]["extra_billed_call_input_tokens"]
        assert extra == logs.cached_of("anthropic", day, HAIKU)
        total_extra += extra
    assert total_extra > 0
    assert (
        abs(
            Decimal(double["effect"]["overestimate_usd"])
            - total_extra * _price(manifest, HAIKU, "input_cost_per_token")
        )
        <= TOLERANCE
    )


def test_usage_tokens_equal_the_logs(generated):
    _, manifest, logs, exports = generated
    lost_day = _day(_events(manifest)["lost_logs"]["start_day"])
    openai_keys = {(day, f"proj_{team}", model) for (provider, day, team, model) in logs.tokens if provider == "openai"}
    assert {key[:3] for key in exports.openai_usage} == openai_keys
    usage_tiers = {"default": "standard", "batch": "batch", "priority": "priority"}
    for (provider, day, team, model), counts in logs.tokens.items():
        if provider == "openai":
            rows = [row for key, row in exports.openai_usage.items() if key[:3] == (day, f"proj_{team}", model)]
            total = collections.Counter()
            for row in rows:
                total.update({name: row[name] for name in OPENAI_USAGE_KEYS if name.endswith(("tokens", "requests"))})
                # One row per service tier, with that tier's calls.
                assert row["num_model_requests"] == counts[f"{usage_tiers[row['service_tier']]}_requests"]
            assert total["input_tokens"] == counts["input"]  # OpenAI input includes cached and audio
            assert total["input_cached_tokens"] == counts["cached"]
            assert total["input_audio_tokens"] == counts["audio_input"]
            assert total["output_tokens"] == counts["output"]
            assert total["output_audio_tokens"] == counts["audio_output"]
            assert total["num_model_requests"] == counts["requests"]
        elif provider == "anthropic" and day != lost_day:
            usage = exports.anthropic_usage[(day, f"wrk_{team}", model)]
            double = counts["cached"] if model == HAIKU else 0
            # Anthropic's uncached input excludes cache reads and writes.
            assert usage["uncached_input_tokens"] == (counts["input"] - double - counts["cached"] - counts["creation"])
            assert usage["cache_read_input_tokens"] == counts["cached"]
            assert usage["ephemeral_5m_input_tokens"] == counts["creation"] - counts["creation_1h"]
            assert usage["ephemeral_1h_input_tokens"] == counts["creation_1h"]
            assert usage["output_tokens"] == counts["output"]
            assert exports.anthropic_tiers[(day, f"wrk_{team}", model)] == {
                tier for tier in ("standard", "batch") if counts[f"{tier}_requests"]
            }
    assert any(key[3] == "batch" for key in exports.openai_usage)
    assert any(key[3] == "priority" for key in exports.openai_usage)


def test_invoice_sums_daily_costs(generated):
    out_dir, manifest, logs, exports = generated
    with open(out_dir / "invoices" / "invoice_2026-10.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == INVOICE_HEADER
    invoice = [dict(zip(INVOICE_HEADER, row, strict=True)) for row in rows[1:]]
    october = [day for day in DAY_LIST if day.month == 10]
    expected: dict[tuple[str, str], Decimal] = collections.defaultdict(Decimal)
    for (provider, day, model), usd in exports.usd.items():
        if day.month == 10:
            expected[(provider, f"{model} usage")] += usd
    # Azure has no daily export: its invoice line is its calls priced at Azure's catalog entry.
    for (provider, day, model), usd in logs.usd.items():
        if provider == "azure" and day.month == 10:
            expected[(provider, f"{model} usage")] += usd
    assert ("azure", "eu/gpt-4o-2024-08-06 usage") in expected
    for day, line_item, result in exports.other_items:
        if day.month == 10:
            expected[("openai", line_item)] += result["amount"]["value"]
    assert {(row["provider"], row["line_item"]) for row in invoice} == set(expected)
    for row in invoice:
        assert row["invoice_id"] == f"INV-{row['provider']}-2026-10"
        assert (row["period_start"], row["period_end"]) == ("2026-10-01", "2026-10-31")
        assert row["currency"] == "USD"
        exact = expected[(row["provider"], row["line_item"])]
        cents = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if row["provider"] == "azure":  # the generator rounds each day's lines to 1e-10 first
            assert abs(Decimal(row["amount"]) - exact) <= Decimal("0.005") + TOLERANCE
        else:
            assert row["amount"] == str(cents)
        if row["line_item"].endswith(" usage"):
            assert row["line_item"] == f"{row['model']} usage"
    fee = [row for row in invoice if row["line_item"].startswith("fine-tuning")]
    # Not token usage of a model, so no model: readers take a row with a model as token charges.
    assert [(row["amount"], row["model"]) for row in fee] == [("42.00", "")]
    totals = manifest["billing"]["invoices"]["2026-10"]["totals_usd"]
    for provider in ("openai", "anthropic", "azure"):
        assert Decimal(totals[provider]) == sum(
            Decimal(row["amount"]) for row in invoice if row["provider"] == provider
        )
        # Rounding each line to cents moves the total by at most half a cent per line.
        if provider == "azure":
            continue
        lines = sum(row["provider"] == provider for row in invoice)
        exact = sum((exports.day_total(provider, day) for day in october), Decimal(0))
        assert abs(Decimal(totals[provider]) - exact) <= Decimal("0.005") * lines
    assert set(manifest["billing"]["invoices"]) == {"2026-10"}


def test_manifest_daily_and_monthly_totals(generated):
    _, manifest, logs, exports = generated
    billing = manifest["billing"]
    assert set(billing["daily_usd"]) == {"openai", "anthropic"}  # Azure has no daily export
    for month in ("2026-10", "2026-11"):
        azure = sum((usd for (p, d, _), usd in logs.usd.items() if p == "azure" and d.strftime("%Y-%m") == month), 0)
        assert abs(Decimal(billing["monthly_usd"]["azure"][month]) - azure) <= TOLERANCE
    for provider in ("openai", "anthropic"):
        assert list(billing["daily_usd"][provider]) == [day.isoformat() for day in DAY_LIST]
        for day in DAY_LIST:
            assert Decimal(billing["daily_usd"][provider][day.isoformat()]) == exports.day_total(provider, day)
        for month in ("2026-10", "2026-11"):
            assert Decimal(billing["monthly_usd"][provider][month]) == sum(
                (exports.day_total(provider, day) for day in DAY_LIST if day.strftime("%Y-%m") == month), Decimal(0)
            )


def test_same_arguments_same_bytes(generated, tmp_path):
    out_dir, manifest, _, _ = generated
    again = generate(tmp_path, start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    assert again == manifest
    for path in [entry["path"] for entry in manifest["billing"]["files"]] + ["manifest.json"]:
        assert (out_dir / path).read_bytes() == (tmp_path / path).read_bytes(), path


def test_empty_days_have_empty_results(tmp_path):
    manifest = generate(tmp_path, start_date=dt.date(2026, 12, 28), days=6, requests_per_day=2, seed=3)
    logs = LogTotals(read_generated_records(tmp_path, manifest), manifest)
    exports = Exports(tmp_path, manifest)
    empty = 0
    for kind, buckets in exports.buckets.items():
        provider = "openai" if kind.startswith("openai") else "anthropic"
        assert [day for day, _ in buckets] == [dt.date(2026, 12, 28) + dt.timedelta(days=offset) for offset in range(6)]
        for day, results in buckets:
            billed_calls = sum(
                counts["requests"] for (p, d, _, _), counts in logs.tokens.items() if (p, d) == (provider, day)
            )
            assert (results == []) == (billed_calls == 0), (kind, day)
            empty += results == []
    assert empty > 0, "the tiny range must contain days without spend"
    # Two months touched (December and January), neither complete: no invoice.
    assert not list((tmp_path / "invoices").iterdir())
    assert {entry["month"] for entry in manifest["billing"]["files"]} == {"2026-12", "2027-01"}


def test_short_range_has_only_the_standing_double_count(tmp_path):
    manifest = generate(tmp_path, start_date=START, days=3, requests_per_day=200, seed=7)
    assert [event["kind"] for event in manifest["billing_events"]] == ["cached_tokens_double_counted"]
    assert manifest["totals"]["lost_records"] == 0
    # Re-running with a shorter range into the same folder leaves only this run's files.
    generate(tmp_path, start_date=START + dt.timedelta(days=40), days=1, requests_per_day=50)
    assert sorted(path.name for path in (tmp_path / "openai").iterdir()) == ["costs_2026-11.json", "usage_2026-11.json"]


@pytest.mark.parametrize("days", range(30, 400, 7))
def test_billing_events_avoid_cost_creep_start_days(days):
    plan = plan_generation(start_date=START, days=days, requests_per_day=100, seed=7)
    creep_starts = {event.start_day for event in plan.events}
    planted = [event.start_day for event in plan.billing_events if event.kind != "cached_tokens_double_counted"]
    assert len(planted) == 3 == len(set(planted))
    assert not creep_starts & set(planted)
    assert all(START < day <= plan.end_date for day in planted)


def test_bill_lines_carry_the_service_tier_and_context_tier_of_their_calls(generated):
    """Each batch, priority and long-context line bills exactly the calls of that tier, at the
    catalog field of that tier: half price for batch, the priority and above-272k fields."""
    _, manifest, logs, exports = generated
    events = _events(manifest)
    lost_day = _day(events["lost_logs"]["start_day"])
    price_change = events["unannounced_price_change"]
    openai_lines = collections.defaultdict(Decimal)
    for (day, tier, long_context, model, _kind), usd in exports.line_items.items():
        openai_lines[("openai", day, model, tier, long_context)] += usd
    anthropic_lines = collections.defaultdict(Decimal)
    for (day, tier, window, model, _kind), usd in exports.anthropic_lines.items():
        anthropic_lines[("anthropic", day, model, tier, window == "200k-1M")] += usd
    checked = collections.Counter()
    for key, usd in logs.usd_by_tier.items():
        provider, day, model, tier, long_context = key
        if provider == "azure" or (provider == "anthropic" and day == lost_day):
            continue
        if model == price_change["model"] and day >= _day(price_change["start_day"]):
            continue
        if model == HAIKU and tier == "standard":  # the double-counted reads (own test)
            continue
        billed = (openai_lines if provider == "openai" else anthropic_lines)[key]
        assert abs(billed - usd) <= TOLERANCE, (key, billed, usd)
        checked[(tier, long_context)] += 1
    assert checked[("batch", False)] > DAYS and checked[("priority", False)] > DAYS
    assert checked[("standard", True)] > DAYS // 2  # long-context days of gpt-6-luna
    # Batch is half the standard price here, read from the catalog's own fields.
    assert _price(manifest, "gpt-4.1-mini", "input_cost_per_token", "batch") * 2 == _price(
        manifest, "gpt-4.1-mini", "input_cost_per_token"
    )
    assert _price(manifest, HAIKU, "output_cost_per_token", "batch") == Decimal("0.0000025")
    assert _price(manifest, "gpt-6-luna", "input_cost_per_token", long_context=True) == Decimal("2e-7")
    assert _price(manifest, "gpt-4.1-mini", "output_cost_per_token", "priority") == Decimal("0.0000028")
    # 1-hour writes: their own Anthropic token type, at the catalog's 1-hour field (6e-6 for Sonnet 4.5).
    sonnet = "claude-sonnet-4-5-20250929"
    for day in DAY_LIST:
        if day == lost_day:
            continue
        one_hour = exports.anthropic_lines[
            (day, "standard", "0-200k", sonnet, "cache_creation.ephemeral_1h_input_tokens")
        ]
        assert one_hour == logs.one_hour_writes[("anthropic", day, sonnet)] * Decimal("0.000006")
        assert one_hour > 0
    # Audio: the speech model's audio and text lines, at the audio and text fields.
    audio_days = {day for (day, _, _, model, _) in exports.line_items if model == "gpt-audio-mini"}
    assert audio_days == set(DAY_LIST)
