"""What a day's marts were computed under, besides its input files: the prices in force that day
and the settings that shape marts. A change to either is a change to the day, as a changed input
file is: `costwatch run --changed` re-runs the days whose fingerprint moved.

`lake/_manifests/day_settings.json` maps each day to the fingerprint its last successful run
recorded. A day with no record (run before this was kept) counts as unchanged until it runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pipelines.lake.health import read_state
from pipelines.lake.manifest import file_digest, file_state, write_json_atomic
from pipelines.resources.config import CostwatchConfig

# The config sections that change what the marts hold (not where files are, nor how alerts are
# delivered): budgets, pools, thresholds, currency rates, the GPU tags, pseudonymisation, the
# savings windows (not savings.min_monthly_usd: which findings are listed).
MART_SETTINGS = ("budgets", "pools", "checks", "reconciliation", "currency_rates", "gpu", "privacy", "savings")
ALERT_THRESHOLDS = ("min_impact_usd", "min_impact_pct")


@cache
def _file_digest(path: Path, stat_fields: tuple[int, ...]) -> str:  # stat_fields: the cache key only
    return file_digest(path)


def _content_digest(path: Path) -> str:
    """The file's digest, once per process while its stat fields stay as they were (the input
    manifest's rule: a replaced file has another inode or ctime, whatever its size and mtime)."""
    return _file_digest(path, tuple(file_state(path).values()))


def day_fingerprints(config: CostwatchConfig, days: Iterable[dt.date]) -> dict[dt.date, str]:
    """Per day: a digest of the price catalog in force (its bytes), the overrides in force, and
    the mart-shaping settings. A new catalog version effective from day D moves D's fingerprint
    and every later day's, not the days before D."""
    settings = config.model_dump(mode="json", include=set(MART_SETTINGS))
    settings["alerts"] = {key: getattr(config.alerts, key) for key in ALERT_THRESHOLDS}
    settings["savings"].pop("min_monthly_usd")  # what is listed, not what the marts hold
    settings["pools"] = {name: {**pool, "load_test": _load_test(pool)} for name, pool in settings["pools"].items()}
    candidates = settings["savings"]["selfhost_candidates"]
    settings["savings"]["selfhost_candidates"] = {
        model: {**candidate, "load_test": _load_test(candidate)} for model, candidate in candidates.items()
    }
    versions = config.price_versions  # oldest first
    prints = {}
    for day in days:
        in_force = [version for version in versions if version.effective_from <= day]
        catalog = (in_force[-1].effective_from.isoformat(), _content_digest(in_force[-1].catalog)) if in_force else None
        overrides = sorted(
            (override.model, override.effective_from.isoformat(), json.dumps(override.prices, sort_keys=True))
            for override in config.price_overrides
            if override.effective_from <= day
        )
        text = json.dumps({"catalog": catalog, "overrides": overrides, "settings": settings}, sort_keys=True)
        prints[day] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return prints


def _load_test(pool: dict) -> str | None:
    """A load-test CSV (a pool's, a self-host candidate's) shapes its marts by content, not by path."""
    path = pool.get("load_test")
    return _content_digest(Path(path)) if path else None


class DaySettings:
    """The fingerprint each day's last successful run was computed under."""

    def __init__(self, lake_dir: Path):
        self.path = lake_dir / "_manifests" / "day_settings.json"
        state = read_state(self.path)
        # Rebuilt, it knows no day's settings: every day counts as changed until it runs again.
        self.rebuilt = state is None
        self.days: dict[dt.date, str] = {dt.date.fromisoformat(day): value for day, value in (state or {}).items()}

    def changed(self, current: dict[dt.date, str]) -> list[dt.date]:
        """Days with a record that differs from `current` (prices or settings changed since)."""
        if self.rebuilt:
            return sorted(current)
        return sorted(day for day, value in current.items() if day in self.days and self.days[day] != value)

    def record(self, current: dict[dt.date, str]) -> None:
        self.days.update(current)
        write_json_atomic(self.path, {day.isoformat(): value for day, value in sorted(self.days.items())})
