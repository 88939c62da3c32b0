"""A range of days is ONE Dagster run, with the same warehouse and lake as runs of single days.

A small generated demo (3 days x 200 requests, every source: gateway logs, provider bills, GPU
billing and telemetry) is run twice through the CLI, in two projects with their own data dir and
Dagster instance: once as `run --from/--to` (one run), once as `run --date` per day (three runs).
Every warehouse table and every lake dataset must hold the same rows (EXCEPT ALL both ways), and
the range run must be one run that records one materialization per asset per day.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from conftest import REPO
from test_definitions import EXPECTED_GROUPS

from pipelines.cli import DEMO_START, _write_demo_config, stretches
from pipelines.cli import main as costwatch
from pipelines.definitions import build_definitions
from pipelines.demo import generate
from pipelines.lake.partitions import sql_string
from pipelines.models.engine import load_models

DAYS = 3
REQUESTS_PER_DAY = 200
FIRST = DEMO_START
LAST = DEMO_START + dt.timedelta(days=DAYS - 1)
EVERY_DAY = [FIRST + dt.timedelta(days=offset) for offset in range(DAYS)]

LAKE_TABLES = EXPECTED_GROUPS["ingest"]

# Columns whose values belong to the run that wrote them, not to the data: they are left out of
# the comparison, each for the reason given.
RUN_SPECIFIC_COLUMNS = {
    # When the alert was enqueued: the wall clock of the run (plus its order in the run).
    ("alerts_outbox", "created_at"),
}


class Project:
    """A demo project in its own folder, run through the CLI with its own Dagster instance."""

    def __init__(self, root: Path, inputs: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        self.config = root / "costwatch.yaml"
        self.monkeypatch = monkeypatch
        _write_demo_config(self.config)
        shutil.copytree(inputs, root / "data" / "inputs")
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")

    @property
    def lake(self) -> Path:
        return self.root / "data" / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "data" / "warehouse.duckdb"

    def costwatch(self, *args: str) -> int:
        # The CLI opens the instance of $DAGSTER_HOME: this project's.
        self.monkeypatch.setenv("DAGSTER_HOME", str(self.root / "dagster_home"))
        return costwatch(["--config", str(self.config), *args])

    def instance(self) -> dg.DagsterInstance:
        self.monkeypatch.setenv("DAGSTER_HOME", str(self.root / "dagster_home"))
        return dg.DagsterInstance.get()


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory) -> Path:
    inputs = tmp_path_factory.mktemp("inputs")
    generate(inputs, start_date=FIRST, days=DAYS, requests_per_day=REQUESTS_PER_DAY, seed=11)
    return inputs


@pytest.fixture
def ranged(tmp_path, demo_inputs, monkeypatch, capsys) -> tuple[Project, str]:
    project = Project(tmp_path / "ranged", demo_inputs, monkeypatch)
    assert project.costwatch("run", "--from", FIRST.isoformat(), "--to", LAST.isoformat()) == 0
    return project, capsys.readouterr().out


@pytest.fixture
def daily(tmp_path, demo_inputs, monkeypatch) -> Project:
    project = Project(tmp_path / "daily", demo_inputs, monkeypatch)
    for day in EVERY_DAY:
        assert project.costwatch("run", "--date", day.isoformat()) == 0
    return project


def lake_datasets(lake: Path) -> dict[str, list[str]]:
    """Each lake dataset and its files, relative to the dataset's folder (`day=.../data.parquet`,
    or `data.parquet` for a dataset written whole)."""
    return {
        folder.name: sorted(str(path.relative_to(folder)) for path in folder.rglob("*.parquet"))
        for folder in sorted(lake.iterdir())
        if folder.is_dir()
    }


def columns_compared(conn: duckdb.DuckDBPyConnection, relation: str, table: str) -> str:
    """Every column but the run-specific ones. Floating-point columns (utilization, GPU-hours,
    rates; never money, which is DECIMAL) are compared to 9 decimal places: a float sum depends on
    the order DuckDB's parallel aggregation adds its rows in (a range groups several days in one
    pass), which moves the last bits (seen: 0.9999999999999966 vs 0.9999999999999987)."""
    columns = conn.execute(f"describe {relation}").fetchall()  # noqa: S608 (test: our relation)
    return ", ".join(
        f'round("{name}", 9) as "{name}"' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
        for name, kind, *_ in columns
        if (table, name) not in RUN_SPECIFIC_COLUMNS
    )


def differing_rows(conn: duckdb.DuckDBPyConnection, left: str, right: str, table: str) -> tuple[int, int, int]:
    """(rows, rows only in left, rows only in right), duplicates counted (EXCEPT ALL)."""
    columns = columns_compared(conn, left, table)
    assert columns == columns_compared(conn, right, table), f"{table}: the columns differ"
    (rows,) = conn.execute(f"select count(*) from {left}").fetchone()  # noqa: S608 (test: our relation)
    only = [
        conn.execute(
            f"select count(*) from (select {columns} from {a} except all select {columns} from {b})"  # noqa: S608 (test: our relations)
        ).fetchone()[0]
        for a, b in ((left, right), (right, left))
    ]
    return rows, *only


def test_a_range_is_one_run_with_the_same_warehouse_and_lake_as_one_run_per_day(ranged, daily):
    ranged_project, printed = ranged
    # One run, over the whole range: the partition-range tags a single-run backfill carries.
    instance = ranged_project.instance()
    (run,) = instance.get_runs()
    assert run.tags["dagster/asset_partition_range_start"] == FIRST.isoformat()
    assert run.tags["dagster/asset_partition_range_end"] == LAST.isoformat()
    # Every partitioned asset recorded one materialization per day, all from that run.
    graph = build_definitions(ranged_project.config).resolve_asset_graph()
    partitioned = [key for key in graph.get_all_asset_keys() if graph.get(key).is_partitioned]
    # Every lake table the ingest writes, every daily SQL model and the alerts.
    assert {key.to_user_string() for key in partitioned} == {
        *LAKE_TABLES,
        *(name for name, model in load_models().items() if model.daily),
        "alerts_outbox",
    }
    for key in partitioned:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=100).records
        assert sorted(record.partition_key for record in records) == [day.isoformat() for day in EVERY_DAY], key
        assert {record.run_id for record in records} == {run.run_id}, key
    # Unpartitioned assets (settings, views) ran once.
    for key in set(graph.get_all_asset_keys()) - set(partitioned):
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=100).records
        assert [record.run_id for record in records] == [run.run_id], key

    # The day-by-day project: a run per day.
    assert len(daily.instance().get_runs()) == DAYS

    # Every warehouse table, row for row.
    with duckdb.connect(str(ranged_project.warehouse), read_only=True) as conn:
        conn.execute(f"attach {sql_string(daily.warehouse)} as daily (read_only)")
        ranged_tables = [
            name
            for (name,) in conn.execute(
                "select table_name from duckdb_tables() where database_name = current_database() order by 1"
            ).fetchall()
        ]
        daily_tables = [
            name
            for (name,) in conn.execute(
                "select table_name from duckdb_tables() where database_name = 'daily' order by 1"
            ).fetchall()
        ]
        assert ranged_tables == daily_tables
        assert {"fct_spend_daily", "fct_budget_forecast", "fct_spend_anomalies", "alerts_outbox"} <= set(ranged_tables)
        compared = {}
        for table in ranged_tables:
            compared[table] = differing_rows(conn, table, f"daily.{table}", table)
        assert {table: only for table, (_, *only) in compared.items() if only != [0, 0]} == {}
        # Not an empty comparison: the marts that matter hold rows.
        assert all(compared[table][0] > 0 for table in ("fct_spend_daily", "fct_budget_forecast", "alerts_outbox"))

    # Every lake dataset: the same files (one per day and dataset, empty days included), same rows.
    ranged_lake, daily_lake = lake_datasets(ranged_project.lake), lake_datasets(daily.lake)
    assert ranged_lake == daily_lake
    assert {"gateway_requests", "fct_requests", "provider_cost_lines", "gpu_billing_lines"} <= set(ranged_lake)
    with duckdb.connect() as conn:
        for dataset, files in ranged_lake.items():
            if not files:  # a folder of manifests, not of Parquet
                continue
            for side, lake in (("ranged", ranged_project.lake), ("daily", daily.lake)):
                paths = [str(lake / dataset / file) for file in files]
                conn.execute(
                    f"create or replace temp table {side} as select * from "  # noqa: S608 (test: a fixed table name)
                    "read_parquet($paths, hive_partitioning = true, union_by_name = true)",
                    {"paths": paths},
                )
                # Input paths (source_file) name the project's own folder: compared relative to it.
                for name, kind, *_ in conn.execute(f"describe {side}").fetchall():  # noqa: S608 (test: a fixed table name)
                    if kind == "VARCHAR":
                        conn.execute(
                            f'update {side} set "{name}" = replace("{name}", $root, \'<project>\')',  # noqa: S608 (test: a fixed table name; a column DuckDB described)
                            {"root": str(lake.parent.parent)},
                        )
            rows, *only = differing_rows(conn, "ranged", "daily", dataset)
            assert only == [0, 0], dataset
    assert _lake_counts(ranged_project.lake, "gateway_requests") == _lake_counts(daily.lake, "gateway_requests")
    kept_by_day = _lake_counts(ranged_project.lake, "gateway_requests")
    assert sum(kept_by_day.values()) > DAYS * REQUESTS_PER_DAY * 0.9

    # Progress per day: a line per day with its requests kept and spend, then the run's line.
    with duckdb.connect(str(ranged_project.warehouse), read_only=True) as conn:
        spend = dict(conn.execute("select day, sum(cost_usd)::double from fct_requests group by day").fetchall())
    lines = printed.splitlines()
    for day in EVERY_DAY:
        (line,) = [line for line in lines if line.split()[:1] == [day.isoformat()]]
        assert f"{kept_by_day[day]:,} requests kept" in line and f"${spend[day]:,.2f} spend" in line, line
    (last_line,) = [line for line in lines if line.split()[1:2] == ["ok"]]
    assert last_line.split()[0] == f"{FIRST}..{LAST}" and last_line.split()[-1] == run.run_id


def _lake_counts(lake: Path, dataset: str) -> dict[dt.date, int]:
    with duckdb.connect() as conn:
        rows = conn.execute(
            "select day, count(*) from read_parquet($glob, hive_partitioning = true) group by day",
            {"glob": str(lake / dataset / "day=*" / "*.parquet")},
        ).fetchall()
    return {(day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))): count for day, count in rows}


def test_run_changed_reruns_the_days_a_changed_file_holds_and_their_windows_in_one_run(ranged, capsys):
    project, _ = ranged
    instance = project.instance()
    (first_run,) = instance.get_runs()
    # A late record for the second-to-last day lands in the last gateway file (one that held
    # other days).
    late_day = FIRST + dt.timedelta(days=DAYS - 2)
    changed = sorted((project.root / "data" / "inputs" / "gateway").glob("*.jsonl.gz"))[-1]
    with gzip.open(changed, "rt", encoding="utf-8") as handle:
        held = {
            dt.date.fromisoformat(record["ts"][:10])
            for record in (_json_or_none(line) for line in handle)
            if isinstance(record, dict) and isinstance(record.get("ts"), str) and record["ts"].endswith("Z")
        }
    late = {
        "request_id": "late-arrival-1",
        "ts": f"{late_day}T12:00:00Z",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "feature": "chat",
        "input_tokens": 1000,
        "output_tokens": 10,
    }
    with gzip.open(changed, "at", encoding="utf-8") as handle:
        handle.write(json.dumps(late) + "\n")
    assert project.costwatch("run", "--changed") == 0
    out = capsys.readouterr().out

    # The days the file holds (read here with plain json) that were run, and every later day
    # already run: each is in October, where the budgets' month-to-date window reads every earlier
    # day of the month. Consecutive days, so one run.
    rerun = [day for day in EVERY_DAY if day >= min((held | {late_day}) & set(EVERY_DAY))]
    runs = [run for run in instance.get_runs() if run.run_id != first_run.run_id]
    assert len(runs) == 1, out
    (run,) = runs
    assert run.tags["dagster/asset_partition_range_start"] == rerun[0].isoformat()
    assert run.tags["dagster/asset_partition_range_end"] == rerun[-1].isoformat()
    assert f"{rerun[0]}..{rerun[-1]}  ok" in out or (rerun[0] == rerun[-1] and f"{rerun[0]}  ok" in out)
    with duckdb.connect(str(project.warehouse), read_only=True) as conn:
        priced = conn.execute(
            "select day, cost_usd > 0 from fct_requests where request_id = 'late-arrival-1'"
        ).fetchall()
    assert priced == [(late_day, True)]


def _json_or_none(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ([], []),
        ([3], [(3, 3)]),
        ([1, 2, 3], [(1, 3)]),
        ([1, 2, 3, 7, 8], [(1, 3), (7, 8)]),
        ([8, 1, 3, 2, 2], [(1, 3), (8, 8)]),
        ([1, 3, 5], [(1, 1), (3, 3), (5, 5)]),
    ],
)
def test_days_with_gaps_run_as_one_run_per_stretch_of_consecutive_days(days, expected):
    as_dates = [dt.date(2026, 10, day) for day in days]
    assert stretches(as_dates) == [(dt.date(2026, 10, a), dt.date(2026, 10, b)) for a, b in expected]


def test_the_config_of_the_demo_has_every_source(tmp_path):
    """The comparison covers every source only if the demo config configures them all."""
    config = tmp_path / "costwatch.yaml"
    _write_demo_config(config)
    sources = yaml.safe_load(config.read_text(encoding="utf-8"))["sources"]
    assert set(sources) == {"gateway_logs", "provider_costs", "provider_usage", "gpu_billing", "gpu_telemetry"}
