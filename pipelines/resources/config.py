"""costwatch.yaml: load, validate, and resolve paths.

Every error names the key that is wrong and says how to fix it, because the person reading it
is a platform engineer at a terminal, not the author of this file.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_ENV = "COSTWATCH_CONFIG"
DEFAULT_CONFIG = "costwatch.yaml"
# The pseudonymisation key (privacy.pseudonymise_user_id) comes from here, never from the file.
PSEUDONYM_KEY_ENV = "COSTWATCH_PSEUDONYM_KEY"
PSEUDONYM_KEY_MIN_BYTES = 16


PRICE_FIELDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)


class ConfigError(ValueError):
    """A costwatch.yaml problem, phrased as `key: what is wrong; how to fix it`."""


@dataclass(frozen=True)
class SourceSpec:
    path: str  # glob, resolved against the config file's folder
    format: str


@dataclass(frozen=True)
class PriceVersion:
    catalog: Path
    effective_from: dt.date


@dataclass(frozen=True)
class PriceOverride:
    model: str
    prices: dict[str, float]  # USD per token, keys from PRICE_FIELDS
    effective_from: dt.date


@dataclass(frozen=True)
class PoolSpec:
    name: str
    gpu_type: str
    latency_slo_s: float
    headroom: float
    warm_floor: int
    api_equivalent: str | None
    load_test: Path | None = None  # a batching-curve CSV: per-replica rate measured off the logs


@dataclass(frozen=True)
class GpuSettings:
    pool_tag: str = "costwatch-pool"  # billing tag naming a resource's serving pool
    replica_tag: str = "costwatch-replica"  # billing tag naming the replica (else the ResourceId)
    instance_types: Path | None = None  # extra rows for fixtures/gpu/instance_types.csv


@dataclass(frozen=True)
class CheckThresholds:
    max_quarantine_share: float = 0.01  # ratio 0-1 of a day's lines
    max_duplicate_share: float = 0.02
    max_unpriced_share: float = 0.01  # ratio 0-1 of a day's priced-by-catalog requests


@dataclass(frozen=True)
class AlertSettings:
    min_impact_usd: float = 50.0
    min_impact_pct: float = 0.2
    slack_channel: str | None = None
    dagster_url: str = "http://127.0.0.1:3000"  # alert links point at the Dagster UI here


@dataclass(frozen=True)
class ReconciliationSettings:
    # A billed line matches its estimate when |billed - estimated| <= max(tolerance_usd,
    # tolerance_pct x billed): small lines are judged in dollars, large ones in percent.
    tolerance_pct: float = 0.02  # ratio 0-1
    tolerance_usd: float = 0.50
    # Gateway and provider token counts match within this share (ratio 0-1).
    token_tolerance_pct: float = 0.005


@dataclass(frozen=True)
class PrivacySettings:
    # Analyst-facing marts carry `u_` + HMAC-SHA256(key, user_id) instead of the user id; the key
    # is read from COSTWATCH_PSEUDONYM_KEY when models run (see `pseudonym_key`), so the file and
    # the config object never hold it, and readers (`costwatch query`) do not need it.
    pseudonymise_user_id: bool = False


@dataclass(frozen=True)
class CostwatchConfig:
    path: Path  # the YAML file itself; relative paths inside resolve against its folder
    data_dir: Path
    start_date: dt.date
    sources: dict[str, tuple[SourceSpec, ...]]
    price_versions: tuple[PriceVersion, ...]
    price_overrides: tuple[PriceOverride, ...]
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)  # USD per calendar month per feature
    alerts: AlertSettings = AlertSettings()
    checks: CheckThresholds = CheckThresholds()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    currency_rates: dict[str, float] = field(default_factory=dict)  # USD per unit of each currency
    gpu: GpuSettings = GpuSettings()
    privacy: PrivacySettings = PrivacySettings()

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    def resolve(self, relative: str | Path) -> Path:
        candidate = Path(os.path.expanduser(str(relative)))
        return candidate if candidate.is_absolute() else self.path.parent / candidate

    def source_files(self, source: str) -> list[tuple[Path, str]]:
        """Every file a source's globs match today, as (path, format), sorted and de-duplicated."""
        found: dict[Path, str] = {}
        for spec in self.sources.get(source, ()):
            for match in sorted(glob.glob(str(self.resolve(spec.path)), recursive=True)):
                found.setdefault(Path(match).resolve(), spec.format)
        return sorted(found.items())


def pseudonym_key(config: CostwatchConfig, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The key user ids are pseudonymised with, or None when the config does not ask for it.

    Read at use, not at load: analysts who only query the warehouse never need the secret."""
    if not config.privacy.pseudonymise_user_id:
        return None
    key = (environ.get(PSEUDONYM_KEY_ENV) or "").encode("utf-8")
    if len(key) < PSEUDONYM_KEY_MIN_BYTES:
        # The value is the secret, so the message gives its state, not the value.
        state = "is not set" if not key else f"is shorter than {PSEUDONYM_KEY_MIN_BYTES} bytes"
        raise ConfigError(
            f"privacy.pseudonymise_user_id: true, but {PSEUDONYM_KEY_ENV} {state}; set it in the environment "
            f"to a random secret of at least {PSEUDONYM_KEY_MIN_BYTES} bytes (e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`) and keep it: another key gives "
            "every user another pseudonym. Or set privacy.pseudonymise_user_id: false"
        )
    return key


def config_path_from_env(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_config(path: str | Path | None = None) -> CostwatchConfig:
    config_path = config_path_from_env(path)
    if not config_path.is_file():
        raise ConfigError(f"config file {config_path} does not exist; pass --config PATH or set {CONFIG_ENV}")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{config_path}: not valid YAML ({error}); fix the syntax") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping of keys such as data_dir, sources")
    return _parse(raw, config_path)


_TOP_KEYS = {
    "data_dir",
    "start_date",
    "sources",
    "prices",
    "pools",
    "budgets",
    "alerts",
    "checks",
    "reconciliation",
    "currency_rates",
    "gpu",
    "privacy",
}

# Keys that name a secret. costwatch.yaml is committed and copied around, so a secret in it is
# refused (whatever its value) with the environment variable to use instead. The key's last
# `_` words decide: `slack_token`, `api_key`, `webhook_url` are secrets. Price fields
# (`input_cost_per_token` ends in `token` too) and the names users give features, pools,
# models and currencies are not settings and are not checked.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:token|secret|password|passwd|api_?key|access_key|private_key|credentials?|"
    r"webhook(?:_url)?|pseudonym_key|hmac_key)$"
)
# Values that are Slack secrets whatever key holds them: tokens and Incoming Webhook URLs.
_SECRET_VALUE = re.compile(r"^\s*(?:xox[abposre]-|xapp-|https://hooks\.slack\.com/)", re.IGNORECASE)
# Mappings whose keys are names the user chose (a feature, pool, model, currency), not settings.
_NAMED_MAPS = {("budgets",), ("pools",), ("prices", "overrides"), ("currency_rates",)}


def _reject_secrets(value: Any, path: tuple[str, ...] = ()) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            name = str(key)
            if path not in _NAMED_MAPS and name not in PRICE_FIELDS and _SECRET_KEY.search(name.lower()):
                raise ConfigError(
                    f"{'.'.join((*path, name))}: looks like a secret, and costwatch.yaml must hold none "
                    f"(it is committed and shared); remove it and set {_secret_env(name)} in the environment instead"
                )
            _reject_secrets(child, (*path, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _reject_secrets(child, (*path[:-1], f"{path[-1]}[{index}]") if path else (f"[{index}]",))
    elif isinstance(value, str) and _SECRET_VALUE.match(value):
        # The value is the secret: the message names where it is, never what it is.
        raise ConfigError(
            f"{'.'.join(path)}: holds a Slack token or webhook URL (value not shown), and costwatch.yaml "
            "must hold no secrets; remove it and set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL in the environment instead"
        )


def _secret_env(key: str) -> str:
    key = key.lower()
    if "webhook" in key:
        return "SLACK_WEBHOOK_URL"
    if "pseudonym" in key or "hmac" in key:
        return PSEUDONYM_KEY_ENV
    if "token" in key:
        return "SLACK_BOT_TOKEN (with alerts.slack_channel)"
    return (
        "the environment variable the README names for it (SLACK_BOT_TOKEN, SLACK_WEBHOOK_URL, COSTWATCH_PSEUDONYM_KEY)"
    )


# Characters a data_dir path may not hold. DuckDB reads the lake through glob patterns
# (`lake/<dataset>/day=*/data.parquet`), where * ? [ ] { } would match other folders, and with
# hive partitioning, which turns every `key=value` folder of the path into a column.
_DATA_DIR_FORBIDDEN = re.compile(r"[*?\[\]{}=\x00]")


def _parse(raw: dict[str, Any], config_path: Path) -> CostwatchConfig:
    _reject_secrets(raw)
    _reject_unknown(raw, _TOP_KEYS, "")
    base = config_path.parent
    if "start_date" not in raw:
        raise ConfigError("start_date: missing; add the first daily partition, e.g. start_date: 2026-10-01")
    start_date = _date(raw["start_date"], "start_date")
    data_dir = Path(os.path.expanduser(str(raw.get("data_dir", "data"))))
    data_dir = (data_dir if data_dir.is_absolute() else base / data_dir).resolve()
    forbidden = _DATA_DIR_FORBIDDEN.search(str(data_dir))
    if forbidden:
        raise ConfigError(
            f"data_dir: {str(data_dir)!r} contains {forbidden.group()!r}, which DuckDB reads as part of a glob "
            "pattern or as a hive partition (key=value) when it scans the lake; choose a folder whose "
            "full path has none of * ? [ ] { } ="
        )

    sources = _parse_sources(raw.get("sources"), base)
    versions, overrides = _parse_prices(raw.get("prices"), base, start_date)
    pools = {name: _parse_pool(name, spec, base) for name, spec in _mapping(raw.get("pools", {}), "pools").items()}
    gpu_raw = _mapping(raw.get("gpu", {}), "gpu")
    _reject_unknown(gpu_raw, {"pool_tag", "replica_tag", "instance_types"}, "gpu.")
    instance_types = gpu_raw.get("instance_types")
    gpu = GpuSettings(
        pool_tag=str(gpu_raw.get("pool_tag", GpuSettings.pool_tag)),
        replica_tag=str(gpu_raw.get("replica_tag", GpuSettings.replica_tag)),
        instance_types=_existing_file(instance_types, "gpu.instance_types", base) if instance_types else None,
    )
    budgets = {
        str(feature): _number(amount, f"budgets.{feature}", minimum=0)
        for feature, amount in _mapping(raw.get("budgets", {}), "budgets").items()
    }
    alerts_raw = _mapping(raw.get("alerts", {}), "alerts")
    _reject_unknown(alerts_raw, {"min_impact_usd", "min_impact_pct", "slack_channel", "dagster_url"}, "alerts.")
    alerts = AlertSettings(
        min_impact_usd=_number(alerts_raw.get("min_impact_usd", 50.0), "alerts.min_impact_usd", minimum=0),
        min_impact_pct=_number(alerts_raw.get("min_impact_pct", 0.2), "alerts.min_impact_pct", minimum=0),
        slack_channel=alerts_raw.get("slack_channel"),
        dagster_url=str(alerts_raw.get("dagster_url", AlertSettings.dagster_url)),
    )
    checks_raw = _mapping(raw.get("checks", {}), "checks")
    _reject_unknown(checks_raw, set(CheckThresholds.__dataclass_fields__), "checks.")
    checks = CheckThresholds(
        **{key: _number(value, f"checks.{key}", minimum=0, maximum=1) for key, value in checks_raw.items()}
    )
    reconciliation_raw = _mapping(raw.get("reconciliation", {}), "reconciliation")
    _reject_unknown(reconciliation_raw, set(ReconciliationSettings.__dataclass_fields__), "reconciliation.")
    reconciliation = ReconciliationSettings(
        **{key: _number(value, f"reconciliation.{key}", minimum=0) for key, value in reconciliation_raw.items()}
    )
    currency_rates = {}
    for code, rate in _mapping(raw.get("currency_rates", {}), "currency_rates").items():
        if not re.fullmatch(r"[A-Z]{3}", str(code)):
            raise ConfigError(f"currency_rates.{code}: not an ISO 4217 code; write it as three capitals, e.g. EUR")
        currency_rates[str(code)] = _number(rate, f"currency_rates.{code}", minimum=0)
    privacy_raw = _mapping(raw.get("privacy", {}), "privacy")
    _reject_unknown(privacy_raw, set(PrivacySettings.__dataclass_fields__), "privacy.")
    pseudonymise = privacy_raw.get("pseudonymise_user_id", False)
    if not isinstance(pseudonymise, bool):
        raise ConfigError(f"privacy.pseudonymise_user_id: must be true or false, got {pseudonymise!r}")
    return CostwatchConfig(
        path=config_path,
        data_dir=data_dir,
        start_date=start_date,
        sources=sources,
        price_versions=versions,
        price_overrides=overrides,
        pools=pools,
        budgets=budgets,
        alerts=alerts,
        checks=checks,
        reconciliation=reconciliation,
        currency_rates=currency_rates,
        gpu=gpu,
        privacy=PrivacySettings(pseudonymise_user_id=pseudonymise),
    )


def _parse_sources(raw: Any, base: Path) -> dict[str, tuple[SourceSpec, ...]]:
    sources_raw = _mapping(raw, "sources")
    if "gateway_logs" not in sources_raw:
        raise ConfigError(
            "sources.gateway_logs: missing; list the gateway log files, e.g. "
            '[{path: "inputs/gateway/*.jsonl.gz", format: canonical}]'
        )
    from pipelines.sources import registry  # a source or format missing there is refused, not ignored

    parsed: dict[str, tuple[SourceSpec, ...]] = {}
    for source, entries in sources_raw.items():
        if source not in registry.SOURCES:
            raise ConfigError(
                f"sources.{source}: not a source this version of costwatch reads; "
                f"use one of {sorted(registry.SOURCES)} or remove it"
            )
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"sources.{source}: must be a non-empty list of {{path: GLOB, format: NAME}}")
        specs = []
        for index, entry in enumerate(entries):
            key = f"sources.{source}[{index}]"
            entry = _mapping(entry, key)
            _reject_unknown(entry, {"path", "format"}, f"{key}.")
            if "path" not in entry or "format" not in entry:
                raise ConfigError(f"{key}: needs both path (a file or glob) and format")
            if entry["format"] not in registry.formats(source):
                raise ConfigError(
                    f"{key}.format: {entry['format']!r} is not a {source} format; "
                    f"use one of {list(registry.formats(source))}"
                )
            _check_glob(str(entry["path"]), f"{key}.path", base)
            specs.append(SourceSpec(path=str(entry["path"]), format=str(entry["format"])))
        parsed[source] = tuple(specs)
    return parsed


def _check_glob(pattern: str, key: str, base: Path) -> None:
    if pattern.count("[") != pattern.count("]"):
        raise ConfigError(f"{key}: {pattern!r} has an unbalanced '[' or ']'; close the character class")
    if "**" in pattern.replace("/**/", "/").replace("**/", "").replace("/**", ""):
        raise ConfigError(f"{key}: {pattern!r} uses '**' inside a name; use it only as a whole folder, a/**/b")
    # The folder before the first wildcard must exist: a typo there would otherwise read nothing.
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    folder = Path(os.path.expanduser(literal if literal.endswith("/") else os.path.dirname(literal) or "."))
    folder = folder if folder.is_absolute() else base / folder
    if not folder.is_dir():
        raise ConfigError(f"{key}: folder {folder} does not exist; fix the path (relative paths start at {base})")


def _parse_prices(
    raw: Any, base: Path, start_date: dt.date
) -> tuple[tuple[PriceVersion, ...], tuple[PriceOverride, ...]]:
    prices = _mapping(raw, "prices")
    _reject_unknown(prices, {"catalog", "effective_from", "history", "overrides"}, "prices.")
    if "catalog" not in prices:
        raise ConfigError(
            "prices.catalog: missing; point it at a LiteLLM-format price map, e.g. fixtures/prices/model_prices.json"
        )
    # The current catalog is in force from effective_from (default: the first partition);
    # history lists older or newer catalogs with their own dates, so history can be re-priced.
    entries = [{"catalog": prices["catalog"], "effective_from": prices.get("effective_from", start_date)}]
    entries += list(prices.get("history", []) or [])
    versions = []
    for index, entry in enumerate(entries):
        key = "prices" if index == 0 else f"prices.history[{index - 1}]"
        entry = _mapping(entry, key)
        catalog = Path(os.path.expanduser(str(entry.get("catalog", ""))))
        catalog = catalog if catalog.is_absolute() else base / catalog
        if not catalog.is_file():
            raise ConfigError(f"{key}.catalog: file {catalog} does not exist; fix the path")
        versions.append(
            PriceVersion(
                catalog=catalog.resolve(), effective_from=_date(entry.get("effective_from"), f"{key}.effective_from")
            )
        )
    if len({version.effective_from for version in versions}) != len(versions):
        raise ConfigError("prices.history: two catalogs share an effective_from date; give each its own date")

    overrides = []
    for model, spec in _mapping(prices.get("overrides", {}), "prices.overrides").items():
        key = f"prices.overrides.{model}"
        spec = _mapping(spec, key)
        _reject_unknown(spec, set(PRICE_FIELDS) | {"effective_from"}, f"{key}.")
        for required in ("input_cost_per_token", "output_cost_per_token"):
            if required not in spec:
                raise ConfigError(f"{key}.{required}: missing; give the USD price per token, e.g. 3.0e-6")
        overrides.append(
            PriceOverride(
                model=str(model),
                prices={name: _number(spec[name], f"{key}.{name}", minimum=0) for name in PRICE_FIELDS if name in spec},
                effective_from=_date(spec.get("effective_from", dt.date(1970, 1, 1)), f"{key}.effective_from"),
            )
        )
    return tuple(sorted(versions, key=lambda version: version.effective_from)), tuple(overrides)


_POOL_KEYS = {"gpu_type", "latency_slo_s", "headroom", "warm_floor", "api_equivalent", "load_test"}


def _existing_file(value: Any, key: str, base: Path) -> Path:
    path = Path(os.path.expanduser(str(value)))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ConfigError(f"{key}: file {path} does not exist; fix the path (relative paths start at {base})")
    return path.resolve()


def _parse_pool(name: str, raw: Any, base: Path) -> PoolSpec:
    key = f"pools.{name}"
    spec = _mapping(raw, key)
    _reject_unknown(spec, _POOL_KEYS, f"{key}.")
    if "gpu_type" not in spec:
        raise ConfigError(f"{key}.gpu_type: missing; name the GPU, e.g. H100")
    warm_floor = spec.get("warm_floor", 1)
    if not isinstance(warm_floor, int) or isinstance(warm_floor, bool) or warm_floor < 0:
        raise ConfigError(f"{key}.warm_floor: must be a whole number of replicas >= 0, got {warm_floor!r}")
    return PoolSpec(
        name=name,
        gpu_type=str(spec["gpu_type"]),
        latency_slo_s=_number(spec.get("latency_slo_s", 5.0), f"{key}.latency_slo_s", minimum=0),
        headroom=_number(spec.get("headroom", 0.3), f"{key}.headroom", minimum=0, maximum=10),
        warm_floor=warm_floor,
        api_equivalent=spec.get("api_equivalent"),
        load_test=_existing_file(spec["load_test"], f"{key}.load_test", base) if spec.get("load_test") else None,
    )


def _reject_unknown(mapping: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key; valid keys here are {sorted(allowed)}")


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping (key: value), got {type(value).__name__}")
    return value


def _date(value: Any, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a date; write it as YYYY-MM-DD") from None


def _number(value: Any, key: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be <= {maximum}, got {value}")
    return float(value)
