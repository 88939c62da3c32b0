"""Resources every domain shares: the validated config and the DuckDB warehouse."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from pipelines.defs.schedules import REBUILD_JOB
from pipelines.lake.health import WarehouseDamaged, heal_lake, locked_by_another_process, require_warehouse
from pipelines.lake.lock import RunLock, project_lock
from pipelines.lake.store import LakePath, open_lake, run_listing_cache
from pipelines.models.engine import DayRange, lake_catalog, prepare_session
from pipelines.resources.config import CostwatchConfig, load_config
from pipelines.resources.state import state_backend


class CostwatchConfigResource(dg.ConfigurableResource):
    """The costwatch.yaml this code location was loaded with."""

    config_path: str

    @cached_property
    def config(self) -> CostwatchConfig:
        return load_config(self.config_path)


class WarehouseResource(DuckDBResource):
    """The analysts' DuckDB file, opened for writing with the project's session settings.

    A run that uses it holds the project's run lock (`pipelines.lake.lock.project_lock`) from
    start to end, so two runs never interleave their writes to the lake, the input manifests
    and the warehouse. A second run waits up to `run_lock_wait_s`, then fails naming the run
    that holds the lock. (DuckDB's own file lock only guards single connections, and the
    `warehouse` pool only single steps: neither keeps a run's steps together.)"""

    run_lock_wait_s: float = 0.0
    _run_database: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)
    # The project's lake: its damaged partitions are set aside before the run reads any
    # (`pipelines.lake.health`). Empty: not checked.
    lake_dir: str = ""
    # The project's costwatch.yaml: its state backend records the days of damaged partitions. Empty:
    # the lake's JSON file does.
    config_path: str = ""
    # An object-store lake (`storage.lake`), its S3 endpoint and region: every session registers
    # its filesystem, so the views over its partitions read. Empty: the partitions are in lake_dir.
    lake: str = ""
    lake_endpoint_url: str = ""
    lake_region: str = ""
    _remote_lake: LakePath | None = PrivateAttr(default=None)

    # Distributed mode (execution.mode: distributed): each run works in a scratch DuckDB file of its
    # own, created for the run and deleted after it, and keeps everything it writes in the lake
    # (`tables_lake`), so runs of different days run at once. No run lock: the Dagster instance's
    # tag limit keeps two runs of one day apart (dagster_home/distributed/dagster.yaml).
    scratch: bool = False

    @property
    def tables_lake(self) -> LakePath | None:
        """Where tables go instead of the database: the lake in a scratch (distributed) run, else None."""
        return (self._lake() or Path(self.lake_dir)) if self.scratch else None

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator:
        if self.scratch:
            # One lake filesystem for the run, its listings cached (pipelines/lake/store.py), and
            # none of it kept after the run.
            self._remote_lake = None
            try:
                with run_listing_cache(), self._opened_for_the_run(context) as resource:
                    yield resource
            finally:
                self._remote_lake = None
            return
        run = context.run_id or "outside a run"
        with project_lock(
            Path(self.database).parent,
            command=f"dagster run {run}",
            wait_s=self.run_lock_wait_s,
            hint=", then re-execute this run",
        ) as lock:
            if context.instance is not None:
                fail_orphaned_runs(context.instance, lock)
                if context.run_id:
                    lock.add_run(context.run_id)
            if self.lake_dir:
                state = state_backend(load_config(self.config_path)) if self.config_path else None
                for line in heal_lake(Path(self.lake_dir), state):
                    if context.log is not None:
                        context.log.warning(line)
                if context.dagster_run is not None and context.dagster_run.job_name != REBUILD_JOB:
                    days = _tag_days(context.dagster_run.tags)
                    require_warehouse(
                        Path(self.database), self._lake() or Path(self.lake_dir), set(days.days) if days else None
                    )
            # The file is opened once for the run (a file DuckDB cannot open fails it now, naming
            # the fix): each step gets its own connection to that open database (`get_connection`),
            # not a fresh open of the file (~30 ms each, and a cold cache). The run lock held here
            # keeps every other writer out meanwhile; analysts read the published copy.
            with self._opened_for_the_run(context) as resource:
                yield resource

    @contextmanager
    def _opened_for_the_run(self, context: dg.InitResourceContext) -> Iterator:
        with self._open() as database, super().yield_for_execution(context) as resource:
            self._run_database = database
            try:
                yield resource
            finally:
                self._run_database = None

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.scratch:
            with scratch_database(self.tables_lake) as conn:
                yield conn
            return
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            # Once, at once: dagster-duckdb's connect retries any IOException for minutes (made
            # for a lock held a moment by another writer), and a damaged file raises one too.
            conn = duckdb.connect(self.database, config={"custom_user_agent": "dagster", **self.connection_config})
        except duckdb.IOException as error:
            if locked_by_another_process(error):
                with super().get_connection() as conn:  # another writer: wait, as dagster-duckdb does
                    yield conn
                return
            raise WarehouseDamaged(Path(self.database), error) from None
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the project's session settings: inside a run, a new connection to the
        database the run opened; outside one, the file opened for this connection alone."""
        with contextlib.ExitStack() as stack:
            database = self._run_database or stack.enter_context(self._open())
            conn = stack.enter_context(database.cursor())
            try:
                prepare_session(conn, lake=self._lake())
                yield conn
            except duckdb.Error as error:
                # A damaged file can open (DuckDB reads blocks lazily) and fail at the first read
                # of a damaged block: that step fails naming the fix, as a failed open does.
                message = str(error)
                if "Corrupt database file" in message or (
                    isinstance(error, duckdb.IOException)
                    and self.database in message
                    and not locked_by_another_process(error)
                ):
                    raise WarehouseDamaged(Path(self.database), error) from error
                raise

    def _lake(self) -> LakePath | None:
        if self.lake and self._remote_lake is None:
            self._remote_lake = open_lake(
                self.lake, endpoint_url=self.lake_endpoint_url or None, region=self.lake_region or None
            )
        return self._remote_lake


@contextmanager
def scratch_database(lake_dir: LakePath) -> Iterator[duckdb.DuckDBPyConnection]:
    """A distributed run's database: a new file in a private temp folder (DuckDB spills there
    too), holding the project's macros and a view over every dataset of the lake; removed with
    everything in it when the run ends."""
    folder = Path(tempfile.mkdtemp(prefix="costwatch-run-"))
    try:
        conn = duckdb.connect(str(folder / "scratch.duckdb"), config={"temp_directory": str(folder / "spill")})
        try:
            prepare_session(conn, lake=lake_dir)
            lake_catalog(conn, lake_dir, documented=False)
            yield conn
        finally:
            conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fail_orphaned_runs(instance: dg.DagsterInstance, lock: RunLock) -> list[str]:
    """Mark failed the runs of earlier lock holders that died mid-run, and free their pool slots.

    A process killed mid-run (SIGKILL, OOM, a closed laptop) never reports its run's end, so the
    run stays STARTED (or NOT_STARTED, killed between Dagster registering it and its first step)
    and keeps its `warehouse` pool slot: every later run would wait for that slot forever
    (Dagster frees slots only from its daemon's run monitoring, which `costwatch run` does not
    start). The lock proves the holders are gone: we hold it now. `costwatch run` names each run
    in the lock before Dagster registers it, so no run of a dead process escapes this."""
    failed = []
    for run_id in lock.orphans:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run,
                message="The process running this run died before it finished; marked failed by the next run "
                "of the project. Its tables and lake files are whole; re-run its days (`costwatch run --changed`).",
            )
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            failed.append(run_id)
    lock.orphans_settled(lock.orphans)
    return failed


def build_resources(config: CostwatchConfig) -> dict[str, object]:
    return {
        "costwatch": CostwatchConfigResource(config_path=str(config.path)),
        # The analysts' file: one writer at a time (see the `warehouse` pool in dagster.yaml).
        "warehouse": WarehouseResource(
            database=str(config.warehouse_path),
            lake_dir=str(config.lake_dir),
            config_path=str(config.path),
            lake=config.storage.lake or "",
            lake_endpoint_url=config.storage.s3.endpoint_url or "",
            lake_region=config.storage.s3.region or "",
            scratch=config.distributed,
        ),
    }


# Every asset that writes the warehouse joins this pool; dagster_home/dagster.yaml limits it to
# one step at a time across runs, because a DuckDB file has a single writer.
WAREHOUSE_POOL = "warehouse"


def daily_partitions(config: CostwatchConfig) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=config.start_date.isoformat(), timezone="UTC")


def partition_day(context: dg.AssetExecutionContext) -> dt.date:
    """The one day of a single-partition run (a range run has no single day: `partition_days`)."""
    return dt.date.fromisoformat(context.partition_key)


def partition_days(context: dg.AssetExecutionContext) -> DayRange:
    """The days a run materializes: one partition, or a range of them (`costwatch run --from/--to`,
    the demo, a UI backfill under `BackfillPolicy.single_run`). Daily partitions have no gaps, so
    a partition range is every day from its first key to its last."""
    keys = context.partition_key_range
    return DayRange(dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end))


def run_days(context: dg.AssetExecutionContext) -> DayRange | None:
    """The days of the run an unpartitioned asset is part of (its partitioned neighbours' range),
    from the run's partition tags; None when the run names no partition (the asset materialized
    on its own)."""
    return _tag_days(context.run.tags)


def _tag_days(tags: dict[str, str]) -> DayRange | None:
    start = tags.get(ASSET_PARTITION_RANGE_START_TAG) or tags.get(PARTITION_NAME_TAG)
    end = tags.get(ASSET_PARTITION_RANGE_END_TAG) or tags.get(PARTITION_NAME_TAG)
    if not start or not end:
        return None
    return DayRange(dt.date.fromisoformat(start), dt.date.fromisoformat(end))


# UI backfills of any partitioned asset launch one run over the whole range, as `costwatch run`
# does: each asset computes the range at once, not one run (and ~5 s of fixed cost) per day.
SINGLE_RUN = dg.BackfillPolicy.single_run()
# Dagster 1.13 marks `backfill_policy` beta and warns at every definition load: noise in every
# `costwatch` command and test. What we rely on is pinned by tests/test_range_runs.py.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
# The same for the window marts' partition mappings (pipelines/defs/models.py), which name days
# before start_date on the first days; pinned by tests/test_definitions.py.
warnings.filterwarnings("ignore", message="Parameter `allow_nonexistent_upstream_partitions`", category=dg.BetaWarning)
