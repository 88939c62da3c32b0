"""Input manifests in Postgres (`state.backend: postgres`): what `InputManifest` holds, as rows
that concurrent runs update one by one.

`costwatch.input_files` has one row per input file (its record: digest, stat fields, format, the
days it holds); `costwatch.ingested_days` one row per ingested day, with `stale_at` set while its
input changed since it ran. A save applies the manifest's own changes (`ManifestChanges`) in one
transaction, against the rows as stored now: a file read is upserted, and marks the ingested days
it holds or held stale only when it is not the stored file (new, or other bytes than another run
recorded); a file gone is deleted and marks its days; ingested days are upserted. Nothing is read, modified and written back whole, so two runs of different days both keep
their day (the JSON file lost one in 3 of 3 parallel runs: scaleout.md §4).

A run clears a day's stale mark when it ingests the day unless another run marked the day stale
after this run loaded the manifest (then its read may predate the change; the mark stays and the
day runs again). Marks are timed by the database's clock, as is the load.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pipelines.lake.manifest import identity

if TYPE_CHECKING:
    from pipelines.lake.manifest import InputManifest
    from pipelines.resources.state import PostgresDatabase

# Who marked a day stale when more than one run did: no single run may clear it unseen.
SEVERAL = "several"


class PostgresManifestStore:
    def __init__(self, database: PostgresDatabase, scope: str):
        self.database = database
        self.scope = scope
        self.token = uuid.uuid4().hex  # this store's loads and marks
        self._loaded_at: dict[str, object] = {}

    def load(self, name: str) -> dict | None:
        with self.database.transaction() as cursor:
            cursor.execute("select clock_timestamp()")
            (self._loaded_at[name],) = cursor.fetchone()
            cursor.execute("select 1 from costwatch.manifests where scope = %s and manifest = %s", [self.scope, name])
            if cursor.fetchone() is None:
                return None
            cursor.execute(
                "select path, record from costwatch.input_files where scope = %s and manifest = %s",
                [self.scope, name],
            )
            files = {path: record for path, record in cursor.fetchall()}
            ingested, stale = self._days(cursor, name)
        return {"files": files, "ingested": sorted(ingested), "stale": sorted(stale)}

    def save(self, manifest: InputManifest) -> tuple[set[str], set[str]]:
        name = manifest.name
        key = {"scope": self.scope, "manifest": name, "me": self.token, "loaded_at": self._loaded_at[name]}
        with self.database.transaction() as cursor:
            cursor.execute(
                "insert into costwatch.manifests (scope, manifest) values (%(scope)s, %(manifest)s) "
                "on conflict (scope, manifest) do nothing",
                key,
            )
            for event, subject in manifest.changes.events:
                if event == "learned":
                    self._learned(cursor, key, subject, manifest.files[subject])
                elif event == "observed":
                    # New stat fields for the same bytes, kept only while the stored record is of those bytes.
                    record = manifest.files[subject]
                    cursor.execute(
                        _OBSERVED, {**key, "path": subject, "record": json.dumps(record), "sha256": record["sha256"]}
                    )
                elif event == "forgot":
                    cursor.execute(_FORGOT, {**key, "path": subject})
                    gone = cursor.fetchone()
                    if gone is not None:
                        cursor.execute(_MARK_STALE, {**key, "days": gone[0]["days"]})
                elif event == "ingested":
                    cursor.execute(_INGESTED, {**key, "days": [subject]})
                elif event == "rebuilt":
                    cursor.execute(_REBUILT, {**key, "days": list(subject)})
            return self._days(cursor, name)

    def _learned(self, cursor, key: dict, path: str, record: dict) -> None:
        """A file this run read: stored, and, when it is not the stored file (new, or other bytes than
        another run recorded), the ingested days it holds or held are stale."""
        cursor.execute(f"select record from costwatch.input_files where {_FILE} for update", {**key, "path": path})  # noqa: S608 (_FILE is this module's constant)
        stored = cursor.fetchone()
        if stored is None or not _same_file(stored[0], record):
            held = set(record["days"]) | set(stored[0]["days"] if stored else [])
            cursor.execute(_MARK_STALE, {**key, "days": sorted(held)})
        cursor.execute(
            """
            insert into costwatch.input_files (scope, manifest, path, record)
            values (%(scope)s, %(manifest)s, %(path)s, %(record)s::jsonb)
            on conflict (scope, manifest, path) do update set record = excluded.record, updated_at = now()
            """,
            {**key, "path": path, "record": json.dumps(record)},
        )

    def _days(self, cursor, name: str) -> tuple[set[str], set[str]]:
        cursor.execute(
            "select day, stale_at is not null from costwatch.ingested_days where scope = %s and manifest = %s",
            [self.scope, name],
        )
        rows = cursor.fetchall()
        return {day.isoformat() for day, _ in rows}, {day.isoformat() for day, stale in rows if stale}


def _same_file(stored: dict, record: dict) -> bool:
    legacy = "sha256" not in stored  # recorded before digests: compared by size and mtime
    return identity(stored, legacy=legacy) == identity(record, legacy=legacy)


_FILE = "scope = %(scope)s and manifest = %(manifest)s and path = %(path)s"
_OBSERVED = f"update costwatch.input_files set record = %(record)s::jsonb, updated_at = now() where {_FILE} and record->>'sha256' = %(sha256)s"  # noqa: S608 (_FILE is this module's constant)
_FORGOT = f"delete from costwatch.input_files where {_FILE} returning record"  # noqa: S608 (_FILE is this module's constant)
_CLEARS = "(ingested_days.stale_at <= %(loaded_at)s or ingested_days.stale_by = %(me)s)"
# A file that holds or held these days changed, appeared or went: those ingested are stale.
_MARK_STALE = f"""
    update costwatch.ingested_days
    set stale_at = coalesce(stale_at, clock_timestamp()),
        stale_by = case when stale_at is null or stale_by = %(me)s then %(me)s else '{SEVERAL}' end
    where scope = %(scope)s and manifest = %(manifest)s and day = any(%(days)s::date[])
"""  # noqa: S608 (SEVERAL is this module's constant)
# Ingested now: no longer stale, unless another run marked it after this one loaded.
_INGESTED = f"""
    insert into costwatch.ingested_days (scope, manifest, day, ingested_at)
    select %(scope)s, %(manifest)s, day, clock_timestamp() from unnest(%(days)s::date[]) as days (day)
    on conflict (scope, manifest, day) do update set
        ingested_at = excluded.ingested_at,
        stale_at = case when {_CLEARS} then null else ingested_days.stale_at end,
        stale_by = case when {_CLEARS} then null else ingested_days.stale_by end
"""  # noqa: S608 (_CLEARS is this module's constant)
# A manifest rebuilt from the lake starts with the days the lake holds.
_REBUILT = """
    insert into costwatch.ingested_days (scope, manifest, day)
    select %(scope)s, %(manifest)s, day from unnest(%(days)s::date[]) as days (day)
    on conflict (scope, manifest, day) do nothing
"""


class PostgresPendingDays:
    """`PendingDays` in Postgres: one row per day a `costwatch run` set out to compute and has not
    finished (`costwatch.pending_days`). Adding and finishing days are row inserts and deletes, so
    two runs of the project (on two hosts: the rows are keyed by the lake) never undo each other's
    record, as a rewrite of the whole JSON file would."""

    def __init__(self, database: PostgresDatabase, scope: str):
        self.database = database
        self.scope = scope

    @property
    def days(self) -> set[dt.date]:
        with self.database.transaction() as cursor:
            cursor.execute("select day from costwatch.pending_days where scope = %s", [self.scope])
            return {day for (day,) in cursor.fetchall()}

    def add(self, days: Iterable[dt.date]) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                "insert into costwatch.pending_days (scope, day) select %s, unnest(%s::date[]) on conflict do nothing",
                [self.scope, sorted(set(days))],
            )

    def done(self, days: Iterable[dt.date]) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                "delete from costwatch.pending_days where scope = %s and day = any(%s::date[])",
                [self.scope, sorted(set(days))],
            )


class PostgresDaySettings:
    """`DaySettings` in Postgres: the fingerprint each day's last successful run was computed
    under, one row per day (`costwatch.day_settings`), upserted by the run that computed it."""

    rebuilt = False  # rows are not lost as a file can be: a day without one is not known changed

    def __init__(self, database: PostgresDatabase, scope: str):
        self.database = database
        self.scope = scope

    @property
    def days(self) -> dict[dt.date, str]:
        with self.database.transaction() as cursor:
            cursor.execute("select day, fingerprint from costwatch.day_settings where scope = %s", [self.scope])
            return dict(cursor.fetchall())

    def changed(self, current: dict[dt.date, str]) -> list[dt.date]:
        """Days with a record that differs from `current` (prices or settings changed since)."""
        recorded = self.days
        return sorted(day for day, value in current.items() if day in recorded and recorded[day] != value)

    def record(self, current: dict[dt.date, str]) -> None:
        if not current:
            return
        days, prints = zip(*sorted(current.items()), strict=True)
        with self.database.transaction() as cursor:
            cursor.execute(
                "insert into costwatch.day_settings (scope, day, fingerprint)"
                " select %s, unnest(%s::date[]), unnest(%s::text[])"
                " on conflict (scope, day) do update set fingerprint = excluded.fingerprint",
                [self.scope, list(days), list(prints)],
            )
