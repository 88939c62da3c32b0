"""A parallel backfill of 35 days gives the anomalies and budgets of the sequential run (issue 16).

The distributed mode runs a range as stages (`pipelines.models.engine.stages`): each day of a stage
is its own run, in its own process and scratch database over the lake, several at once; the next
stage starts when every day of this one is done. Windowed marts read days other runs wrote.

Here 65 days of hand-built spend and GPU facts (Sep 1 to Nov 4, with planted spikes, see
`test_range_models.spend_history`) are the history; the backfill is Oct 1 to Nov 4, 35 days. The
sequential run is the embedded job as it ran before ranges: one warehouse, every model for one
day, then the next day. The parallel run is the distributed mode's: the facts as lake partitions,
two spawned processes taking the days of each stage, everything written to the lake, read back
through the analysts' published catalog. The spend anomalies (28 days of baseline), their
episodes (3 days back) and the budget forecast (month to date, restarting on Nov 1 inside the
backfill; a 7-day run rate) must hold the same rows, compared with EXCEPT ALL both ways, types
included, and what they say is checked against the facts by hand.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from conftest import process_pool, starmap
from model_harness import create_relation
from test_range_models import ANOMALY_SETTINGS, spend_history

from pipelines.lake.partitions import write_partition
from pipelines.lake.publish import publish_catalog
from pipelines.models.engine import DayRange, load_models, run_model, stages
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import scratch_database

pytestmark = pytest.mark.slow

HISTORY = DayRange(dt.date(2026, 9, 1), dt.date(2026, 11, 4))  # 65 days of facts
BACKFILL = DayRange(dt.date(2026, 10, 1), dt.date(2026, 11, 4))  # 35 days, across a month end
# The daily facts the history gives (in the product: fct_spend_daily from fct_requests, the GPU
# pools' utilization from billing and telemetry), and the marts the backfill computes from them.
FACTS = ("fct_spend_daily", "fct_gpu_utilization_daily")
MARTS = ("fct_spend_by_feature_daily", "fct_spend_anomalies", "fct_budget_forecast", "alert_anomaly_episodes")
BUDGETS = {"chat": 4000.0, "search": 3000.0}
SETTINGS = dict(ANOMALY_SETTINGS)


def _marts() -> list:
    """The marts in dependency order."""
    models = load_models()
    order = [name for name in MARTS if not set(models[name].reads) & set(MARTS)]
    while len(order) < len(MARTS):
        order += [name for name in MARTS if name not in order and set(models[name].reads) & set(MARTS) <= set(order)]
    return [models[name] for name in order]


def _budgets() -> pa.Table:
    return pa.table(
        {
            "feature": pa.array(list(BUDGETS), pa.string()),
            "budget_usd": pa.array(list(BUDGETS.values()), pa.float64()),
        }
    )


def _sequential(folder: Path, history: dict) -> Path:
    """One warehouse: the facts as tables, the days before the backfill already computed, then
    every mart for one day, the next day, and so on."""
    folder.mkdir()
    warehouse = folder / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        for name in FACTS:
            create_relation(conn, name, history[name])
        replace_table(conn, "budgets", _budgets(), "budgets")
        by_feature = load_models()["fct_spend_by_feature_daily"]
        run_model(conn, by_feature, folder / "lake", DayRange(HISTORY.start, BACKFILL.start - dt.timedelta(days=1)))
        for day in BACKFILL.days:
            for model in _marts():
                run_model(conn, model, folder / "lake", day, SETTINGS)
    return warehouse


def _stage_of_day(lake: str, day: dt.date, stage: int) -> tuple[int, float, float]:
    """One distributed run: the day's marts of one stage, in a scratch database of its own over
    the lake, written to the lake (as `WarehouseResource(scratch=True)` runs them). Returns the
    process and when the run started and ended."""
    started = time.monotonic()
    stage_of = stages(load_models())
    with scratch_database(Path(lake)) as conn:
        for model in _marts():
            if stage_of[model.name] == stage:
                run_model(conn, model, Path(lake), day, SETTINGS, in_lake=True)
    return os.getpid(), started, time.monotonic()


def _parallel(folder: Path, history: dict) -> tuple[Path, list[tuple[int, float, float]]]:
    """The facts as lake partitions and the budgets as the settings asset writes them in that
    mode, the days before the backfill computed, then the backfill's stages, each stage's days
    taken by two processes at once. Returns the published catalog and every run's times."""
    lake = folder / "lake"
    with duckdb.connect() as conn:
        for name in FACTS:
            create_relation(conn, f"seed_{name}", history[name])
            for day in HISTORY.days:
                facts = f"select * exclude (day) from seed_{name} where day = $day"  # noqa: S608 (names from this test)
                write_partition(conn, facts, lake, name, day, {"day": day})
        replace_table(conn, "budgets", _budgets(), "budgets", lake_dir=lake)
    with scratch_database(lake) as conn:
        by_feature = load_models()["fct_spend_by_feature_daily"]
        run_model(conn, by_feature, lake, DayRange(HISTORY.start, BACKFILL.start - dt.timedelta(days=1)), in_lake=True)
    stage_of = stages(load_models())
    runs: list[tuple[int, float, float]] = []
    with process_pool(2) as pool:
        for stage in sorted({stage_of[name] for name in MARTS}):
            runs += starmap(pool, _stage_of_day, [(str(lake), day, stage) for day in BACKFILL.days])
    return publish_catalog(lake, folder / "warehouse.duckdb"), runs


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel_backfill")
    history = spend_history(days=len(HISTORY.days))
    sequential = _sequential(root / "sequential", history)
    (root / "parallel").mkdir()
    started = time.monotonic()
    parallel, runs = _parallel(root / "parallel", history)
    print(f"35 days in parallel stages: {time.monotonic() - started:.1f} s, {len(runs)} runs")
    conn = duckdb.connect()
    conn.execute("attach $path as sequential (read_only)", {"path": str(sequential)})
    conn.execute("attach $path as parallel (read_only)", {"path": str(parallel)})
    yield conn, history, runs
    conn.close()


@pytest.mark.parametrize("mart", MARTS)
def test_a_parallel_backfill_of_35_days_equals_the_sequential_run(backfilled, mart):
    conn, _, _ = backfilled
    one, other = f"sequential.{mart}", f"parallel.{mart}"
    (missing,) = conn.execute(f"select count(*) from (from {one} except all from {other})").fetchone()  # noqa: S608 (relations named by this test)
    (extra,) = conn.execute(f"select count(*) from (from {other} except all from {one})").fetchone()  # noqa: S608 (relations named by this test)
    assert (missing, extra) == (0, 0)
    describe = "select column_name, column_type from (describe from {})"
    assert conn.execute(describe.format(one)).fetchall() == conn.execute(describe.format(other)).fetchall()
    in_backfill = f"select count(distinct day) from {other} where day between $start and $end"  # noqa: S608 (a relation named by this test)
    (days,) = conn.execute(in_backfill, {"start": BACKFILL.start, "end": BACKFILL.end}).fetchone()
    assert days == len(BACKFILL.days) or mart == "alert_anomaly_episodes"  # episodes: only days something opens or ends


def test_the_backfill_ran_days_at_once_in_two_processes(backfilled):
    _, _, runs = backfilled
    assert len(runs) == len(BACKFILL.days) * len({stages(load_models())[name] for name in MARTS})
    assert len({pid for pid, _, _ in runs}) == 2
    overlapping = [
        (one, other)
        for index, one in enumerate(runs)
        for other in runs[index + 1 :]
        if one[0] != other[0] and one[1] < other[2] and other[1] < one[2]
    ]
    assert overlapping  # runs of different days, in different processes, at the same time


def test_what_the_backfill_found_is_what_the_facts_say(backfilled):
    """Not only equal: the anomalies fire on the planted spikes, episodes open and recover, and the
    budgets' month to date is the facts' own sum, restarting on Nov 1."""
    conn, history, _ = backfilled
    fired = {
        (day, dimension)
        for day, dimension in conn.execute(
            "select day, dimension from parallel.fct_spend_anomalies where is_anomaly"
        ).fetchall()
    }
    assert {
        (dt.date(2026, 10, 8), "total"),
        (dt.date(2026, 10, 20), "feature"),
        (dt.date(2026, 10, 14), "gpu_pool_idle"),
    } <= fired
    states = {
        state for (state,) in conn.execute("select episode_state from parallel.alert_anomaly_episodes").fetchall()
    }
    assert states == {"open", "recovered"}

    def spent(feature: str, first: dt.date, last: dt.date) -> Decimal:
        return sum(
            (Decimal(str(row["cost_usd"])) for row in history["fct_spend_daily"]["rows"]
             if row["feature"] == feature and first <= row["day"] <= last),
            Decimal(0),
        )  # fmt: skip

    forecast = {
        (day, feature): (to_date, run_rate, crossed)
        for day, feature, to_date, run_rate, crossed in conn.execute(
            "select day, feature, spend_to_date_usd, daily_run_rate_usd, threshold_crossed from parallel.fct_budget_forecast"
        ).fetchall()
    }
    oct_31, nov_1, nov_4 = dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 4)
    assert forecast[(oct_31, "chat")][0] == spent("chat", dt.date(2026, 10, 1), oct_31)
    assert forecast[(nov_1, "chat")][0] == spent("chat", nov_1, nov_1)  # the month restarts inside the backfill
    assert forecast[(nov_4, "search")][0] == spent("search", nov_1, nov_4)
    total = spent("chat", nov_1, nov_4) + spent("search", nov_1, nov_4)
    assert forecast[(nov_4, "total")][0] == total
    # Oct 1's run rate reads the 6 days before it, computed before the backfill (Sep 25..30).
    assert forecast[(dt.date(2026, 10, 1), "chat")][1] == (
        spent("chat", dt.date(2026, 9, 25), dt.date(2026, 10, 1)) / 7
    ).quantize(Decimal("1e-12"))
    # The threshold of every day and budget, from the facts: month to date plus the run rate for
    # the days left, against the budget. Chat crosses 100 % in October by its forecast, then by
    # its spend; in November its month starts over.
    for day in BACKFILL.days:
        month_start = day.replace(day=1)
        month_end = (month_start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        for feature, budget in BUDGETS.items():
            to_date = spent(feature, month_start, day)
            month_end_usd = to_date + spent(feature, day - dt.timedelta(days=6), day) * (month_end - day).days / 7
            reached = max(to_date, month_end_usd) / Decimal(str(budget))
            expected = 1.0 if reached >= 1 else 0.8 if reached >= Decimal("0.8") else None
            assert forecast[(day, feature)][2] == expected, (day, feature, reached)
    crossed = {day for (day, feature), (to_date, _, _) in forecast.items() if feature == "chat" and to_date >= 4000}
    assert crossed and min(crossed).month == 10 and nov_1 not in crossed
