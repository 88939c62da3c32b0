"""Dagster's SQLite storage (the same files, the same layout under the Dagster home), with one
connection pool per database file.

Dagster's own SQLite storage builds a new SQLAlchemy engine for every statement it runs and
disposes of it after: a new SQLite connection each time, and no reuse of compiled statements. A
run of the daily job stores a few hundred events, and those engines were a third of a small
day's wall time (a two-day range run of 150 requests a day: 20 s -> 13 s; the files stay
Dagster's own: tests/test_definitions.py reads them back through its plain SQLite storage).
Here each database file keeps one engine for the life of the instance; everything else
(schemas, migrations, WAL mode, the busy timeout, the files) is Dagster's.

dagster.yaml names this class under `storage: custom:` with `base_dir: {env: DAGSTER_HOME}`:
the configuration cannot name the home folder itself, so an instance whose home is not
$DAGSTER_HOME is refused with the fix, never pointed at another home's history.

$COSTWATCH_SQLITE_SYNCHRONOUS (FULL, NORMAL or OFF; unset: SQLite's default, FULL, as Dagster's
own storage runs) is SQLite's `PRAGMA synchronous` on these connections. FULL fsyncs at every
commit, and a small day's run commits some 1,800 times. In WAL mode NORMAL skips that fsync: a
killed process loses nothing, a power cut may lose the last commits, never the file. The tests
set NORMAL (tests/conftest.py); nothing they observe depends on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

SYNCHRONOUS = ("FULL", "NORMAL", "OFF")


def _engine(conn_string: str, **kwargs) -> Engine:
    """An engine on one SQLite file, its connections with $COSTWATCH_SQLITE_SYNCHRONOUS when set."""
    engine = create_engine(conn_string, **kwargs)
    synchronous = os.environ.get("COSTWATCH_SQLITE_SYNCHRONOUS", "").strip().upper()
    if synchronous:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"COSTWATCH_SQLITE_SYNCHRONOUS: one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")

        @event.listens_for(engine, "connect")
        def _set_synchronous(dbapi_connection, _record) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")  # noqa: S608 (one of SYNCHRONOUS, checked above)

    return engine


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """One engine per shard (the index, and one file per run) instead of one per statement."""

    def __init__(self, base_dir: str, inst_data=None, home: str | None = None):
        self._engines: dict[str, Engine] = {}
        self._home = home
        super().__init__(base_dir, inst_data)

    def register_instance(self, instance) -> None:
        if self._home is not None and os.path.realpath(instance.root_directory) != os.path.realpath(self._home):
            raise RuntimeError(
                f"the Dagster instance at {instance.root_directory} keeps its run history under $DAGSTER_HOME "
                f"({self._home}), as its dagster.yaml says (storage: custom: config: base_dir: env: DAGSTER_HOME): "
                f"set DAGSTER_HOME={instance.root_directory}"
            )
        super().register_instance(instance)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = _engine(
                    self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
                )
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
            with engine.connect() as conn, conn.begin():
                yield conn

    def delete_events(self, run_id: str) -> None:
        """Dagster's delete, then the run's shard closed: `prune_run_history` deletes its file next."""
        super().delete_events(run_id)
        with self._db_lock:
            engine = self._engines.pop(run_id, None)
            self._initialized_dbs.discard(run_id)
        if engine is not None:
            engine.dispose()

    def _dispose_engines(self) -> None:
        with self._db_lock:
            engines, self._engines = list(self._engines.values()), {}
            self._initialized_dbs = set()
        for engine in engines:
            engine.dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # the shard files are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()


class PooledSqliteRunStorage(SqliteRunStorage):
    """The runs database through one engine instead of one per statement."""

    def __init__(self, conn_string: str, inst_data=None):
        super().__init__(conn_string, inst_data)
        self._engine = _engine(conn_string)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage layout under `base_dir` (the Dagster home), pooled."""

    def __init__(self, base_dir: str, inst_data=None):
        # DagsterSqliteStorage.__init__ builds the unpooled storages: set up as it does, with ours.
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir), home=base_dir)
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
