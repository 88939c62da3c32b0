"""``OUT/manifest.json``: the truth a reader checks an ingest against (counts, planted events, money)."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import numpy as np

from pipelines.demo.traffic import (
    API_BATCH_SHARE_OF_WEEKDAY,
    BATCH_SHARE_OF_WEEKDAY,
    DAILY_GROWTH_RATIO,
    FEATURES,
    INTERACTIVE_HOURLY_WEIGHTS,
    MISSING_FEATURE_RATIO,
    MISSING_USER_RATIO,
    MODELS,
    POOLS,
    USER_COUNT,
    WEEKEND_INTERACTIVE_RATIO,
    GenerationPlan,
)

MANIFEST_VERSION = 4  # 2: provider billing exports, billing_events, lost_records;
#                        3: GPU billing, GPU telemetry, load test, gpu_events, manifest["gpu"];
#                        4: service tiers, long context, 1-hour writes, audio, Azure (models' price_key)


def decimal_text(amount: Decimal) -> str:
    """Plain decimal text without trailing zeros: Decimal('42.00') -> '42'."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = path.with_name(path.name + ".tmp")
    temporary_path.write_text(text, encoding="utf-8", newline="")
    os.replace(temporary_path, path)


def truth_manifest(
    plan: GenerationPlan,
    *,
    files: list[dict],
    per_day: dict[str, dict],
    totals: dict,
    billing_events: list[dict],
    billing: dict,
    gpu_events: list[dict],
    gpu: dict,
) -> dict:
    """The manifest of one generated range: what was written, what was planted, and the catalogue."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": "canonical",
        "seed": plan.seed,
        "start_date": plan.start_date.isoformat(),
        "end_date": plan.end_date.isoformat(),
        "days": plan.days,
        "requests_per_day": plan.requests_per_day,
        "files": files,
        "totals": totals,
        "per_day": per_day,
        "events": [event.to_manifest() for event in plan.events],
        "billing_events": billing_events,
        "billing": billing,
        "gpu_events": gpu_events,
        "gpu": gpu,
        "models": {
            model.name: {
                "provider": model.provider,
                "pool": model.pool,
                "in_price_catalog": model.in_price_catalog,
                "price_key": model.price_key if model.in_price_catalog else None,
            }
            for model in MODELS
        },
        "features": [
            {
                "name": feature.name,
                "team": feature.team,
                "workload": feature.workload,
                "models": {name: share for name, share in feature.model_mix},
                "service_tier": feature.service_tier,
                "priority_ratio": feature.priority_ratio,
                "cache_write_1h_ratio": feature.cache_write_1h_ratio,
                "audio_output_ratio": feature.audio_output_ratio,
                "reasoning_output_ratio": feature.reasoning_output_ratio,
            }
            for feature in FEATURES
        ],
        "pools": {
            pool.name: {
                "model": pool.model,
                "replicas": pool.replica_ids,
                "gpu_type": pool.gpu_type,
                "gpus_per_replica": pool.gpus_per_replica,
                "workload": pool.workload,
            }
            for pool in POOLS
        },
        "users": {
            "count": USER_COUNT,
            "missing_user_ratio": MISSING_USER_RATIO,
            "missing_feature_ratio": MISSING_FEATURE_RATIO,
        },
        "volume": {
            "weekend_interactive_ratio": WEEKEND_INTERACTIVE_RATIO,
            "batch_share_of_weekday": BATCH_SHARE_OF_WEEKDAY,
            "api_batch_share_of_weekday": API_BATCH_SHARE_OF_WEEKDAY,
            "daily_growth_ratio": DAILY_GROWTH_RATIO,
            "interactive_peak_hour_utc": int(np.argmax(INTERACTIVE_HOURLY_WEIGHTS)),
            "batch_window_utc": ["00:30", "06:00"],
        },
    }


def write_manifest(out_dir: Path, manifest: dict) -> None:
    manifest_path = out_dir / "manifest.json"
    temporary_manifest = manifest_path.with_name(manifest_path.name + ".tmp")
    temporary_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary_manifest, manifest_path)
