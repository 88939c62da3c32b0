"""A range of days is one statement per daily SQL model (issue 12), and it changes no number: each
model run over a range equals the same model run one day at a time.

On a generated lake of 8 days that crosses from October into November, one warehouse runs every
model day by day (the job as it ran before ranges) and another runs the same days as two ranges,
the second starting on Oct 31: its budget month-to-date restarts on Nov 1 inside the range, its
7-day run rate and its anomaly and digest windows reach back into days the first range computed.
Every daily relation (and the lake's `fct_requests` partitions) must hold the same rows, compared
with EXCEPT ALL both ways, types included.

Generated days are too few for the anomaly baseline to speak (it wants 14 days of history), so the
windowed alert marts are also compared on hand-built history: 60 days of spend with planted spikes,
where anomalies, their drivers, the movers and the GPU idle rows fire, and anomaly episodes that
open, escalate, dip and recover inside the range and across its start.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import random
import shutil
import time
from collections import Counter
from decimal import Decimal
from graphlib import TopologicalSorter
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
import yaml
from conftest import PG_URL_ENV, REPO, generated_config, process_pool, request, starmap
from slack_server import SlackTestServer
from test_alert_models import anomalies
from test_anomalies import GPU_COLUMNS, SPEND_COLUMNS
from test_state_backends import CHANNEL, TOKEN

from pipelines.alerts.outbox_postgres import PostgresOutbox
from pipelines.defs.models import model_settings
from pipelines.defs.settings.pools import write_pool_settings
from pipelines.defs.settings.savings import write_state
from pipelines.demo import generate
from pipelines.lake.partitions import partition_file
from pipelines.lake.publish import publish_catalog
from pipelines.models.engine import DayRange, load_models, publish_lake_views, run_model, stages
from pipelines.models.relations import replace_table
from pipelines.resources.config import load_config
from pipelines.resources.state import PostgresDatabase
from pipelines.resources.warehouse import scratch_database
from pipelines.sources.billing import day as billing_day
from pipelines.sources.gateway import day as gateway_day
from pipelines.sources.gpu import day as gpu_day
from pipelines.sources.prices import price_rows

pytestmark = pytest.mark.slow

START = dt.date(2026, 10, 28)
DAYS = 8  # through Nov 4
RANGES = (DayRange(START, dt.date(2026, 10, 30)), DayRange(dt.date(2026, 10, 31), dt.date(2026, 11, 4)))
CATALOG = REPO / "fixtures" / "prices" / "litellm_2026_11.json"


def _config(root: Path) -> Path:
    config = generated_config(START, CATALOG)
    # The self-host trigger reads 28 days back: a candidate, so its range run is compared too.
    candidate = {"model": "llama-3.1-8b-instruct", "gpu_type": "H100", "usd_per_gpu_hour": 3.29}
    config["savings"] = {
        "selfhost_candidates": {"gpt-4o-mini": candidate | {"load_test": "inputs/loadtest/llama-8b-h100.csv"}}
    }
    path = root / "costwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _ingest(config, warehouse: Path) -> None:
    """The lake and the settings tables the models read, written by the ingest code the assets call."""
    lake = config.lake_dir
    for day in DayRange(START, START + dt.timedelta(days=DAYS - 1)).days:
        with duckdb.connect() as scratch:
            gateway_day.ingest_day(scratch, lake, config.source_files("gateway_logs"), day)
        billing_day.ingest_billing_day(
            {source: config.source_files(source) for source in ("provider_costs", "provider_usage")},
            config.currency_rates,
            lake,
            day,
        )
        gpu_day.ingest_gpu_billing_day(
            config.source_files("gpu_billing"),
            config.currency_rates,
            config.gpu.pool_tag,
            config.gpu.replica_tag,
            config.gpu.instance_types,
            lake,
            day,
        )
        gpu_day.ingest_gpu_telemetry_day(config.source_entries("gpu_telemetry"), lake, day)
    with duckdb.connect(str(warehouse)) as conn:
        publish_lake_views(conn, lake, gateway_day.DATASETS)
        publish_lake_views(
            conn, lake, billing_day.DAILY_DATASETS, {billing_day.QUARANTINE: billing_day.QUARANTINE_DESCRIPTION}
        )
        publish_lake_views(
            conn,
            lake,
            {gpu_day.BILLING_DATASET: gpu_day.BILLING_DESCRIPTION, gpu_day.TELEMETRY_DATASET: "GPU busy time"},
            {gpu_day.QUARANTINE: gpu_day.QUARANTINE_DESCRIPTION},
        )
        replace_table(conn, "price_catalog", price_rows(config), "prices")
        write_pool_settings(conn, config)
        replace_table(conn, "budgets", _budgets(config), "budgets")
        write_state(conn, config.lake_dir)  # nothing decided


def _budgets(config) -> pa.Table:
    return pa.table(
        {
            "feature": pa.array(list(config.budgets), pa.string()),
            "budget_usd": pa.array(list(config.budgets.values()), pa.float64()),
        }
    )


def _prefix_hashed_calls(path: Path) -> None:
    """The generated traffic carries no prefix_hashes: calls that do, for the prompt-cache
    simulation (int_prompt_cache_calls reads the day before each day). Each day an Anthropic call
    writes a prefix at 23:58 and another reads it at 00:02 the next day, across the ranges' seam
    too (Oct 30 -> 31), and a gpt-4o pair five minutes apart."""
    records = []
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        for n, (at, model, provider, fields) in enumerate(
            (
                ("00:02:00", "claude-haiku-4-5", "anthropic", {"cached_input_tokens": 5_000}),
                ("12:00:00", "gpt-4o", "openai", {}),
                ("12:05:00", "gpt-4o", "openai", {"cached_input_tokens": 2_048}),
                ("23:58:00", "claude-haiku-4-5", "anthropic", {"cache_creation_input_tokens": 5_000}),
            )
        ):
            records.append(
                request(
                    f"prefix-{day}-{n}",
                    f"{day}T{at}Z",
                    model,
                    provider=provider,
                    feature="cached_prompts",
                    user_id="u_cache",
                    input_tokens=6_000,
                    output_tokens=100,
                    prefix_hashes=[[5_000 if provider == "anthropic" else 2_100, f"system-{provider}"]],
                    **fields,
                )
            )
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


def _in_dependency_order() -> list:
    models = load_models()
    graph = {name: [read for read in model.reads if read in models] for name, model in models.items()}
    return [models[name] for name in TopologicalSorter(graph).static_order()]


def _run(folder: Path, base: Path, settings: dict, runs: list[DayRange]) -> Path:
    """A copy of the ingested warehouse with every model run, in dependency order, once per entry of
    `runs` (the daily ones over that entry's days), as the job runs them. Its own lake for the
    model partitions; the ingested datasets are read where they are."""
    folder.mkdir()
    warehouse = folder / "warehouse.duckdb"
    shutil.copy(base, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        for days in runs:
            for model in _in_dependency_order():
                run_model(conn, model, folder / "lake", days if model.daily else None, settings)
    return warehouse


def _stage_of_day(lake: str, config_path: str, day: dt.date, stage: int) -> None:
    """One distributed run: a day's models of one stage, in a scratch database of its own over the
    lake, everything written to the lake (as `WarehouseResource(scratch=True)` runs them)."""
    config = load_config(config_path)
    stage_of = stages(load_models())
    with scratch_database(Path(lake)) as conn:
        for model in _in_dependency_order():
            if stage_of[model.name] == stage:
                days = DayRange.of(day) if model.daily else None
                run_model(conn, model, Path(lake), days, model_settings(config), in_lake=True)


def _run_distributed(folder: Path, config, days: list[dt.date]) -> Path:
    """The distributed mode's stages over the days: the ingested datasets copied to a lake of its
    own with the settings written there as the settings assets write them in that mode, then each
    stage's days in two processes at once (every day of a stage done before the next stage), then
    the analysts' catalog of views. Returns the catalog."""
    lake = folder / "lake"
    shutil.copytree(config.lake_dir, lake)
    with duckdb.connect() as conn:
        replace_table(conn, "price_catalog", price_rows(config), "prices", lake_dir=lake)
        write_pool_settings(conn, config, lake=lake)
        replace_table(conn, "budgets", _budgets(config), "budgets", lake_dir=lake)
        write_state(conn, lake, lake=lake)
    with process_pool(2) as pool:
        for stage in range(max(stages(load_models()).values()) + 1):
            starmap(pool, _stage_of_day, [(str(lake), str(config.path), day, stage) for day in days])
    return publish_catalog(lake, folder / "warehouse.duckdb")


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    root = tmp_path_factory.mktemp("range_models")
    generate(root / "inputs", start_date=START, days=DAYS, requests_per_day=300, seed=5)
    _prefix_hashed_calls(root / "inputs" / "gateway" / "prefix_hashed.jsonl.gz")
    config = load_config(_config(root))
    base = root / "ingested.duckdb"
    _ingest(config, base)
    settings = model_settings(config)
    every_day = [DayRange.of(day) for days in RANGES for day in days.days]
    day_by_day = _run(root / "day_by_day", base, settings, every_day)
    ranged = _run(root / "ranged", base, settings, list(RANGES))
    (root / "distributed").mkdir()
    distributed = _run_distributed(root / "distributed", config, [day for days in RANGES for day in days.days])
    conn = duckdb.connect()
    conn.execute("attach $path as day_by_day (read_only)", {"path": str(day_by_day)})
    conn.execute("attach $path as ranged (read_only)", {"path": str(ranged)})
    conn.execute("attach $path as distributed (read_only)", {"path": str(distributed)})
    yield conn, root
    conn.close()


def _differences(conn, one: str, other: str) -> tuple[int, int]:
    (missing,) = conn.execute(f"select count(*) from (from {one} except all from {other})").fetchone()  # noqa: S608 (relations named by this test)
    (extra,) = conn.execute(f"select count(*) from (from {other} except all from {one})").fetchone()  # noqa: S608 (relations named by this test)
    return missing, extra


def _types(conn, relation: str) -> list[tuple[str, str]]:
    return [row[:2] for row in conn.execute(f"describe from {relation}").fetchall()]  # noqa: S608 (a relation named by this test)


@pytest.mark.parametrize("model", [model.name for model in load_models().values() if model.daily])
def test_a_range_run_equals_the_same_days_run_one_at_a_time(warehouses, model):
    conn, root = warehouses
    if load_models()[model].materialized == "daily_parquet":
        one, other = (
            f"read_parquet('{root / run / 'lake' / model}/day=*/data.parquet', hive_partitioning = true)"
            for run in ("day_by_day", "ranged")
        )
        for day in DayRange(START, RANGES[-1].end).days:  # every day its partition, empty or not
            assert partition_file(root / "ranged" / "lake", model, day).exists()
    else:
        one, other = f"day_by_day.{model}", f"ranged.{model}"
    (rows,) = conn.execute(f"select count(*) from {one}").fetchone()  # noqa: S608 (a relation named by this test)
    assert _differences(conn, one, other) == (0, 0), f"{model}: rows only day by day, rows only ranged"
    assert _types(conn, one) == _types(conn, other)
    # Each model has rows to compare, bar the episodes (no anomaly can fire on 8 days: see the hand-built tests).
    assert rows > 0 or model == "alert_anomaly_episodes"


@pytest.mark.parametrize("model", [model.name for model in load_models().values() if model.materialized != "view"])
def test_days_run_at_once_stage_by_stage_equal_the_same_days_run_one_at_a_time(warehouses, model):
    """The distributed mode's runs (execution.mode: distributed): each day of a stage in its own
    process and scratch database at once, every table in the lake, read through the published
    catalog, give every model the rows of the day-by-day warehouse, types included."""
    conn, root = warehouses
    if load_models()[model].materialized == "daily_parquet":
        one = f"read_parquet('{root / 'day_by_day' / 'lake' / model}/day=*/data.parquet', hive_partitioning = true)"
    else:
        one = f"day_by_day.{model}"
    other = f"distributed.{model}"
    (rows,) = conn.execute(f"select count(*) from {one}").fetchone()  # noqa: S608 (a relation named by this test)
    columns = ", ".join(name for name, _ in _types(conn, one))  # the same columns, in the warehouse's order
    reordered = f"(select {columns} from {other})"  # noqa: S608 (relations and columns named by this test)
    assert _differences(conn, one, reordered) == (0, 0), f"{model}: only in one, only in other"
    # A warehouse table's integer sums are HUGEINT; the lake's are BIGINT (Parquet has no HUGEINT).
    assert [(name, kind.replace("HUGEINT", "BIGINT")) for name, kind in _types(conn, one)] == _types(conn, other)
    # Each has rows to compare, bar the episodes (see above), the realized savings (nothing marked
    # done) and the price findings (every price of these days is the catalog's own).
    assert rows > 0 or model in ("alert_anomaly_episodes", "fct_savings_realized", "fct_price_findings")


def _alerts_run(config_path: str, first: dt.date, last: dt.date, environ: dict) -> dict:
    """One run of the real `alerts_outbox` asset over `first`..`last`, in a process of its own
    with its own Dagster instance, as a distributed run of those days runs it. Returns what its
    materialization reports sent and held."""
    from pipelines.cli import _partitions
    from pipelines.definitions import build_definitions
    from pipelines.defs.schedules import DAILY_JOB

    os.environ.update(environ)
    job = build_definitions(config_path).resolve_job_def(DAILY_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("alerts_outbox")], **_partitions(first, last)
        )
    metadata = result.asset_materializations_for_node("alerts_outbox")[0].metadata
    return {key: metadata[key].value for key in ("sent", "held")}


@pytest.mark.distributed
def test_two_concurrent_runs_with_pending_alerts_post_each_alert_once(warehouses, pg_url):
    """The alerts of the distributed lake above, through the real asset on Postgres state: a first
    run over Oct 28..Nov 2 without Slack leaves its alerts pending; then the runs of Nov 3 and of
    Nov 4 start at once, each adding its day's alerts and delivering everything pending. The local
    Slack server holds posts until both runs have one in flight, then counts: each alert once."""
    _, root = warehouses
    config = yaml.safe_load((root / "costwatch.yaml").read_text())
    config["data_dir"] = "distributed"  # its lake: the one the stages above wrote
    config["execution"] = {"mode": "distributed"}
    config["state"] = {"backend": "postgres", "url_env": PG_URL_ENV}
    config["alerts"] |= {"slack_channel": CHANNEL, "max_age_days": 36500}
    path = root / "distributed.yaml"
    path.write_text(yaml.safe_dump(config))
    quiet = {"SLACK_BOT_TOKEN": "", "SLACK_WEBHOOK_URL": ""}
    nov_2, nov_3, nov_4 = (dt.date(2026, 11, day) for day in (2, 3, 4))
    with process_pool(1) as pool:
        waiting = pool.submit(_alerts_run, str(path), START, nov_2, quiet).result(timeout=300)
    assert waiting["held"] and waiting["sent"] == []
    server = SlackTestServer(token=TOKEN, lifetime_s=120).start()
    try:
        server.hold()
        slack = quiet | {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": server.api_url}
        with process_pool(2) as pool:
            runs = [pool.submit(_alerts_run, str(path), day, day, slack) for day in (nov_3, nov_4)]
            deadline = time.monotonic() + 60
            while server.waiting < 2 and time.monotonic() < deadline and not all(run.done() for run in runs):
                time.sleep(0.05)
            in_flight = server.waiting
            server.release()
            third, fourth = (run.result(timeout=120) for run in runs)
    finally:
        server.stop()
    assert in_flight == 2  # both runs had a post in flight at once
    statuses = PostgresOutbox(PostgresDatabase(pg_url), str(root / "distributed" / "lake")).statuses()
    # Every day's digest among them: the days of the first run, delivered by the later two.
    assert {f"digest:{day}" for day in DayRange(START, nov_4).days} <= set(statuses)
    assert set(statuses.values()) == {"sent"}
    assert server.copies() == {alert_id: 1 for alert_id in statuses}
    assert set(third["sent"]).isdisjoint(fourth["sent"]) and set(third["sent"]) | set(fourth["sent"]) == set(statuses)
    assert third["sent"] and fourth["sent"]
    assert set(waiting["held"]) <= set(statuses)


def test_the_second_range_reads_history_the_first_one_computed(warehouses):
    """What makes the comparison above cover the windows: the second range's first day reads days
    before it, and the budget month restarts inside it."""
    conn, _ = warehouses
    months = conn.execute(
        "select month, min(day), max(day) from ranged.fct_budget_forecast group by month order by month"
    ).fetchall()
    assert months == [
        (dt.date(2026, 10, 1), START, dt.date(2026, 10, 31)),
        (dt.date(2026, 11, 1), dt.date(2026, 11, 1), dt.date(2026, 11, 4)),
    ]
    # Nov 1's run rate reads the 7 days through it, five of them in October (Oct 28..31 computed before
    # it or in its range); its month to date is Nov 1 alone.
    to_date, run_rate, nov_1, last_7_days = conn.execute(
        """
        select
            budget.spend_to_date_usd,
            budget.daily_run_rate_usd,
            (select sum(cost_usd) from ranged.fct_spend_by_feature_daily
             where day = '2026-11-01' and feature = 'chat'),
            (select sum(cost_usd) from ranged.fct_spend_by_feature_daily
             where day between '2026-10-26' and '2026-11-01' and feature = 'chat')
        from ranged.fct_budget_forecast as budget
        where budget.day = '2026-11-01' and budget.feature = 'chat'
        """
    ).fetchone()
    assert to_date == nov_1
    assert run_rate == (last_7_days / 7).quantize(Decimal("1e-12"))
    # Nov 2 (a Monday) is the second range's first weekday: its baseline is the weekdays before it
    # since the history began, Oct 28, 29 and 30, all three computed by the first range.
    (history_days,) = conn.execute(
        "select history_days from ranged.fct_spend_anomalies where day = '2026-11-02' and dimension = 'total'"
    ).fetchone()
    assert history_days == 3


# --------------------------------------------------------------------------- hand-built windows

HISTORY_START = dt.date(2026, 9, 1)
WINDOW_RANGE = DayRange(dt.date(2026, 10, 1), dt.date(2026, 10, 30))  # crosses no month: a whole baseline inside
ANOMALY_SETTINGS = {"min_impact_usd": 50.0, "min_impact_pct": 0.2}


def spend_history(days: int = 60) -> dict:
    """`days` days of spend from Sep 1 for two features, three users and two models with noise, and
    spikes planted on a few days (volume, prompt growth, a model switch), plus a GPU pool whose
    idle cost jumps."""
    rng = random.Random(12)
    spend, gpu = [], []
    spikes = {dt.date(2026, 10, 8): 3.0, dt.date(2026, 10, 9): 2.5, dt.date(2026, 10, 20): 4.0}
    for offset in range(days):
        day = HISTORY_START + dt.timedelta(days=offset)
        weekend = day.weekday() >= 5
        for feature, user, model in (
            ("chat", "u1", "gpt-x"),
            ("chat", "u2", "gpt-y"),
            ("search", "u3", "gpt-x"),
            ("search", "u1", "gpt-y"),
        ):
            requests = int(rng.randint(800, 1200) * (0.6 if weekend else 1.0) * spikes.get(day, 1.0))
            input_tokens = requests * rng.randint(1500, 2500)
            cached = input_tokens // rng.randint(2, 4)
            output_tokens = requests * rng.randint(150, 250)
            input_price, output_price = (Decimal("5e-5"), Decimal("1.5e-4")) if model == "gpt-x" else (
                Decimal("2e-5"),
                Decimal("8e-5"),
            )  # fmt: skip
            input_list = input_tokens * input_price
            savings = cached * input_price / 2
            output_cost = output_tokens * output_price
            spend.append(
                {
                    "day": day,
                    "feature": feature,
                    "user_id": user,
                    "provider": "openai",
                    "model": model,
                    "requests": requests,
                    "error_requests": 0,
                    "gateway_cache_hits": 0,
                    "unpriced_requests": 0,
                    "input_tokens": input_tokens,
                    "cached_input_tokens": cached,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": output_tokens,
                    "cost_usd": input_list - savings + output_cost,
                    "list_cost_usd": input_list + output_cost,
                    "prompt_cache_savings_usd": savings,
                    "gateway_cache_avoided_usd": 0,
                    "output_cost_usd": output_cost,
                }
            )
        utilization = 0.1 if day == dt.date(2026, 10, 14) else rng.uniform(0.55, 0.75)
        gpu.append(
            {
                "day": day,
                "pool": "pool",
                "billed_replicas": 4,
                "billed_gpu_hours": 96.0,
                "busy_gpu_hours": 96.0 * utilization,
                "busy_method": "telemetry",
                "telemetry_coverage": 1.0,
                "utilization": utilization,
                "gpu_cost_usd": Decimal(960),
                "idle_cost_usd": (Decimal(960) * Decimal(1 - utilization)).quantize(Decimal("1e-6")),
            }
        )
    return {
        "fct_spend_daily": {"columns": SPEND_COLUMNS, "rows": spend},
        "fct_gpu_utilization_daily": {"columns": GPU_COLUMNS, "rows": gpu},
    }


def _same_rows(ranged: list[dict], day_by_day: list[dict]) -> bool:
    """Equal as multisets of whole rows, every value compared exactly (as EXCEPT ALL does); lists
    and structs (fct_requests.charges) element by element."""
    return Counter(_hashable(row) for row in ranged) == Counter(_hashable(row) for row in day_by_day)


def _hashable(value):
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value


def test_spend_anomalies_over_a_range_equal_each_day_run_alone(run_model_on):
    inputs = spend_history()
    ranged = run_model_on("fct_spend_anomalies", inputs, day=WINDOW_RANGE, settings=ANOMALY_SETTINGS)
    day_by_day = [
        row
        for day in WINDOW_RANGE.days
        for row in run_model_on("fct_spend_anomalies", inputs, day=day, settings=ANOMALY_SETTINGS)
    ]
    assert _same_rows(ranged, day_by_day)
    # The comparison covers what fires: token anomalies with movers, and the idle GPU one.
    fired = {(row["day"], row["dimension"]) for row in ranged if row["is_anomaly"]}
    assert {(dt.date(2026, 10, 8), "total"), (dt.date(2026, 10, 20), "feature")} <= fired
    assert (dt.date(2026, 10, 14), "gpu_pool_idle") in fired
    assert any(row["top_users"] for row in ranged if row["dimension"] == "feature" and row["is_anomaly"])


def test_anomaly_episodes_over_a_range_equal_each_day_run_alone(run_model_on):
    """Episodes that open before the range and recover inside it, escalate, survive a one-day dip
    and recover on the range's last day."""
    severities = {
        ("a", 2): "warning",  # before the range; recovers on the 5th
        ("b", 3): "warning",
        ("b", 6): "critical",  # escalates after a 2-day gap: the same episode
        ("b", 7): "none",
        ("b", 8): "warning",  # a dip on the 7th: still open
        ("c", 10): "warning",
        ("c", 17): "critical",  # a new episode after the 10th recovered on the 13th
        ("d", 27): "warning",  # recovers on the 30th, the range's last day
    }
    inputs = anomalies(severities)
    days = DayRange(dt.date(2026, 10, 4), dt.date(2026, 10, 30))
    ranged = run_model_on("alert_anomaly_episodes", inputs, day=days)
    day_by_day = [row for day in days.days for row in run_model_on("alert_anomaly_episodes", inputs, day=day)]
    assert _same_rows(ranged, day_by_day)
    assert {(row["day"].day, row["key"], row["episode_state"]) for row in ranged} == {
        (5, "a", "recovered"),
        (6, "b", "open"),
        (8, "b", "open"),
        (11, "b", "recovered"),
        (10, "c", "open"),
        (13, "c", "recovered"),
        (17, "c", "open"),
        (20, "c", "recovered"),
        (27, "d", "open"),
        (30, "d", "recovered"),
    }


def test_requests_priced_over_a_range_take_each_day_its_own_prices(run_model_on):
    """fct_requests resolves prices once per stretch of days with the same prices in force: a range
    through an override's first day (Oct 5) and a catalog version's last day (Oct 6) prices each
    call as its day alone would. Inputs: tests/model_cases/fct_requests.yaml's first case, its calls
    repeated on Oct 3..7, the override moved to Oct 5 and claude-3-5-haiku re-priced (x2) from Oct 7."""
    case = yaml.safe_load((Path(__file__).parent / "model_cases" / "fct_requests.yaml").read_text(encoding="utf-8"))
    case = next(iter(case["cases"].values()))
    inputs = case["inputs"]
    prices = []
    for row in inputs["stg_prices"]["rows"]:
        if row["layer"] == "override":
            prices.append({**row, "effective_from": dt.date(2026, 10, 5)})
        elif row["model_key"] == "claude-3-5-haiku":
            prices.append({**row, "effective_to": dt.date(2026, 10, 7)})
            prices.append({**row, "effective_from": dt.date(2026, 10, 7), "price_usd": row["price_usd"] * 2})
        else:
            prices.append(row)
    days = DayRange(dt.date(2026, 10, 3), dt.date(2026, 10, 7))
    calls = [
        {
            **call,
            "request_id": f"{call['request_id']}-{day.day}",
            "day": day,
            "ts": dt.datetime.combine(day, dt.time(10, index)),
        }
        for day in days.days
        for index, call in enumerate(inputs["stg_gateway_requests"]["rows"])
    ]
    inputs = {
        "stg_prices": {**inputs["stg_prices"], "rows": prices},
        "stg_gateway_requests": {**inputs["stg_gateway_requests"], "rows": calls},
    }
    settings = case["settings"]
    ranged = run_model_on("fct_requests", inputs, day=days, settings=settings)
    day_by_day = [row for day in days.days for row in run_model_on("fct_requests", inputs, day=day, settings=settings)]
    assert _same_rows(ranged, day_by_day)
    cost = {(row["request_id"], row["pricing_basis"]): row["cost_usd"] for row in ranged}
    # r1 (gpt-4o): catalog before the override's first day, the override from it (the case's $0.0032).
    assert cost[("r1-4", "catalog")] == Decimal("0.004")  # 600 x 2.5e-6 + 400 x 1.25e-6 + 200 x 1e-5
    assert cost[("r1-5", "override")] == cost[("r1-7", "override")] == Decimal("0.0032")
    # r2 (claude-3-5-haiku): the case's $0.0066, doubled from Oct 7.
    assert cost[("r2-6", "catalog")] == Decimal("0.0066")
    assert cost[("r2-7", "catalog")] == Decimal("0.0132")
