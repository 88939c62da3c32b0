"""Shared test helpers: a throwaway costwatch project (config, inputs, data dir, Dagster instance)."""

from __future__ import annotations

import datetime as dt
import faulthandler
import gzip
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from pipelines.models.engine import prepare_session

REPO = Path(__file__).resolve().parents[1]

# Dagster's SQLite run history without an fsync at every commit (pipelines/resources/dagster_storage.py),
# here and in the `costwatch` processes tests start (they inherit the environment): a killed
# process still loses nothing, and only a power cut would tell the two apart.
os.environ.setdefault("COSTWATCH_SQLITE_SYNCHRONOUS", "NORMAL")


def _alembic_scripts_read_once() -> None:
    """Dagster checks each SQLite file's schema revision (every instance's run, schedule and index
    databases, and each run's own event file) against its alembic scripts, and alembic reads the
    ~50 migration modules of the folder anew every time: ~0.3 s of each project and of each run
    here. The folder does not change during the tests: read once per script folder. The
    revisions compared, and every migration, stay alembic's and Dagster's own."""
    from alembic.script import ScriptDirectory

    build = ScriptDirectory.from_config.__func__
    folders: dict[tuple, ScriptDirectory] = {}

    def from_config(cls, config):
        key = (cls, config.get_alembic_option("script_location"), tuple(config.get_version_locations_list() or ()))
        if key not in folders:
            folders[key] = build(cls, config)
        return folders[key]

    ScriptDirectory.from_config = classmethod(from_config)


_alembic_scripts_read_once()
CATALOG = REPO / "fixtures" / "prices" / "model_prices.json"


@dataclass
class Project:
    root: Path
    instance: dg.DagsterInstance

    @property
    def config_path(self) -> Path:
        return self.root / "costwatch.yaml"

    @property
    def warehouse(self) -> Path:
        return self.root / "data" / "warehouse.duckdb"

    @property
    def lake(self) -> Path:
        return self.root / "data" / "lake"

    def write_config(self, **overrides) -> Path:
        config = {
            "data_dir": "data",
            "start_date": "2026-10-01",
            "sources": {"gateway_logs": [{"path": "inputs/*.jsonl*", "format": "canonical"}]},
            "prices": {"catalog": str(CATALOG), "effective_from": "2025-09-01"},
        }
        config.update(overrides)
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return self.config_path

    def write_jsonl(self, name: str, records: list, *, gz: bool = False) -> Path:
        """Records are dicts (dumped as JSON) or str (written verbatim as a line)."""
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
        if gz:
            path.write_bytes(gzip.compress(text.encode("utf-8")))
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def run_day(self, day: str, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        from pipelines.definitions import build_definitions
        from pipelines.defs.schedules import DAILY_JOB

        job = build_definitions(self.config_path).resolve_job_def(DAILY_JOB)
        return job.execute_in_process(partition_key=day, instance=self.instance, raise_on_error=raise_on_error)

    def run_days(self, first: str, last: str) -> dg.ExecuteInProcessResult:
        """The days `first`..`last` as one range run, as `costwatch run --from --to` runs them
        (the same marts as a run per day: tests/test_range_runs.py)."""
        from pipelines.cli import _partitions
        from pipelines.definitions import build_definitions
        from pipelines.defs.schedules import DAILY_JOB

        job = build_definitions(self.config_path).resolve_job_def(DAILY_JOB)
        days = _partitions(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
        return job.execute_in_process(instance=self.instance, **days)

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as conn:
            return conn.execute(sql, params or {}).fetchall()

    def query_dicts(self, sql: str, params: dict | None = None) -> list[dict]:
        with duckdb.connect(str(self.warehouse), read_only=True) as conn:
            conn.execute(sql, params or {})
            names = [d[0] for d in conn.description]
            return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Spawned worker processes, as a distributed mode's runs are processes of their own. A worker
    that dies fails the test at once (BrokenProcessPool), where `multiprocessing.Pool` waits forever
    for the dead worker's task; each worker has faulthandler on, so a crash prints its stack."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=faulthandler.enable) as pool:
        yield pool


def starmap(pool: ProcessPoolExecutor, function: Callable, calls: list[tuple], timeout_s: float = 600) -> list:
    """`function(*args)` for each args of `calls`, at once on `pool`; their results in order."""
    futures = [pool.submit(function, *args) for args in calls]
    return [future.result(timeout=timeout_s) for future in futures]


@contextmanager
def open_project(root: Path) -> Iterator[Project]:
    """A project folder with its own Dagster instance (the repository's instance settings:
    telemetry off, the warehouse pool), in a fresh home."""
    (root / "inputs").mkdir()
    (root / "dagster_home").mkdir()
    settings = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8"))
    with dg.instance_for_test(temp_dir=str(root / "dagster_home"), overrides=settings) as instance:
        yield Project(root=root, instance=instance)


@pytest.fixture
def project(tmp_path: Path):
    with open_project(tmp_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def module_project(tmp_path_factory):
    """One project for a module's tests that only read what its runs wrote."""
    with open_project(tmp_path_factory.mktemp("project")) as opened:
        yield opened


# The Postgres of .ci/services.sh (`make test` and `make test-cluster` start it), for the tests
# marked `distributed` and `cluster`.
PG_URL_ENV = "COSTWATCH_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get(PG_URL_ENV, "").strip()
    if not url:
        pytest.fail(
            f"{PG_URL_ENV} is not set: this test needs the Postgres of .ci/services.sh. Run it under it: "
            "`make test` sources it, or `bash .ci/services.sh .venv/bin/python -m pytest tests/<module>.py`"
        )
    return url


@pytest.fixture
def run_model_on(tmp_path: Path):
    """`run_model_on(model_name, inputs, day=..., settings=...)`: the real SQL model on hand-built
    input rows, in a fresh DuckDB file; its output rows (of `day` when daily). See model_harness.py."""
    from model_harness import run_model_on

    return lambda model_name, inputs, day=None, settings=None: run_model_on(
        tmp_path, model_name, inputs, day=day, settings=settings
    )


def generated_config(start_date: dt.date, catalog: Path) -> dict:
    """A config over every input `costwatch generate` writes (under `inputs/`, at 3,000 requests a
    day: bill lines judged by percent with a 5-cent floor, alerts on moves of $1; the shipped demo,
    at 20,000 a day, uses $5), priced by `catalog`."""
    return {
        "data_dir": "data",
        "start_date": start_date.isoformat(),
        "sources": {
            "gateway_logs": [{"path": "inputs/gateway/*.jsonl.gz", "format": "canonical"}],
            "provider_costs": [
                {"path": "inputs/openai/costs_*.json", "format": "openai_costs"},
                {"path": "inputs/anthropic/cost_report_*.json", "format": "anthropic_cost_report"},
                {"path": "inputs/invoices/invoice_*.csv", "format": "invoice_csv"},
            ],
            "provider_usage": [
                {"path": "inputs/openai/usage_*.json", "format": "openai_usage"},
                {"path": "inputs/anthropic/usage_report_*.json", "format": "anthropic_usage_report"},
            ],
            "gpu_billing": [
                {"path": "inputs/gpu_billing/focus_*.csv", "format": "focus"},
                {"path": "inputs/gpu_billing/gpu_hours_*.csv", "format": "gpu_hours_csv"},
            ],
            "gpu_telemetry": [{"path": "inputs/gpu_telemetry/nvidia_smi_*.csv", "format": "nvidia_smi"}],
        },
        "pools": {
            "llama-8b-h100": {
                "gpu_type": "H100",
                "latency_slo_s": 5,
                "headroom": 0.3,
                "warm_floor": 1,
                "api_equivalent": "gpt-4o-mini",
                "load_test": "inputs/loadtest/llama-8b-h100.csv",
            },
            "qwen-32b-a100": {
                "gpu_type": "A100",
                "latency_slo_s": 60,
                "headroom": 0.2,
                "warm_floor": 1,
                "api_equivalent": "gpt-4.1-mini",
            },
        },
        "prices": {"catalog": str(catalog), "effective_from": "2026-01-01"},
        "reconciliation": {"tolerance_pct": 0.02, "tolerance_usd": 0.05},
        "alerts": {"min_impact_usd": 1, "min_impact_pct": 0.2},
        "budgets": {"chat": 40, "summarise": 400},
    }


def request(request_id: str, ts: str, model: str, **fields) -> dict:
    """A canonical gateway record with the required fields and the given extras."""
    return {"request_id": request_id, "ts": ts, "model": model, **fields}


def read_generated_records(out_dir: Path, manifest: dict) -> list[dict]:
    """Unique, well-formed records of every generated gateway file (first delivery wins), read
    with plain `json`: the independent side of the generator's tests."""
    records: dict[str, dict] = {}
    for entry in manifest["files"]:
        with gzip.open(out_dir / entry["path"], "rt", encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if (
                    "request_id" not in record
                    or record["output_tokens"] < 0
                    or record["cached_input_tokens"] > record["input_tokens"]
                    or not record["ts"].endswith("Z")
                ):
                    continue
                records.setdefault(record["request_id"], record)
    return list(records.values())


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def cli_project(root: Path, *, start: dt.date, days: int, requests_per_day: int, seed: int) -> Path:
    """A project folder `costwatch` runs in as a separate process: generated inputs, their config
    and a Dagster home with the repository's dagster.yaml."""
    from pipelines.demo import generate

    generate(root / "inputs", start_date=start, days=days, requests_per_day=requests_per_day, seed=seed)
    (root / "costwatch.yaml").write_text(yaml.safe_dump(generated_config(start, CATALOG)))
    (root / "dagster_home").mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    return root


def costwatch_process(root: Path, *args: str, **popen) -> subprocess.Popen:
    """`costwatch --config <root>/costwatch.yaml ARGS` as its own process, on the project's Dagster home."""
    command = [str(Path(sys.executable).with_name("costwatch")), "--config", str(root / "costwatch.yaml"), *args]
    environment = os.environ | {"DAGSTER_HOME": str(root / "dagster_home"), "PYTHONUNBUFFERED": "1"}
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} | popen
    return subprocess.Popen(command, cwd=root, env=environment, **streams)


# When an alert was enqueued: the wall clock of the run that enqueued it, not data.
RUN_SPECIFIC = {"alerts_outbox": {"created_at"}}


def warehouse_rows(
    root: Path,
    ignore: dict[str, set[str]] = RUN_SPECIFIC,
    lake=None,
    *,
    warehouse: Path | None = None,
    digits: int | None = None,
) -> dict[str, list[tuple]]:
    """Every table and view of the warehouse (`warehouse`, default the project's), each as its
    sorted rows (run-specific columns left out); `lake`: an object-store lake its views read
    (pipelines.lake.store). `digits`: DOUBLE values rounded to that many significant digits (a
    sum's last bits depend on the order it adds in)."""
    with duckdb.connect(str(warehouse or root / "data" / "warehouse.duckdb"), read_only=True) as conn:
        prepare_session(conn, read_only=True, lake=lake)
        names = [
            name
            for (name,) in conn.execute(
                "select table_name from duckdb_tables() where not internal "
                "union select view_name from duckdb_views() where not internal order by 1"
            ).fetchall()
        ]
        rows = {}
        for name in names:
            columns = [
                column
                for (column,) in conn.execute(
                    "select column_name from duckdb_columns() where table_name = $name order by column_index",
                    {"name": name},
                ).fetchall()
                if column not in ignore.get(name, set())
            ]
            listed = ", ".join(f'"{column}"' for column in columns)
            table = conn.execute(f'select {listed} from "{name}" order by all').fetchall()  # noqa: S608 (names from the catalog)
            # Paths of input files name the project's folder: a copy's rows name the reference's
            # folder (the days it did not re-run) and its own (the days it did).
            rows[name] = sorted((tuple(_plain(v, digits) for v in row) for row in table), key=_sort_key)
    return rows


INPUTS = re.compile(r"^/\S*?/inputs/")


def _plain(value, digits: int | None):
    if isinstance(value, str):
        return INPUTS.sub("<project>/inputs/", value)
    if isinstance(value, float) and digits is not None:
        return float(f"{value:.{digits}g}")
    return value


def _sort_key(row: tuple) -> tuple:
    """Rows in a total order (None and mixed types included)."""
    return tuple(("" if v is None else repr(v)) for v in row)


# Seconds each module took in a full `make test` on the 2-core machine (2026-12-04, 1,693 s wall,
# 3,253 s of tests on two workers, a machine shared with other jobs; the sum of its tests' times,
# to 5 s). Only an order: a module not listed weighs its `slow` mark's `seconds` (60 when unstated), else 0.
MODULE_SECONDS = {
    "test_distributed_mode": 300,  # 120 s alone, ~180 CPU-s with its runs and moto: started first
    "test_failure_proofing": 275,
    "test_savings": 275,
    "test_interrupts": 270,
    "test_reconciliation": 260,
    "test_damaged_state": 195,
    "test_kill_anywhere": 180,
    "test_demo_truth": 180,
    "test_alerts": 155,
    "test_gpu": 150,
    "test_kill_changed": 145,
    "test_gateway_ingest": 110,
    "test_savings_truth": 105,
    "test_range_runs": 105,
    "test_range_models": 155,  # 75 in that run, plus the distributed stages and concurrent alert runs added since (~50 s alone, scaled)
    "test_published": 95,
    "test_security": 85,
    "test_savings_properties": 75,
    "test_ingest_properties": 70,
    "test_pricing": 70,
    "test_streaming_ingest": 65,
    "test_findings": 65,
    "test_packaging": 45,
    "test_cache_simulation": 35,
    "test_price_crosscheck": 35,
    "test_slack_misbehaviour": 20,
    "test_quality": 15,
    "test_content_changes": 15,
    "test_definitions": 15,
    "test_lake_s3": 15,
    "test_parallel_backfill": 30,
}


def pytest_collection_modifyitems(config, items: list) -> None:
    """The longest modules first (`make test` keeps xdist from reordering them): a module runs
    on one worker (`--dist loadfile`), so two long ones left for last run back to back on one
    worker while the other sits idle. A module's weight is its measured seconds (MODULE_SECONDS)."""

    def weight(item) -> float:
        if item.module.__name__ in MODULE_SECONDS:
            return float(MODULE_SECONDS[item.module.__name__])
        mark = item.get_closest_marker("slow")
        return 0.0 if mark is None else float(mark.kwargs.get("seconds", 60))

    weights: dict[str, float] = {}
    for item in items:
        weights[item.module.__name__] = max(weights.get(item.module.__name__, 0.0), weight(item))
    first_seen = {name: index for index, name in enumerate(dict.fromkeys(item.module.__name__ for item in items))}
    items.sort(key=lambda item: (-weights[item.module.__name__], first_seen[item.module.__name__]))
