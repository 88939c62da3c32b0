"""costwatch.yaml: its shape as pydantic models, loaded with every path resolved.

Every error names the key that is wrong and says how to fix it (`key: problem; fix`), because
the person reading it is a platform engineer at a terminal, not the author of this file. Each
setting's default is stated once, on its field; a required key's field carries the fix its
"missing" error suggests.
"""

from __future__ import annotations

import datetime as dt
import difflib
import glob
import json
import math
import os
import re
import types
import zoneinfo
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from pipelines.sources.records import MAX_LINE_BYTES

if TYPE_CHECKING:
    from pipelines.lake.store import LakePath

CONFIG_ENV = "COSTWATCH_CONFIG"
DEFAULT_CONFIG = "costwatch.yaml"
# The pseudonymisation key (privacy.pseudonymise_user_id) comes from here, never from the file.
PSEUDONYM_KEY_ENV = "COSTWATCH_PSEUDONYM_KEY"
PSEUDONYM_KEY_MIN_BYTES = 16


class ConfigError(ValueError):
    """A costwatch.yaml problem, phrased as `key: what is wrong; how to fix it`."""


# --------------------------------------------------------------------------- value types
# Checks that need the file's folder read it from the validation context `load_config` passes.


def _problem(problem: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A failed check, phrased `problem; fix`. `at` continues the key below the one validated,
    for checks that look at a whole mapping but blame one entry."""
    return PydanticCustomError("costwatch", "{problem}", {"problem": problem, "at": at})


def _required(fix: str) -> Any:
    """A key the file must give; `fix` completes its error when it is missing or malformed."""
    return Field(json_schema_extra={"fix": fix})


def _config_folder(info: ValidationInfo) -> Path:
    return Path(info.context["path"]).parent


def _in_config_folder(value: str | Path, folder: Path) -> Path:
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else folder / path


def _date(value: Any) -> Any:
    # YAML reads an unquoted 2026-10-01 as a date already; a quoted one arrives as text.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _problem(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    folder = _config_folder(info)
    path = _in_config_folder(value, folder)
    if not path.is_file():
        raise _problem(f"file {path} does not exist; fix the path (relative paths start at {folder})")
    return path.resolve()


def _glob(pattern: str, info: ValidationInfo) -> str:
    if pattern.count("[") != pattern.count("]"):
        raise _problem(f"{pattern!r} has an unbalanced '[' or ']'; close the character class")
    if "**" in pattern.replace("/**/", "/").replace("**/", "").replace("/**", ""):
        raise _problem(f"{pattern!r} uses '**' inside a name; use it only as a whole folder, a/**/b")
    # The folder before the first wildcard must exist: a typo there would otherwise read nothing.
    base = _config_folder(info)
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    folder = _in_config_folder(literal if literal.endswith("/") else os.path.dirname(literal) or ".", base)
    if not folder.is_dir():
        raise _problem(f"folder {folder} does not exist; fix the path (relative paths start at {base})")
    return pattern


# Characters a data_dir path may not hold. DuckDB reads the lake through glob patterns
# (`lake/<dataset>/day=*/data.parquet`), where * ? [ ] { } would match other folders, and with
# hive partitioning, which turns every `key=value` folder of the path into a column.
_DATA_DIR_FORBIDDEN = re.compile(r"[*?\[\]{}=\x00]")


def _data_dir(value: Path, info: ValidationInfo) -> Path:
    data_dir = _in_config_folder(value, _config_folder(info)).resolve()
    forbidden = _DATA_DIR_FORBIDDEN.search(str(data_dir))
    if forbidden:
        raise _problem(
            f"{str(data_dir)!r} contains {forbidden.group()!r}, which DuckDB reads as part of a glob "
            "pattern or as a hive partition (key=value) when it scans the lake; choose a folder whose "
            "full path has none of * ? [ ] { } ="
        )
    return data_dir


def _currency_code(code: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise _problem("not an ISO 4217 code; write it as three capitals, e.g. EUR")
    return code


def _source_list(entries: Any) -> Any:
    if not isinstance(entries, list) or not entries:
        raise _problem(
            "must be a non-empty list of {path: GLOB, format: NAME}; "
            'write e.g. [{path: "inputs/gateway/*.jsonl.gz", format: canonical}]'
        )
    return entries


def _null_as(empty: Callable[[], Any]) -> BeforeValidator:
    """A key written with no value (`budgets:`) means the empty mapping or list, as if left out."""
    return BeforeValidator(lambda value: empty() if value is None else value)


Date = Annotated[dt.date, BeforeValidator(_date)]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]  # resolved against the config file's folder
# Numbers are strict: "2%", "50" and true are refused rather than read as 0.02, 50 and 1; and
# finite: YAML's .nan and .inf are refused (a NaN threshold passes nothing, an infinite one everything).
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]  # where 0 means nothing (a rate, an SLO)
Ratio = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]  # 0-1, so 0.02 is 2%
# Names that YAML would read as a number (`slack_channel: 12345`) must be quoted: text, not coerced.
Text = Annotated[str, Field(strict=True)]
V = TypeVar("V")
# Mappings keyed by names the user chose (features, pools, models, currencies), not settings.
NamedMap = Annotated[dict[str, V], _null_as(dict)]
CurrencyCode = Annotated[str, AfterValidator(_currency_code)]


# --------------------------------------------------------------------------- the file's sections


class _Section(BaseModel):
    """A mapping in costwatch.yaml: unknown keys are refused, and nothing changes after loading."""

    # Numbers given where text is expected (`gpu_type: 100`) are read as text, as YAML intends.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


def _time_zone(name: str) -> str:
    # Python's tz database and DuckDB's ICU (which the readers convert with) agree on these names;
    # `localtime` is a link to whatever zone the machine running costwatch has, not the log's host.
    zones = zoneinfo.available_timezones() - {"localtime"}
    if name not in zones:
        close = difflib.get_close_matches(name, sorted(zones), n=1)
        raise _problem(
            f"{name!r} is not an IANA time zone name{f' (did you mean {close[0]!r}?)' if close else ''}; write "
            "the zone the host's clock is set to as Area/City, e.g. Europe/Berlin (`timedatectl` on the host "
            "shows it), or UTC"
        )
    return name


class SourceSpec(_Section):
    path: Annotated[str, AfterValidator(_glob)] = _required(
        'give a file or glob relative to the config file, e.g. "inputs/gateway/*.jsonl.gz"'
    )
    format: str = _required("name the files' format, e.g. canonical (README: Configuration)")
    # The zone of the host clock that wrote the files' timestamps, for formats that write local
    # time with no offset (nvidia_smi); other formats' timestamps are UTC or carry their offset.
    timezone: Annotated[str, AfterValidator(_time_zone)] = "UTC"


SourceList = Annotated[tuple[SourceSpec, ...], BeforeValidator(_source_list)]


_CATALOG_FIX = "point it at a LiteLLM-format price map, e.g. fixtures/prices/model_prices.json"
_PRICE_FIX = "give the USD price per token, e.g. 3.0e-6"
# No model charges near these: $10,000 per million tokens, $100 a call or a search. A price above
# is a unit mistake (USD per million tokens given per token), and would multiply every cost.
MAX_USD_PER_TOKEN = 0.01
MAX_USD_PER_CALL = 100.0


# Each catalog file's model keys by (path, size, mtime): a config loads once per step, a catalog of
# megabytes is parsed and checked once per process and change.
_CATALOG_KEYS: dict[tuple[str, int, int], frozenset[str]] = {}


def catalog_keys(path: Path) -> frozenset[str]:
    """The model keys of a LiteLLM-format catalog, once its JSON parses and every price in it is
    possible (`price_problem`); else the problem, naming the entry and field, as a config error."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _CATALOG_KEYS:
        try:
            catalog = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as error:
            raise _problem(f"{path} is not JSON ({error}); {_CATALOG_FIX}") from None
        if not isinstance(catalog, dict):
            raise _problem(f"{path} holds a JSON {type(catalog).__name__}, not an object of models; {_CATALOG_FIX}")
        for model, entry in catalog.items():
            for name, value in entry.items() if isinstance(entry, dict) else ():
                if name != "search_context_cost_per_query" and is_price_field(name):
                    problem = price_problem(name, value)
                    if problem:
                        raise _problem(f"{path}: model {model!r}, {name}: {problem}")
        _CATALOG_KEYS[key] = frozenset(catalog)
    return _CATALOG_KEYS[key]


def _price_catalog(path: Path) -> Path:
    catalog_keys(path)
    return path


Catalog = Annotated[Path, AfterValidator(_existing_file), AfterValidator(_price_catalog)]


class PriceVersion(_Section):
    """A LiteLLM-format price catalog and the first day its prices apply."""

    catalog: Catalog = _required(_CATALOG_FIX)
    effective_from: Date = _required("give the first day its prices apply, e.g. 2026-12-01")


# Price fields of LiteLLM's catalog format that costwatch prices with: a base field, optionally a
# context tier (`_above_<N>k_tokens`, N in tokens, k = thousands) and a service tier suffix.
PRICE_FIELD_BASES = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "input_cost_per_audio_token",
    "cache_read_input_audio_token_cost",
    "output_cost_per_audio_token",
    "output_cost_per_reasoning_token",
)
PRICE_FIELD_TIER_SUFFIXES = ("_batches", "_priority", "_flex")
PRICE_FIELD = re.compile(
    rf"^(?P<base>{'|'.join(sorted(PRICE_FIELD_BASES, key=len, reverse=True))})"
    r"(?:_above_(?P<above>\d+k?)_tokens)?"
    rf"(?P<tier>{'|'.join(PRICE_FIELD_TIER_SUFFIXES)})?$"
)
# USD per call, and USD per web search (LiteLLM's sizes; it bills the medium one by default).
PRICE_FEE_FIELDS = ("input_cost_per_request", "search_context_cost_per_query")
SEARCH_CONTEXT_SIZES = ("search_context_size_low", "search_context_size_medium", "search_context_size_high")


def is_price_field(name: str) -> bool:
    """Whether `name` is a catalog price field costwatch reads (so also a valid override key)."""
    return name in PRICE_FEE_FIELDS or PRICE_FIELD.match(name) is not None


class ModelPrices(_Section):
    """A model's list prices: USD per token, per call (`input_cost_per_request`) and per web search
    (`search_context_cost_per_query`). Any price field of LiteLLM's catalog format may be given
    (`cache_creation_input_token_cost_above_1hr`, `input_cost_per_token_above_200k_tokens`,
    `output_cost_per_token_batches`, `input_cost_per_token_priority`, ...)."""

    # Further price fields are checked by name in `_only_price_fields`.
    model_config = ConfigDict(extra="allow")

    input_cost_per_token: NonNegative = _required(_PRICE_FIX)
    output_cost_per_token: NonNegative = _required(_PRICE_FIX)
    cache_read_input_token_cost: NonNegative | None = None
    cache_creation_input_token_cost: NonNegative | None = None

    @model_validator(mode="after")
    def _only_price_fields(self) -> ModelPrices:
        for name, value in (self.model_extra or {}).items():
            if name == "search_context_cost_per_query":
                sizes = value if isinstance(value, dict) else {}
                if not sizes or any(
                    size not in SEARCH_CONTEXT_SIZES
                    or isinstance(price, bool)
                    or not isinstance(price, (int, float))
                    or price < 0
                    for size, price in sizes.items()
                ):
                    raise _problem(
                        f"must map {list(SEARCH_CONTEXT_SIZES)} to USD per search, e.g. "
                        "{search_context_size_medium: 0.01}",
                        at=(name,),
                    )
                continue
            if not is_price_field(name):
                close = difflib.get_close_matches(name, [*PRICE_FIELD_BASES, *PRICE_FEE_FIELDS], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise _problem(
                    f"unknown key, not a price field{hint}; use a LiteLLM catalog price field: one of "
                    f"{list(PRICE_FIELD_BASES)}, "
                    "optionally with a context tier (_above_200k_tokens) and a service tier suffix "
                    f"({', '.join(PRICE_FIELD_TIER_SUFFIXES)}), or one of {list(PRICE_FEE_FIELDS)}",
                    at=(name,),
                )
            problem = price_problem(name, value)
            if problem:
                raise _problem(problem, at=(name,))
        return self

    @model_validator(mode="after")
    def _possible_prices(self) -> ModelPrices:
        for name in ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
                     "cache_creation_input_token_cost"):  # fmt: skip
            problem = price_problem(name, getattr(self, name))
            if problem:
                raise _problem(problem, at=(name,))
        return self


def price_problem(name: str, value: object) -> str | None:
    """What is wrong with a price field's value (a catalog's or an override's), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return f"must be a finite number >= 0, got {value!r}; {_PRICE_FIX}"
    per_call = name in PRICE_FEE_FIELDS
    limit = MAX_USD_PER_CALL if per_call else MAX_USD_PER_TOKEN
    if value > limit:
        unit = "call or search" if per_call else "token"
        hint = "" if per_call else f" (per million tokens that is ${value * 1e6:,.0f}: was a per-million price given?)"
        return f"{value!r} USD per {unit} is above any model's price ({limit}){hint}; {_PRICE_FIX}"
    return None


class PriceOverrideSpec(ModelPrices):
    """`prices.overrides.<model>`: prices that beat the catalog's from `effective_from` on."""

    effective_from: Date = dt.date(1970, 1, 1)


class PriceOverride(_Section):
    """One override as the pricing code reads it."""

    model: str
    # Catalog price fields (`is_price_field`): USD per token, per call, or {size: USD per search}.
    prices: dict[str, float | dict[str, float]]
    effective_from: dt.date


class Prices(_Section):
    catalog: Catalog = _required(_CATALOG_FIX)
    effective_from: Date | None = None  # None: from start_date
    # Older or newer catalogs with their own dates, so history can be re-priced.
    history: Annotated[tuple[PriceVersion, ...], _null_as(tuple)] = ()
    overrides: NamedMap[PriceOverrideSpec] = {}


def _batch_window(seconds: int) -> int:
    if seconds % 3600 or 86400 % seconds:
        raise _problem(
            f"{seconds} s is not a whole number of hours that divides a day; use 3600 x 1, 2, 3, 4, 6, 8, 12 "
            "or 24 (86400, the default: batch work may wait up to a day)"
        )
    return seconds


class PoolSpec(_Section):
    """A self-hosted serving pool; its GPU billing rows carry its name in `gpu.pool_tag`."""

    gpu_type: str = _required("name the GPU, e.g. H100")
    latency_slo_s: Positive = 5.0
    headroom: Annotated[float, Field(strict=True, ge=0, le=10, allow_inf_nan=False)] = (
        0.3  # spare capacity, ratio of the load
    )
    warm_floor: Annotated[int, Field(strict=True, ge=0)] = 1  # replicas kept up however quiet it is
    api_equivalent: Text | None = None  # the API model its requests would otherwise go to (a catalog key)
    load_test: ExistingFile | None = None  # a batching-curve CSV: per-replica rate measured off the logs
    # The hourly capacity schedule starts the next hour's replicas an hour ahead (cold starts).
    scale_ahead: Annotated[bool, Field(strict=True)] = True
    # Queued batch work (queue_batch, split_pools): how long a batch call may wait, seconds (whole
    # hours that divide a day: the schedule sizes each such window of the day on its own work)...
    batch_window_s: Annotated[int, Field(strict=True, ge=3600, le=86400), AfterValidator(_batch_window)] = 86400
    # ...and how busy a replica working through a queue is planned to be (0-1, above 0).
    target_utilization: Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)] = 0.8
    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        """The pool's key under `pools:`."""
        return self._name


class GpuSettings(_Section):
    pool_tag: str = "costwatch-pool"  # billing tag naming a resource's serving pool
    replica_tag: str = "costwatch-replica"  # billing tag naming the replica (else the ResourceId)
    instance_types: ExistingFile | None = None  # extra rows for fixtures/gpu/instance_types.csv


def _verify_mode(mode: str) -> str:
    from pipelines.lake.manifest import VERIFY_MODES  # here, not on top: the lake imports DuckDB

    if mode not in VERIFY_MODES:
        raise _problem(
            f"{mode!r} is not a way to verify input files; use on_change (hash a file again when its size, "
            "mtime, ctime or inode changed: the default) or always (hash every file on every run, for "
            "filesystems whose ctime cannot be trusted)"
        )
    return mode


class InputSettings(_Section):
    # How an input file is known to be unchanged (lake/manifest.py, InputManifest): by its content
    # digest, computed again when a stat field moved (`on_change`) or on every run (`always`).
    verify_content: Annotated[str, Field(strict=True), AfterValidator(_verify_mode)] = "on_change"
    # Bytes: a longer line of a JSON-lines or CSV file is quarantined as `line_too_long` (file and
    # line named), never held. At most 1 GiB: a batch of lines must stay under Arrow's 2 GiB.
    max_line_bytes: Annotated[int, Field(strict=True, ge=1024, le=1 << 30)] = MAX_LINE_BYTES


# --------------------------------------------------------------------------- storage

# `storage.lake`: where the lake's partitions live. Unset: data_dir/lake on local disk. An object
# store prefix: each partition one object there (pipelines/lake/store.py).
LAKE_SCHEMES = ("s3",)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Keys that would put credentials in the file; they come from AWS_* variables or the IAM role.
_S3_CREDENTIAL_KEYS = re.compile(r"key|secret|token|password|credential|profile", re.IGNORECASE)
S3_CREDENTIALS_FIX = (
    "credentials are read only from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) "
    "or the machine's IAM role, never from this file"
)


def _lake_uri(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise _problem(
            f"{value!r} is not an object store URL; write s3://BUCKET/PREFIX, or remove the key to keep the lake "
            "on local disk under data_dir (move a local lake with data_dir)"
        )
    if scheme not in LAKE_SCHEMES:
        raise _problem(f"{scheme}:// is not a supported lake store; write s3://BUCKET/PREFIX")
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        # The value may hold a secret key, so the message does not quote it.
        raise _problem(f"holds credentials (value not shown); remove them: {S3_CREDENTIALS_FIX}")
    if "?" in rest or "#" in rest:
        raise _problem("has a query or fragment (value not shown); write s3://BUCKET/PREFIX only")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise _problem(
            f"{bucket!r} is not an S3 bucket name; use 3-63 lower-case letters, digits, '.' and '-', e.g. "
            "s3://acme-costwatch/prod/lake"
        )
    prefix = prefix.rstrip("/")
    forbidden = _DATA_DIR_FORBIDDEN.search(prefix)
    if forbidden or prefix.startswith("/") or "//" in prefix:
        what = repr(forbidden.group()) if forbidden else "an empty folder ('//')"
        raise _problem(
            f"the prefix {prefix!r} contains {what}, which DuckDB reads as part of a glob pattern or as a hive "
            "partition (key=value) when it scans the lake; choose a prefix with none of * ? [ ] { } ="
        )
    return f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"


def _endpoint_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.username or parts.password:
        raise _problem(f"holds credentials (value not shown); remove them: {S3_CREDENTIALS_FIX}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _problem(
            f"{url!r} is not an http(s) URL; give the S3-compatible service's address, e.g. "
            "https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:9000, or remove the key (AWS_ENDPOINT_URL, "
            "else AWS's own endpoint)"
        )
    return url.rstrip("/")


def _region(region: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(-[a-z0-9]+)+", region):
        raise _problem(f"{region!r} is not an AWS region name; write it as e.g. eu-central-1, or remove the key")
    return region


class S3Settings(_Section):
    """The S3-compatible service of an s3:// lake; credentials only from the environment."""

    # None: AWS_ENDPOINT_URL if set, else AWS's endpoint for the region.
    endpoint_url: Annotated[str, Field(strict=True), AfterValidator(_endpoint_url)] | None = None
    # None: AWS_DEFAULT_REGION / AWS_REGION, else the SDK's default.
    region: Annotated[str, Field(strict=True), AfterValidator(_region)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_credentials_in_the_file(cls, data: Any) -> Any:
        for name in data if isinstance(data, dict) else ():
            if _S3_CREDENTIAL_KEYS.search(str(name)):
                raise _problem(f"remove it (value not shown): {S3_CREDENTIALS_FIX}", at=(name,))
        return data


class StorageSettings(_Section):
    """Where the lake's partitions live (README, Distributed mode: the lake on S3)."""

    # None: data_dir/lake, on local disk. s3://BUCKET/PREFIX: every partition one object under it.
    lake: Annotated[str, Field(strict=True), AfterValidator(_lake_uri)] | None = None
    s3: S3Settings = S3Settings()


# The state backend's URL (state.url_env): the name of an environment variable, never the URL.
STATE_URL_ENV = "COSTWATCH_STATE_URL"
STATE_BACKENDS = ("embedded", "postgres")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# What the state backend's DAO (psycopg2) connects with; SQLAlchemy's spelling is taken too, since
# the Dagster instance's URL (COSTWATCH_DAGSTER_PG_URL) must spell postgresql+psycopg2://.
STATE_URL_SCHEMES = ("postgresql+psycopg2", "postgresql", "postgres")


def _state_backend(backend: str) -> str:
    if backend not in STATE_BACKENDS:
        raise _problem(
            f"{backend!r} is not a state backend; use embedded (the input manifests as JSON files in the lake and "
            "the alert outbox in warehouse.duckdb: one machine, the default) or postgres (tables in the database "
            f"whose URL the environment variable state.url_env names, {STATE_URL_ENV} by default: runs in parallel)"
        )
    return backend


def _env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise _problem(
            "not an environment variable name (value not shown: it may be the URL); give the variable's name, "
            f"e.g. {STATE_URL_ENV}, and export the URL in it: the URL is read from the environment, never from this file"
        )
    return name


class StateSettings(_Section):
    """Where the input manifests and the alert outbox live (pipelines/resources/state.py)."""

    backend: Annotated[str, Field(strict=True), AfterValidator(_state_backend)] = "embedded"
    # The environment variable holding the Postgres URL (postgresql+psycopg2://user@host:port/db),
    # read when the state is used, never logged. Only the name is in the file.
    url_env: Annotated[str, Field(strict=True), AfterValidator(_env_name)] = STATE_URL_ENV

    @model_validator(mode="before")
    @classmethod
    def _no_url_in_the_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            # The value may hold a password, so the message does not quote it.
            raise _problem(
                "connection strings are read only from the environment (value not shown); remove state.url and "
                f"export the URL as {STATE_URL_ENV} (or name another variable in state.url_env)",
                at=("url",),
            )
        return data


EXECUTION_MODES = ("embedded", "distributed")


def _execution_mode(mode: str) -> str:
    if mode not in EXECUTION_MODES:
        raise _problem(
            f"{mode!r} is not an execution mode; use embedded (one machine: `costwatch run` runs in this process, "
            "one run at a time, the default) or distributed (runs queued on a Dagster instance in Postgres, one per "
            "day, in parallel: README, Distributed mode)"
        )
    return mode


class ExecutionSettings(_Section):
    """How runs execute (README, Distributed mode). `distributed`: `costwatch run` submits an asset
    backfill, one run per day, to the Dagster instance of DAGSTER_HOME (Postgres storage, the daemon,
    the queued run coordinator); each run works in its own scratch DuckDB and writes every mart to
    the lake; `published_warehouse` rebuilds the analysts' file as a catalog of views over the lake."""

    mode: Annotated[str, Field(strict=True), AfterValidator(_execution_mode)] = "embedded"


class CheckThresholds(_Section):
    max_quarantine_share: Ratio = 0.01  # of a day's lines
    max_duplicate_share: Ratio = 0.02
    max_unpriced_share: Ratio = 0.01  # of a day's priced-by-catalog requests


class AlertSettings(_Section):
    min_impact_usd: NonNegative = 50.0
    min_impact_pct: NonNegative = 0.2
    slack_channel: Text | None = None
    # Alerts link to their asset's partition in the Dagster UI here; no links until it is set
    # (a link to 127.0.0.1 only works on the machine that ran the pipeline).
    dagster_url: str | None = None
    # An alert of a day older than this many days (before today, UTC) is `expired`: never posted,
    # counted in one catch-up message instead, so a backlog or a backfill cannot flood the channel.
    max_age_days: Annotated[int, Field(strict=True, ge=0)] = 2
    # Wall-clock seconds one delivery batch may take, every HTTP request and Retry-After wait
    # included; the alerts it leaves wait, pending, for the next run (the run holds the project
    # lock and the warehouse while it delivers).
    delivery_deadline_s: Positive = 60.0

    @field_validator("dagster_url")
    @classmethod
    def _reachable_url(cls, url: str | None) -> str | None:
        from pipelines.resources.slack import is_http_url

        if url is not None and not is_http_url(url):
            raise _problem(
                f"{url!r} is not an http(s) URL; set the address people open the Dagster UI at, "
                'e.g. "https://dagster.example.com", or remove the key (alerts then carry no link)'
            )
        return url


class ReconciliationSettings(_Section):
    # A billed line matches its estimate when |billed - estimated| <= max(tolerance_usd,
    # tolerance_pct x billed): small lines are judged in dollars, large ones in percent.
    tolerance_pct: NonNegative = 0.02  # ratio 0-1
    tolerance_usd: NonNegative = 0.50
    # Gateway and provider token counts match within this share (ratio 0-1).
    token_tolerance_pct: NonNegative = 0.005


class PrivacySettings(_Section):
    # Analyst-facing marts carry `u_` + HMAC-SHA256(key, user_id) instead of the user id; the key
    # is read from COSTWATCH_PSEUDONYM_KEY when models run (see `pseudonym_key`), so the file and
    # the config object never hold it, and readers (`costwatch query`) do not need it.
    pseudonymise_user_id: Annotated[bool, Field(strict=True)] = False


def _owner(value: str) -> str:
    if not (_OWNER_EMAIL.fullmatch(value) or _OWNER_TEAM.fullmatch(value)):
        raise _problem(
            f"{value!r} is neither an e-mail address nor team:<name>; write e.g. team:llm-platform or "
            "alice@example.com (the owners the Dagster UI shows on every asset)"
        )
    return value


_OWNER_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_OWNER_TEAM = re.compile(r"team:[A-Za-z0-9_.-]+")
Owner = Annotated[str, Field(strict=True), AfterValidator(_owner)]


def _route(value: str) -> str:
    if not value.strip() or value != value.strip().lower() or _DATED.search(value):
        raise _problem(f"{value!r} is not a model family; write it lower-case without a date suffix, e.g. gpt-4o-mini")
    return value


_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")  # as sql/macros/model_family.sql strips it
ModelFamily = Annotated[str, Field(strict=True), AfterValidator(_route)]
# The cheaper sibling of each model family, in its own provider: the target of the routing and
# right-sizing findings. Families as model_family() writes them (lower-case, no date suffix).
DEFAULT_ROUTES = {
    "gpt-4o": "gpt-4o-mini",
    "gpt-4.1": "gpt-4.1-mini",
    "gpt-5": "gpt-5-mini",
    "o3": "o4-mini",
    "claude-sonnet-4-5": "claude-haiku-4-5",
    "claude-opus-4-5": "claude-sonnet-4-5",
    "gemini-2.5-pro": "gemini-2.5-flash",
}


class EasyRequests(_Section):
    # A call is "easy" (a candidate for the cheaper sibling) when its prompt and its answer are at
    # most this many tokens and its answer was not cut by its cap.
    max_input_tokens: Annotated[int, Field(strict=True, gt=0)] = 1500
    max_output_tokens: Annotated[int, Field(strict=True, gt=0)] = 150


Share = Annotated[float, Field(strict=False, ge=0, le=1, allow_inf_nan=False)]


class EvalResult(_Section):
    # A team's own eval of a cheaper model on a feature's cases: what turns a routing or
    # right-sizing finding from an upper bound into a validated one.
    pass_rate: Share = _required("add pass_rate: the share of the eval's cases the cheaper model passed, 0 .. 1")
    baseline_pass_rate: Share = _required("add baseline_pass_rate: the share the current model passed, 0 .. 1")
    n: Annotated[int, Field(strict=True, ge=100)] = _required("add n: how many cases the eval ran (at least 100)")
    date: Date = _required("add date: the day the eval ran, YYYY-MM-DD")


class SelfhostCandidate(_Section):
    # An open model the team could serve an API model's calls with on its own GPUs: what
    # fct_selfhost_trigger prices against the API bill, hour by hour.
    model: Text = _required("name the open model that would take the calls, e.g. llama-3.1-8b-instruct")
    gpu_type: Text = _required("name the GPU, e.g. H100")
    gpus_per_replica: Annotated[int, Field(strict=True, ge=1)] = 1
    usd_per_gpu_hour: Positive = _required("add usd_per_gpu_hour: what one GPU costs an hour, USD")
    load_test: ExistingFile = _required(
        "add load_test: a batching-curve CSV of one replica of the open model (the format of pools.<pool>.load_test)"
    )
    latency_slo_s: Positive = 5.0  # the load test's rows within it give a replica's rate
    headroom: Annotated[float, Field(strict=True, ge=0, le=10, allow_inf_nan=False)] = 0.3
    warm_floor: Annotated[int, Field(strict=True, ge=0)] = 1  # replicas kept up however quiet it is
    ops_usd_per_month: NonNegative = 0.0  # people and tooling to run it, USD a month
    margin: NonNegative = 0.3  # self-hosting must be this much cheaper (0.3: the API costs >= 1.3x)
    # Why the open model is good enough (an eval, with its date): without it the verdict stays on the API.
    quality_note: Text | None = None


class SavingsSettings(_Section):
    # The findings' window: fct_savings_opportunities sums each lever over the days ending on its
    # as-of day. At most 28: the widest history a day's marts read, which `run --changed` re-runs.
    window_days: Annotated[int, Field(strict=True, ge=1, le=28)] = 28
    # A finding saving less than this many USD a month stays in fct_savings_opportunities and is
    # not listed by `costwatch savings` or the demo (their --all lists it).
    min_monthly_usd: NonNegative = 100.0
    # A billed call that repeats an earlier ok call of the same prompt_hash, user and feature within
    # this many seconds is a duplicate (a retry storm, a client loop). At most a day: a day's
    # savings read the day before it, no more.
    duplicate_window_s: Annotated[float, Field(strict=True, gt=0, le=86_400, allow_inf_nan=False)] = 60.0
    # A call cut by its output cap (finish_reason = length) that its user sends again (same
    # feature, same prompt_hash or first prefix hash) within this many seconds is a truncated retry.
    truncation_retry_window_s: Annotated[float, Field(strict=True, gt=0, le=86_400, allow_inf_nan=False)] = 120.0
    # A billed call whose prompt_hash anyone sent within this many seconds is one a gateway
    # response cache with this lifetime would have answered. At most a day, as above.
    gateway_cache_ttl_s: Annotated[float, Field(strict=True, gt=0, le=86_400, allow_inf_nan=False)] = 86_400.0
    # model family -> its cheaper sibling (same provider); {} turns routing and right-sizing off.
    routes: Annotated[dict[ModelFamily, ModelFamily], _null_as(dict)] = DEFAULT_ROUTES
    easy: EasyRequests = EasyRequests()
    # feature -> cheaper model family -> its eval (see EvalResult).
    evals: Annotated[dict[str, dict[ModelFamily, EvalResult]], _null_as(dict)] = {}
    # Callers (user_id as logged) that are jobs, not people: their calls that do not stream are
    # latency-tolerant, candidates for the Batch API (an upper bound; with privacy.pseudonymise_user_id,
    # list their pseudonyms).
    service_accounts: Annotated[list[Text], _null_as(list)] = []
    # API model family -> an open model to compare it with (fct_selfhost_trigger).
    selfhost_candidates: Annotated[dict[ModelFamily, SelfhostCandidate], _null_as(dict)] = {}

    @property
    def routes_json(self) -> str:
        """`routes` as the JSON object SQL reads (`json_each($routes)`)."""
        return json.dumps(self.routes, sort_keys=True)

    @property
    def service_accounts_json(self) -> str:
        """`service_accounts` as the JSON array SQL reads."""
        return json.dumps(sorted(self.service_accounts))

    @property
    def evals_json(self) -> str:
        """`evals` as the JSON object SQL reads (`json_each($evals)`)."""
        return json.dumps(
            {
                feature: {target: result.model_dump(mode="json") for target, result in targets.items()}
                for feature, targets in self.evals.items()
            },
            sort_keys=True,
        )


class CostwatchConfig(_Section):
    """A validated costwatch.yaml. Its fields are the file's top-level keys; `path` is the file."""

    data_dir: Annotated[Path, AfterValidator(_data_dir)] = Field(Path("data"), validate_default=True)
    storage: StorageSettings = StorageSettings()
    start_date: Date = _required("add the first daily partition, e.g. start_date: 2026-10-01")
    sources: NamedMap[SourceList] = Field(default_factory=dict, validate_default=True)
    prices: Prices = _required(
        "add prices: {catalog: PATH} with a LiteLLM-format price map, e.g. fixtures/prices/model_prices.json"
    )
    pools: NamedMap[PoolSpec] = {}
    budgets: NamedMap[NonNegative] = {}  # USD per calendar month per feature
    alerts: AlertSettings = AlertSettings()
    checks: CheckThresholds = CheckThresholds()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    currency_rates: Annotated[dict[CurrencyCode, Positive], _null_as(dict)] = {}  # USD per unit
    gpu: GpuSettings = GpuSettings()
    privacy: PrivacySettings = PrivacySettings()
    savings: SavingsSettings = SavingsSettings()
    inputs: InputSettings = InputSettings()
    state: StateSettings = StateSettings()
    execution: ExecutionSettings = ExecutionSettings()
    # Who owns the pipeline's assets in the Dagster UI: e-mail addresses or `team:<name>`.
    owners: Annotated[tuple[Owner, ...], _null_as(tuple)] = ()
    # Finished Dagster runs older than this many days are deleted after each `costwatch run`
    # (about 1 MB each); null keeps every run. The lake and the warehouse keep all days regardless.
    run_history_days: Annotated[int, Field(strict=True, ge=1)] | None = 90
    # Not a key of the file: a file cannot say where it is.
    _path: Path = PrivateAttr(default=Path(DEFAULT_CONFIG))

    @field_validator("sources")
    @classmethod
    def _sources_and_formats_are_registered(cls, sources: dict[str, tuple[SourceSpec, ...]]) -> dict:
        from pipelines.sources import registry  # here, not on top: format modules import this one

        if "gateway_logs" not in sources:
            raise _problem(
                'missing; list the gateway log files, e.g. [{path: "inputs/gateway/*.jsonl.gz", format: canonical}]',
                at=("gateway_logs",),
            )
        for source, specs in sources.items():
            if source not in registry.SOURCES:
                raise _problem(
                    f"not a source this version of costwatch reads; use one of {sorted(registry.SOURCES)} or remove it",
                    at=(source,),
                )
            for index, spec in enumerate(specs):
                if spec.format not in registry.formats(source):
                    raise _problem(
                        f"{spec.format!r} is not a {source} format; use one of {list(registry.formats(source))}",
                        at=(source, index, "format"),
                    )
                if "timezone" in spec.model_fields_set and not registry.get(spec.format).local_timestamps:
                    local = [name for name, fmt in registry.formats().items() if fmt.local_timestamps]
                    raise _problem(
                        f"does not apply to format {spec.format!r}, whose timestamps are UTC or carry their "
                        f"offset; remove the key (it is for formats that write the host's local time: {local})",
                        at=(source, index, "timezone"),
                    )
        return sources

    @field_validator("pools")
    @classmethod
    def _pools_know_their_names(cls, pools: dict[str, PoolSpec]) -> dict[str, PoolSpec]:
        for name, pool in pools.items():
            pool._name = name
        return pools

    @model_validator(mode="after")
    def _remember_its_file(self, info: ValidationInfo) -> CostwatchConfig:
        self._path = Path(info.context["path"])
        return self

    @model_validator(mode="after")
    def _pools_compare_with_priced_models(self) -> CostwatchConfig:
        priced = set(self.prices.overrides).union(*(catalog_keys(v.catalog) for v in self.price_versions))
        for name, pool in self.pools.items():
            if pool.api_equivalent is not None and pool.api_equivalent not in priced:
                close = difflib.get_close_matches(pool.api_equivalent, sorted(priced), n=1)
                raise _problem(
                    f"{pool.api_equivalent!r} is no model of the price catalog or prices.overrides"
                    f"{f' (did you mean {close[0]!r}?)' if close else ''}; name the catalog key of the API model "
                    "the pool's requests would otherwise go to, e.g. gpt-4o-mini, or remove the key",
                    at=("pools", name, "api_equivalent"),
                )
        return self

    @model_validator(mode="after")
    def _routes_name_priced_siblings(self) -> CostwatchConfig:
        if "routes" not in self.savings.model_fields_set:
            return self  # the defaults: a sibling the catalog lacks gets no finding, not an error
        priced = set(self.prices.overrides).union(*(catalog_keys(v.catalog) for v in self.price_versions))
        families = {key.rsplit("/", 1)[-1] for key in priced}
        for model, target in self.savings.routes.items():
            if model == target:
                raise _problem(
                    "routes a model to itself; name a cheaper sibling or remove the key",
                    at=("savings", "routes", model),
                )
            if target not in families:
                close = difflib.get_close_matches(target, sorted(families), n=1)
                raise _problem(
                    f"{target!r} is no model of the price catalog or prices.overrides"
                    f"{f' (did you mean {close[0]!r}?)' if close else ''}; name the cheaper sibling's catalog key",
                    at=("savings", "routes", model),
                )
        return self

    @model_validator(mode="after")
    def _distributed_state_in_postgres(self) -> CostwatchConfig:
        if self.execution.mode == "distributed" and self.state.backend != "postgres":
            # Runs of different days write the input manifests and the outbox at once: a JSON file
            # rewritten whole loses a day (measured), a DuckDB outbox has one writer.
            raise _problem(
                "distributed runs run days in parallel, so their shared state must be in Postgres; set "
                "state.backend: postgres (and export its URL), or execution.mode: embedded",
                at=("execution", "mode"),
            )
        return self

    @model_validator(mode="after")
    def _one_catalog_per_date(self) -> CostwatchConfig:
        if len({version.effective_from for version in self.price_versions}) != len(self.price_versions):
            raise _problem(
                "two catalogs share an effective_from date; give each its own date", at=("prices", "history")
            )
        return self

    @property
    def distributed(self) -> bool:
        return self.execution.mode == "distributed"

    @property
    def path(self) -> Path:
        """The YAML file itself; relative paths inside it resolve against its folder."""
        return self._path

    @cached_property
    def price_versions(self) -> tuple[PriceVersion, ...]:
        """Every catalog with the first day its prices apply, oldest first: `prices.catalog`
        (from `prices.effective_from`, else start_date) and the `prices.history` entries."""
        current = PriceVersion.model_construct(
            catalog=self.prices.catalog, effective_from=self.prices.effective_from or self.start_date
        )
        return tuple(sorted((current, *self.prices.history), key=lambda version: version.effective_from))

    @cached_property
    def price_overrides(self) -> tuple[PriceOverride, ...]:
        return tuple(
            PriceOverride(
                model=model,
                prices=spec.model_dump(exclude={"effective_from"}, exclude_none=True),
                effective_from=spec.effective_from,
            )
            for model, spec in self.prices.overrides.items()
        )

    @property
    def lake_dir(self) -> Path:
        """The local lake folder: the lake itself by default; with an object-store lake
        (`storage.lake`), what stays on this machine (input manifests, spool, ledger, set-aside files)."""
        return self.data_dir / "lake"

    @cached_property
    def lake(self) -> LakePath:
        """Where the partitions live: `lake_dir` (a Path) by default, else the `storage.lake`
        prefix as a UPath whose filesystem lists afresh every time (pipelines/lake/store.py)."""
        from pipelines.lake.store import open_lake  # here, not on top: the lake imports DuckDB

        if self.storage.lake is None:
            return self.lake_dir
        return open_lake(self.storage.lake, endpoint_url=self.storage.s3.endpoint_url, region=self.storage.s3.region)

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    def resolve(self, relative: str | Path) -> Path:
        return _in_config_folder(relative, self.path.parent)

    def source_files(self, source: str) -> list[tuple[Path, str]]:
        """Every file a source's globs match today, as (path, format), sorted and de-duplicated."""
        return [(path, spec.format) for path, spec in self.source_entries(source)]

    def source_entries(self, source: str) -> list[tuple[Path, SourceSpec]]:
        """Every file a source's globs match today with the first entry that matches it (its
        format and time zone), sorted and de-duplicated."""
        found: dict[Path, SourceSpec] = {}
        for spec in self.sources.get(source, ()):
            for match in sorted(glob.glob(str(self.resolve(spec.path)), recursive=True)):
                found.setdefault(Path(match).resolve(), spec)
        return sorted(found.items(), key=lambda entry: entry[0])


# --------------------------------------------------------------------------- loading


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


def state_url(config: CostwatchConfig, environ: Mapping[str, str] = os.environ) -> str:
    """The Postgres URL of the state backend, from the variable `state.url_env` names.

    Read at use, not at load, like the pseudonymisation key; errors name the variable, never the value."""
    name = config.state.url_env
    url = (environ.get(name) or "").strip()
    if not url:
        raise ConfigError(
            f"state.backend: postgres, but {name} (state.url_env) is not set; export it as "
            "postgresql+psycopg2://USER@HOST:PORT/DATABASE (password from ~/.pgpass or PGPASSWORD, or in the URL), "
            "or set state.backend: embedded"
        )
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in STATE_URL_SCHEMES:
        raise ConfigError(
            f"{name}: not a PostgreSQL URL (value not shown); set it to postgresql+psycopg2://USER@HOST:PORT/DATABASE"
        )
    return url


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
    _reject_secrets(raw)
    try:
        return CostwatchConfig.model_validate(raw, context={"path": config_path})
    except ValidationError as error:
        # pydantic's own wording names its types, not the file's keys; the whole story is in ours.
        raise ConfigError("\n".join(_explained(error, config_path))) from None


# --------------------------------------------------------------------------- secrets

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
            if path not in _NAMED_MAPS and not is_price_field(name) and _SECRET_KEY.search(name.lower()):
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
    if "aws" in key or "access_key" in key or "session_token" in key:
        return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an s3:// lake's credentials; or the IAM role)"
    if "webhook" in key:
        return "SLACK_WEBHOOK_URL"
    if "pseudonym" in key or "hmac" in key:
        return PSEUDONYM_KEY_ENV
    if "token" in key:
        return "SLACK_BOT_TOKEN (with alerts.slack_channel)"
    return (
        "the environment variable the README names for it (SLACK_BOT_TOKEN, SLACK_WEBHOOK_URL, COSTWATCH_PSEUDONYM_KEY)"
    )


# --------------------------------------------------------------------------- pydantic errors, in the file's words


def _explained(error: ValidationError, config_path: Path) -> list[str]:
    """One `key: problem; fix` line per problem; unknown keys first, as they often explain a
    "missing" one (a misspelt key is both)."""
    problems = sorted(error.errors(), key=lambda problem: problem["type"] != "extra_forbidden")
    lines = [_explain(problem, config_path) for problem in problems]
    return list(dict.fromkeys(lines))


def _explain(problem: Any, config_path: Path) -> str:
    context = problem.get("ctx") or {}
    # pydantic marks a mapping's key (not its value) with "[key]"; the key is what the user wrote.
    loc = tuple(part for part in problem["loc"] if part != "[key]") + tuple(context.get("at", ()))
    model, field = _field_at(loc)
    kind, value = problem["type"], problem.get("input")
    if kind == "costwatch":
        text = context["problem"]
    elif kind == "missing":
        text = f"missing; {_fix(field, 'add it')}"
    elif kind == "extra_forbidden":
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        text = f"unknown key; valid keys here are {allowed}" + (f" (did you mean {close[0]!r}?)" if close else "")
    elif kind in ("float_type", "float_parsing"):
        text = f"must be a number, got {value!r}; {_fix(field, 'write it without quotes or units')}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        text = f"must be a whole number, got {value!r}; {_fix(field, 'write it without a fraction or quotes')}"
    elif kind in ("bool_type", "bool_parsing"):
        text = f"must be true or false, got {value!r}; write true or false without quotes"
    elif kind in ("greater_than_equal", "less_than_equal"):
        text = _out_of_bounds(field, context, value)
    elif kind == "finite_number":
        text = f"must be a finite number, got {value!r} (YAML's .nan and .inf are not); {_fix(field, 'write a number')}"
    elif kind == "greater_than":
        text = f"must be more than {context['gt']}, got {value}; {_fix(field, 'use a positive number')}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        text = f"must be a mapping (key: value), got {type(value).__name__}; write `key: value` lines or {{key: value}}"
    elif kind in ("tuple_type", "list_type"):
        text = f"must be a list, got {type(value).__name__}; write `- item` lines or [item, ...]"
    elif kind in ("string_type", "path_type"):
        text = f"must be text, got {value!r}; write it in quotes"
    else:  # a check added without wording here: pydantic's own words, still under the key
        text = f"{problem['msg']}, got {value!r}; see README, Configuration"
    return f"{_dotted(loc) or config_path}: {text}"


def _fix(field: FieldInfo | None, generic: str) -> str:
    """What to write: a required key's own fix, else `generic` with the key's default as the example."""
    if field is not None and isinstance(field.json_schema_extra, dict) and "fix" in field.json_schema_extra:
        return str(field.json_schema_extra["fix"])
    if field is None or field.is_required() or field.default is None:
        return generic
    return f"{generic}, e.g. {field.default} (the default)"


def _out_of_bounds(field: FieldInfo | None, context: dict, value: Any) -> str:
    low = next((rule.ge for rule in (field.metadata if field else []) if isinstance(rule, annotated_types.Ge)), None)
    high = next((rule.le for rule in (field.metadata if field else []) if isinstance(rule, annotated_types.Le)), None)
    if low is not None and high is not None:
        ratio = " (a ratio: 0.02 is 2%)" if high == 1 else ""
        return f"must be between {low} and {high}, got {value}; use a value in that range{ratio}"
    if "ge" in context:
        return f"must be >= {context['ge']}, got {value}; use {context['ge']} or more"
    return f"must be <= {context['le']}, got {value}; use {context['le']} or less"


def _dotted(loc: tuple[str | int, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _field_at(loc: tuple[str | int, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The section holding the last key of `loc`, and that key's field; (None, None) past a
    name the user chose, (section, None) for a key the section does not have."""
    annotation: Any = CostwatchConfig
    model: type[BaseModel] | None = None
    field: FieldInfo | None = None
    for part in loc:
        annotation = _unwrapped(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model, field = annotation, annotation.model_fields.get(str(part))
            if field is None:
                return model, None
            annotation = field.annotation
        else:  # a dict value (pools.<name>) or a list item (sources.<source>[0])
            model = field = None
            args = get_args(annotation)
            annotation = (args[-1] if get_origin(annotation) is dict else args[0]) if args else None
    return model, field


def _unwrapped(annotation: Any) -> Any:
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation
