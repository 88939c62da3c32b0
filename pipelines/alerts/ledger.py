"""The delivery ledger: which alert ids reached Slack, kept outside the warehouse.

`alerts_outbox` lives in `warehouse.duckdb`, which can be deleted and rebuilt from the lake; the
ledger cannot be rebuilt from anything, so it is a file of its own: `lake/_manifests/
slack_deliveries.sqlite3` (SQLite in WAL mode, synchronous=FULL, one transaction per record).
Delivery writes an alert's outcome here *before* it updates the outbox row, so an id the ledger
holds as `sent` is never posted again, whatever happened to the warehouse.

An entry is `posting` (written just before the post goes out: a run killed mid-post leaves it,
and the next delivery treats the alert as uncertain), `sent` (Slack accepted it, or the channel's
history showed it), `uncertain` (the post went out and its answer was lost: it may be in the
channel), `resend` (an operator checked the channel and found it missing: post it again), or
`caught_up` (an expired alert a catch-up message counted). A post that surely did not land
removes the entry (`forget`). The interface is small (`statuses`, `sent_ids`, `record`,
`record_many`, `forget`) because a later step moves it to Postgres for the distributed mode.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

LEDGER_NAME = "slack_deliveries.sqlite3"
Status = Literal["posting", "sent", "uncertain", "resend", "caught_up"]
STATUSES: tuple[str, ...] = ("posting", "sent", "uncertain", "resend", "caught_up")
_SCHEMA_VERSION = "1"

_DDL = (
    """
    create table if not exists deliveries (
        alert_id text primary key,
        status text not null check (status in ('posting', 'sent', 'uncertain', 'resend', 'caught_up')),  -- STATUSES
        first_attempt_at text,  -- ISO 8601 UTC: the post whose answer was lost went out after this
        recorded_at text not null,  -- ISO 8601 UTC
        message_ts text,  -- Slack's ts of the message, when known
        detail text  -- why it is uncertain, or how it was settled
    )
    """,
    # Web API answers name the channel by ID; conversations.history wants that ID.
    "create table if not exists channels (name text primary key, channel_id text not null)",
    "create table if not exists ledger_info (key text primary key, value text not null)",
)


class LedgerError(RuntimeError):
    """The ledger cannot be read or written; one line naming the file and the fix."""


@dataclass(frozen=True)
class Entry:
    status: str
    first_attempt_at: datetime | None
    recorded_at: datetime
    message_ts: str | None
    detail: str | None


def ledger_path(lake_dir: Path) -> Path:
    return lake_dir / "_manifests" / LEDGER_NAME


def _fix(path: Path) -> str:
    return (
        f"restore {path} from a backup; if it is lost for good, move it aside: the next run starts a new "
        "ledger from the warehouse's alerts_outbox (alerts only the old ledger knew of may be posted again)"
    )


def ledger_problem(path: Path) -> str | None:
    """What is wrong with the ledger file, in one line with the fix, or None when it is usable
    (or absent: the first delivery creates it). For `costwatch doctor`."""
    if not path.exists():
        return None
    try:
        DeliveryLedger(path).close()
    except LedgerError as error:
        return str(error)
    return None


class DeliveryLedger:
    """The ledger file, open for one delivery batch (or one CLI command). Use as a context manager."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit, one per record.
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise LedgerError(f"{path}: cannot open the alerts delivery ledger ({error}); {_fix(path)}") from None
        try:
            self._conn.execute("pragma journal_mode = wal")
            self._conn.execute("pragma synchronous = full")  # a committed record survives a power cut
            (check,) = self._conn.execute("pragma quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            with self._transaction():
                for ddl in _DDL:
                    self._conn.execute(ddl)
                self._conn.execute("insert or ignore into ledger_info values ('schema_version', ?)", [_SCHEMA_VERSION])
            (version,) = self._conn.execute("select value from ledger_info where key = 'schema_version'").fetchone()
            if version != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}, this costwatch reads {_SCHEMA_VERSION}")
            # A file that is SQLite but not a ledger (or a damaged one) fails here, not mid-batch.
            self._conn.execute("select alert_id, status, first_attempt_at, recorded_at, message_ts, detail "
                               "from deliveries limit 1").fetchall()  # fmt: skip
        except sqlite3.Error as error:
            self._conn.close()
            raise LedgerError(f"{path}: not a readable alerts delivery ledger ({error}); {_fix(path)}") from None
        except LedgerError:  # a file it can read but not write (permissions, a read-only mount)
            self._conn.close()
            raise

    def __enter__(self) -> DeliveryLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # ---- reading

    def statuses(self, alert_ids: Iterable[str] | None = None) -> dict[str, Entry]:
        """Every entry, or those of `alert_ids`."""
        with self._reading():
            rows = self._conn.execute(
                "select alert_id, status, first_attempt_at, recorded_at, message_ts, detail from deliveries"
            ).fetchall()
        wanted = None if alert_ids is None else set(alert_ids)
        return {
            alert_id: Entry(status, _time(first), _time(recorded), ts, detail)  # type: ignore[arg-type]
            for alert_id, status, first, recorded, ts, detail in rows
            if wanted is None or alert_id in wanted
        }

    def sent_ids(self) -> set[str]:
        with self._reading():
            rows = self._conn.execute("select alert_id from deliveries where status = 'sent'").fetchall()
        return {alert_id for (alert_id,) in rows}

    def channel_id(self, name: str) -> str | None:
        with self._reading():
            row = self._conn.execute("select channel_id from channels where name = ?", [name]).fetchone()
        return row[0] if row else None

    # ---- writing: each call one committed transaction

    def record(
        self,
        alert_id: str,
        status: Status,
        *,
        at: datetime,
        first_attempt_at: datetime | None = None,
        message_ts: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Set an alert's entry; an earlier `first_attempt_at` and `message_ts` are kept when not given."""
        self.record_many([alert_id], status, at=at, first_attempt_at=first_attempt_at, message_ts=message_ts,
                         detail=detail)  # fmt: skip

    def record_many(
        self,
        alert_ids: Iterable[str],
        status: Status,
        *,
        at: datetime,
        first_attempt_at: datetime | None = None,
        message_ts: str | None = None,
        detail: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"status: one of {STATUSES}, got {status!r}")
        rows = [(alert_id, status, _iso(first_attempt_at), _iso(at), message_ts, detail) for alert_id in alert_ids]
        with self._transaction():
            self._conn.executemany(
                """
                insert into deliveries (alert_id, status, first_attempt_at, recorded_at, message_ts, detail)
                values (?, ?, ?, ?, ?, ?)
                on conflict (alert_id) do update set
                    status = excluded.status,
                    first_attempt_at = coalesce(deliveries.first_attempt_at, excluded.first_attempt_at),
                    recorded_at = excluded.recorded_at,
                    message_ts = coalesce(excluded.message_ts, deliveries.message_ts),
                    detail = excluded.detail
                """,
                rows,
            )

    def add_missing(self, alert_ids: Iterable[str], status: Status, *, at: datetime) -> int:
        """Entries for ids the ledger does not hold yet (seeding it from the outbox); how many."""
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                "insert or ignore into deliveries (alert_id, status, recorded_at, detail) values (?, ?, ?, ?)",
                [(alert_id, status, _iso(at), "from alerts_outbox") for alert_id in alert_ids],
            )
            return self._conn.total_changes - before

    def forget(self, alert_id: str) -> None:
        """The post surely did not land (refused, failed, deferred): no entry, as if never tried."""
        with self._transaction():
            self._conn.execute("delete from deliveries where alert_id = ?", [alert_id])

    def remember_channel(self, name: str, channel_id: str) -> None:
        with self._transaction():
            self._conn.execute(
                "insert into channels values (?, ?) on conflict (name) do update set channel_id = excluded.channel_id",
                [name, channel_id],
            )

    # ---- plumbing

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._conn.execute("begin immediate")
            try:
                yield
            except BaseException:
                self._conn.execute("rollback")
                raise
            self._conn.execute("commit")
        except sqlite3.Error as error:
            raise LedgerError(
                f"{self.path}: cannot write the alerts delivery ledger ({error}); {_fix(self.path)}"
            ) from None

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise LedgerError(
                f"{self.path}: cannot read the alerts delivery ledger ({error}); {_fix(self.path)}"
            ) from None


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
