"""Self-hosted GPUs: GPU-hours and cost, utilization, unit cost, break-even and the capacity plan,
each on inputs small enough to work on paper."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
from decimal import Decimal as D

import duckdb
import pytest
from conftest import REPO, request

from pipelines.sources.gpu.common import load_instance_types
from pipelines.sources.gpu.day import telemetry_busy_sql
from pipelines.sources.gpu.focus import read_focus
from pipelines.sources.gpu.nvidia_smi import read_nvidia_smi

FOCUS_SAMPLE = REPO / "fixtures" / "focus" / "focus_sample.csv"
BATCHING_CURVE = REPO / "fixtures" / "gpu" / "h200_batching_curve.csv"
DAY = "2026-10-20"


def test_focus_sample_gpu_rows_give_gpu_hours_and_cost(tmp_path):
    """The FOCUS 1.0 sample's GPU rows are AWS g5.4xlarge (1 A10G each, from the instance-type
    table: the sample has no SkuPriceDetails). Totals from the sample's README: 8 rows,
    6.283056 hours, BilledCost 10.203683; EffectiveCost is 11.0, above BilledCost on 5 rows."""
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        load_instance_types(conn)
        stats = read_focus(conn, FOCUS_SAMPLE, {}, "costwatch-pool", "costwatch-replica")
        rows, hours, gpu_hours, billed, instance, gpu_type = conn.execute(
            "select count(*), sum(instance_hours), sum(gpu_hours), sum(billed_usd), any_value(instance_type), "
            "any_value(gpu_type) from billing_lines"
        ).fetchone()
    # An independent sum with the csv module over the same file.
    with FOCUS_SAMPLE.open(newline="") as handle:
        g5 = [row for row in csv.DictReader(handle) if "g5.4xlarge" in (row["ChargeDescription"] or "")]
    assert rows == len(g5) == 8 and stats.gpu_rows == 8 and stats.non_gpu_rows == 992
    assert hours == pytest.approx(sum(float(row["ConsumedQuantity"]) for row in g5)) == pytest.approx(6.283056)
    assert gpu_hours == pytest.approx(hours)  # 1 GPU per g5.4xlarge
    assert billed == sum(D(row["BilledCost"]) for row in g5) == D("10.203682944")
    assert (instance, gpu_type) == ("g5.4xlarge", "A10G")
    assert len(stats.effective_above_billed) == 5


def test_the_focus_data_error_is_reported_by_a_check(project):
    project.write_config(
        start_date="2024-09-01",
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "gpu_billing": [{"path": str(FOCUS_SAMPLE), "format": "focus"}],
        },
    )
    project.write_jsonl("logs.jsonl", [])
    result = project.run_day("2024-09-27")  # the day of the sample's first full g5.4xlarge hour
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["effective_cost_not_above_billed"].passed is False
    (row,) = project.query_dicts("select * from fct_gpu_utilization_daily")
    assert row["pool"] == "untagged" and row["billed_gpu_hours"] == pytest.approx(1.0)
    assert row["gpu_cost_usd"] == D("1.624") and row["utilization"] == 0 and row["idle_cost_usd"] == D("1.624")


def nvidia_smi_log(path, start: dt.datetime, utilizations: list[int]):
    lines = [
        "timestamp, name, pci.bus_id, utilization.gpu [%], utilization.memory [%], memory.used [MiB], "
        "memory.total [MiB], power.draw [W], clocks.current.sm [MHz]"
    ]
    for minute, utilization in enumerate(utilizations):
        stamp = (start + dt.timedelta(minutes=minute)).strftime("%Y/%m/%d %H:%M:%S.000")
        lines.append(
            f"{stamp}, NVIDIA H100 80GB HBM3, 00000000:00:06.0, {utilization} %, 10 %, "
            "16000 MiB, 81559 MiB, 300.00 W, 1980 MHz"
        )
    path.write_text("\n".join(lines) + "\n")


def dcgm_log(path, start: dt.datetime, utilizations: list[int]):
    """DCGM exporter samples as scraped, with timestamps; other metrics interleaved."""
    lines = ["# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).", "# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    for minute, utilization in enumerate(utilizations):
        stamp_ms = int((start + dt.timedelta(minutes=minute)).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
        labels = 'gpu="0",UUID="GPU-1f2e",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-7",pod="r0"'
        lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {utilization} {stamp_ms}")
        lines.append(f"DCGM_FI_DEV_FB_USED{{{labels}}} 16000 {stamp_ms}")
    path.write_text("\n".join(lines) + "\n")


def gpu_project(project, *, telemetry="nvidia_smi", load_test=True, api_equivalent="gpt-4o"):
    """Pool `p` with one 1-GPU replica `r0`, billed 1 hour at $3.00 on DAY (GPU-hours CSV)."""
    billing = project.root / "inputs" / "gpu" / "gpu_hours.csv"
    billing.parent.mkdir(parents=True, exist_ok=True)
    billing.write_text(f"day,pool,replica_id,gpu_type,gpu_count,hours,usd\n{DAY},p,r0,H100,1,1,3.00\n")
    sources = {
        "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
        "gpu_billing": [{"path": "inputs/gpu/gpu_hours.csv", "format": "gpu_hours_csv"}],
    }
    # 60 one-minute samples over the billed hour: 30 at 100 %, 30 at 20 % -> 36 busy minutes.
    samples = (dt.datetime.fromisoformat(f"{DAY}T10:00:00"), [100] * 30 + [20] * 30)
    if telemetry == "nvidia_smi":
        nvidia_smi_log(project.root / "inputs" / "gpu" / f"nvidia_smi_r0_{DAY}.csv", *samples)
        sources["gpu_telemetry"] = [{"path": "inputs/gpu/nvidia_smi_*.csv", "format": "nvidia_smi"}]
    elif telemetry == "dcgm":
        dcgm_log(project.root / "inputs" / "gpu" / "dcgm_scrape.prom", *samples)
        sources["gpu_telemetry"] = [{"path": "inputs/gpu/*.prom", "format": "dcgm"}]
    pool = {"gpu_type": "H100", "latency_slo_s": 5, "headroom": 0.3, "warm_floor": 1, "api_equivalent": api_equivalent}
    if load_test:
        pool["load_test"] = str(BATCHING_CURVE)
    project.write_config(sources=sources, pools={"p": pool})
    # Requests on r0: [10:00, 10:10], [10:05, 10:15], [10:30, 10:40] -> 25 minutes in flight.
    # Each: 800 prompt + 200 output tokens.
    calls = [
        request(
            f"c{index}",
            f"{DAY}T10:{start:02d}:00Z",
            "llama-3.1-8b-instruct",
            provider="self_hosted",
            pool="p",
            replica_id="r0",
            feature=feature,
            duration_ms=10 * 60_000,
            input_tokens=800,
            output_tokens=200,
        )
        for index, (start, feature) in enumerate([(0, "chat"), (5, "chat"), (30, "batch_tagging")])
    ]
    project.write_jsonl("logs.jsonl", calls)
    project.run_day(DAY)


@pytest.mark.parametrize("telemetry", ["nvidia_smi", "dcgm"])
def test_utilization_from_telemetry(project, telemetry):
    gpu_project(project, telemetry=telemetry)
    (row,) = project.query_dicts("select * from fct_gpu_utilization_daily")
    assert row["busy_method"] == "telemetry" and row["telemetry_coverage"] == pytest.approx(1.0)
    assert row["busy_gpu_hours"] == pytest.approx(36 / 60)  # 30 min x 1.0 + 30 min x 0.2
    assert row["utilization"] == pytest.approx(0.6)
    assert (row["gpu_cost_usd"], row["idle_cost_usd"]) == (D("3"), D("1.2"))


def test_utilization_from_request_activity_without_telemetry(project):
    gpu_project(project, telemetry=None)
    (row,) = project.query_dicts("select * from fct_gpu_utilization_daily")
    assert row["busy_method"] == "request_activity"
    assert row["busy_gpu_hours"] == pytest.approx(25 / 60)  # the union of the three requests
    assert float(row["idle_cost_usd"]) == pytest.approx(3 * (1 - 25 / 60), abs=1e-6)  # $1.75


def test_idle_cost_is_allocated_to_features_by_usage(project):
    gpu_project(project)
    rows = {r["feature"]: r for r in project.query_dicts("select * from fct_gpu_cost_by_feature_daily")}
    # chat had 20 of the 30 request-minutes; the idle $1.20 splits 2/3 : 1/3.
    assert rows["chat"]["usage_share"] == pytest.approx(2 / 3)
    assert float(rows["chat"]["idle_cost_usd"]) == pytest.approx(0.8, abs=1e-6)
    assert float(rows["batch_tagging"]["idle_cost_usd"]) == pytest.approx(0.4, abs=1e-6)
    assert sum(r["gpu_cost_usd"] for r in rows.values()) == pytest.approx(D("3"), abs=D("1e-6"))


def test_unit_cost_includes_idle_time(project):
    gpu_project(project)
    (row,) = project.query_dicts("select * from fct_selfhost_unit_cost_daily")
    assert (row["requests"], row["tokens"]) == (3, 3000)
    assert row["usd_per_1m_tokens"] == D("1000")  # $3.00 / 3,000 tokens x 1e6
    assert row["usd_per_request"] == D("1")


def test_break_even_utilization_worked_on_paper(project):
    """$3.00 per GPU-hour. Load test at a 5 s SLO: 14.43 requests/s x (512 + 128) tokens x 3600 s
    = 33,246,720 tokens per GPU-hour at full load. gpt-4o for 800 in + 200 out per request:
    (800 x 2.5e-6 + 200 x 1e-5) / 1000 = 4e-6 USD per token. Break-even = 3.00 / (33,246,720 x 4e-6)
    = 0.02256; utilization 0.6 is above it: keep."""
    gpu_project(project)
    (row,) = project.query_dicts("select * from fct_api_vs_selfhost")
    assert row["api_equivalent_model"] == "gpt-4o"
    assert row["api_cost_usd"] == 3 * (800 * D("2.5e-6") + 200 * D("1e-5"))  # 0.012
    assert row["full_load_tokens_per_gpu_hour"] == pytest.approx(14.43 * 640 * 3600)
    assert row["break_even_utilization"] == pytest.approx(3.0 / (14.43 * 640 * 3600 * 4e-6))
    assert row["recommendation"].startswith("keep")


def test_break_even_above_one_says_move_to_api(project):
    """Measured throughput instead of a load test: 3,000 tokens in 0.6 busy GPU-hours = 5,000 tokens
    per GPU-hour; gpt-4o-mini at (800 x 1.5e-7 + 200 x 6e-7) / 1000 = 2.4e-7 USD per token.
    Break-even = 3.00 / (5,000 x 2.4e-7) = 2,500: above 1, so the API wins at any utilization."""
    gpu_project(project, load_test=False, api_equivalent="gpt-4o-mini")
    (row,) = project.query_dicts("select * from fct_api_vs_selfhost")
    assert row["full_load_tokens_per_gpu_hour"] == pytest.approx(5000)
    assert row["break_even_utilization"] == pytest.approx(3.0 / (5000 * 2.4e-7))
    assert row["recommendation"].startswith("move to API")


def slo_cut(path, slo_s):
    """The SLO cut, computed from the CSV with the csv module."""
    with path.open(newline="") as handle:
        return max(
            float(row["requests_per_s"]) for row in csv.DictReader(handle) if float(row["request_latency_s"]) <= slo_s
        )


def test_slo_cut_on_the_batching_curve():
    assert slo_cut(BATCHING_CURVE, 5) == 14.43  # batch 64: 4.44 s; batch 128 takes 5.71 s
    assert slo_cut(BATCHING_CURVE, 6) == 22.416


def test_replicas_needed_from_a_log_with_a_known_peak(project):
    """14:00-15:00 holds 72,000 requests (20/s), every other hour 3,600 (1/s): peak_rps = 20.
    At a 5 s SLO one replica sustains 14.43/s: ceil(20 / 14.43 x 1.3) = ceil(1.8018) = 2 replicas."""
    billing = project.root / "inputs" / "gpu" / "gpu_hours.csv"
    billing.parent.mkdir(parents=True)
    billing.write_text(
        "day,pool,replica_id,gpu_type,gpu_count,hours,usd\n"
        + "".join(f"{DAY},p,r{index},H100,1,24,72.00\n" for index in range(4))
    )
    lines = []
    for hour, count in [(13, 3600), (14, 72_000), (15, 3600)]:
        spacing_ms = 3_600_000 // count
        base = dt.datetime.fromisoformat(f"{DAY}T{hour:02d}:00:00")
        for index in range(count):
            stamp = (base + dt.timedelta(milliseconds=index * spacing_ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lines.append(
                '{"request_id":"h%d-%d","ts":"%s","model":"llama","provider":"self_hosted","pool":"p",'
                '"replica_id":"r%d","duration_ms":900,"input_tokens":500,"output_tokens":100}'
                % (hour, index, stamp, index % 4)
            )
    (project.root / "inputs" / "logs.jsonl").write_text("\n".join(lines) + "\n")
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "gpu_billing": [{"path": "inputs/gpu/gpu_hours.csv", "format": "gpu_hours_csv"}],
        },
        pools={
            "p": {
                "gpu_type": "H100",
                "latency_slo_s": 5,
                "headroom": 0.3,
                "warm_floor": 1,
                "load_test": str(BATCHING_CURVE),
            }
        },
    )
    project.run_day(DAY)
    (plan,) = project.query_dicts("select * from fct_capacity_plan")
    assert plan["peak_hour"] == dt.datetime(2026, 10, 20, 14, tzinfo=dt.timezone.utc)
    assert plan["peak_rps"] == pytest.approx(20.0)
    assert (plan["per_replica_rps"], plan["per_replica_rps_source"]) == (slo_cut(BATCHING_CURVE, 5), "load_test")
    assert plan["replicas_needed"] == math.ceil(20.0 / 14.43 * 1.3) == 2
    assert (plan["planned_replicas"], plan["billed_replicas"]) == (2, 4)
    assert plan["billed_cost_usd"] == D("288") and plan["planned_cost_usd"] == D("144")  # 2 x $72 a replica-day


def test_busy_time_of_the_real_h200_nvidia_smi_log_matches_an_independent_sum(tmp_path):
    """The measured H200 log (0.5 s samples). Independent computation: each sample weighs the time
    to the next one, capped at twice the median gap; the last weighs the median gap."""
    log = REPO / "fixtures" / "gpu" / "h200_nvidia_smi.csv"
    with log.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, skipinitialspace=True)][1:]
    stamps = [dt.datetime.strptime(row[0], "%Y/%m/%d %H:%M:%S.%f") for row in rows]
    utilization = [float(row[3].rstrip(" %")) / 100 for row in rows]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(stamps)]
    median = sorted(gaps)[len(gaps) // 2] if len(gaps) % 2 else sum(sorted(gaps)[len(gaps) // 2 - 1 :][:2]) / 2
    weights = [min(gap, 2 * median) for gap in gaps] + [median]
    expected_busy_hours = sum(w * u for w, u in zip(weights, utilization, strict=True)) / 3600
    with duckdb.connect() as conn:
        read_nvidia_smi(conn, log)
        conn.execute("create table samples as select * from file_samples")
        ((replica, gpus, samples, sampled, busy),) = conn.execute(
            telemetry_busy_sql(), {"day": stamps[0].date()}
        ).fetchall()
    assert samples == len(rows) and gpus == 1
    assert busy == pytest.approx(expected_busy_hours, rel=1e-9)
    assert 0 < busy < sampled
