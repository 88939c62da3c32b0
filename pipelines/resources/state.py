"""Where costwatch keeps its small transactional state: the input manifests, the alert outbox, and
`costwatch run`'s pending days and day fingerprints.

`state.backend` in costwatch.yaml chooses:
- `embedded` (the default, one machine): each input manifest is a JSON file in the lake
  (`lake/_manifests/<name>.json`, replaced whole) and the outbox a table of `warehouse.duckdb`
  with its delivery ledger beside the lake. Runs of a project take turns under its run lock.
- `postgres` (distributed mode, runs in parallel): tables in schema `costwatch` of the database
  whose URL the environment variable `state.url_env` names (COSTWATCH_STATE_URL by default).
  Every change is a row upsert or update in a transaction, never a rewrite of a whole document,
  and delivery claims each alert with a row lock (`SELECT ... FOR UPDATE SKIP LOCKED`).

Rows are keyed by `scope`, the project's lake (its `storage.lake` URI, else its local folder), so
projects can share one database and the hosts of one project share its rows.
The URL is read here, at use, only from the environment, and is never logged, put in
metadata, the lake or a row: `PostgresDatabase` keeps it out of its repr and out of errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.resources.config import CostwatchConfig, state_url

if TYPE_CHECKING:
    import duckdb

    from pipelines.alerts.store import Outbox
    from pipelines.lake.fingerprints import DaySettings
    from pipelines.lake.manifest import ManifestStore, PendingDays
    from pipelines.lake.manifest_postgres import PostgresDaySettings, PostgresPendingDays

# Created idempotently by `PostgresDatabase.ensure_schema`, under a transaction-scoped advisory lock:
# concurrent `create table if not exists` of one table can fail on Postgres's catalog otherwise.
SCHEMA_DDL = (
    "create schema if not exists costwatch",
    """
    create table if not exists costwatch.manifests (
        scope text not null,
        manifest text not null,
        created_at timestamptz not null default now(),
        primary key (scope, manifest)
    )
    """,
    """
    create table if not exists costwatch.input_files (
        scope text not null,
        manifest text not null,
        path text not null,
        record jsonb not null,
        updated_at timestamptz not null default now(),
        primary key (scope, manifest, path)
    )
    """,
    """
    create table if not exists costwatch.ingested_days (
        scope text not null,
        manifest text not null,
        day date not null,
        ingested_at timestamptz,
        stale_at timestamptz,  -- null: not stale; else when it first became stale since last ingested
        stale_by text,  -- the manifest load that marked it, or 'several'
        primary key (scope, manifest, day)
    )
    """,
    """
    create table if not exists costwatch.alerts_outbox (
        scope text not null,
        alert_id text not null,
        kind text,
        severity text,
        created_at timestamptz,
        payload text,
        status text not null,
        attempts integer not null default 0,
        sent_at timestamptz,
        last_error text,
        day date,
        caught_up_at timestamptz,
        claimed_at timestamptz,
        primary key (scope, alert_id)
    )
    """,
    "create index if not exists alerts_outbox_status on costwatch.alerts_outbox (scope, status, created_at)",
    # `costwatch run`'s own record: the days it set out to compute and has not finished, and the
    # prices-and-settings fingerprint each day was last computed under (`run --changed`).
    """
    create table if not exists costwatch.pending_days (
        scope text not null,
        day date not null,
        primary key (scope, day)
    )
    """,
    """
    create table if not exists costwatch.day_settings (
        scope text not null,
        day date not null,
        fingerprint text not null,
        primary key (scope, day)
    )
    """,
)
_SCHEMA_LOCK = 0x636F737477617463  # "costwatc": the advisory lock the DDL is created under
REDACTED = "[redacted]"


class StateUnavailable(RuntimeError):
    """The Postgres state database cannot be reached or used; the message names the variable, not the URL."""


class PostgresDatabase:
    """The state database, from a URL that must never be shown: its repr and errors redact it.

    Connections are short-lived (one per transaction or delivery batch): a run holds none while
    it computes."""

    def __init__(self, url: str, *, url_env: str = "COSTWATCH_STATE_URL"):
        # psycopg2 speaks libpq URIs; SQLAlchemy's driver suffix is dropped.
        self._dsn = re.sub(r"^postgres(?:ql)?(?:\+psycopg2)?://", "postgresql://", url.strip())
        self._secrets = sorted({url.strip(), self._dsn, *_password_of(self._dsn)}, key=len, reverse=True)
        self.url_env = url_env
        self._ready = False

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.url_env}={REDACTED})"

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def connect(self) -> Any:
        """A new psycopg2 connection (not autocommit: the caller commits)."""
        import psycopg2

        try:
            return psycopg2.connect(self._dsn, connect_timeout=10, application_name="costwatch")
        except psycopg2.Error as error:
            reason = self.redact(" ".join(str(error).split()))
            raise StateUnavailable(
                f"state.backend postgres: cannot connect to the database {self.url_env} names ({reason}); "
                f"check that it runs and that {self.url_env} is right (value not shown)"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed when the block ends, rolled back if it raises."""
        self.ensure_schema()
        conn = self.connect()
        try:
            with conn, conn.cursor() as cursor:
                yield cursor
        finally:
            conn.close()

    def ensure_schema(self) -> None:
        if self._ready:
            return
        conn = self.connect()
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute("select pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
                for statement in SCHEMA_DDL:
                    cursor.execute(statement)
        finally:
            conn.close()
        self._ready = True


def _password_of(dsn: str) -> list[str]:
    from urllib.parse import unquote, urlsplit

    password = urlsplit(dsn).password
    return [password, unquote(password)] if password else []


@dataclass
class StateBackend:
    """The project's state: `manifests()` for `InputManifest`, `outbox(conn)` for the alerts asset."""

    backend: str
    lake_dir: Path
    database: PostgresDatabase | None = field(default=None, repr=False)
    # What keys the project's rows in Postgres: the lake's URI (`storage.lake`) when it is in object
    # storage, so every host's runs share one manifest and one outbox whatever their local
    # folders; else the local lake folder.
    lake: str = ""

    @property
    def scope(self) -> str:
        return self.lake or str(self.lake_dir)

    def manifests(self) -> ManifestStore:
        if self.database is None:
            from pipelines.lake.manifest import JsonManifestStore

            return JsonManifestStore(self.lake_dir)
        from pipelines.lake.manifest_postgres import PostgresManifestStore

        return PostgresManifestStore(self.database, self.scope)

    def pending_days(self) -> PendingDays | PostgresPendingDays:
        """The days a `costwatch run` set out to compute and has not finished."""
        if self.database is None:
            from pipelines.lake.manifest import PendingDays

            return PendingDays(self.lake_dir)
        from pipelines.lake.manifest_postgres import PostgresPendingDays

        return PostgresPendingDays(self.database, self.scope)

    def day_settings(self) -> DaySettings | PostgresDaySettings:
        """The fingerprint of prices and settings each day was last computed under."""
        if self.database is None:
            from pipelines.lake.fingerprints import DaySettings

            return DaySettings(self.lake_dir)
        from pipelines.lake.manifest_postgres import PostgresDaySettings

        return PostgresDaySettings(self.database, self.scope)

    def outbox(self, conn: duckdb.DuckDBPyConnection | None) -> Outbox:
        """The alert outbox: in the warehouse (`conn`) when embedded, else in Postgres (no `conn` needed)."""
        if self.database is None:
            from pipelines.alerts.store import EmbeddedOutbox

            if conn is None:
                raise ValueError("the embedded outbox is a table of warehouse.duckdb: pass a connection to it")
            return EmbeddedOutbox(conn, self.lake_dir)
        from pipelines.alerts.outbox_postgres import PostgresOutbox

        return PostgresOutbox(self.database, self.scope)


def state_backend(config: CostwatchConfig, environ: Mapping[str, str] = os.environ) -> StateBackend:
    """The state backend `config.state` chooses (the Postgres URL read from the environment now)."""
    if config.state.backend == "embedded":
        return StateBackend("embedded", config.lake_dir)
    database = PostgresDatabase(state_url(config, environ), url_env=config.state.url_env)
    return StateBackend("postgres", config.lake_dir, database, lake=(config.storage.lake or "").rstrip("/"))
