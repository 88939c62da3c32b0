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
import shutil
import time
from pathlib import Path

import pytest
import yaml
from conftest import cli_project, warehouse_rows
from slack_server import SlackTestServer

from pipelines import cli
from pipelines.lake.partitions import partition_file
from pipelines.resources.instance import open_instance

pytestmark = pytest.mark.slow  # seven runs of three days

FIRST = dt.date(2026, 10, 1)
DAYS = [FIRST + dt.timedelta(days=offset) for offset in range(3)]


TOKEN = "xoxb-damaged-state-test"
SLACK = SlackTestServer(token=TOKEN, lifetime_s=900)
# A rebuilt warehouse's outbox learns from the delivery ledger that an alert was sent, not how
# many attempts it took or when: its status is compared, those are not (and no copy is posted).
IGNORE = {"alerts_outbox": {"created_at", "attempts", "sent_at", "caught_up_at"}}


def costwatch(root: Path, *args: str) -> tuple[int, str]:
    """`costwatch --config <root>/costwatch.yaml ARGS` in this process, posting its alerts to the
    local Slack server with a bot token: (exit code, stdout + stderr)."""
    printed = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(printed),
        contextlib.redirect_stderr(printed),
    ):
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        patch.setenv("SLACK_BOT_TOKEN", TOKEN)
        patch.setenv("SLACK_API_URL", SLACK.api_url)
        code = cli.main(["--config", str(root / "costwatch.yaml"), *args])
    return code, printed.getvalue()


@pytest.fixture(scope="module", autouse=True)
def slack():
    with SLACK:
        yield SLACK


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, list[tuple]]]:
    root = cli_project(tmp_path_factory.mktemp("reference"), start=FIRST, days=len(DAYS), requests_per_day=300, seed=11)
    config = yaml.safe_load((root / "costwatch.yaml").read_text(encoding="utf-8"))
    # The days are past: alerts about them stay postable only with a cut-off that reaches them.
    config["alerts"] |= {"slack_channel": "#llm-cost", "max_age_days": 36500}
    (root / "costwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    code, printed = costwatch(root, "run", "--from", str(DAYS[0]), "--to", str(DAYS[-1]))
    assert code == 0, printed
    assert SLACK.copies() and set(SLACK.copies().values()) == {1}, "the reference posted its alerts, each once"
    return root, warehouse_rows(root, IGNORE)


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
    """Doctor finds nothing, every table equals the reference's, and no alert was posted again:
    each alert the server holds, it holds once (a copy starts from the reference's ledger)."""
    assert set(SLACK.copies().values()) == {1}, SLACK.copies()
    code, printed = doctor(root)
    assert code == 0, printed
    assert "every piece of state is healthy" in printed
    expected = reference[1]
    actual = warehouse_rows(root, IGNORE)
    assert sorted(actual) == sorted(expected)
    for name, rows in expected.items():
        assert actual[name] == rows, (name, actual[name], rows)  # bit for bit, doubles included


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
    assert f"the warehouse {warehouse} cannot be opened or read" in printed and "Fix: `costwatch rebuild`" in printed

    code, printed = doctor(damaged)
    assert code == 1
    assert f"FAIL  warehouse {warehouse}: cannot be opened or read" in printed
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

    from pipelines.resources.instance import prune_run_history

    home = damaged / "dagster_home"
    with open_instance(home) as instance:
        (run,) = instance.get_runs()
        shard = home / "history" / "runs" / f"{run.run_id}.db"
        assert shard.exists()
        created = instance.get_run_record_by_id(run.run_id).create_timestamp
        keep = dt.timedelta(days=90)
        assert prune_run_history(instance, 90, now=created + keep - dt.timedelta(seconds=1)) == 0
        assert prune_run_history(instance, 90, now=created + keep + dt.timedelta(seconds=1)) == 1
        assert instance.get_runs() == []
        assert not shard.exists()
