"""The project's Dagster instance: its home folder, created with costwatch's settings when missing."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from dagster import DagsterInstance

# What dagster_home/dagster.yaml holds (tests/test_definitions.py pins the two together): a home
# costwatch creates gets the same settings, the `warehouse` pool's one-step limit above all.
INSTANCE_SETTINGS = {
    "telemetry": {"enabled": False},
    "concurrency": {"pools": {"default_limit": 1}},
    "storage": {
        "custom": {
            "module": "pipelines.resources.dagster_storage",
            "class": "PooledSqliteStorage",
            "config": {"base_dir": {"env": "DAGSTER_HOME"}},
        }
    },
}


def dagster_home(config_path: Path) -> Path:
    """$DAGSTER_HOME, or `dagster_home/` beside the config; created (with its dagster.yaml) when
    missing, so a deleted home costs the run history, never a run."""
    home = Path(os.environ.get("DAGSTER_HOME") or config_path.parent / "dagster_home")
    settings = home / "dagster.yaml"
    if not settings.exists():
        home.mkdir(parents=True, exist_ok=True)
        settings.write_text(
            "# Written by costwatch: the Dagster home was missing. Run history starts afresh here.\n"
            + yaml.safe_dump(INSTANCE_SETTINGS, sort_keys=False),
            encoding="utf-8",
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@contextmanager
def open_instance(home: Path) -> Iterator[DagsterInstance]:
    """The Dagster instance whose home is `home`. Its storage is configured from $DAGSTER_HOME
    (dagster.yaml cannot name its own folder), so that is set while the instance is built and
    put back after."""
    import dagster as dg

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.from_config(str(home))
    finally:
        if previous is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = previous
    with instance:
        yield instance


def prune_run_history(instance, keep_days: int, now: dt.datetime | None = None) -> int:
    """Delete the finished runs created more than `keep_days` ago, with their event logs: each
    run of the daily job adds about a megabyte to the Dagster home. The warehouse and the lake
    keep every day's data; what goes is the runs' pages and logs in the UI (their partitions
    then show as not materialized there). Returns how many runs were deleted."""
    import dagster as dg

    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=keep_days)
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    records = instance.get_run_records(filters=dg.RunsFilter(created_before=cutoff, statuses=finished))
    shards = Path(instance.root_directory) / "history" / "runs"
    for record in records:
        run_id = record.dagster_run.run_id
        instance.delete_run(run_id)
        # The SQLite event log keeps one file per run, emptied but not removed by delete_run.
        (shards / f"{run_id}.db").unlink(missing_ok=True)
    return len(records)
