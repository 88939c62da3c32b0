"""Self-hosted GPUs: billing exports, nvidia-smi telemetry and a load test of the two pools.

The two pools run their replicas 24/7 and are billed whether busy or not (``POOLS``):

- ``gpu_billing/focus_<YYYY-MM>.csv``: Google Cloud's FOCUS 1.2-style cost-and-usage export for
  ``llama-8b-h100`` (4 x ``a3-highgpu-1g``, 1 H100 each, 11.06 USD per instance-hour): the FOCUS 1.0
  columns of the public sample export in its order and quoting (strings quoted, numbers and
  ``NULL`` bare), plus ``SkuPriceDetails`` (``GpuCount``, ``InstanceType``) and
  ``ServiceSubcategory``; one Usage row per replica per hour, tagged ``costwatch-pool`` /
  ``costwatch-replica``, and two non-GPU rows per month (a disk, internet egress) with no pool tag.
- ``gpu_billing/gpu_hours_<YYYY-MM>.csv``: ``day,pool,replica_id,gpu_type,gpu_count,hours,usd`` for
  ``qwen-32b-a100`` (2 replicas x 2 A100, 1.29 USD per GPU-hour), one row per replica per day.
- ``gpu_telemetry/nvidia_smi_<replica_id>_<YYYY-MM-DD>.csv``: ``nvidia-smi --format=csv`` logs of
  every ``llama-8b-h100`` replica, one sample a minute; utilization.gpu is the share of that minute
  covered by the union of the replica's calls [ts, ts + duration_ms] (true calls, which for the
  self-hosted pools are exactly the logged ones), stochastically rounded, plus rare 1-point blips.
- ``loadtest/llama-8b-h100.csv``: throughput and latency against batch size on one replica, in
  the columns of the public H200 batching curve; the 5 s latency SLO cuts it at batch 64.

``manifest["gpu"]`` holds billed GPU-hours and USD per pool and day, busy minutes per replica and
day from the telemetry, each day's busiest hour, and the load test's SLO cut. Two findings are
planted with at least 30 days and recorded in ``manifest["gpu_events"]``: ``over_provisioned_pool``
(``llama-8b-h100`` billed for 4 replicas while its busiest hour needs 1 at the SLO rate with 30%
headroom) and ``idle_weekend`` (the nightly batch job skips one Saturday and Sunday: no
``qwen-32b-a100`` calls in the truth nor the logs, full billing).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.demo.manifest import decimal_text, write_text_atomically
from pipelines.demo.traffic import (
    DAY_MS,
    FOCUS_POOL,
    GPU_HOURS_CSV_POOL,
    HOUR_MS,
    MINUTE_MS,
    POOL_BY_NAME,
    POOLS,
    STREAM_TELEMETRY,
    GenerationPlan,
    PoolSpec,
    epoch_ms,
    month_key,
    month_last_day,
)

# Self-hosted GPUs (``OUT/gpu_billing``, ``OUT/gpu_telemetry``, ``OUT/loadtest``). Replicas run
# 24/7 whether busy or not. The interactive pool is billed by Google Cloud in a FOCUS export and
# has nvidia-smi telemetry; the batch pool is billed in a simple GPU-hours CSV.
FOCUS_INSTANCE_TYPE = "a3-highgpu-1g"
FOCUS_USD_PER_INSTANCE_HOUR = Decimal("11.06")
GPU_HOURS_USD_PER_GPU_HOUR = Decimal("1.29")
GPU_NAME = "NVIDIA H100 80GB HBM3"  # as nvidia-smi names it
GPU_MEMORY_TOTAL_MIB = 81_559
# vLLM-style serving keeps weights, CUDA context and a fixed KV-cache block pool resident.
GPU_MEMORY_USED_MIB = 16_872
GPU_PCI_BUS_ID = "00000000:04:00.0"  # one GPU per a3-highgpu-1g VM
TELEMETRY_SAMPLE_MS = MINUTE_MS
MINUTES_PER_DAY = DAY_MS // MINUTE_MS
TELEMETRY_BLIP_RATIO = 0.02  # samples reading 1 point above the true busy share (idle: 1 %)
LATENCY_SLO_S = 5
CAPACITY_HEADROOM = Decimal("0.3")
LOADTEST_BATCH_SIZES = tuple(2**power for power in range(9))  # 1..256
NON_GPU_ROWS_PER_MONTH = 2


# ---------------------------------------------------------------------------------------------
# Self-hosted GPUs: billing exports, nvidia-smi telemetry and a load test
# ---------------------------------------------------------------------------------------------

# Google Cloud's FOCUS export (FOCUS 1.2 style): the FOCUS 1.0 columns of the public sample in
# its order (including its row ``Id``), then the 1.2 columns ``SkuPriceDetails`` and
# ``ServiceSubcategory``.
FOCUS_COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "Id",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "SkuPriceDetails",
    "ServiceSubcategory",
)
FOCUS_PROVIDER = "Google Cloud"
FOCUS_REGION = "us-central1"
FOCUS_REGION_NAME = "Iowa"
FOCUS_PROJECT = "costwatch-serving"
FOCUS_BILLING_ACCOUNT = "01B2C3-D4E5F6-A7B8C9"
FOCUS_GPU_SKU = "9A53-4C7E-1F02"
FOCUS_POOL_TAG = "costwatch-pool"
FOCUS_REPLICA_TAG = "costwatch-replica"
_FOCUS_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")
_FOCUS_COST_QUANTUM = Decimal("1e-11")  # the sample writes costs with 11 decimals
_FOCUS_QUANTITY_QUANTUM = Decimal("1e-15")  # ... and ConsumedQuantity with 15

GPU_HOURS_COLUMNS = ("day", "pool", "replica_id", "gpu_type", "gpu_count", "hours", "usd")
NVIDIA_SMI_HEADER = (
    "timestamp, name, pci.bus_id, utilization.gpu [%], utilization.memory [%], "
    "memory.used [MiB], memory.total [MiB], power.draw [W], clocks.current.sm [MHz]"
)
LOADTEST_COLUMNS = (
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
)
LOADTEST_MODEL_SHAPE = "llama-3.1-8b"
LOADTEST_ENGINE = "vllm-0.6.3/torch-2.4.0+cu124"

_GPU_GLOBS = (
    ("gpu_billing", "focus_*.csv"),
    ("gpu_billing", "gpu_hours_*.csv"),
    ("gpu_telemetry", "nvidia_smi_*.csv"),
    ("loadtest", "*.csv"),
)


def pool_usd_per_instance_hour(pool: PoolSpec) -> Decimal:
    """What one replica (one VM) of a pool costs per hour."""
    if pool.name == FOCUS_POOL:
        return FOCUS_USD_PER_INSTANCE_HOUR
    return GPU_HOURS_USD_PER_GPU_HOUR * pool.gpus_per_replica


def focus_resource_id(replica_index: int) -> str:
    """The stable Compute Engine instance of a FOCUS-billed replica."""
    zone = _FOCUS_ZONES[replica_index % len(_FOCUS_ZONES)]
    return (
        f"//compute.googleapis.com/projects/{FOCUS_PROJECT}/zones/{zone}/instances/"
        f"{7_182_640_553_019_281_000 + 7_919 * replica_index}"
    )


def replica_busy_intervals(frame: pl.DataFrame, pool: PoolSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(replica index, start ms, end ms) of every call a replica of ``pool`` served.

    A call occupies its replica over [ts, ts + duration_ms], errors included (a timeout holds the
    replica for 60 s); gateway cache hits never reached a replica (``replica_id`` null).
    """
    mapping = {replica_id: index for index, replica_id in enumerate(pool.replica_ids)}
    start = pl.col("ts").dt.epoch("ms")
    served = (
        frame.lazy()
        .filter((pl.col("pool") == pool.name) & pl.col("replica_id").is_not_null())
        .select(
            pl.col("replica_id").replace_strict(mapping, return_dtype=pl.Int64).alias("replica"),
            start.alias("start"),
            (start + pl.col("duration_ms")).alias("end"),
        )
        .collect()
    )
    return (served["replica"].to_numpy(), served["start"].to_numpy(), served["end"].to_numpy())


def covered_ms_per_minute(starts: np.ndarray, ends: np.ndarray, day_start_ms: int) -> np.ndarray:
    """Milliseconds of each minute of the day covered by the union of [start, end) intervals."""
    covered = np.zeros(MINUTES_PER_DAY, dtype=np.int64)
    if starts.size == 0:
        return covered
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    # Merge overlapping intervals: a new run starts where a call begins after every earlier one
    # has ended.
    running_end = np.maximum.accumulate(ends)
    new_run = np.empty(starts.size, dtype=bool)
    new_run[0] = True
    new_run[1:] = starts[1:] > running_end[:-1]
    run_first = np.flatnonzero(new_run)
    run_last = np.append(run_first[1:] - 1, starts.size - 1)
    day_end_ms = day_start_ms + DAY_MS
    run_start = np.clip(starts[run_first], day_start_ms, day_end_ms)
    run_end = np.clip(running_end[run_last], day_start_ms, day_end_ms)
    run_length = run_end - run_start
    length_before = np.concatenate([[0], np.cumsum(run_length)])
    # covered_until(t) = length of the runs before the last run starting at or before t, plus
    # the part of that run before t.
    bounds = day_start_ms + np.arange(MINUTES_PER_DAY + 1, dtype=np.int64) * MINUTE_MS
    run = np.searchsorted(run_start, bounds, side="right") - 1
    safe = np.maximum(run, 0)
    covered_until = np.where(
        run >= 0, length_before[safe] + np.minimum(np.maximum(bounds - run_start[safe], 0), run_length[safe]), 0
    )
    return np.diff(covered_until)


def _nvidia_smi_text(plan: GenerationPlan, day: dt.date, covered_ms: np.ndarray) -> tuple[list[str], np.ndarray]:
    """One nvidia-smi CSV log per replica (rows of ``covered_ms``), and its utilization.gpu.

    utilization.gpu of the sample stamped in minute m = the covered share of minute m in percent,
    stochastically rounded (floor(x + U[0, 1)), unbiased), plus a 1-point blip on ~2% of
    samples, capped at 100: 0-1 % when idle, within 2 points of the covered share otherwise.
    """
    replicas = covered_ms.shape[0]
    rng = np.random.default_rng([plan.seed, STREAM_TELEMETRY, day.toordinal()])
    shape = (replicas, MINUTES_PER_DAY)
    utilization = np.minimum(
        100, (np.floor(covered_ms / (MINUTE_MS / 100) + rng.random(shape)) + (rng.random(shape) < TELEMETRY_BLIP_RATIO))
    ).astype(np.int64)
    memory_utilization = np.rint(utilization * rng.uniform(0.25, 0.40, shape)).astype(np.int64)
    power_centiwatts = np.rint((69.5 + 3.1 * utilization + rng.normal(0.0, 0.8, shape)) * 100).astype(np.int64)
    clock_mhz = 1980 - 15 * np.floor(utilization / 100 * rng.uniform(0, 21, shape)).astype(np.int64)
    # `nvidia-smi -l 60` from when the exporter started: a fixed sub-second offset per replica
    # and day, then exactly 60 s apart (so utilization x interval is exact); each sample lands
    # inside the minute it describes.
    offset_ms = rng.integers(0, 1_000, (replicas, 1))
    sample_ms = epoch_ms(day) + np.arange(MINUTES_PER_DAY) * TELEMETRY_SAMPLE_MS + offset_ms
    texts = []
    for replica in range(replicas):
        samples = pl.DataFrame(
            {
                "ms": sample_ms[replica],
                "util": utilization[replica],
                "mem": memory_utilization[replica],
                "power": power_centiwatts[replica],
                "clock": clock_mhz[replica],
            }
        )
        lines = samples.select(
            pl.concat_str(
                [
                    pl.col("ms").cast(pl.Datetime("ms")).dt.strftime("%Y/%m/%d %H:%M:%S%.3f"),
                    pl.lit(f", {GPU_NAME}, {GPU_PCI_BUS_ID}, "),
                    pl.col("util").cast(pl.String),
                    pl.lit(" %, "),
                    pl.col("mem").cast(pl.String),
                    pl.lit(f" %, {GPU_MEMORY_USED_MIB} MiB, {GPU_MEMORY_TOTAL_MIB} MiB, "),
                    (pl.col("power") // 100).cast(pl.String),
                    pl.lit("."),
                    (pl.col("power") % 100).cast(pl.String).str.zfill(2),
                    pl.lit(" W, "),
                    pl.col("clock").cast(pl.String),
                    pl.lit(" MHz"),
                ]
            ).alias("line")
        )["line"]
        texts.append(NVIDIA_SMI_HEADER + "\n" + "\n".join(lines.to_list()) + "\n")
    return texts, utilization


def telemetry_file_name(replica_id: str, day: dt.date) -> str:
    return f"gpu_telemetry/nvidia_smi_{replica_id}_{day.isoformat()}.csv"


def focus_file_name(month: str) -> str:
    return f"gpu_billing/focus_{month}.csv"


def gpu_hours_file_name(month: str) -> str:
    return f"gpu_billing/gpu_hours_{month}.csv"


def loadtest_file_name(pool: str) -> str:
    return f"loadtest/{pool}.csv"


def loadtest_rows() -> list[dict]:
    """A replica of the interactive pool under load: 512 prompt + 128 output tokens per call.

    Prefill is compute-bound (~36k tokens/s); a decode step costs 9.2 ms plus a part growing
    with the batch, so the rate rises then flattens while latency climbs from ~1.2 s to ~9 s.
    Values are rounded like the public H200 curve (``requests_per_s`` = batch / latency).
    """
    prompt_tokens, output_tokens = 512, 128
    rows = []
    for batch_size in LOADTEST_BATCH_SIZES:
        prefill_s = 0.012 + batch_size * prompt_tokens / 36_000
        latency_s = round(prefill_s + output_tokens * (0.0092 + 0.00023 * batch_size**0.9), 4)
        rows.append(
            {
                "gpu": GPU_NAME,
                "model_shape": LOADTEST_MODEL_SHAPE,
                "params_b": 8.03,
                "dtype": "bfloat16",
                "engine": LOADTEST_ENGINE,
                "batch_size": batch_size,
                "prompt_tokens": prompt_tokens,
                "output_tokens": output_tokens,
                "prefill_s": round(prefill_s, 4),
                "request_latency_s": latency_s,
                "requests_per_s": round(batch_size / latency_s, 3),
                "output_tokens_per_s": round(batch_size * output_tokens / latency_s, 1),
                # bf16 weights + KV cache of 640 tokens per sequence + activations.
                "peak_mem_gib": round(15.31 + batch_size * 0.088125, 2),
            }
        )
    return rows


def loadtest_csv(rows: list[dict]) -> str:
    """The load test as its CSV file's text (``LOADTEST_COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOADTEST_COLUMNS)
    writer.writerows([[row[column] for column in LOADTEST_COLUMNS] for row in rows])
    return buffer.getvalue()


def loadtest_slo_cut(rows: list[dict], latency_slo_s: float = LATENCY_SLO_S) -> dict:
    """The largest batch whose latency meets the SLO, and its rate as written in the CSV."""
    within = [row for row in rows if row["request_latency_s"] <= latency_slo_s]
    best = max(within, key=lambda row: row["batch_size"])
    return {
        "batch_size": best["batch_size"],
        "request_latency_s": best["request_latency_s"],
        "requests_per_s": repr(best["requests_per_s"]),
    }


def replicas_needed(peak_hour_requests: int, per_replica_rps: Decimal, headroom: Decimal = CAPACITY_HEADROOM) -> int:
    """ceil(peak_rps / per_replica_rps x (1 + headroom)), peak_rps = busiest hour's calls / 3600."""
    needed = Decimal(peak_hour_requests) / 3600 / per_replica_rps * (1 + headroom)
    return int(needed.to_integral_value(rounding=ROUND_CEILING))


def _six_decimals(value: Decimal) -> str:
    return format(value.quantize(Decimal("1e-6"), rounding=ROUND_HALF_UP), "f")


class _Bare(str):
    """A FOCUS field written without quotes (numbers); plain ``str`` is quoted, None is NULL."""


def _focus_line(row: dict) -> str:
    fields = []
    for column in FOCUS_COLUMNS:
        value = row.get(column)
        if value is None:
            fields.append("NULL")
        elif isinstance(value, _Bare):
            fields.append(str(value))
        else:
            fields.append('"' + value.replace('"', '""') + '"')
    return ",".join(fields)


def _focus_cost(value: Decimal) -> _Bare:
    return _Bare(format(value.quantize(_FOCUS_COST_QUANTUM), "f"))


def _focus_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _focus_common(month_start: dt.date) -> dict:
    next_month = month_last_day(month_start) + dt.timedelta(days=1)
    return {
        "BillingAccountId": FOCUS_BILLING_ACCOUNT,
        "BillingAccountName": "costwatch-demo",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": _focus_time(dt.datetime.combine(next_month, dt.time())),
        "BillingPeriodStart": _focus_time(dt.datetime.combine(month_start, dt.time())),
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": FOCUS_PROVIDER,
        "PricingCategory": "Standard",
        "ProviderName": FOCUS_PROVIDER,
        "PublisherName": FOCUS_PROVIDER,
        "RegionId": FOCUS_REGION,
        "RegionName": FOCUS_REGION_NAME,
        "SubAccountId": FOCUS_PROJECT,
        "SubAccountName": FOCUS_PROJECT,
    }


def _focus_row_id(day: dt.date, slot: int) -> _Bare:
    """A stable row id: the same (day, slot) always gets the same Id, in any range."""
    return _Bare(str((day.toordinal() - 700_000) * 1_000 + slot))


def _focus_gpu_rows(day: dt.date, pool: PoolSpec) -> list[dict]:
    """One Usage row per replica per hour of ``day``: every VM runs 24/7, busy or not."""
    common = _focus_common(day.replace(day=1))
    price = FOCUS_USD_PER_INSTANCE_HOUR
    cost = _focus_cost(price)
    rows = []
    for hour in range(24):
        start = dt.datetime.combine(day, dt.time(hour))
        for index, replica_id in enumerate(pool.replica_ids):
            rows.append(
                {
                    **common,
                    "AvailabilityZone": _FOCUS_ZONES[index % len(_FOCUS_ZONES)],
                    "BilledCost": cost,
                    "ContractedCost": cost,
                    "ContractedUnitPrice": cost,
                    "EffectiveCost": cost,
                    "ListCost": cost,
                    "ListUnitPrice": decimal_text(price),
                    "ChargeDescription": f"{pool.gpus_per_replica} x NVIDIA H100 80GB "
                    f"{FOCUS_INSTANCE_TYPE} running in {FOCUS_REGION}",
                    "ChargePeriodStart": _focus_time(start),
                    "ChargePeriodEnd": _focus_time(start + dt.timedelta(hours=1)),
                    "ConsumedQuantity": _Bare(format(Decimal(1).quantize(_FOCUS_QUANTITY_QUANTUM), "f")),
                    "ConsumedUnit": "Hours",
                    "PricingQuantity": _focus_cost(Decimal(1)),
                    "PricingUnit": "Hours",
                    "ResourceId": focus_resource_id(index),
                    "ResourceName": f"serving-{replica_id}",
                    "ResourceType": "instance",
                    "ServiceCategory": "Compute",
                    "ServiceName": "Compute Engine",
                    "ServiceSubcategory": "Virtual Machines",
                    "Id": _focus_row_id(day, hour * 10 + index),
                    "SkuId": FOCUS_GPU_SKU,
                    "SkuPriceId": f"{FOCUS_GPU_SKU}-ondemand-{FOCUS_REGION}",
                    "Tags": json.dumps({FOCUS_POOL_TAG: pool.name, FOCUS_REPLICA_TAG: replica_id}),
                    "SkuPriceDetails": json.dumps(
                        {"InstanceType": FOCUS_INSTANCE_TYPE, "GpuCount": pool.gpus_per_replica}
                    ),
                }
            )
    return rows


def _focus_non_gpu_rows(day: dt.date) -> list[dict]:
    """Two charges of the same project that are not GPU time: a model-weights disk (tagged, but
    with no pool tag) and internet egress (untagged). Both cover ``day``."""
    common = _focus_common(day.replace(day=1))
    start = dt.datetime.combine(day, dt.time())
    period = {"ChargePeriodStart": _focus_time(start), "ChargePeriodEnd": _focus_time(start + dt.timedelta(days=1))}
    disk_gib_hours, disk_price = Decimal(500 * 24), Decimal("0.000232877")
    egress_gib, egress_price = Decimal(180), Decimal("0.12")
    return [
        {
            **common,
            **period,
            "AvailabilityZone": _FOCUS_ZONES[0],
            "BilledCost": _focus_cost(disk_gib_hours * disk_price),
            "ContractedCost": _focus_cost(disk_gib_hours * disk_price),
            "ContractedUnitPrice": _focus_cost(disk_price),
            "EffectiveCost": _focus_cost(disk_gib_hours * disk_price),
            "ListCost": _focus_cost(disk_gib_hours * disk_price),
            "ListUnitPrice": decimal_text(disk_price),
            "ChargeDescription": f"SSD backed PD Capacity in {FOCUS_REGION}",
            "ConsumedQuantity": _Bare(format(disk_gib_hours.quantize(_FOCUS_QUANTITY_QUANTUM), "f")),
            "ConsumedUnit": "GiB-Hours",
            "PricingQuantity": _focus_cost(disk_gib_hours),
            "PricingUnit": "GiB-Hours",
            "ResourceId": f"//compute.googleapis.com/projects/{FOCUS_PROJECT}/zones/"
            f"{_FOCUS_ZONES[0]}/disks/model-weights-ssd",
            "ResourceName": "model-weights-ssd",
            "ResourceType": "disk",
            "ServiceCategory": "Storage",
            "ServiceName": "Compute Engine",
            "ServiceSubcategory": "Block Storage",
            "Id": _focus_row_id(day, 900),
            "SkuId": "D973-5D65-BAB2",
            "SkuPriceId": f"D973-5D65-BAB2-ondemand-{FOCUS_REGION}",
            "Tags": json.dumps({"costwatch-env": "prod"}),
            "SkuPriceDetails": json.dumps({"DiskType": "pd-ssd", "DiskSpace": 500}),
        },
        {
            **common,
            **period,
            "AvailabilityZone": None,
            "BilledCost": _focus_cost(egress_gib * egress_price),
            "ContractedCost": _focus_cost(egress_gib * egress_price),
            "ContractedUnitPrice": _focus_cost(egress_price),
            "EffectiveCost": _focus_cost(egress_gib * egress_price),
            "ListCost": _focus_cost(egress_gib * egress_price),
            "ListUnitPrice": decimal_text(egress_price),
            "ChargeDescription": "Network Internet Data Transfer Out from Americas to Americas",
            "ConsumedQuantity": _Bare(format(egress_gib.quantize(_FOCUS_QUANTITY_QUANTUM), "f")),
            "ConsumedUnit": "GiB",
            "PricingQuantity": _focus_cost(egress_gib),
            "PricingUnit": "GiB",
            "ResourceId": None,
            "ResourceName": None,
            "ResourceType": None,
            "ServiceCategory": "Networking",
            "ServiceName": "Networking",
            "ServiceSubcategory": "Network Connectivity",
            "Id": _focus_row_id(day, 901),
            "SkuId": "9DE9-9092-B3BC",
            "SkuPriceId": f"9DE9-9092-B3BC-ondemand-{FOCUS_REGION}",
            "Tags": None,
            "SkuPriceDetails": None,
        },
    ]


class GpuLedger:
    """Collects, day by day, what the self-hosted pools are billed and how busy they were, and
    writes each day's nvidia-smi logs as it goes."""

    def __init__(self, plan: GenerationPlan, out_dir: Path):
        self.plan = plan
        self.out_dir = out_dir
        self.telemetry_pool = POOL_BY_NAME[FOCUS_POOL]
        self.daily: dict[str, dict[str, dict]] = {pool.name: {} for pool in POOLS}
        self.busy_minutes: dict[str, dict[str, str]] = {
            replica_id: {} for replica_id in self.telemetry_pool.replica_ids
        }
        self.utilization_sum: dict[str, int] = {}  # day -> sum of utilization.gpu [%] of pool
        self.hourly_peaks: dict[str, list[tuple[str, int, int]]] = {pool.name: [] for pool in POOLS}
        self.removed: dict[str, dict[str, int]] = {pool.name: {} for pool in POOLS}
        self.files: list[dict] = []
        self.written: set[str] = set()
        # Calls of the telemetry pool that started before midnight and still ran after it: the
        # GPU is busy with them in the next day's first minutes. Nothing runs into the range's
        # first day: the logs hold no call before the range.
        empty = np.zeros(0, dtype=np.int64)
        self.carried: tuple[np.ndarray, np.ndarray, np.ndarray] = (empty, empty, empty)

    def emit(self, relative: str, text: str, entry: dict) -> None:
        write_text_atomically(self.out_dir / relative, text)
        self.written.add(relative)
        self.files.append({"path": relative, **entry})

    def add_day(self, day: dt.date, frame: pl.DataFrame, removed: dict[str, int]) -> None:
        """Account one day's TRUE calls (``_true_day_frame``) and write its telemetry."""
        iso_day = day.isoformat()
        day_start_ms = epoch_ms(day)
        hourly = (
            frame.lazy()
            .filter(pl.col("pool").is_not_null() & pl.col("replica_id").is_not_null())
            .group_by("pool", pl.col("ts").dt.hour().alias("hour"))
            .len()
            .collect()
        )
        for pool in POOLS:
            replica, start, end = replica_busy_intervals(frame, pool)
            # Busy time from the logs, as a reader of one day's logs sees it: per replica the
            # union of the calls that started that day, clipped at midnight.
            log_busy_ms = sum(
                int(covered_ms_per_minute(start[replica == index], end[replica == index], day_start_ms).sum())
                for index in range(pool.replica_count)
            )
            per_hour = np.zeros(24, dtype=np.int64)
            of_pool = hourly.filter(pl.col("pool") == pool.name)
            per_hour[of_pool["hour"].to_numpy()] = of_pool["len"].to_numpy()
            peak_hour = int(np.argmax(per_hour))  # the earliest of equally busy hours
            self.hourly_peaks[pool.name].append((iso_day, peak_hour, int(per_hour[peak_hour])))
            instance_hours = Decimal(24 * pool.replica_count)
            entry = {
                "replicas": pool.replica_count,
                "billed_gpu_hours": decimal_text(instance_hours * pool.gpus_per_replica),
                "billed_usd": decimal_text(instance_hours * pool_usd_per_instance_hour(pool)),
                "log_busy_gpu_hours": _six_decimals(Decimal(log_busy_ms * pool.gpus_per_replica) / HOUR_MS),
                "served_requests": int(per_hour.sum()),
                "peak_hour": peak_hour,
                "peak_hour_requests": int(per_hour[peak_hour]),
            }
            if removed.get(pool.name):
                entry["removed_requests"] = removed[pool.name]
                self.removed[pool.name][iso_day] = removed[pool.name]
            if pool.name == self.telemetry_pool.name:
                carried_replica, carried_start, carried_end = self.carried
                late = end > day_start_ms + DAY_MS
                self.carried = (replica[late], start[late], end[late])
                replica = np.concatenate([carried_replica, replica])
                start = np.concatenate([carried_start, start])
                end = np.concatenate([carried_end, end])
                covered = np.stack(
                    [
                        covered_ms_per_minute(start[replica == index], end[replica == index], day_start_ms)
                        for index in range(pool.replica_count)
                    ]
                )
                texts, utilization = _nvidia_smi_text(self.plan, day, covered)
                for index, replica_id in enumerate(pool.replica_ids):
                    self.emit(
                        telemetry_file_name(replica_id, day),
                        texts[index],
                        {
                            "kind": "nvidia_smi",
                            "pool": pool.name,
                            "replica_id": replica_id,
                            "day": iso_day,
                            "rows": MINUTES_PER_DAY,
                        },
                    )
                    # Each sample stands for its minute: busy minutes = sum(util %) / 100.
                    self.busy_minutes[replica_id][iso_day] = str(Decimal(int(utilization[index].sum())).scaleb(-2))
                self.utilization_sum[iso_day] = int(utilization.sum())
                entry["busy_gpu_hours"] = _six_decimals(Decimal(int(utilization.sum()) * pool.gpus_per_replica) / 6_000)
            self.daily[pool.name][iso_day] = entry


def write_gpu(out_dir: Path, plan: GenerationPlan, ledger: GpuLedger) -> tuple[dict, list[dict]]:
    """Write the GPU billing exports and the load test; return (``manifest["gpu"]``,
    ``manifest["gpu_events"]``). Telemetry is already written by ``ledger.add_day``."""
    for folder, _ in _GPU_GLOBS:
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    focus_pool = POOL_BY_NAME[FOCUS_POOL]
    csv_pool = POOL_BY_NAME[GPU_HOURS_CSV_POOL]
    days_by_month: dict[str, list[dt.date]] = {}
    for day in plan.record_days:
        days_by_month.setdefault(month_key(day), []).append(day)

    billed_from_files: dict[tuple[str, str], Decimal] = {}
    non_gpu_rows: list[dict] = []
    for month, days in days_by_month.items():
        lines = [",".join(f'"{column}"' for column in FOCUS_COLUMNS)]
        row_count = 0
        for day in days:
            rows = _focus_gpu_rows(day, focus_pool)
            key = (focus_pool.name, day.isoformat())
            billed_from_files[key] = sum((Decimal(row["BilledCost"]) for row in rows), Decimal(0))
            if day == days[0]:
                extra = _focus_non_gpu_rows(day)
                rows += extra
                non_gpu_rows += [
                    {
                        "month": month,
                        "Id": int(row["Id"]),
                        "ServiceCategory": row["ServiceCategory"],
                        "ChargeDescription": row["ChargeDescription"],
                        "BilledCost": decimal_text(Decimal(row["BilledCost"])),
                    }
                    for row in extra
                ]
            lines += [_focus_line(row) for row in rows]
            row_count += len(rows)
        ledger.emit(
            focus_file_name(month),
            "\n".join(lines) + "\n",
            {"kind": "focus", "pool": focus_pool.name, "month": month, "rows": row_count},
        )

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(GPU_HOURS_COLUMNS)
        for day in days:
            for replica_id in csv_pool.replica_ids:
                usd = (24 * csv_pool.gpus_per_replica * GPU_HOURS_USD_PER_GPU_HOUR).quantize(Decimal("0.01"))
                writer.writerow(
                    [day.isoformat(), csv_pool.name, replica_id, csv_pool.gpu_type, csv_pool.gpus_per_replica, 24, usd]
                )
                key = (csv_pool.name, day.isoformat())
                billed_from_files[key] = billed_from_files.get(key, Decimal(0)) + usd
        ledger.emit(
            gpu_hours_file_name(month),
            buffer.getvalue(),
            {"kind": "gpu_hours", "pool": csv_pool.name, "month": month, "rows": len(days) * csv_pool.replica_count},
        )

    for (pool_name, iso_day), usd in billed_from_files.items():
        if Decimal(ledger.daily[pool_name][iso_day]["billed_usd"]) != usd:
            raise AssertionError(f"{pool_name} {iso_day}: files bill {usd}")

    rows = loadtest_rows()
    ledger.emit(
        loadtest_file_name(focus_pool.name),
        loadtest_csv(rows),
        {"kind": "loadtest", "pool": focus_pool.name, "rows": len(rows)},
    )
    cut = loadtest_slo_cut(rows)

    for folder, pattern in _GPU_GLOBS:
        for stale in sorted((out_dir / folder).glob(pattern)):
            if f"{folder}/{stale.name}" not in ledger.written:
                stale.unlink()

    totals = {}
    for pool in POOLS:
        daily = ledger.daily[pool.name].values()
        totals[pool.name] = {
            "billed_gpu_hours": decimal_text(sum((Decimal(d["billed_gpu_hours"]) for d in daily), Decimal(0))),
            "billed_usd": decimal_text(sum((Decimal(d["billed_usd"]) for d in daily), Decimal(0))),
            "log_busy_gpu_hours": _six_decimals(sum((Decimal(d["log_busy_gpu_hours"]) for d in daily), Decimal(0))),
            "served_requests": sum(d["served_requests"] for d in daily),
        }
    focus_busy = Decimal(sum(ledger.utilization_sum.values()) * focus_pool.gpus_per_replica)
    totals[focus_pool.name]["busy_gpu_hours"] = _six_decimals(focus_busy / 6_000)

    gpu_manifest = {
        "pools": {
            focus_pool.name: {
                "billing_export": "focus",
                "files": "gpu_billing/focus_<YYYY-MM>.csv",
                "provider": FOCUS_PROVIDER,
                "instance_type": FOCUS_INSTANCE_TYPE,
                "gpu_type": focus_pool.gpu_type,
                "gpus_per_instance": focus_pool.gpus_per_replica,
                "usd_per_instance_hour": decimal_text(FOCUS_USD_PER_INSTANCE_HOUR),
                "usd_per_gpu_hour": decimal_text(FOCUS_USD_PER_INSTANCE_HOUR / focus_pool.gpus_per_replica),
                "resource_ids": {
                    replica_id: focus_resource_id(index) for index, replica_id in enumerate(focus_pool.replica_ids)
                },
                "tags": {"pool": FOCUS_POOL_TAG, "replica": FOCUS_REPLICA_TAG},
                "telemetry": "gpu_telemetry/nvidia_smi_<replica_id>_<YYYY-MM-DD>.csv",
                "loadtest": loadtest_file_name(focus_pool.name),
            },
            csv_pool.name: {
                "billing_export": "gpu_hours_csv",
                "files": "gpu_billing/gpu_hours_<YYYY-MM>.csv",
                "gpu_type": csv_pool.gpu_type,
                "gpus_per_instance": csv_pool.gpus_per_replica,
                "usd_per_instance_hour": decimal_text(pool_usd_per_instance_hour(csv_pool)),
                "usd_per_gpu_hour": decimal_text(GPU_HOURS_USD_PER_GPU_HOUR),
                "telemetry": None,
                "loadtest": None,
            },
        },
        "definitions": {
            "billed_gpu_hours": "instance hours x GPUs per instance; every replica is billed 24 h a day, busy or not",
            "busy_minutes": "per replica and day: sum over the day's 60 s nvidia-smi samples of "
            "utilization.gpu [%] / 100; a sample stands for the UTC minute its "
            "timestamp falls in, which includes calls that started the day "
            "before and ran past midnight",
            "busy_gpu_hours": "sum of busy_minutes over the pool's replicas x GPUs per replica "
            "/ 60, rounded to 6 decimals (telemetry pools only)",
            "log_busy_gpu_hours": "busy time from the logs: per replica, the union of the "
            "[ts, ts + duration_ms] of its calls whose ts is on the UTC "
            "day (errors included), clipped at the next midnight; x GPUs "
            "per replica, rounded to 6 decimals",
            "telemetry_timestamps": "a fixed sub-second offset per replica and day, then "
            "exactly 60 s apart: 1,440 samples, 24 h of samples",
            "utilization_gpu": "floor(covered share of the minute x 100 + U[0, 1)) + 1 on ~2% "
            "of samples, at most 100: 0-1 % when idle, within 2 points of "
            "the covered share",
            "served_requests": "calls that reached a replica (replica_id set: gateway cache "
            "hits excluded, errors included), by the UTC day of ts",
            "peak_hour_requests": "served_requests in the day's busiest UTC hour of ts "
            "(peak_rps = peak_hour_requests / 3600)",
            "focus_gpu_rows": f"rows with a {FOCUS_POOL_TAG} tag (and GpuCount in "
            "SkuPriceDetails); the others are not GPU time",
        },
        "telemetry": {
            "sample_interval_s": TELEMETRY_SAMPLE_MS // 1000,
            "samples_per_day": MINUTES_PER_DAY,
            "gpu_name": GPU_NAME,
            "memory_used_mib": GPU_MEMORY_USED_MIB,
            "memory_total_mib": GPU_MEMORY_TOTAL_MIB,
        },
        "loadtest": {
            "path": loadtest_file_name(focus_pool.name),
            "pool": focus_pool.name,
            "gpu": GPU_NAME,
            "model_shape": LOADTEST_MODEL_SHAPE,
            "latency_slo_s": LATENCY_SLO_S,
            "slo_batch_size": cut["batch_size"],
            "slo_request_latency_s": repr(cut["request_latency_s"]),
            "requests_per_s_at_slo": cut["requests_per_s"],
        },
        "focus_non_gpu_rows": non_gpu_rows,
        "files": ledger.files,
        "daily": ledger.daily,
        "busy_minutes": ledger.busy_minutes,
        "totals": totals,
    }
    return gpu_manifest, _gpu_event_manifests(plan, ledger, cut, totals)


def _gpu_event_manifests(plan: GenerationPlan, ledger: GpuLedger, cut: dict, totals: dict) -> list[dict]:
    entries = []
    for event in plan.gpu_events:
        pool = POOL_BY_NAME[event.pool]
        if event.kind == "over_provisioned_pool":
            # The busiest hour of the range; the earliest one when several tie.
            peak_day, peak_hour, peak_requests = min(
                ledger.hourly_peaks[pool.name], key=lambda peak: (-peak[2], peak[0], peak[1])
            )
            per_replica_rps = Decimal(cut["requests_per_s"])
            needed = replicas_needed(peak_requests, per_replica_rps)
            billed_hours = Decimal(totals[pool.name]["billed_gpu_hours"])
            busy_hours = Decimal(totals[pool.name]["busy_gpu_hours"])
            excess = pool.replica_count - needed
            effect = {
                "billed_replicas": pool.replica_count,
                "billed_gpu_hours": totals[pool.name]["billed_gpu_hours"],
                "billed_usd": totals[pool.name]["billed_usd"],
                "busy_gpu_hours": totals[pool.name]["busy_gpu_hours"],
                "utilization": _six_decimals(busy_hours / billed_hours),
                "peak_day": peak_day,
                "peak_hour": peak_hour,
                "peak_hour_requests": peak_requests,
                "peak_rps": _six_decimals(Decimal(peak_requests) / 3600),
                "per_replica_rps": cut["requests_per_s"],
                "slo_batch_size": cut["batch_size"],
                "latency_slo_s": LATENCY_SLO_S,
                "headroom": decimal_text(CAPACITY_HEADROOM),
                "replicas_needed": needed,
                "excess_replicas": excess,
                "excess_usd": decimal_text(excess * 24 * plan.days * pool_usd_per_instance_hour(pool)),
                "note": "replicas_needed = ceil(peak_rps / per_replica_rps x (1 + headroom)); "
                "peak over every hour of the range; excess_usd = excess_replicas x 24 h "
                "x days x USD per instance-hour",
            }
        elif event.kind == "idle_weekend":
            days = [
                event.start_day + dt.timedelta(days=offset)
                for offset in range((event.end_day - event.start_day).days + 1)
            ]
            idle_hours = Decimal(24 * len(days) * pool.replica_count * pool.gpus_per_replica)
            effect = {
                "days": [day.isoformat() for day in days],
                "weekdays": [day.strftime("%A") for day in days],
                "removed_requests": {
                    day.isoformat(): ledger.removed[pool.name].get(day.isoformat(), 0) for day in days
                },
                "served_requests": sum(ledger.daily[pool.name][day.isoformat()]["served_requests"] for day in days),
                "idle_gpu_hours": decimal_text(idle_hours),
                "idle_usd": decimal_text(idle_hours * GPU_HOURS_USD_PER_GPU_HOUR),
                "billed_usd": decimal_text(
                    sum((Decimal(ledger.daily[pool.name][day.isoformat()]["billed_usd"]) for day in days), Decimal(0))
                ),
                "note": "idle_usd = 24 h x days x replicas x GPUs per replica x USD per GPU-hour",
            }
        else:
            raise ValueError(f"unknown GPU event {event.kind!r}")
        entries.append(event.to_manifest(effect))
    return entries
