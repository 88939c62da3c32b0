"""`<relation>.checks.yml`: what must hold of a relation, declared beside it (a model's next to
its `.sql`, a lake dataset's in `sql/lake/`), turned into `Suite`s for `quality/engine.py`.

    suites:
      - rows: day                 # day | all | {sql: "select ... where day between
                                  #   getvariable('costwatch_start') and getvariable('costwatch_end')"}
        keys: [request_id]        # columns that identify a failing row in the sample (`rows: day`
                                  #   adds `day`: a range run's failing rows name their days)
        gates:                    # one Dagster asset check each
          - name: request_ids_unique
            description: one row per request_id
            blocking: true        # ERROR, stops downstream; default false = WARN
            expect:               # shorthands, or any GX 1.x expectation in snake_case
              - unique: request_id
              - non_negative: [cost_usd]
              - token_rules: true
              - expect_column_values_to_be_in_set: {column: priced, value_set: [true],
                                                    mostly: {setting: min_priced_share}}
            explain:              # metadata a person needs to act: one row, a column per entry
              sql: "select ..."
              settings: [max_unpriced_share]
    metadata:                     # models only: extra materialization metadata, same shape as explain.sql
      sql: "select ..."

A run is judged once over all its days: `rows: day` and any SQL here select the days
`getvariable('costwatch_start')` through `getvariable('costwatch_end')` (inclusive; a one-day run
sets both to its day), so a suite that aggregates per day must group by `day` and keep it among
its `keys`. `{setting: NAME}` is a value derived from costwatch.yaml by `settings(config)`, the one place a
check reads the config. Every mistake (an unknown key, expectation, argument or setting) is a
`ValueError` naming the file and the key, raised when the definitions load.
"""

from __future__ import annotations

import copy
import importlib.metadata
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import duckdb
import yaml

from pipelines.models import engine as models_engine
from pipelines.quality import gx_expectations
from pipelines.quality.engine import (
    END_VARIABLE,
    START_VARIABLE,
    Gate,
    Suite,
    gx_classes,
    json_safe,
    non_negative,
    rows_of_days,
    token_rules,
    unique_keys,
)
from pipelines.resources.config import CostwatchConfig

SUFFIX = ".checks.yml"

# Every config value a check may name. A share threshold of "at most x unpriced" is a GX
# `mostly` of "at least 1 - x priced".
_SETTINGS: dict[str, Callable[[CostwatchConfig], object]] = {
    "max_unpriced_share": lambda config: config.checks.max_unpriced_share,
    "min_priced_share": lambda config: 1 - config.checks.max_unpriced_share,
    "max_quarantine_share": lambda config: config.checks.max_quarantine_share,
    "max_duplicate_share": lambda config: config.checks.max_duplicate_share,
    "tolerance_pct": lambda config: config.reconciliation.tolerance_pct,
    "tolerance_usd": lambda config: config.reconciliation.tolerance_usd,
    "token_tolerance_pct": lambda config: config.reconciliation.token_tolerance_pct,
    # USD, and every currency costwatch.yaml gives a rate for.
    "known_currencies": lambda config: sorted({"USD", *config.currency_rates}),
}


def settings(config: CostwatchConfig) -> dict[str, object]:
    """Every value a `.checks.yml` may name with `{setting: NAME}` or list under `explain.settings`."""
    return {name: value(config) for name, value in _SETTINGS.items()}


def load_suites(relation: str, sql_dir: Path | None = None) -> list[Suite]:
    """The suites declared in `sql/**/<relation>.checks.yml`; none when there is no such file."""
    path = checks_file(relation, sql_dir)
    if path is None:
        return []
    document = _document(path)
    return [_suite(path, relation, f"suites[{i}]", raw) for i, raw in enumerate(document.get("suites") or [])]


def load_metadata(relation: str, sql_dir: Path | None = None) -> str | None:
    """The `metadata.sql` of `<relation>.checks.yml`: extra materialization metadata, or None."""
    path = checks_file(relation, sql_dir)
    if path is None or "metadata" not in (document := _document(path)):
        return None
    raw = document["metadata"]
    _keys(path, "metadata", raw, required={"sql"})
    return _text(path, "metadata.sql", raw["sql"])


def checks_file(relation: str, sql_dir: Path | None = None) -> Path | None:
    if sql_dir is None and models_engine.SQL_DIR == _SHIPPED_SQL_DIR:
        found = _shipped_checks_files().get(relation, [])
    else:
        found = sorted((sql_dir or models_engine.SQL_DIR).rglob(f"{relation}{SUFFIX}"))
    if len(found) > 1:
        raise ValueError(f"{relation}: checks declared twice: {', '.join(map(str, found))}")
    return found[0] if found else None


def query_row(cursor: duckdb.DuckDBPyConnection, sql: str) -> dict[str, object]:
    """The one row `sql` returns, as metadata: a column per entry (lists and maps become JSON)."""
    row = cursor.execute(sql).fetchone()
    names = [description[0] for description in cursor.description]
    return {name: json_safe(value) for name, value in zip(names, row or [None] * len(names), strict=True)}


# The package's own SQL folder: its checks files are found with one scan per process (as
# `load_models` parses its models once), not one scan of the tree per relation per definitions load.
_SHIPPED_SQL_DIR = models_engine.SQL_DIR


@cache
def _shipped_checks_files() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(_SHIPPED_SQL_DIR.rglob(f"*{SUFFIX}")):
        found.setdefault(path.name.removesuffix(SUFFIX), []).append(path)
    return found


# libyaml's parser where PyYAML has it (the same safe constructor, ~10x faster than the pure
# Python one: parsing the checks files was a third of loading the definitions).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _document(path: Path) -> dict:
    stat = path.stat()
    return copy.deepcopy(_parsed_document(path, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=256)
def _parsed_document(path: Path, mtime_ns: int, size: int) -> dict:
    """A checks file's document, parsed and checked once while the file is unchanged (its path,
    modification time and size): every load of the definitions reads the same files."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    _keys(path, "", document, optional={"suites", "metadata"})
    return document


def _suite(path: Path, relation: str, where: str, raw: Any) -> Suite:
    _keys(path, where, raw, required={"rows", "keys", "gates"})
    rows = raw["rows"]
    if rows == "day":
        sql = rows_of_days(relation)
    elif rows == "all":
        sql = f"select * from {relation}"  # noqa: S608 (relation: the checks file's own name, a model or lake table)
    elif isinstance(rows, dict):
        _keys(path, f"{where}.rows", rows, required={"sql"})
        sql = _text(path, f"{where}.rows.sql", rows["sql"])
    else:
        raise ValueError(f"{path}: {where}.rows: must be day, all or {{sql: ...}}, got {rows!r}")
    keys = raw["keys"]
    if not isinstance(keys, list) or not keys or not all(isinstance(key, str) for key in keys):
        raise ValueError(f"{path}: {where}.keys: must be a list of column names, got {keys!r}")
    if rows == "day" and "day" not in keys:
        keys = [*keys, "day"]
    gates = tuple(_gate(path, f"{where}.gates[{i}]", gate) for i, gate in enumerate(raw["gates"] or []))
    return Suite(sql, tuple(keys), gates)


def _gate(path: Path, where: str, raw: Any) -> Gate:
    _keys(path, where, raw, required={"name", "description", "expect"}, optional={"blocking", "explain"})
    where = f"{where} ({raw['name']})"
    if not isinstance(raw["expect"], list) or not raw["expect"]:
        raise ValueError(f"{path}: {where}.expect: must be a list of one or more expectations")
    builders = [_expectation(path, f"{where}.expect[{i}]", item) for i, item in enumerate(raw["expect"])]
    blocking = raw.get("blocking", False)
    if not isinstance(blocking, bool):
        raise ValueError(f"{path}: {where}.blocking: must be true or false, got {blocking!r}")
    return Gate(
        name=raw["name"],
        description=_text(path, f"{where}.description", raw["description"]),
        expect=lambda config: [expectation for build in builders for expectation in build(config)],
        blocking=blocking,
        explain=_explain(path, f"{where}.explain", raw["explain"]) if "explain" in raw else None,
    )


_SHORTHANDS = {"unique", "non_negative", "token_rules"}


def _expectation(path: Path, where: str, raw: Any) -> Callable[[Any], list]:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError(f"{path}: {where}: must be one `name: arguments` pair, got {raw!r}")
    ((name, arguments),) = raw.items()
    if name == "unique":
        return unique_keys(_text(path, f"{where}.unique", arguments))
    if name == "non_negative":
        columns = [arguments] if isinstance(arguments, str) else arguments
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            raise ValueError(f"{path}: {where}.non_negative: must be a column or a list of columns, got {arguments!r}")
        return non_negative(*columns)
    if name == "token_rules":
        if arguments is not True:
            raise ValueError(f"{path}: {where}.token_rules: must be true, got {arguments!r}")
        return token_rules
    class_name = "".join(part.title() for part in str(name).split("_"))
    fields = expectation_fields().get(class_name)
    if not str(name).startswith("expect_") or fields is None:
        raise ValueError(
            f"{path}: {where}: unknown expectation {name!r}; use one of {sorted(_SHORTHANDS)} "
            f"or a Great Expectations expectation in snake_case (expect_column_values_to_be_in_set)"
        )
    if not isinstance(arguments, dict):
        raise ValueError(f"{path}: {where}.{name}: arguments must be a mapping, got {arguments!r}")
    unknown = sorted(set(arguments) - fields)
    if unknown:
        raise ValueError(f"{path}: {where}.{name}: unknown argument(s) {unknown} for {class_name}")
    for key, value in arguments.items():
        _check_settings(path, f"{where}.{name}.{key}", value)
    return lambda config: [getattr(gx_classes().gxe, class_name)(**_resolve(arguments, settings(config)))]


@cache
def expectation_fields() -> dict[str, frozenset[str]]:
    """Every GX expectation class by name, with the arguments it takes: what a `.checks.yml` may
    name, checked when the definitions load. Read from the snapshot in `gx_expectations.py`
    (tests/test_quality.py pins it to GX itself) so that loading the definitions does not import
    GX, which takes seconds; a GX version other than the snapshot's is asked directly."""
    if importlib.metadata.version("great_expectations") == gx_expectations.GX_VERSION:
        return {name: frozenset(fields.split()) for name, fields in gx_expectations.EXPECTATION_FIELDS.items()}
    return installed_expectation_fields()


def installed_expectation_fields() -> dict[str, frozenset[str]]:
    """`expectation_fields` as the installed GX has them (imports GX)."""
    gxe = gx_classes().gxe
    return {
        name: frozenset(expectation.__fields__)
        for name in dir(gxe)
        if isinstance(expectation := getattr(gxe, name), type) and issubclass(expectation, gxe.Expectation)
    }


def _check_settings(path: Path, where: str, value: Any) -> None:
    if _is_setting(value):
        if value["setting"] not in _SETTINGS:
            raise ValueError(f"{path}: {where}: unknown setting {value['setting']!r}; known: {sorted(_SETTINGS)}")
    elif isinstance(value, dict):
        for key, nested in value.items():
            _check_settings(path, f"{where}.{key}", nested)
    elif isinstance(value, list):
        for i, nested in enumerate(value):
            _check_settings(path, f"{where}[{i}]", nested)


def _is_setting(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"setting"}


def _resolve(value: Any, values: dict[str, object]) -> Any:
    if _is_setting(value):
        return values[value["setting"]]
    if isinstance(value, dict):
        return {key: _resolve(nested, values) for key, nested in value.items()}
    if isinstance(value, list):
        return [_resolve(nested, values) for nested in value]
    return value


def _explain(path: Path, where: str, raw: Any) -> Callable[[duckdb.DuckDBPyConnection, Any], dict]:
    _keys(path, where, raw, optional={"sql", "settings"})
    sql = _text(path, f"{where}.sql", raw["sql"]) if "sql" in raw else None
    named = raw.get("settings") or []
    if not isinstance(named, list):
        raise ValueError(f"{path}: {where}.settings: must be a list of setting names, got {named!r}")
    unknown = sorted(set(named) - set(_SETTINGS))
    if unknown:
        raise ValueError(f"{path}: {where}.settings: unknown setting(s) {unknown}; known: {sorted(_SETTINGS)}")

    def explain(cursor: duckdb.DuckDBPyConnection, config: Any) -> dict:
        values = settings(config)
        return {**(query_row(cursor, sql) if sql else {}), **{name: values[name] for name in named}}

    return explain


def _keys(path: Path, where: str, raw: Any, required: set[str] = frozenset(), optional: set[str] = frozenset()):
    label = f"{where}: " if where else ""
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: {label}must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - required - optional)
    if unknown:
        raise ValueError(f"{path}: {label}unknown key(s) {unknown}; allowed: {sorted(required | optional)}")
    missing = sorted(required - set(raw))
    if missing:
        raise ValueError(f"{path}: {label}missing key(s) {missing}")


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: {where}: must be non-empty text, got {value!r}")
    if "costwatch_day" in value:  # the one-day variable of runs before ranges: it is never set now
        raise ValueError(
            f"{path}: {where}: getvariable('costwatch_day') is gone (a run judges a range of days); select "
            f"`day between getvariable('{START_VARIABLE}') and getvariable('{END_VARIABLE}')` and group by day"
        )
    return value
