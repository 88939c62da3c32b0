"""Damaged state: each kind is named by `costwatch doctor` with the command that fixes it, and
after that command the warehouse equals the undamaged project's, table by table, row by row.

One generated project (3 days x 300 requests, every source) is run once; each case damages a
copy of it the way production does (a truncated lake file, a manifest cut mid-JSON, a truncated
or deleted warehouse, a deleted Dagster home), then drives `costwatch` as a user would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from conftest import cli_project

from pipelines import cli
from pipelines.lake.partitions import partition_file
from pipelines.models.engine import prepare_session

pytestmark = pytest.mark.slow  # seven runs of three days

FIRST = dt.date(2026, 10, 1)
DAYS = [FIRST + dt.timedelta(days=offset) for offset in range(3)]
# When an alert was enqueued: the wall clock of the run that enqueued it, not data.
RUN_SPECIFIC = {"alerts_outbox": {"created_at"}}


def costwatch(root: Path, *args: str) -> tuple[int, str]:
    """`costwatch --config <root>/costwatch.yaml ARGS` in this process: (exit code, stdout + stderr)."""
    printed = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(printed),
        contextlib.redirect_stderr(printed),
    ):
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        code = cli.main(["--config", str(root / "costwatch.yaml"), *args])
    return code, printed.getvalue()


def warehouse_rows(root: Path) -> dict[str, list[tuple]]:
    """Every table and view of the warehouse, each as its sorted rows (run-specific columns left out)."""
    with duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True) as conn:
        prepare_session(conn, read_only=True)
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
                if column not in RUN_SPECIFIC.get(name, set())
            ]
            listed = ", ".join(f'"{column}"' for column in columns)
            table = conn.execute(f'select {listed} from "{name}" order by all').fetchall()  # noqa: S608 (names from the catalog)
            # Paths of input files name the project's folder: a copy's rows name the reference's
            # folder (the days it did not re-run) and its own (the days it did).
            rows[name] = sorted(
                (tuple(INPUTS.sub("<project>/inputs/", v) if isinstance(v, str) else v for v in row) for row in table),
                key=_sort_key,
            )
    return rows


INPUTS = re.compile(r"^/\S*?/inputs/")


def _sort_key(row: tuple) -> tuple:
    """Rows in an order the last bits of a DOUBLE cannot change."""
    return tuple(("" if v is None else f"{v:.9g}" if isinstance(v, float) else str(v)) for v in row)


def same_rows(actual: list[tuple], expected: list[tuple]) -> bool:
    """Equal row by row; doubles within 1e-9 relative. A DOUBLE sum depends on the order DuckDB's
    threads combine partial sums in (the last bits move between runs); money is DECIMAL, exact."""
    return len(actual) == len(expected) and all(
        len(a) == len(e)
        and all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) if isinstance(x, float) and isinstance(y, float) else x == y
            for x, y in zip(a, e, strict=True)
        )
        for a, e in zip(actual, expected, strict=True)
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, list[tuple]]]:
    root = cli_project(tmp_path_factory.mktemp("reference"), start=FIRST, days=len(DAYS), requests_per_day=300, seed=11)
    code, printed = costwatch(root, "run", "--from", str(DAYS[0]), "--to", str(DAYS[-1]))
    assert code == 0, printed
    return root, warehouse_rows(root)


@pytest.fixture
def damaged(reference, tmp_path) -> Path:
    """A copy of the reference project, to damage."""
    root = tmp_path / "project"
    shutil.copytree(reference[0], root)
    # The config names its inputs relative to itself, the data dir too: the copy is self-contained.
    return root


def doctor(root: Path) -> tuple[int, str]:
    return costwatch(root, "doctor")


def assert_healthy_and_equal(root: Path, reference) -> None:
    code, printed = doctor(root)
    assert code == 0, printed
    assert "every piece of state is healthy" in printed
    expected = reference[1]
    actual = warehouse_rows(root)
    assert sorted(actual) == sorted(expected)
    for name, rows in expected.items():
        assert same_rows(actual[name], rows), (name, actual[name], rows)


def test_the_reference_project_is_healthy(reference):
    code, printed = doctor(reference[0])
    assert code == 0, printed
    assert f"lake {reference[0] / 'data' / 'lake'}: every partition reads ({len(DAYS)} day(s)" in printed


def test_a_truncated_lake_partition_is_named_set_aside_and_re_ingested(damaged, reference):
    target = partition_file(damaged / "data" / "lake", "gateway_requests", DAYS[1])
    with open(target, "r+b") as handle:
        handle.truncate(target.stat().st_size // 2)

    code, printed = doctor(damaged)
    assert code == 1
    assert f"FAIL  lake partition gateway_requests {DAYS[1]}: unreadable" in printed
    assert "fix: `costwatch run --changed` sets it aside and re-ingests" in printed

    # The other days still read: a one-day run of another day succeeds while it is damaged.
    code, printed = costwatch(damaged, "run", "--date", str(DAYS[2]))
    assert code == 0, printed
    assert f"lake partition gateway_requests {DAYS[1]} was unreadable" in printed
    assert list((damaged / "data" / "lake" / "_damaged" / "gateway_requests" / f"day={DAYS[1]}").iterdir())

    code, printed = costwatch(damaged, "run", "--changed")
    assert code == 0, printed
    assert f"{DAYS[1]}" in printed.splitlines()[0]  # the day re-runs (and the later ones reading it)
    assert_healthy_and_equal(damaged, reference)


def test_a_manifest_cut_mid_json_is_rebuilt(damaged, reference):
    manifest = damaged / "data" / "lake" / "_manifests" / "gateway_logs.json"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text[: len(text) // 2], encoding="utf-8")

    code, printed = doctor(damaged)
    assert code == 1
    assert f"FAIL  state file {manifest}: not JSON" in printed
    assert "fix: `costwatch run --changed` moves it aside and rebuilds it" in printed

    code, printed = costwatch(damaged, "run", "--changed")
    assert code == 0, printed
    assert f"{manifest} was unreadable" in printed
    assert manifest.with_name("gateway_logs.json.damaged").read_text(encoding="utf-8") == text[: len(text) // 2]
    assert_healthy_and_equal(damaged, reference)


def test_a_truncated_warehouse_fails_fast_naming_the_fix_and_is_rebuilt_from_the_lake(damaged, reference):
    warehouse = damaged / "data" / "warehouse.duckdb"
    with open(warehouse, "r+b") as handle:
        handle.truncate(warehouse.stat().st_size // 3)

    started = time.monotonic()
    code, printed = costwatch(damaged, "run", "--date", str(DAYS[2]))
    assert code == 1
    assert time.monotonic() - started < 15
    assert f"the warehouse {warehouse} cannot be opened" in printed and "Fix: `costwatch rebuild`" in printed

    code, printed = doctor(damaged)
    assert code == 1
    assert f"FAIL  warehouse {warehouse}: cannot be opened" in printed
    assert "fix: `costwatch rebuild`" in printed

    # Rebuilt from the lake: the gateway logs are gone (rotated away), and are not needed.
    for log in (damaged / "inputs" / "gateway").iterdir():
        log.unlink()
    code, printed = costwatch(damaged, "rebuild")
    assert code == 0, printed
    assert f"rebuilding the marts of {DAYS[0]}..{DAYS[-1]} from the lake" in printed
    assert len(list(warehouse.parent.glob("warehouse.duckdb.damaged-*"))) == 1
    assert_healthy_and_equal(damaged, reference)


def test_a_deleted_warehouse_is_never_restarted_with_one_day(damaged, reference):
    warehouse = damaged / "data" / "warehouse.duckdb"
    warehouse.unlink()

    code, printed = costwatch(damaged, "run", "--date", str(DAYS[2]))
    assert code == 1
    assert f"the warehouse {warehouse} is missing, but the lake holds {len(DAYS)} day(s)" in printed
    assert not warehouse.exists()

    code, printed = doctor(damaged)
    assert code == 1
    assert f"FAIL  warehouse {warehouse}: missing while the lake holds {len(DAYS)} day(s)" in printed

    code, printed = costwatch(damaged, "rebuild")
    assert code == 0, printed
    assert_healthy_and_equal(damaged, reference)


def test_a_deleted_dagster_home_is_created_again(damaged, reference):
    shutil.rmtree(damaged / "dagster_home")

    code, printed = doctor(damaged)
    assert code == 1
    assert f"FAIL  Dagster home {damaged / 'dagster_home'}: missing" in printed

    code, printed = costwatch(damaged, "run", "--date", str(DAYS[2]))
    assert code == 0, printed
    assert (damaged / "dagster_home" / "dagster.yaml").exists()
    assert_healthy_and_equal(damaged, reference)


def test_finished_runs_older_than_run_history_days_are_deleted_with_their_event_logs(damaged):
    import dagster as dg

    from pipelines.resources.instance import prune_run_history

    home = damaged / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        shard = home / "history" / "runs" / f"{run.run_id}.db"
        assert shard.exists()
        created = instance.get_run_record_by_id(run.run_id).create_timestamp
        keep = dt.timedelta(days=90)
        assert prune_run_history(instance, 90, now=created + keep - dt.timedelta(seconds=1)) == 0
        assert prune_run_history(instance, 90, now=created + keep + dt.timedelta(seconds=1)) == 1
        assert instance.get_runs() == []
        assert not shard.exists()
