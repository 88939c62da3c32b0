"""The demo generator: files read back with plain ``json`` must agree with its manifest.

Every check recomputes its number from the raw gzip'd lines, independently of the generator's
own frames, so a bug in the generator's bookkeeping shows up as a mismatch here.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import re
import statistics
from pathlib import Path

import pytest

from pipelines.demo import generate

REPO_ROOT = Path(__file__).resolve().parents[1]
PRICE_CATALOG = REPO_ROOT / "fixtures" / "prices" / "litellm_2026_11.json"

START = dt.date(2026, 10, 1)
DAYS = 30
REQUESTS_PER_DAY = 2_000

CANONICAL_FIELDS = {
    "request_id",
    "ts",
    "duration_ms",
    "provider",
    "model",
    "feature",
    "user_id",
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
    "cache_creation_1h_input_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "reasoning_tokens",
    "service_tier",
    "gateway_cache_hit",
    "status",
    "pool",
    "replica_id",
    "workload",
    "tags",
}
# Written only when the call has them: a count above 0, a tier other than standard.
OPTIONAL_COUNTS = ("cache_creation_1h_input_tokens", "audio_input_tokens", "audio_output_tokens", "reasoning_tokens")
OPTIONAL_FIELDS = {"feature", "user_id", "service_tier", *OPTIONAL_COUNTS}
TOKEN_FIELDS = ("input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens")
TS_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _parse_ts(text: str) -> dt.datetime | None:
    if not isinstance(text, str) or not TS_PATTERN.match(text):
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def _malformed_kind(line: str) -> tuple[str | None, dict | None]:
    """Classify a raw line the way an ingest would: (kind of defect or None, parsed record)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return ("truncated_json" if line.startswith("{") else "garbage_text"), None
    if "request_id" not in record:
        return "missing_request_id", record
    if any(record[name] < 0 for name in TOKEN_FIELDS):
        return "negative_output_tokens", record
    if record["cached_input_tokens"] > record["input_tokens"]:
        return "cached_exceeds_input", record
    if _parse_ts(record["ts"]) is None:
        return "bad_timestamp", record
    return None, record


class ReadBack:
    """Everything in one generated folder, recomputed from the raw lines."""

    def __init__(self, out_dir: Path, manifest: dict):
        self.manifest = manifest
        self.lines_per_file: dict[str, int] = {}
        self.malformed_per_file: collections.Counter = collections.Counter()
        self.malformed_by_kind: collections.Counter = collections.Counter()
        self.records: dict[str, dict] = {}  # request_id -> first good record
        self.duplicate_lines = 0
        self.duplicates_in_other_file = 0
        self.late_arrivals = 0
        first_line: dict[str, tuple[str, str]] = {}
        for entry in manifest["files"]:
            file_day = dt.date.fromisoformat(entry["day"])
            with gzip.open(out_dir / entry["path"], "rt", encoding="utf-8") as handle:
                lines = handle.read().split("\n")
            assert lines[-1] == "", "every line ends with a newline"
            lines = lines[:-1]
            self.lines_per_file[entry["path"]] = len(lines)
            for line in lines:
                kind, record = _malformed_kind(line)
                if kind:
                    self.malformed_by_kind[kind] += 1
                    self.malformed_per_file[entry["path"]] += 1
                    continue
                request_id = record["request_id"]
                if request_id in self.records:
                    assert first_line[request_id][0] == line, "a duplicate is the identical line"
                    self.duplicate_lines += 1
                    self.duplicates_in_other_file += first_line[request_id][1] != entry["path"]
                    continue
                first_line[request_id] = (line, entry["path"])
                self.records[request_id] = record
                if _parse_ts(record["ts"]).date() < file_day:
                    self.late_arrivals += 1

    def good(self) -> list[dict]:
        return list(self.records.values())


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict, ReadBack]:
    out_dir = tmp_path_factory.mktemp("generated")
    manifest = generate(out_dir, start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    return out_dir, manifest, ReadBack(out_dir, manifest)


def _day(record: dict) -> dt.date:
    return _parse_ts(record["ts"]).date()


def test_manifest_on_disk_matches_return_value(generated):
    out_dir, manifest, _ = generated
    assert json.loads((out_dir / "manifest.json").read_text()) == manifest
    written = sorted(f"gateway/{path.name}" for path in (out_dir / "gateway").iterdir())
    assert written == sorted(entry["path"] for entry in manifest["files"])
    # One file per write day: the range plus the day after for late and replayed lines.
    assert len(manifest["files"]) == DAYS + 1


def test_line_counts_match_manifest(generated):
    _, manifest, read = generated
    totals = manifest["totals"]
    for entry in manifest["files"]:
        assert read.lines_per_file[entry["path"]] == entry["lines"]
        assert read.malformed_per_file[entry["path"]] == entry["malformed_lines"] >= 3
    total_lines = sum(read.lines_per_file.values())
    assert total_lines == totals["lines"]
    assert len(read.records) == totals["records"]
    assert read.duplicate_lines == totals["duplicate_lines"]
    assert sum(read.malformed_by_kind.values()) == totals["malformed_lines"]
    malformed_lines = sum(read.malformed_by_kind.values())
    assert total_lines == len(read.records) + read.duplicate_lines + malformed_lines
    assert dict(read.malformed_by_kind) == {kind: count for kind, count in totals["malformed_by_kind"].items() if count}
    assert set(totals["malformed_by_kind"]) == set(read.malformed_by_kind), "every kind occurs"
    assert read.late_arrivals == totals["late_arrivals"]


def test_per_day_records_follow_ts_not_files(generated):
    _, manifest, read = generated
    records_per_day = collections.Counter(_day(record).isoformat() for record in read.good())
    assert {day: counts["records"] for day, counts in manifest["per_day"].items() if counts["records"]} == dict(
        records_per_day
    )
    # Files do not follow days: some records sit in the next day's file, some duplicates too.
    assert 0.001 < read.late_arrivals / len(read.records) < 0.006
    assert read.duplicates_in_other_file > 0
    assert 0.003 < read.duplicate_lines / len(read.records) < 0.008
    # The lost-logs day's calls are billed but never written; `records` counts written ones.
    lost_days = [day for day, counts in manifest["per_day"].items() if counts["lost_records"]]
    assert len(lost_days) == 1
    assert manifest["totals"]["lost_records"] == manifest["per_day"][lost_days[0]]["lost_records"]


def test_records_follow_the_canonical_contract(generated):
    _, _, read = generated
    good = read.good()
    for record in good:
        assert CANONICAL_FIELDS - OPTIONAL_FIELDS <= set(record) <= CANONICAL_FIELDS
        cache_tokens = record["cached_input_tokens"] + record["cache_creation_input_tokens"]
        assert cache_tokens + record.get("audio_input_tokens", 0) <= record["input_tokens"]
        assert record.get("cache_creation_1h_input_tokens", 0) <= record["cache_creation_input_tokens"]
        assert record.get("audio_output_tokens", 0) + record.get("reasoning_tokens", 0) <= record["output_tokens"]
        assert all(record.get(name, 1) > 0 for name in OPTIONAL_COUNTS), "zero counts are omitted"
        assert record.get("service_tier", "batch") in ("batch", "priority")
        assert record["duration_ms"] >= 0
        assert record["status"] in ("ok", "error")
        assert record["workload"] in ("interactive", "batch")
        assert isinstance(record["gateway_cache_hit"], bool)
        assert isinstance(record["tags"], dict) and "team" in record["tags"]
        if record["status"] == "error":
            assert record["output_tokens"] == 0
    missing_user = sum("user_id" not in record for record in good) / len(good)
    missing_feature = sum("feature" not in record for record in good) / len(good)
    assert 0.02 < missing_user < 0.04
    assert 0.005 < missing_feature < 0.015
    assert 0.005 < sum(record["status"] == "error" for record in good) / len(good) < 0.015
    assert 0.03 < sum(record["gateway_cache_hit"] for record in good) / len(good) < 0.05


def test_provider_cache_conventions(generated):
    _, _, read = generated
    openai = [r for r in read.good() if r["provider"] == "openai"]
    anthropic = [r for r in read.good() if r["provider"] == "anthropic"]
    openai_cached = [r["cached_input_tokens"] for r in openai if r["cached_input_tokens"] > 0]
    assert openai_cached and all(tokens % 128 == 0 and tokens >= 1024 for tokens in openai_cached)
    assert all(r["cache_creation_input_tokens"] == 0 for r in openai)
    # Warm cache: read the prefix and write the new tail; cold cache: write only.
    assert any(r["cached_input_tokens"] > 0 and r["cache_creation_input_tokens"] > 0 for r in anthropic)
    assert any(r["cached_input_tokens"] == 0 and r["cache_creation_input_tokens"] > 0 for r in anthropic)


def test_models_pools_and_price_catalog(generated):
    _, manifest, read = generated
    catalog = json.loads(PRICE_CATALOG.read_text())
    good = read.good()
    rows_by_model = collections.Counter((r["provider"], r["model"]) for r in good)
    # An Azure deployment is priced at Azure's entry, `azure/<logged model>`; every other API
    # model at its own name. The catalog's provider is the logged provider.
    price_keys = {
        model: f"azure/{model}" if provider == "azure" else model
        for provider, model in rows_by_model
        if provider != "self_hosted"
    }
    unpriced = {model for model, key in price_keys.items() if key not in catalog}
    assert unpriced == {"gpt-experimental-preview"}
    assert 0.0005 < rows_by_model[("openai", "gpt-experimental-preview")] / len(good) < 0.005
    for provider, model in (
        ("openai", "gpt-4o-2024-08-06"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "gpt-audio-mini"),
        ("openai", "gpt-6-luna"),
        ("azure", "eu/gpt-4o-2024-08-06"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("anthropic", "claude-haiku-4-5-20251001"),
    ):
        assert (provider, model) in rows_by_model
        assert catalog[price_keys[model]]["litellm_provider"] == provider
    # Azure's EU entry is not OpenAI's: 10% dearer for the same model.
    assert catalog["azure/eu/gpt-4o-2024-08-06"]["input_cost_per_token"] == 2.75e-06
    assert catalog["gpt-4o-2024-08-06"]["input_cost_per_token"] == 2.5e-06
    for name, spec in manifest["models"].items():
        assert spec["in_price_catalog"] == (spec["price_key"] in catalog)
        if spec["provider"] != "self_hosted" and spec["in_price_catalog"]:
            assert spec["price_key"] == price_keys[name]

    pools = manifest["pools"]
    self_hosted = [r for r in good if r["provider"] == "self_hosted"]
    assert {r["model"] for r in self_hosted} == {"llama-3.1-8b-instruct", "qwen2.5-32b-instruct"}
    assert not any(r["model"] in catalog for r in self_hosted)
    for record in self_hosted:
        pool = pools[record["pool"]]
        assert record["model"] == pool["model"]
        if record["gateway_cache_hit"]:
            assert record["replica_id"] is None  # answered by the gateway, no replica ran
        else:
            assert record["replica_id"] in pool["replicas"]
    served = collections.Counter(r["replica_id"] for r in self_hosted if r["replica_id"])
    assert set(served) == {replica for pool in pools.values() for replica in pool["replicas"]}
    assert {r["workload"] for r in self_hosted if r["pool"] == "qwen-32b-a100"} == {"batch"}
    api = [r for r in good if r["provider"] != "self_hosted"]
    assert all(r["pool"] is None and r["replica_id"] is None for r in api)


def test_day_curve_weekends_and_night_batch(generated):
    _, _, read = generated
    good = read.good()
    per_hour = collections.Counter(_parse_ts(r["ts"]).hour for r in good)
    assert per_hour[14] > 1.5 * per_hour[3]
    interactive_per_hour = collections.Counter(_parse_ts(r["ts"]).hour for r in good if r["workload"] == "interactive")
    assert max(interactive_per_hour, key=interactive_per_hour.get) in (13, 14, 15)
    assert interactive_per_hour[14] > 5 * interactive_per_hour[4]

    per_day = collections.Counter(_day(r) for r in good if r["workload"] == "interactive")
    weekday = statistics.mean(n for day, n in per_day.items() if day.weekday() < 5)
    weekend = statistics.mean(n for day, n in per_day.items() if day.weekday() >= 5)
    assert 0.5 < weekend / weekday < 0.7

    batch = [r for r in good if r["workload"] == "batch"]
    # Two nightly jobs: tagging on the self-hosted Qwen pool, digests through the batch APIs.
    assert batch and {r["model"] for r in batch if r["tags"]["job"] == "nightly_tagging"} == {"qwen2.5-32b-instruct"}
    digests = [r for r in batch if r["tags"]["job"] == "nightly_digest"]
    assert {r["model"] for r in digests} == {"gpt-4.1-mini", "claude-haiku-4-5-20251001"}
    # Through the batch APIs, bar the overflow at standard (no service_tier field: the default).
    assert {r.get("service_tier", "standard") for r in digests} == {"batch", "standard"}
    assert 0.15 < len(digests) / len(batch) < 0.3  # 3% vs 12% of a weekday's requests
    assert all(dt.time(0, 30) <= _parse_ts(r["ts"]).time() < dt.time(6, 0) for r in batch)


def test_features_have_distinct_token_profiles(generated):
    _, manifest, read = generated
    # Before any planted event, to see the baseline shapes.
    baseline_end = min(dt.date.fromisoformat(e["start_day"]) for e in manifest["events"])
    by_feature = collections.defaultdict(list)
    for record in read.good():
        if "feature" in record and _day(record) < baseline_end:
            by_feature[record["feature"]].append(record)
    assert set(by_feature) == {
        "chat",
        "search_rag",
        "summarise",
        "code_assist",
        "autocomplete",
        "batch_tagging",
        "voice",
        "contract_review",
        "doc_digest",
    }

    def median(feature: str, field: str) -> float:
        return statistics.median(r[field] for r in by_feature[feature])

    search_inputs = [r["input_tokens"] for r in by_feature["search_rag"]]
    assert min(search_inputs) >= 4_000 and max(search_inputs) <= 12_000
    assert median("search_rag", "output_tokens") < 250
    assert median("summarise", "input_tokens") > 3_000
    assert median("summarise", "output_tokens") > 250
    assert median("batch_tagging", "input_tokens") < 1_000
    assert median("batch_tagging", "output_tokens") < 60

    def cache_read_share(feature: str) -> float:
        rows = by_feature[feature]
        return sum(r["cached_input_tokens"] for r in rows) / sum(r["input_tokens"] for r in rows)

    assert cache_read_share("code_assist") > 0.35
    assert cache_read_share("summarise") < 0.05
    # Conversations re-send their history: a long tail of big prompts, mostly read from cache.
    chat_inputs = sorted(r["input_tokens"] for r in by_feature["chat"])
    assert chat_inputs[int(0.95 * len(chat_inputs))] > 2 * chat_inputs[len(chat_inputs) // 2]
    assert cache_read_share("chat") > 0.4


def test_users_are_heavy_tailed(generated):
    _, _, read = generated
    per_user = collections.Counter(r["user_id"] for r in read.good() if "user_id" in r)
    assert all(re.fullmatch(r"u_\d{5}", user) for user in per_user)
    assert 1_000 < len(per_user) <= 2_000
    counts = sorted(per_user.values(), reverse=True)
    assert sum(counts[:20]) > 0.2 * sum(counts)


def test_planted_events_are_visible_in_raw_data(generated):
    _, manifest, read = generated
    events = {event["kind"]: event for event in manifest["events"]}
    assert set(events) == {"prompt_growth", "user_spike", "cache_collapse"}
    for event in events.values():
        assert dt.date.fromisoformat(event["start_day"]) >= START + dt.timedelta(days=14)
    good = read.good()

    growth = events["prompt_growth"]
    growth_start = dt.date.fromisoformat(growth["start_day"])
    summarise = [r for r in good if r.get("feature") == growth["feature"]]
    before = statistics.mean(r["input_tokens"] for r in summarise if _day(r) < growth_start)
    after = statistics.mean(r["input_tokens"] for r in summarise if _day(r) >= growth_start)
    assert after >= 2.5 * before
    day_before = statistics.mean(r["input_tokens"] for r in summarise if _day(r) == growth_start - dt.timedelta(days=1))
    assert day_before < 1.5 * before, "the growth starts exactly on start_day"

    spike = events["user_spike"]
    spike_days = {dt.date.fromisoformat(spike["start_day"]) + dt.timedelta(days=offset) for offset in range(3)}
    assert dt.date.fromisoformat(spike["end_day"]) == max(spike_days)
    per_day = collections.Counter(_day(r) for r in good if r.get("user_id") == spike["user_id"])
    usual = statistics.median(
        per_day[START + dt.timedelta(days=offset)]
        for offset in range(DAYS)
        if START + dt.timedelta(days=offset) not in spike_days
    )
    assert all(per_day[day] >= 10 * usual for day in spike_days)

    collapse = events["cache_collapse"]
    collapse_start = dt.date.fromisoformat(collapse["start_day"])
    code_assist = [r for r in good if r.get("feature") == collapse["feature"]]

    def read_share(rows: list[dict]) -> float:
        return sum(r["cached_input_tokens"] for r in rows) / sum(r["input_tokens"] for r in rows)

    assert read_share([r for r in code_assist if _day(r) < collapse_start]) > 0.35
    assert read_share([r for r in code_assist if _day(r) >= collapse_start]) < 0.01


def test_same_arguments_same_bytes(generated, tmp_path):
    out_dir, manifest, _ = generated
    again = generate(tmp_path / "again", start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    assert again == manifest
    for relative_path in [entry["path"] for entry in manifest["files"]] + ["manifest.json"]:
        first_run = (out_dir / relative_path).read_bytes()
        assert first_run == (tmp_path / "again" / relative_path).read_bytes(), relative_path

    other_seed = generate(tmp_path / "other", start_date=START, days=2, requests_per_day=REQUESTS_PER_DAY, seed=8)
    first_file = other_seed["files"][0]["path"]
    assert (out_dir / first_file).read_bytes() != (tmp_path / "other" / first_file).read_bytes()


def test_short_range_has_no_events_and_shares_its_days(generated, tmp_path):
    out_dir, manifest, _ = generated
    short = generate(tmp_path, start_date=START, days=3, requests_per_day=REQUESTS_PER_DAY, seed=7)
    assert short["events"] == []
    assert [entry["day"] for entry in short["files"]] == ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
    # A day's data depends on (seed, day), not on how long the range is.
    first_file = short["files"][0]["path"]
    assert (tmp_path / first_file).read_bytes() == (out_dir / first_file).read_bytes()
    assert short["per_day"]["2026-10-02"] == manifest["per_day"]["2026-10-02"]


def test_rerun_into_same_folder_removes_stale_files(tmp_path):
    generate(tmp_path, start_date=START, days=3, requests_per_day=200)
    manifest = generate(tmp_path, start_date=START + dt.timedelta(days=10), days=1, requests_per_day=200)
    on_disk = sorted(path.name for path in (tmp_path / "gateway").iterdir())
    assert on_disk == sorted(Path(entry["path"]).name for entry in manifest["files"])
    gpu_on_disk = sorted(
        f"{folder}/{path.name}"
        for folder in ("gpu_billing", "gpu_telemetry", "loadtest")
        for path in (tmp_path / folder).iterdir()
    )
    assert gpu_on_disk == sorted(entry["path"] for entry in manifest["gpu"]["files"])
    assert len(gpu_on_disk) == 2 + 4 + 1  # FOCUS + GPU-hours for one month, 4 replicas, load test


def test_service_tiers_long_prompts_one_hour_writes_audio_and_azure(generated):
    """The pricing dimensions the bills split by, each where the catalogue puts it and nowhere else."""
    _, _, read = generated
    good = read.good()
    tiers = collections.Counter((r.get("feature"), r["provider"], r.get("service_tier", "standard")) for r in good)
    assert {tier for _, _, tier in tiers} == {"standard", "batch", "priority"}
    assert {(feature, provider) for feature, provider, tier in tiers if tier == "batch"} <= {
        ("doc_digest", "openai"),
        ("doc_digest", "anthropic"),
        (None, "openai"),  # a record whose feature field was omitted
        (None, "anthropic"),
    }
    # doc_digest at batch, but every tenth call at standard (its overflow; at most one in ten of
    # those kept once late and malformed lines are set aside, and not none).
    digest = [r.get("service_tier", "standard") for r in good if r.get("feature") == "doc_digest"]
    assert set(digest) == {"batch", "standard"}
    assert 0.05 < digest.count("standard") / len(digest) < 0.15
    # Priority: half of code_assist's OpenAI calls, nothing else.
    priority = [r for r in good if r.get("service_tier") == "priority"]
    assert {(r.get("feature"), r["provider"]) for r in priority} <= {("code_assist", "openai"), (None, "openai")}
    code_assist_openai = [r for r in good if r.get("feature") == "code_assist" and r["provider"] == "openai"]
    assert 0.4 < sum(r.get("service_tier") == "priority" for r in code_assist_openai) / len(code_assist_openai) < 0.6
    assert not any("service_tier" in r for r in good if r["provider"] == "self_hosted")

    # 1-hour writes: every write of code_assist on Anthropic, no other feature's.
    one_hour = [r for r in good if r.get("cache_creation_1h_input_tokens")]
    assert one_hour and {(r.get("feature"), r["provider"]) for r in one_hour} <= {
        ("code_assist", "anthropic"),
        (None, "anthropic"),
    }
    for r in good:
        if r.get("feature") == "code_assist" and r["provider"] == "anthropic":
            assert r.get("cache_creation_1h_input_tokens", 0) == r["cache_creation_input_tokens"]

    # Audio: the voice feature's speech model, audio inside input and output tokens.
    audio = [r for r in good if r.get("audio_input_tokens")]
    assert audio and {r["model"] for r in audio} == {"gpt-audio-mini"}
    voice_ok = [r for r in good if r["model"] == "gpt-audio-mini" and r["status"] == "ok"]
    assert all(0 < r["audio_output_tokens"] < r["output_tokens"] for r in voice_ok if r["output_tokens"] >= 10)
    assert all(r["cached_input_tokens"] == 0 for r in voice_ok)

    # Long prompts: contract reviews of 150k-420k tokens, about half above gpt-6-luna's 272k tier.
    contracts = [r for r in good if r["model"] == "gpt-6-luna"]
    assert all(150_000 <= r["input_tokens"] < 420_000 and r["cached_input_tokens"] == 0 for r in contracts)
    assert 0.35 < sum(r["input_tokens"] > 272_000 for r in contracts) / len(contracts) < 0.65
    assert all(r.get("reasoning_tokens", 0) <= r["output_tokens"] for r in contracts)
    assert any(r.get("reasoning_tokens") for r in contracts)

    # Azure: the EU data-zone deployment, cached like OpenAI (128-token steps from 1,024).
    azure = [r for r in good if r["provider"] == "azure"]
    assert azure and {r["model"] for r in azure} == {"eu/gpt-4o-2024-08-06"}
    assert {r.get("feature") for r in azure} <= {"search_rag", None}
    cached = [r["cached_input_tokens"] for r in azure if r["cached_input_tokens"]]
    assert cached and all(tokens % 128 == 0 and tokens >= 1024 for tokens in cached)
