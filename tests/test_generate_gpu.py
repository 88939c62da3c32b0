"""GPU billing, telemetry and load test of the demo generator, checked against the gateway logs.

Every expected number is recomputed here in plain Python from the raw files: the gzip'd log
lines read with ``json``, the FOCUS export, GPU-hours CSV and load test read with ``csv``, and
the nvidia-smi logs split by hand. The manifest's ``gpu`` section and ``gpu_events`` must agree.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import math
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import REPO, read_generated_records

from pipelines.demo import generate
from pipelines.demo.traffic import build_day_frame, plan_generation

START = dt.date(2026, 10, 1)
DAYS = 35
REQUESTS_PER_DAY = 1_500
DAY_LIST = [START + dt.timedelta(days=offset) for offset in range(DAYS)]
LLAMA, QWEN = "llama-8b-h100", "qwen-32b-a100"
LLAMA_REPLICAS = [f"{LLAMA}-r{index}" for index in range(4)]
QWEN_REPLICAS = [f"{QWEN}-r{index}" for index in range(2)]
MINUTE_MS, DAY_MS = 60_000, 86_400_000

# The FOCUS 1.0 columns of the public sample export, in its order, then two FOCUS 1.2 columns.
# The real FOCUS 1.0 sample's header (fixtures/focus), in its order.
with (REPO / "fixtures" / "focus" / "focus_sample.csv").open(newline="") as _sample:
    FOCUS_SAMPLE_COLUMNS = next(csv.reader(_sample))
FOCUS_COLUMNS = FOCUS_SAMPLE_COLUMNS + ["SkuPriceDetails", "ServiceSubcategory"]
# As in the sample: these are bare numbers, every other non-NULL field is a quoted string.
FOCUS_BARE_NUMBER_COLUMNS = {
    "BilledCost",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "PricingQuantity",
    "Id",
}
NVIDIA_SMI_HEADER = (
    "timestamp, name, pci.bus_id, utilization.gpu [%], utilization.memory [%], "
    "memory.used [MiB], memory.total [MiB], power.draw [W], clocks.current.sm [MHz]"
)
NVIDIA_SMI_LINE = re.compile(
    r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{3}), NVIDIA H100 80GB HBM3, "
    r"[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.\d, (\d+) %, (\d+) %, (\d+) MiB, (\d+) MiB, "
    r"(\d+\.\d{2}) W, (\d+) MHz$"
)
LOADTEST_COLUMNS = [
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
]
FOCUS_FIELD = re.compile(r'("(?:[^"]|"")*"|[^,]*)(?:,|$)')


def _epoch_ms(moment: dt.datetime) -> int:
    return round(moment.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def _covered_ms_by_minute(intervals: list[tuple[int, int]]) -> dict[int, int]:
    """{epoch minute: ms of it covered by the union of the intervals}, by merging then slicing."""
    covered: dict[int, int] = collections.Counter()
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        minute = start // MINUTE_MS
        while minute * MINUTE_MS < end:
            low, high = max(start, minute * MINUTE_MS), min(end, (minute + 1) * MINUTE_MS)
            covered[minute] += max(0, high - low)
            minute += 1
    return covered


def _read_telemetry(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == NVIDIA_SMI_HEADER and lines[-1] == ""
    samples = []
    for line in lines[1:-1]:
        match = NVIDIA_SMI_LINE.match(line)
        assert match, line
        stamp = dt.datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S.%f")
        samples.append(
            {
                "ms": _epoch_ms(stamp),
                "util": int(match.group(2)),
                "mem_util": int(match.group(3)),
                "mem_used": int(match.group(4)),
                "mem_total": int(match.group(5)),
                "power": float(match.group(6)),
            }
        )
    return samples


class Generated:
    def __init__(self, out_dir: Path, manifest: dict):
        self.out_dir = out_dir
        self.manifest = manifest
        self.records = read_generated_records(out_dir, manifest)
        self.focus_rows: list[dict] = []
        self.focus_raw: list[list[str]] = []
        for path in sorted((out_dir / "gpu_billing").glob("focus_*.csv")):
            text = path.read_text(encoding="utf-8")
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                assert reader.fieldnames == FOCUS_COLUMNS
                for row in reader:
                    row["_file"] = path.name
                    self.focus_rows.append(row)
            for line in text.split("\n")[1:-1]:
                self.focus_raw.append([m.group(1) for m in FOCUS_FIELD.finditer(line)][: len(FOCUS_COLUMNS)])
        self.telemetry = {
            (replica, day): _read_telemetry(out_dir / "gpu_telemetry" / f"nvidia_smi_{replica}_{day.isoformat()}.csv")
            for replica in LLAMA_REPLICAS
            for day in DAY_LIST
        }

    def gpu_focus_rows(self) -> list[dict]:
        return [row for row in self.focus_rows if row["Tags"] != "NULL" and "costwatch-pool" in json.loads(row["Tags"])]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Generated:
    out_dir = tmp_path_factory.mktemp("generated_gpu")
    manifest = generate(out_dir, start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    return Generated(out_dir, manifest)


def test_focus_export_bills_every_replica_hour(generated):
    rows = generated.gpu_focus_rows()
    assert len(rows) == 24 * DAYS * 4
    seen = set()
    resource_of_replica: dict[str, set[str]] = collections.defaultdict(set)
    daily_usd: dict[str, Decimal] = collections.defaultdict(Decimal)
    daily_gpu_hours: dict[str, Decimal] = collections.defaultdict(Decimal)
    for row in rows:
        tags = json.loads(row["Tags"])
        assert tags["costwatch-pool"] == LLAMA and tags["costwatch-replica"] in LLAMA_REPLICAS
        details = json.loads(row["SkuPriceDetails"])
        assert details == {"InstanceType": "a3-highgpu-1g", "GpuCount": 1}
        start = dt.datetime.strptime(row["ChargePeriodStart"], "%Y-%m-%d %H:%M:%S")
        end = dt.datetime.strptime(row["ChargePeriodEnd"], "%Y-%m-%d %H:%M:%S")
        assert end - start == dt.timedelta(hours=1) and start.minute == 0
        assert row["_file"] == f"focus_{start:%Y-%m}.csv"
        assert row["BillingPeriodStart"] == f"{start:%Y-%m}-01 00:00:00"
        assert (
            row["ProviderName"],
            row["ServiceName"],
            row["ServiceCategory"],
            row["ChargeCategory"],
            row["ResourceType"],
            row["RegionId"],
            row["BillingCurrency"],
            row["ConsumedUnit"],
            row["PricingUnit"],
        ) == ("Google Cloud", "Compute Engine", "Compute", "Usage", "instance", "us-central1", "USD", "Hours", "Hours")
        assert "NVIDIA H100 80GB" in row["ChargeDescription"]
        assert Decimal(row["ConsumedQuantity"]) == Decimal(row["PricingQuantity"]) == 1
        cost = Decimal(row["BilledCost"])
        assert (
            cost
            == Decimal(row["EffectiveCost"])
            == Decimal(row["ListCost"])
            == Decimal(row["ListUnitPrice"]) * Decimal(row["PricingQuantity"])
            == Decimal("11.06")
        )
        key = (start, tags["costwatch-replica"])
        assert key not in seen
        seen.add(key)
        resource_of_replica[tags["costwatch-replica"]].add(row["ResourceId"])
        daily_usd[start.date().isoformat()] += cost
        daily_gpu_hours[start.date().isoformat()] += Decimal(row["ConsumedQuantity"]) * details["GpuCount"]
    # Every hour of every day, for every replica, once; one stable instance per replica.
    assert {start.date() for start, _ in seen} == set(DAY_LIST)
    assert all(len(ids) == 1 for ids in resource_of_replica.values())
    assert len({next(iter(ids)) for ids in resource_of_replica.values()}) == 4
    daily = generated.manifest["gpu"]["daily"][LLAMA]
    for day in DAY_LIST:
        assert daily_usd[day.isoformat()] == Decimal("1061.76") == Decimal(daily[day.isoformat()]["billed_usd"])
        assert daily_gpu_hours[day.isoformat()] == 96 == Decimal(daily[day.isoformat()]["billed_gpu_hours"])


def test_focus_export_quoting_and_non_gpu_rows(generated):
    for fields in generated.focus_raw:
        assert len(fields) == len(FOCUS_COLUMNS)
        for column, field in zip(FOCUS_COLUMNS, fields, strict=True):
            if field == "NULL":
                continue
            if column in FOCUS_BARE_NUMBER_COLUMNS:
                assert re.fullmatch(r"\d+(\.\d+)?", field), (column, field)
            else:
                assert field.startswith('"') and field.endswith('"'), (column, field)
    gpu_ids = {row["Id"] for row in generated.gpu_focus_rows()}
    others = [row for row in generated.focus_rows if row["Id"] not in gpu_ids]
    months = sorted({row["_file"] for row in generated.focus_rows})
    assert months == ["focus_2026-10.csv", "focus_2026-11.csv"]
    assert collections.Counter(row["_file"] for row in others) == {month: 2 for month in months}
    for row in others:
        assert row["ServiceCategory"] != "Compute"
        tags = {} if row["Tags"] == "NULL" else json.loads(row["Tags"])
        assert "costwatch-pool" not in tags
        assert row["SkuPriceDetails"] == "NULL" or "GpuCount" not in json.loads(row["SkuPriceDetails"])
    assert sorted((int(row["Id"]), Decimal(row["BilledCost"])) for row in others) == sorted(
        (entry["Id"], Decimal(entry["BilledCost"])) for entry in generated.manifest["gpu"]["focus_non_gpu_rows"]
    )
    assert len({row["Id"] for row in generated.focus_rows}) == len(generated.focus_rows)


def test_gpu_hours_csv(generated):
    rows = []
    for path in sorted((generated.out_dir / "gpu_billing").glob("gpu_hours_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["day", "pool", "replica_id", "gpu_type", "gpu_count", "hours", "usd"]
            rows += list(reader)
    by_day = collections.defaultdict(list)
    for row in rows:
        assert (row["pool"], row["gpu_type"], row["gpu_count"], row["hours"]) == (QWEN, "A100", "2", "24")
        assert row["usd"] == str(24 * 2 * Decimal("1.29")) == "61.92"
        by_day[row["day"]].append(row["replica_id"])
    assert set(by_day) == {day.isoformat() for day in DAY_LIST}
    daily = generated.manifest["gpu"]["daily"][QWEN]
    for day, replicas in by_day.items():
        assert sorted(replicas) == QWEN_REPLICAS
        usd = sum(Decimal(row["usd"]) for row in rows if row["day"] == day)
        gpu_hours = sum(Decimal(row["hours"]) * int(row["gpu_count"]) for row in rows if row["day"] == day)
        assert (
            (usd, gpu_hours)
            == (Decimal(daily[day]["billed_usd"]), Decimal(daily[day]["billed_gpu_hours"]))
            == (Decimal("123.84"), 96)
        )


def test_telemetry_follows_each_replicas_logged_calls(generated):
    intervals = collections.defaultdict(list)
    for record in generated.records:
        if record["pool"] == LLAMA and record["replica_id"]:
            start = _epoch_ms(dt.datetime.strptime(record["ts"], "%Y-%m-%dT%H:%M:%S.%fZ"))
            intervals[record["replica_id"]].append((start, start + record["duration_ms"]))
    assert set(intervals) == set(LLAMA_REPLICAS)
    busy_manifest = generated.manifest["gpu"]["busy_minutes"]
    total_logged_ms = total_util = 0
    busy_minutes_checked = 0
    for replica in LLAMA_REPLICAS:
        covered = _covered_ms_by_minute(intervals[replica])
        for day in DAY_LIST:
            samples = generated.telemetry[(replica, day)]
            assert len(samples) == 1_440
            day_start_ms = _epoch_ms(dt.datetime.combine(day, dt.time()))
            for minute, sample in enumerate(samples):
                # One sample every 60 s, stamped inside the minute it describes.
                assert sample["ms"] // MINUTE_MS == day_start_ms // MINUTE_MS + minute
                assert sample["ms"] - samples[0]["ms"] == minute * MINUTE_MS
                assert sample["mem_used"] == samples[0]["mem_used"] > 10_000
                assert sample["mem_total"] == 81_559
                share = 100 * covered.get(sample["ms"] // MINUTE_MS, 0) / MINUTE_MS
                if share == 0:
                    assert sample["util"] <= 2, (replica, sample)
                else:
                    assert abs(sample["util"] - share) <= 2, (replica, sample, share)
                    busy_minutes_checked += 1
                total_util += sample["util"]
            total_logged_ms += sum(
                ms
                for minute, ms in covered.items()
                if day_start_ms // MINUTE_MS <= minute < (day_start_ms + DAY_MS) // MINUTE_MS
            )
            assert (
                Decimal(busy_manifest[replica][day.isoformat()])
                == Decimal(sum(sample["util"] for sample in samples)) / 100
            )
    assert busy_minutes_checked > 1_000
    # Busy time from telemetry agrees with busy time from the logs (plus 1-point blips on ~2%
    # of samples).
    logged_minutes = total_logged_ms / MINUTE_MS
    assert logged_minutes < total_util / 100 < 1.35 * logged_minutes
    daily = generated.manifest["gpu"]["daily"][LLAMA]
    for day in DAY_LIST:
        busy_minutes = sum(Decimal(busy_manifest[replica][day.isoformat()]) for replica in LLAMA_REPLICAS)
        assert abs(Decimal(daily[day.isoformat()]["busy_gpu_hours"]) - busy_minutes / 60) < (Decimal("0.000001"))


def test_idle_weekend_has_no_batch_traffic_but_full_billing(generated):
    manifest = generated.manifest
    event = next(e for e in manifest["gpu_events"] if e["kind"] == "idle_weekend")
    saturday = dt.date.fromisoformat(event["start_day"])
    sunday = dt.date.fromisoformat(event["end_day"])
    assert (saturday.weekday(), sunday - saturday) == (5, dt.timedelta(days=1))
    assert START <= saturday and sunday <= DAY_LIST[-1] and event["pool"] == QWEN
    qwen_per_day = collections.Counter(record["ts"][:10] for record in generated.records if record["pool"] == QWEN)
    assert qwen_per_day[saturday.isoformat()] == qwen_per_day[sunday.isoformat()] == 0
    assert all(qwen_per_day[day.isoformat()] > 50 for day in DAY_LIST if day not in (saturday, sunday))
    # The self-hosted job; the batch-API digest job (doc_digest) runs on provider GPUs as usual.
    assert not any(
        record["tags"].get("job") == "nightly_tagging" and record["ts"][:10] in event["effect"]["days"]
        for record in generated.records
    )
    # Not in the truth either: the job did not run, the logs did not lose it.
    plan = plan_generation(start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    for day in (saturday, sunday):
        truth = build_day_frame(plan, day)
        assert (truth["pool"] == QWEN).sum() == 0
        assert event["effect"]["removed_requests"][day.isoformat()] > 50
    # Billed as usual: both replicas, 24 h, in the GPU-hours CSV.
    rows = []
    for path in (generated.out_dir / "gpu_billing").glob("gpu_hours_*.csv"):
        with open(path, newline="", encoding="utf-8") as handle:
            rows += [row for row in csv.DictReader(handle) if row["day"] in (saturday.isoformat(), sunday.isoformat())]
    assert len(rows) == 4
    billed = sum(Decimal(row["usd"]) for row in rows)
    assert billed == 48 * 2 * 2 * Decimal("1.29") == Decimal(event["effect"]["idle_usd"])
    assert Decimal(event["effect"]["idle_gpu_hours"]) == 192


def test_loadtest_slo_cut(generated):
    with open(generated.out_dir / "loadtest" / f"{LLAMA}.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == LOADTEST_COLUMNS
        rows = list(reader)
    assert [int(row["batch_size"]) for row in rows] == [2**power for power in range(9)]
    assert {(row["gpu"], row["model_shape"]) for row in rows} == {("NVIDIA H100 80GB HBM3", "llama-3.1-8b")}
    latency = [float(row["request_latency_s"]) for row in rows]
    rate = [float(row["requests_per_s"]) for row in rows]
    assert 1.0 < latency[0] < 1.5 and 8.0 < latency[-1] < 10.0
    assert latency == sorted(latency) and rate == sorted(rate)
    for row in rows:
        assert abs(float(row["requests_per_s"]) - int(row["batch_size"]) / float(row["request_latency_s"])) < 0.001
    # Rising then flattening: each doubling of the batch buys less.
    gains = [later / earlier for earlier, later in zip(rate[4:], rate[5:], strict=False)]
    assert gains == sorted(gains, reverse=True) and gains[-1] < 1.25
    within = [row for row in rows if float(row["request_latency_s"]) <= 5]
    cut = max(within, key=lambda row: int(row["batch_size"]))
    loadtest = generated.manifest["gpu"]["loadtest"]
    assert loadtest["latency_slo_s"] == 5
    assert loadtest["slo_batch_size"] == int(cut["batch_size"]) == 64
    assert loadtest["requests_per_s_at_slo"] == cut["requests_per_s"]


def test_over_provisioned_pool(generated):
    manifest = generated.manifest
    event = next(e for e in manifest["gpu_events"] if e["kind"] == "over_provisioned_pool")
    effect = event["effect"]
    per_hour = collections.Counter(
        record["ts"][:13] for record in generated.records if record["pool"] == LLAMA and record["replica_id"]
    )
    peak_requests = max(per_hour.values())
    assert effect["peak_hour_requests"] == peak_requests
    peak_key = f"{effect['peak_day']}T{effect['peak_hour']:02d}"
    assert per_hour[peak_key] == peak_requests
    rate = Fraction(manifest["gpu"]["loadtest"]["requests_per_s_at_slo"])
    assert Fraction(effect["per_replica_rps"]) == rate
    needed = math.ceil(Fraction(peak_requests, 3600) / rate * Fraction(13, 10))
    assert effect["replicas_needed"] == needed <= 2 < effect["billed_replicas"] == 4
    billed_gpu_hours = len(generated.gpu_focus_rows())
    assert Decimal(effect["billed_gpu_hours"]) == billed_gpu_hours == 24 * DAYS * 4
    busy_gpu_hours = Fraction(
        sum(sample["util"] for samples in generated.telemetry.values() for sample in samples), 100 * 60
    )
    assert abs(Fraction(effect["busy_gpu_hours"]) - busy_gpu_hours) < Fraction(1, 10**6)
    assert busy_gpu_hours / billed_gpu_hours < Fraction(1, 10)
    assert Decimal(effect["excess_usd"]) == (4 - needed) * 24 * DAYS * Decimal("11.06")


def test_log_busy_hours_and_peaks_in_manifest(generated):
    """manifest["gpu"]["daily"] per pool and day: served calls, the busiest hour, and busy time
    from one day's logs (the union of the replica's calls started that day, cut at midnight)."""
    served = collections.Counter()
    per_hour = collections.Counter()
    intervals = collections.defaultdict(list)
    for record in generated.records:
        if record["pool"] and record["replica_id"]:
            served[(record["pool"], record["ts"][:10])] += 1
            per_hour[(record["pool"], record["ts"][:10], int(record["ts"][11:13]))] += 1
            start = _epoch_ms(dt.datetime.strptime(record["ts"], "%Y-%m-%dT%H:%M:%S.%fZ"))
            intervals[(record["replica_id"], record["ts"][:10])].append((start, start + record["duration_ms"]))
    for pool, replicas, gpus in ((LLAMA, LLAMA_REPLICAS, 1), (QWEN, QWEN_REPLICAS, 2)):
        for day in DAY_LIST:
            entry = generated.manifest["gpu"]["daily"][pool][day.isoformat()]
            assert entry["served_requests"] == served[(pool, day.isoformat())]
            midnight = _epoch_ms(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
            busy_ms = sum(
                sum(covered.values())
                for covered in (
                    _covered_ms_by_minute(
                        [(start, min(end, midnight)) for start, end in intervals[(replica, day.isoformat())]]
                    )
                    for replica in replicas
                )
            )
            assert abs(Fraction(entry["log_busy_gpu_hours"]) - Fraction(busy_ms * gpus, 3_600_000)) <= Fraction(
                1, 2 * 10**6
            )
            peak = max((per_hour[(pool, day.isoformat(), hour)] for hour in range(24)))
            assert entry["peak_hour_requests"] == peak
            assert per_hour[(pool, day.isoformat(), entry["peak_hour"])] == peak


def test_same_arguments_same_bytes_and_days_do_not_depend_on_the_range(generated, tmp_path):
    again = generate(tmp_path / "again", start_date=START, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=7)
    assert again["gpu"] == generated.manifest["gpu"]
    assert again["gpu_events"] == generated.manifest["gpu_events"]
    for entry in generated.manifest["gpu"]["files"]:
        assert (generated.out_dir / entry["path"]).read_bytes() == (tmp_path / "again" / entry["path"]).read_bytes(), (
            entry["path"]
        )
    # A shorter range from the same start: the same telemetry and FOCUS rows for its days, and
    # no GPU events (they need 30 days).
    short = generate(tmp_path / "short", start_date=START, days=3, requests_per_day=REQUESTS_PER_DAY, seed=7)
    assert short["gpu_events"] == []
    for day in DAY_LIST[:3]:
        for replica in LLAMA_REPLICAS:
            name = f"gpu_telemetry/nvidia_smi_{replica}_{day.isoformat()}.csv"
            assert (tmp_path / "short" / name).read_bytes() == (generated.out_dir / name).read_bytes()
        for pool in (LLAMA, QWEN):
            assert (
                short["gpu"]["daily"][pool][day.isoformat()]
                == (generated.manifest["gpu"]["daily"][pool][day.isoformat()])
            )
    short_lines = (tmp_path / "short" / "gpu_billing" / "focus_2026-10.csv").read_text().splitlines()
    long_lines = set((generated.out_dir / "gpu_billing" / "focus_2026-10.csv").read_text().splitlines())
    assert len(short_lines) == 1 + 3 * 24 * 4 + 2 and set(short_lines) <= long_lines
    # The folders hold exactly this run's files.
    listed = {entry["path"] for entry in short["gpu"]["files"]}
    on_disk = {
        f"{folder}/{path.name}"
        for folder in ("gpu_billing", "gpu_telemetry", "loadtest")
        for path in (tmp_path / "short" / folder).iterdir()
    }
    assert on_disk == listed
    assert len([path for path in listed if path.startswith("gpu_telemetry/")]) == 3 * 4
