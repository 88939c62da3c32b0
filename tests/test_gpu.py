"""Self-hosted GPUs: GPU-hours and cost, utilization, unit cost, break-even and the capacity plan,
each on inputs small enough to work on paper."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import re
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import duckdb
import pytest
import yaml
from conftest import REPO, request

from pipelines.resources.config import ConfigError, load_config
from pipelines.sources.gpu.common import load_instance_types
from pipelines.sources.gpu.day import telemetry_busy_sql
from pipelines.sources.gpu.dcgm import read_dcgm
from pipelines.sources.gpu.focus import read_focus
from pipelines.sources.gpu.nvidia_smi import read_nvidia_smi

FOCUS_SAMPLE = REPO / "fixtures" / "focus" / "focus_sample.csv"
BATCHING_CURVE = REPO / "fixtures" / "gpu" / "h200_batching_curve.csv"
DAY = "2026-10-20"


def test_focus_sample_gpu_rows_give_gpu_hours_and_cost(tmp_path):
    """The FOCUS 1.0 sample's GPU rows are AWS g5.4xlarge (1 A10G each, from the instance-type
    table: the sample has no SkuPriceDetails). Totals from the sample's README: 8 rows,
    6.283056 hours, BilledCost 10.203683; EffectiveCost (the GPU cost) is 11.0. No commitment
    covers them, yet EffectiveCost differs from BilledCost on all 8 (5 above, 3 below): listed."""
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        load_instance_types(conn)
        stats = read_focus(conn, FOCUS_SAMPLE, {}, "costwatch-pool", "costwatch-replica")
        rows, hours, gpu_hours, billed, effective, instance, gpu_type = conn.execute(
            "select count(*), sum(instance_hours), sum(gpu_hours), sum(billed_usd), sum(effective_usd), "
            "any_value(instance_type), any_value(gpu_type) from billing_lines"
        ).fetchone()
    # An independent sum with the csv module over the same file.
    with FOCUS_SAMPLE.open(newline="") as handle:
        g5 = [row for row in csv.DictReader(handle) if "g5.4xlarge" in (row["ChargeDescription"] or "")]
    assert rows == len(g5) == 8 and stats.gpu_rows == 8 and stats.non_gpu_rows == 992
    assert hours == pytest.approx(sum(float(row["ConsumedQuantity"]) for row in g5)) == pytest.approx(6.283056)
    assert gpu_hours == pytest.approx(hours)  # 1 GPU per g5.4xlarge
    assert billed == sum(D(row["BilledCost"]) for row in g5) == D("10.203682944")
    assert effective == sum(D(row["EffectiveCost"]) for row in g5) == D("11")
    assert (instance, gpu_type) == ("g5.4xlarge", "A10G")
    differs = [row for row in g5 if D(row["EffectiveCost"]) != D(row["BilledCost"])]
    assert len(stats.uncommitted_cost_mismatch) == len(differs) == 8
    assert sum(D(str(row["effective_usd"])) for row in stats.uncommitted_cost_mismatch) == D("11")


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
    assert checks["uncommitted_effective_cost_equals_billed"].passed is False
    # The day's one GPU row, read with the csv module: BilledCost 1.624, EffectiveCost 2.0. The
    # GPU cost is EffectiveCost (it was BilledCost, 1.624, before FOCUS costs were amortized).
    with FOCUS_SAMPLE.open(newline="") as handle:
        (hour,) = [
            row
            for row in csv.DictReader(handle)
            if "g5.4xlarge" in (row["ChargeDescription"] or "") and row["ChargePeriodStart"].startswith("2024-09-27")
        ]
    assert (D(hour["BilledCost"]), D(hour["EffectiveCost"])) == (D("1.624"), D("2"))
    (row,) = project.query_dicts("select * from fct_gpu_utilization_daily")
    assert row["pool"] == "untagged" and row["billed_gpu_hours"] == pytest.approx(1.0)
    assert row["gpu_cost_usd"] == D("2") and row["utilization"] == 0 and row["idle_cost_usd"] == D("2")


# --- FOCUS commitments: GPU cost is EffectiveCost (amortized), BilledCost is the cash --------------

# The FOCUS spec's commitment example `aws_reserved_instance_partial_upfront_100pct.csv`
# (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, specification/data/commitment_discount_scenarios/,
# commit 17ac763b125121bd3a391b6ac7c2106f9c3bdd23, CC BY 4.0): its header and rows as written there,
# with the FOCUS 1.2 columns SkuPriceDetails and Tags added at the end (the example names no
# instance type; AWS's FOCUS 1.2 export carries it in SkuPriceDetails). Rows 2-3 (the commitment's
# Purchase rows), 4-5 (two hours the reservation covers) and 8 (an RDS hour) are the spec's rows;
# row 6 (an on-demand hour of the same instance) and row 7 (an Unused hour, laid out as the
# spec's `aws_underutilized_50pct.csv` writes them) are ours, in the same layout.
FOCUS_COMMITMENT_HEADER = (
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeClass,"
    "ChargeDescription,ChargeFrequency,BillingAccountId,BillingAccountName,SubAccountId,SubAccountName,"
    "InvoiceIssuerName,ProviderName,PublisherName,ServiceName,ServiceCategory,ServiceSubcategory,InvoiceId,"
    "RegionId,RegionName,AvailabilityZone,BilledCost,EffectiveCost,ListCost,BillingCurrency,PricingCategory,"
    "PricingQuantity,PricingUnit,ListUnitPrice,ContractedUnitPrice,ContractedCost,ResourceId,ResourceName,"
    "ResourceType,ConsumedQuantity,ConsumedUnit,CommitmentDiscountId,CommitmentDiscountName,"
    "CommitmentDiscountCategory,CommitmentDiscountType,CommitmentDiscountQuantity,CommitmentDiscountUnit,"
    "CommitmentDiscountStatus,SkuId,SkuPriceId,SkuPriceDetails,Tags"
)
_ACCOUNT = (
    "ACCT-123456789012,AWS Production Account,ACCT-987654321098,Development Team,Amazon Web Services,"
    "Amazon Web Services,Amazon Web Services"
)
_EC2 = "Amazon Elastic Compute Cloud,Compute,Compute Instances,INV-AWS-2026-001,us-east-1,US East (N. Virginia)"
_RI = "arn:aws:ec2:us-east-1:ACCT-123456789012:reserved-instances/ri-ri-abc123def456"
_P5 = '"{""InstanceType"": ""p5.48xlarge""}"'
_TAGS = '"{{""costwatch-pool"": ""llama-70b"", ""costwatch-replica"": ""{}""}}"'
_PERIOD = "2026-02-01T00:00:00Z,2026-03-01T00:00:00Z"
FOCUS_COMMITMENT_ROWS = [
    f"{_PERIOD},{_PERIOD},Purchase,,EC2 Reserved Instance commitment purchase,One-Time,{_ACCOUNT},{_EC2},,"
    f"119166.66,0.00,119166.66,USD,Standard,1.00,Units,119166.66,119166.66,119166.66,{_RI},"
    f"EC2 Reserved Instance,Commitment,,,{_RI},EC2 Reserved Instance,Usage,Reserved Instance,,Hours,,"
    "AWS-USEAST1-COMPUTE-PURCHASE,AWS-USEAST1-COMPUTE-PURCHASE-UPFRONT,,",
    f"{_PERIOD},{_PERIOD},Purchase,,EC2 Reserved Instance commitment purchase,Recurring,{_ACCOUNT},{_EC2},,"
    f"9930.56,0.00,9930.56,USD,Standard,1.00,Units,9930.56,9930.56,9930.56,{_RI},"
    f"EC2 Reserved Instance,Commitment,,,{_RI},EC2 Reserved Instance,Usage,Reserved Instance,,Hours,,"
    "AWS-USEAST1-COMPUTE-PURCHASE,AWS-USEAST1-COMPUTE-PURCHASE-RECURRING,,",
    *(
        f"{_PERIOD},2026-02-01T0{hour}:00:00Z,2026-02-01T0{hour + 1}:00:00Z,Usage,,"
        f"Amazon Elastic Compute Cloud committed usage,Usage-Based,{_ACCOUNT},{_EC2},us-east-1a,"
        f"0.00,50.23,75.35,USD,Committed,1.00,Hours,75.35,75.35,75.35,"
        f"arn:aws:ec2:us-east-1:ACCT-123456789012:instance/i-0abc0000000{hour},instance-000{hour},"
        f"AWS::EC2::Instance,1.00,Hours,{_RI},EC2 Reserved Instance,Usage,Reserved Instance,1.00,Hours,Used,"
        f"AWS-USEAST1-COMPUTE-USAGE,AWS-USEAST1-COMPUTE-USAGE-COMMITTED,{_P5},{_TAGS.format('r1')}"
        for hour in (0, 1)
    ),
    f"{_PERIOD},2026-02-01T02:00:00Z,2026-02-01T03:00:00Z,Usage,,"
    f"Amazon Elastic Compute Cloud on-demand usage,Usage-Based,{_ACCOUNT},{_EC2},us-east-1a,"
    "75.35,75.35,75.35,USD,Standard,1.00,Hours,75.35,75.35,75.35,"
    "arn:aws:ec2:us-east-1:ACCT-123456789012:instance/i-0abc000000ff,instance-00ff,"
    "AWS::EC2::Instance,1.00,Hours,,,,,,,,"
    f"AWS-USEAST1-COMPUTE-USAGE,AWS-USEAST1-COMPUTE-USAGE-ONDEMAND,{_P5},{_TAGS.format('r2')}",
    f"{_PERIOD},2026-02-01T03:00:00Z,2026-02-01T04:00:00Z,Usage,,"
    f"Amazon Elastic Compute Cloud committed usage,Usage-Based,{_ACCOUNT},{_EC2},,"
    "0.00,50.23,,USD,Committed,1.00,Hours,,75.35,75.35,,,,,,"
    f"{_RI},EC2 Reserved Instance,Usage,Reserved Instance,1.00,Hours,Unused,"
    f"AWS-USEAST1-COMPUTE-UNUSED,AWS-USEAST1-COMPUTE-UNUSED-COMMITTED,{_P5},",
    f"{_PERIOD},2026-02-01T00:00:00Z,2026-02-01T01:00:00Z,Usage,,Amazon Relational Database Service on-demand usage,"
    f"Usage-Based,{_ACCOUNT},Amazon Relational Database Service,Database,Relational Database,INV-AWS-2026-001,"
    "us-east-1,US East (N. Virginia),us-east-1a,0.15,0.15,0.15,USD,Standard,1.00,Hours,0.145,0.145,0.15,"
    "arn:aws:rds:us-east-1:ACCT-123456789012:db:db-0000,database-0000,AWS::RDS::DBInstance,1.00,Hours,,,,,,,,"
    "AWS-DATABASE-STANDARD,AWS-DATABASE-ONDEMAND,,",
]


def focus_commitment_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([FOCUS_COMMITMENT_HEADER, *FOCUS_COMMITMENT_ROWS]) + "\n")
    with path.open(newline="") as handle:  # every row has the header's cells: the layout holds
        assert {len(row) for row in csv.reader(handle)} == {FOCUS_COMMITMENT_HEADER.count(",") + 1}
    return path


def test_focus_gpu_cost_is_effective_cost_with_billed_cost_kept_as_cash(tmp_path):
    """By hand: the GPU lines are the two hours the reservation covers (BilledCost 0, EffectiveCost
    50.23 each) and the on-demand hour (75.35 both): cost 50.23 + 50.23 + 75.35 = 175.81, cash
    0 + 0 + 75.35 = 75.35, 3 instance hours x 8 H100 = 24 GPU-hours. The two Purchase rows
    (119,166.66 + 9,930.56 of cash, EffectiveCost 0) are the commitment's cash, already in the
    covered hours' EffectiveCost: skipped and counted, as are the Unused hour and the RDS hour."""
    path = focus_commitment_file(tmp_path / "focus_ri.csv")
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        load_instance_types(conn)
        stats = read_focus(conn, path, {}, "costwatch-pool", "costwatch-replica")
        lines = conn.execute(
            "select replica_id, gpu_hours, effective_usd, billed_usd from billing_lines order by record_ref"
        ).fetchall()
    assert lines == [
        ("r1", 8.0, D("50.23"), D("0")),
        ("r1", 8.0, D("50.23"), D("0")),
        ("r2", 8.0, D("75.35"), D("75.35")),
    ]
    assert sum(line[2] for line in lines) == D("175.81") and sum(line[3] for line in lines) == D("75.35")
    assert (stats.records, stats.gpu_rows, stats.quarantined) == (7, 3, 0) and stats.accounted_for
    assert stats.skipped_by_reason == {"commitment_purchase": 2, "not_a_gpu_instance": 1, "unused_commitment": 1}
    assert stats.uncommitted_cost_mismatch == []  # covered rows differ by the spec; the on-demand row agrees


def test_focus_commitment_covered_hours_cost_their_share_in_the_marts(project):
    """The same file through the pipeline: pool llama-70b's GPUs cost 175.81 on 2026-02-01 (not the
    75.35 of cash), and the check on uncommitted rows passes: the covered rows are the spec."""
    path = focus_commitment_file(project.root / "inputs" / "gpu" / "focus_ri.csv")
    project.write_config(
        start_date="2026-02-01",
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "gpu_billing": [{"path": str(path), "format": "focus"}],
        },
    )
    project.write_jsonl("logs.jsonl", [])
    result = project.run_day("2026-02-01")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["uncommitted_effective_cost_equals_billed"].passed is True
    (row,) = project.query_dicts("select * from fct_gpu_utilization_daily")
    assert (row["pool"], row["billed_replicas"], row["billed_gpu_hours"]) == ("llama-70b", 2, pytest.approx(24.0))
    assert row["gpu_cost_usd"] == D("175.81") and row["idle_cost_usd"] == D("175.81")
    cash = project.query_dicts("select sum(billed_cash_usd) as cash, sum(gpu_cost_usd) as cost from stg_gpu_billing")
    assert (cash[0]["cash"], cash[0]["cost"]) == (D("75.35"), D("175.81"))


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


def gpu_project(
    project, *, telemetry="nvidia_smi", load_test=True, api_equivalent="gpt-4o", host_zone=None, declare_zone=True
):
    """Pool `p` with one 1-GPU replica `r0`, billed 1 hour at $3.00 on DAY (GPU-hours CSV).
    `host_zone`: the nvidia-smi log is written in that zone's wall-clock time, and the source
    says so (`timezone:`) when `declare_zone`."""
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
        start, utilizations = samples
        if host_zone:
            start = start.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(host_zone)).replace(tzinfo=None)
        nvidia_smi_log(project.root / "inputs" / "gpu" / f"nvidia_smi_r0_{DAY}.csv", start, utilizations)
        sources["gpu_telemetry"] = [{"path": "inputs/gpu/nvidia_smi_*.csv", "format": "nvidia_smi"}]
        if host_zone and declare_zone:
            sources["gpu_telemetry"][0]["timezone"] = host_zone
    elif telemetry == "dcgm":
        dcgm_log(project.root / "inputs" / "gpu" / "dcgm_scrape.prom", *samples)
        sources["gpu_telemetry"] = [{"path": "inputs/gpu/*.prom", "format": "dcgm"}]
    elif telemetry == "nvidia_smi_nounits_noheader":
        path = project.root / "inputs" / "gpu" / f"nvidia_smi_r0_{DAY}.csv"
        nvidia_smi_documented_log(path, *samples, units=False, header=False)
        sources["gpu_telemetry"] = [{"path": "inputs/gpu/nvidia_smi_*.csv", "format": "nvidia_smi"}]
    elif telemetry == "dcgm_servicemonitor_openmetrics":
        dcgm_servicemonitor_openmetrics(project.root / "inputs" / "gpu" / "dcgm_federate.txt", *samples)
        sources["gpu_telemetry"] = [{"path": "inputs/gpu/*.txt", "format": "dcgm"}]
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


@pytest.fixture(scope="module")
def default_gpu(module_project):
    """`gpu_project` with its defaults, run once for the tests that only read it."""
    gpu_project(module_project)
    return module_project


@pytest.mark.parametrize(
    "telemetry", ["nvidia_smi", "dcgm", "nvidia_smi_nounits_noheader", "dcgm_servicemonitor_openmetrics"]
)
def test_utilization_from_telemetry(request, telemetry):
    if telemetry == "nvidia_smi":  # the default
        project = request.getfixturevalue("default_gpu")
    else:
        project = request.getfixturevalue("project")
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


def test_idle_cost_is_allocated_to_features_by_usage(default_gpu):
    project = default_gpu
    rows = {r["feature"]: r for r in project.query_dicts("select * from fct_gpu_cost_by_feature_daily")}
    # chat had 20 of the 30 request-minutes; the idle $1.20 splits 2/3 : 1/3.
    assert rows["chat"]["usage_share"] == pytest.approx(2 / 3)
    assert float(rows["chat"]["idle_cost_usd"]) == pytest.approx(0.8, abs=1e-6)
    assert float(rows["batch_tagging"]["idle_cost_usd"]) == pytest.approx(0.4, abs=1e-6)
    assert sum(r["gpu_cost_usd"] for r in rows.values()) == pytest.approx(D("3"), abs=D("1e-6"))


def test_unit_cost_includes_idle_time(default_gpu):
    project = default_gpu
    (row,) = project.query_dicts("select * from fct_selfhost_unit_cost_daily")
    assert (row["requests"], row["tokens"]) == (3, 3000)
    assert row["usd_per_1m_tokens"] == D("1000")  # $3.00 / 3,000 tokens x 1e6
    assert row["usd_per_request"] == D("1")


def test_break_even_utilization_worked_on_paper(default_gpu):
    """$3.00 per GPU-hour. Load test at a 5 s SLO: 14.43 requests/s x (512 + 128) tokens x 3600 s
    = 33,246,720 tokens per GPU-hour at full load. gpt-4o for 800 in + 200 out per request:
    (800 x 2.5e-6 + 200 x 1e-5) / 1000 = 4e-6 USD per token. Break-even = 3.00 / (33,246,720 x 4e-6)
    = 0.02256; utilization 0.6 is above it: keep."""
    project = default_gpu
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


# --- GPU telemetry as nvidia-smi and dcgm-exporter write it ---------------------------------

GPU_FIXTURES = REPO / "fixtures" / "gpu"
A100_NOHEADER = GPU_FIXTURES / "nvidia_smi_a100-slurm_noheader.csv"
A100_NOUNITS = GPU_FIXTURES / "nvidia_smi_a100-slurm_nounits.csv"
DCGM_PROMETHEUS = GPU_FIXTURES / "dcgm_servicemonitor_prometheus.prom"
DCGM_OPENMETRICS = GPU_FIXTURES / "dcgm_servicemonitor_openmetrics.txt"

# The A100 log, by hand (fixtures/gpu/README.md). Three GPUs, each weighted by the gap to its own
# next sample (capped at twice its median gap); its last sample weighs that median gap.
#   8B: 11:27:05.188 0 %, 15.309 3 %, 25.361 3 %  gaps 10.121, 10.052 (median 10.0865)
#   0B: 11:27:05.192 0 %, 15.311 3 %              gap 10.119 (median 10.119)
#   3B: 11:27:05.177 0 %, 15.311 3 %, 25.376 1 %  gaps 10.134, 10.065 (median 10.0995)
A100_SAMPLED_S = (10.121 + 10.052 + 10.0865) + (10.119 + 10.119) + (10.134 + 10.065 + 10.0995)  # 80.796 s
A100_BUSY_S = 0.03 * (10.052 + 10.0865) + 0.03 * 10.119 + 0.03 * 10.065 + 0.01 * 10.0995  # 1.31067 s


def busy_of(reader, path, day):
    """(replica, gpus, samples, sampled GPU-hours, busy GPU-hours) per replica, through the
    pipeline's own telemetry query."""
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        reader(conn, path)
        conn.execute("create table samples as select * from file_samples")
        rows = conn.execute(telemetry_busy_sql(), {"day": day}).fetchall()
        first = conn.execute("select min(ts) from samples").fetchone()[0]
    return sorted(rows), first


@pytest.mark.parametrize("log", [A100_NOHEADER, A100_NOUNITS], ids=["csv,noheader", "csv,nounits"])
def test_nvidia_smi_log_without_header_or_units_gives_busy_hours_by_hand(log):
    (row,), first = busy_of(read_nvidia_smi, log, dt.date(2024, 6, 1))
    replica, gpus, samples, sampled, busy = row
    assert replica == "a100-slurm_" + log.stem.rsplit("_", 1)[1]  # the file name names the replica
    assert (gpus, samples) == (3, 8)
    assert sampled == pytest.approx(A100_SAMPLED_S / 3600, rel=1e-12) == pytest.approx(80.796 / 3600)
    assert busy == pytest.approx(A100_BUSY_S / 3600, rel=1e-9) == pytest.approx(1.31067 / 3600)
    assert first == dt.datetime(2024, 6, 1, 11, 27, 5, 177000)  # host-local time, read as UTC


def test_nvidia_smi_nounits_log_without_header_reads_the_same(tmp_path):
    """`--format=csv,noheader,nounits`: the nounits fixture without its header row."""
    log = tmp_path / "nvidia_smi_a100-slurm_2024-06-01.csv"
    log.write_text("".join(A100_NOUNITS.read_text().splitlines(keepends=True)[1:]))
    ((replica, gpus, samples, sampled, busy),), _ = busy_of(read_nvidia_smi, log, dt.date(2024, 6, 1))
    assert (replica, gpus, samples) == ("a100-slurm", 3, 8)
    assert busy == pytest.approx(1.31067 / 3600, rel=1e-9) and sampled == pytest.approx(80.796 / 3600)


def test_the_header_less_column_order_is_the_documented_query():
    from pipelines.sources.gpu.nvidia_smi import HEADERLESS_COMMAND, HEADERLESS_QUERY, field_name

    # The header that log would have had: the fixtures README's source prints it.
    header = (
        "timestamp, name, pci.bus_id, driver_version, pstate, pcie.link.gen.max, pcie.link.gen.current, "
        "temperature.gpu, utilization.gpu [%], utilization.memory [%], memory.total [MiB], memory.free [MiB], "
        "memory.used [MiB]"
    )
    assert tuple(field_name(cell) for cell in header.split(",")) == HEADERLESS_QUERY
    assert A100_NOUNITS.read_text().splitlines()[0] == ", ".join(HEADERLESS_QUERY)
    assert "--query-gpu=timestamp,name,pci.bus_id,driver_version," in HEADERLESS_COMMAND


@pytest.mark.parametrize(
    "text, says",
    [
        # `--query-gpu=timestamp,index,utilization.gpu --format=csv,noheader,nounits`: 3 columns
        ("2024/06/01 11:27:05.177, 0, 37\n", "drop `noheader`"),
        # `--query-gpu=memory.used,memory.total,utilization.gpu --format=csv,nounits,noheader`
        ("4, 40960, 0\n", "does not start with a timestamp"),
        # a header without utilization.gpu
        ("timestamp, index, memory.used [MiB]\n2024/06/01 11:27:05.177, 0, 4 MiB\n", "add utilization.gpu"),
    ],
)
def test_an_nvidia_smi_log_that_cannot_be_read_fails_naming_the_fix(tmp_path, text, says):
    log = tmp_path / "nvidia_smi_r0.csv"
    log.write_text(text)
    with duckdb.connect() as conn, pytest.raises(ValueError, match=re.escape(says)):
        read_nvidia_smi(conn, log)


@pytest.mark.parametrize("scrape", [DCGM_PROMETHEUS, DCGM_OPENMETRICS], ids=["prometheus-text-ms", "openmetrics-s"])
def test_dcgm_through_the_chart_servicemonitor_names_the_serving_pod(scrape):
    """GPU 0 of gpu-node-7 serves pod vllm-llama-3-0 (`exported_pod`; `pod` is the exporter):
    samples every 15 s at 100, 100, 50, 0, 20 % -> 5 x 15 s = 75 s sampled, busy
    15 x (1 + 1 + 0.5 + 0 + 0.2) = 40.5 s. GPU 1 has no pod (no `exported_pod`, `pod` is the
    exporter): its 5 idle samples go to the node, never to the exporter pod."""
    rows, first = busy_of(read_dcgm, scrape, dt.date(2024, 11, 1))
    assert rows == [
        ("gpu-node-7", 1, 5, pytest.approx(75 / 3600), 0.0),
        ("vllm-llama-3-0", 1, 5, pytest.approx(75 / 3600), pytest.approx(40.5 / 3600)),
    ]
    # 1730419200 s = 2024-11-01T00:00:00Z; the OpenMetrics file's stamps are 1730419200.123 s.
    millis = 123 if scrape == DCGM_OPENMETRICS else 0
    assert first == dt.datetime(2024, 11, 1, 0, 0, 0, millis * 1000)


def test_dcgm_timestamp_unit_is_decided_by_the_format():
    from pipelines.sources.gpu.dcgm import timestamp_unit

    assert timestamp_unit(["x 1 1730419200000"], ["1730419200000"]) == "milliseconds"  # Prometheus text
    assert timestamp_unit(["x 1 1730419200", "# EOF"], ["1730419200"]) == "seconds"  # OpenMetrics, integer
    assert timestamp_unit(["x 1 1730419200.5"], ["1730419200.5"]) == "seconds"  # a decimal: only OpenMetrics


def test_dcgm_file_with_a_timestamp_of_the_wrong_unit_fails_naming_the_fix(tmp_path):
    """An OpenMetrics file (`# EOF`) whose stamps are milliseconds would land in the year 56800."""
    scrape = tmp_path / "dcgm.txt"
    scrape.write_text('DCGM_FI_DEV_GPU_UTIL{gpu="0",pod="r0"} 37 1730419200000\n# EOF\n')
    with duckdb.connect() as conn, pytest.raises(ValueError, match="must end with the line `# EOF`"):
        read_dcgm(conn, scrape)


def test_dcgm_pod_and_namespace_without_servicemonitor_relabelling(tmp_path):
    """Scraped with honorLabels (or straight from the exporter): `pod` is the serving pod; the
    exporter's README layout (a space after a comma) reads too; lines without a timestamp are
    skipped; `promtool tsdb dump` writes the name as `__name__`."""
    scrape = tmp_path / "dcgm.prom"
    scrape.write_text(
        'DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-604ac76c",container="vllm",namespace="llm",pod="r0"} 40 1730419200000\n'
        '{__name__="DCGM_FI_DEV_GPU_UTIL", gpu="0", UUID="GPU-604ac76c", pod="r0"} 60 1730419260000\n'
        'DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-604ac76c",pod="r0"} 99\n'
        'DCGM_FI_DEV_GPU_UTIL_X{gpu="0",pod="r0"} 99 1730419230000\n'
    )
    ((replica, gpus, samples, sampled, busy),), _ = busy_of(read_dcgm, scrape, dt.date(2024, 11, 1))
    # Two samples 60 s apart: 60 s at 40 % + the last weighs the median gap, 60 s at 60 %.
    assert (replica, gpus, samples) == ("r0", 1, 2)
    assert sampled == pytest.approx(120 / 3600) and busy == pytest.approx((60 * 0.4 + 60 * 0.6) / 3600)


def nvidia_smi_documented_log(path, start: dt.datetime, utilizations: list[int], *, units: bool, header: bool):
    """A log of `nvidia-smi --query-gpu=<HEADERLESS_QUERY> --format=csv[,nounits][,noheader]`."""
    lines = []
    if header:
        lines.append(
            "timestamp, name, pci.bus_id, driver_version, pstate, pcie.link.gen.max, pcie.link.gen.current, "
            "temperature.gpu, "
            + (
                "utilization.gpu [%], utilization.memory [%], memory.total [MiB], memory.free [MiB], memory.used [MiB]"
                if units
                else "utilization.gpu, utilization.memory, memory.total, memory.free, memory.used"
            )
        )
    pct, mib = (" %", " MiB") if units else ("", "")
    for minute, utilization in enumerate(utilizations):
        stamp = (start + dt.timedelta(minutes=minute)).strftime("%Y/%m/%d %H:%M:%S.000")
        lines.append(
            f"{stamp}, NVIDIA H100 80GB HBM3, 00000000:00:06.0, 550.90.07, P0, 5, 5, 41, {utilization}{pct}, "
            f"10{pct}, 81559{mib}, 65559{mib}, 16000{mib}"
        )
    path.write_text("\n".join(lines) + "\n")


def dcgm_servicemonitor_openmetrics(path, start: dt.datetime, utilizations: list[int]):
    """DCGM samples of pod r0 as Prometheus holds them after the chart's ServiceMonitor scrape
    (`exported_pod` = r0, `pod` = the exporter), written as OpenMetrics (seconds, decimals)."""
    labels = (
        'DCGM_FI_DRIVER_VERSION="550.90.07",Hostname="node-7",UUID="GPU-1f2e",container="exporter",'
        'exported_container="vllm",exported_namespace="llm",exported_pod="r0",gpu="0",'
        'instance="10.0.0.5:9400",job="dcgm-exporter",namespace="gpu-monitoring",pod="dcgm-exporter-x7k2p"'
    )
    lines = ["# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).", "# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    for minute, utilization in enumerate(utilizations):
        seconds = (start + dt.timedelta(minutes=minute)).replace(tzinfo=dt.timezone.utc).timestamp() + 0.25
        lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {float(utilization)} {seconds}")
    path.write_text("\n".join([*lines, "# EOF"]) + "\n")


def test_an_empty_nvidia_smi_log_has_no_samples_and_does_not_fail(tmp_path):
    log = tmp_path / "nvidia_smi_r0.csv"
    log.write_text("\n")
    with duckdb.connect() as conn:
        read_nvidia_smi(conn, log)
        assert conn.execute("select count(*) from file_samples").fetchone() == (0,)


# --- nvidia-smi timestamps in the host's time zone --------------------------------------------


def nvidia_smi_host_log(path, stamps: list[str]) -> None:
    """`nvidia-smi --query-gpu=timestamp,index,utilization.gpu --format=csv -l 1200` as the host
    writes it: its wall clock with no offset, one line per GPU per tick in the order written, GPU 1
    stamped 7 ms after GPU 0."""
    lines = ["timestamp, index, utilization.gpu [%]"]
    for stamp in stamps:
        lines += [f"{stamp}.000, 0, 50 %", f"{stamp}.007, 1, 50 %"]
    path.write_text("\n".join(lines) + "\n")


def utc_stamps(path, zone) -> dict[str, list[str]]:
    """The reader's UTC `ts` per GPU, in the log's line order, as `YYYY-MM-DD HH:MM:SS.fff`; with
    no zone, the reader's default."""
    with duckdb.connect() as conn:
        read_nvidia_smi(conn, path, zone) if zone else read_nvidia_smi(conn, path)
        rows = conn.execute("select gpu, strftime(ts, '%Y-%m-%d %H:%M:%S.%g') from file_samples").fetchall()
    return {gpu: [stamp for row_gpu, stamp in rows if row_gpu == gpu] for gpu in ("0", "1")}


# Each case converted by hand from the zone's rules (2026): the EU switches at 01:00 UTC on the
# last Sundays of March and October (CET +1 / CEST +2); the US at 02:00 local on the second Sunday
# of March and the first of November (EST -5 / EDT -4). Samples every 20 minutes.
DST_CASES = {
    # Berlin springs forward at 02:00 CET to 03:00 CEST: 02:00-02:59 is never written.
    "berlin_spring_forward": (
        "Europe/Berlin",
        ["2026/03/29 01:20:00", "2026/03/29 01:40:00", "2026/03/29 03:00:00", "2026/03/29 03:20:00"],
        ["2026-03-29 00:20:00", "2026-03-29 00:40:00", "2026-03-29 01:00:00", "2026-03-29 01:20:00"],
    ),
    # Berlin falls back at 03:00 CEST to 02:00 CET: 02:00-02:59 is written twice, CEST then CET.
    "berlin_fall_back": (
        "Europe/Berlin",
        [
            "2026/10/25 02:20:00",
            "2026/10/25 02:40:00",
            "2026/10/25 02:00:00",
            "2026/10/25 02:20:00",
            "2026/10/25 02:40:00",
            "2026/10/25 03:00:00",
        ],
        [
            "2026-10-25 00:20:00",
            "2026-10-25 00:40:00",
            "2026-10-25 01:00:00",
            "2026-10-25 01:20:00",
            "2026-10-25 01:40:00",
            "2026-10-25 02:00:00",
        ],
    ),  # fmt: skip
    # New York falls back at 02:00 EDT to 01:00 EST: 01:00-01:59 twice, EDT (+4 h) then EST (+5 h).
    "new_york_fall_back": (
        "America/New_York",
        [
            "2026/11/01 00:40:00",
            "2026/11/01 01:00:00",
            "2026/11/01 01:20:00",
            "2026/11/01 01:40:00",
            "2026/11/01 01:00:00",
            "2026/11/01 01:20:00",
            "2026/11/01 01:40:00",
            "2026/11/01 02:00:00",
        ],
        [
            "2026-11-01 04:40:00",
            "2026-11-01 05:00:00",
            "2026-11-01 05:20:00",
            "2026-11-01 05:40:00",
            "2026-11-01 06:00:00",
            "2026-11-01 06:20:00",
            "2026-11-01 06:40:00",
            "2026-11-01 07:00:00",
        ],
    ),  # fmt: skip
    # New York springs forward at 02:00 EST to 03:00 EDT.
    "new_york_spring_forward": (
        "America/New_York",
        ["2026/03/08 01:20:00", "2026/03/08 01:40:00", "2026/03/08 03:00:00", "2026/03/08 03:20:00"],
        ["2026-03-08 06:20:00", "2026-03-08 06:40:00", "2026-03-08 07:00:00", "2026-03-08 07:20:00"],
    ),
    # No key: the log is read as UTC, as before.
    "utc": (
        None,
        ["2026/10/25 02:20:00", "2026/10/25 02:40:00"],
        ["2026-10-25 02:20:00", "2026-10-25 02:40:00"],
    ),
}


@pytest.mark.parametrize("case", DST_CASES)
def test_nvidia_smi_host_times_are_read_in_the_sources_time_zone_across_dst_switches(tmp_path, case):
    zone, local, utc = DST_CASES[case]
    log = tmp_path / "nvidia_smi_r0.csv"
    nvidia_smi_host_log(log, local)
    converted = utc_stamps(log, zone)
    assert converted["0"] == [f"{stamp}.000" for stamp in utc]
    assert converted["1"] == [f"{stamp}.007" for stamp in utc]
    # What Python's zoneinfo says, where a local time has one reading (outside the repeated hour).
    for wall, expected in zip(local, utc, strict=True):
        naive = dt.datetime.strptime(wall, "%Y/%m/%d %H:%M:%S")
        instant = naive.replace(tzinfo=ZoneInfo(zone or "UTC"))
        if instant.utcoffset() == instant.replace(fold=1).utcoffset():
            assert instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") == expected


def test_nvidia_smi_samples_near_local_midnight_fall_on_their_utc_day(tmp_path):
    """A Berlin host (CEST, UTC+2) logs 06-01 00:10, 01:10 and 02:10: 05-31 22:10 and 23:10 UTC
    and 06-01 00:10 UTC. Each UTC day gets its own samples."""
    log = tmp_path / "nvidia_smi_r0.csv"
    nvidia_smi_host_log(log, ["2026/06/01 00:10:00", "2026/06/01 01:10:00", "2026/06/01 02:10:00"])

    def read_berlin(conn, path):
        read_nvidia_smi(conn, path, "Europe/Berlin")

    may_31, first = busy_of(read_berlin, log, dt.date(2026, 5, 31))
    june_1, _ = busy_of(read_berlin, log, dt.date(2026, 6, 1))
    assert first == dt.datetime(2026, 5, 31, 22, 10)
    assert may_31 == [("r0", 2, 4, pytest.approx(4.0), pytest.approx(2.0))]  # 2 GPUs x 2 samples x 1 h, 50 %
    # One sample per GPU on 06-01: no gap to weigh it by, so its day has no median gap to give it.
    assert [row[:3] for row in june_1] == [("r0", 2, 2)]
    # Read as UTC (no time zone), all three would be samples of 06-01.
    utc, _ = busy_of(read_nvidia_smi, log, dt.date(2026, 6, 1))
    assert [row[:3] for row in utc] == [("r0", 2, 6)]


def test_a_host_ahead_of_utc_logs_the_next_local_day_and_its_samples_land_on_the_billed_utc_day(project):
    """Pacific/Kiritimati is UTC+14: the billed hour DAY 10:00-11:00 UTC is 00:00-01:00 of the next
    day on the host's clock. With the source's time zone it is the same 36 busy minutes as a UTC
    log (test_utilization_from_telemetry)."""
    gpu_project(project, host_zone="Pacific/Kiritimati")
    log = (project.root / "inputs" / "gpu" / f"nvidia_smi_r0_{DAY}.csv").read_text().splitlines()
    assert log[1].startswith("2026/10/21 00:00:00")  # the host's wall clock
    (row,) = project.query_dicts("select * from fct_gpu_utilization_daily")
    assert row["busy_method"] == "telemetry" and row["telemetry_coverage"] == pytest.approx(1.0)
    assert row["busy_gpu_hours"] == pytest.approx(36 / 60) and row["idle_cost_usd"] == D("1.2")


def test_setting_a_sources_time_zone_re_reads_its_logs(project):
    """Read as UTC first, the Kiritimati log holds 10-21 only and DAY falls back to request
    activity; with the zone configured, the same unchanged file is read again for DAY (the input
    manifest keys a file's days by the zone it was read in) and DAY gets its telemetry."""
    gpu_project(project, host_zone="Pacific/Kiritimati", declare_zone=False)
    (row,) = project.query_dicts("select busy_method from fct_gpu_utilization_daily")
    assert row["busy_method"] == "request_activity"
    config = yaml.safe_load(project.config_path.read_text(encoding="utf-8"))
    config["sources"]["gpu_telemetry"][0]["timezone"] = "Pacific/Kiritimati"
    project.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    project.run_day(DAY)
    (row,) = project.query_dicts("select busy_method, busy_gpu_hours from fct_gpu_utilization_daily")
    assert row["busy_method"] == "telemetry" and row["busy_gpu_hours"] == pytest.approx(36 / 60)


def test_a_source_time_zone_that_is_not_an_iana_name_is_a_config_error_naming_the_key(project):
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "gpu_telemetry": [{"path": "inputs/*.csv", "format": "nvidia_smi", "timezone": "Europe/Berln"}],
        }
    )
    with pytest.raises(ConfigError) as error:
        load_config(project.config_path)
    assert str(error.value) == (
        "sources.gpu_telemetry[0].timezone: 'Europe/Berln' is not an IANA time zone name (did you mean "
        "'Europe/Berlin'?); write the zone the host's clock is set to as Area/City, e.g. Europe/Berlin "
        "(`timedatectl` on the host shows it), or UTC"
    )


@pytest.mark.parametrize(
    "source, fmt", [("gpu_telemetry", "dcgm"), ("gateway_logs", "canonical"), ("gpu_billing", "focus")]
)
def test_a_time_zone_on_a_format_whose_timestamps_are_not_local_is_a_config_error(project, source, fmt):
    sources = {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]}
    sources[source] = [{"path": "inputs/*", "format": fmt, "timezone": "UTC"}]
    project.write_config(sources=sources)
    with pytest.raises(ConfigError, match=re.escape(f"sources.{source}[0].timezone: does not apply to format '{fmt}'")):
        load_config(project.config_path)


def test_the_source_time_zone_defaults_to_utc(project):
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "gpu_telemetry": [
                {"path": "inputs/*.csv", "format": "nvidia_smi"},
                {"path": "inputs/*.log", "format": "nvidia_smi", "timezone": "Asia/Kolkata"},
            ],
        }
    )
    first, second = load_config(project.config_path).sources["gpu_telemetry"]
    assert (first.timezone, second.timezone) == ("UTC", "Asia/Kolkata")
