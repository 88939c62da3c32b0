"""`costwatch doctor`: every piece of a project's state checked, read-only, each problem with the
command that fixes it.

The state: the Dagster home and its runs, the run lock's record, the lake's partitions, the JSON
state under `lake/_manifests/` (input manifests, unfinished days, the settings each day ran
under), the warehouse and its published copy, and the alert ledger. Doctor changes nothing; the
fixes it names do (most of them by setting the damaged piece aside and rebuilding it)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.lake.health import damaged_partitions, lake_days, locked_by_another_process, read_every_row
from pipelines.lake.lock import HOLDER_FILE, is_held
from pipelines.lake.publish import published_path
from pipelines.lake.savings_state import STATE_NAME
from pipelines.lake.store import is_remote
from pipelines.resources.config import CostwatchConfig
from pipelines.resources.instance import open_instance

RUN_CHANGED = "costwatch run --changed"


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str  # what was checked and what was found
    fix: str = ""  # the command (and what it does) when not ok


def doctor(config: CostwatchConfig) -> int:
    checks = list(diagnose(config))
    problems = [check for check in checks if not check.ok]
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.what}")
        if check.fix:
            print(f"      fix: {check.fix}")
    print(f"\n{len(problems)} problem(s)" if problems else "\nevery piece of state is healthy")
    return 1 if problems else 0


def diagnose(config: CostwatchConfig) -> Iterator[Check]:
    yield from _dagster_home(config)
    yield from _lake(config)
    yield from _json_state(config)
    yield from _warehouse(config)
    yield from _ledger(config)


def _dagster_home(config: CostwatchConfig) -> Iterator[Check]:
    home = Path(os.environ.get("DAGSTER_HOME") or config.path.parent / "dagster_home")
    if not (home / "dagster.yaml").exists():
        yield Check(
            False,
            f"Dagster home {home}: missing (or without its dagster.yaml); the run history is gone",
            "the next `costwatch run` creates it with costwatch's settings (the warehouse pool's limit); "
            "the lake and warehouse are unaffected",
        )
        return
    import dagster as dg

    unfinished = []
    with open_instance(home) as instance:
        runs = instance.get_runs(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]
            )
        )
        unfinished = [run.run_id for run in runs]
        history = instance.get_runs_count()
    if unfinished and not is_held(config.data_dir):
        yield Check(
            False,
            f"Dagster home {home}: {len(unfinished)} run(s) unfinished with no live process: {', '.join(unfinished)}",
            f"`{RUN_CHANGED}` marks them failed and re-runs their days",
        )
    else:
        held = " (a costwatch run is in progress)" if unfinished else ""
        yield Check(True, f"Dagster home {home}: {history} run(s) in its history{held}")


def _lake(config: CostwatchConfig) -> Iterator[Check]:
    damaged = damaged_partitions(config.lake_dir)
    for partition in damaged:
        day_fix = (
            f"sets it aside and re-ingests {partition.day} from its inputs"
            if partition.day
            else ("sets it aside; the run writes it again")
        )
        yield Check(
            False,
            f"lake partition {partition.label}: unreadable ({partition.reason}) at {partition.path}",
            f"`{RUN_CHANGED}` {day_fix}",
        )
    if not damaged:
        days = lake_days(config.lake)
        span = f"{min(days)}..{max(days)}" if days else "no day yet"
        # An object is written by one upload of a finished file: it is whole or absent, never read here.
        checked = "objects written whole" if is_remote(config.lake) else "every partition reads"
        yield Check(True, f"lake {config.lake}: {checked} ({len(days)} day(s), {span})")


def _json_state(config: CostwatchConfig) -> Iterator[Check]:
    manifests = config.lake_dir / "_manifests"
    files = sorted(manifests.glob("*.json")) if manifests.is_dir() else []
    files.append(config.data_dir / HOLDER_FILE)
    bad = False
    for path in files:
        problem = _json_problem(path)
        if problem:
            bad = True
            # People's decisions about savings findings cannot be rebuilt from inputs.
            fix = (
                "restore it from the lake's backup, or move it aside and mark the findings again with "
                "`costwatch findings` (until then every finding is open)"
                if path.name == STATE_NAME
                else f"`{RUN_CHANGED}` moves it aside and rebuilds it (its days run again)"
            )
            yield Check(False, f"state file {path}: {problem}", fix)
    if not bad:
        yield Check(True, f"state files: {len(files)} read as JSON ({', '.join(path.name for path in files)})")
    pending = _pending_days(manifests / "pending_days.json")
    if pending:
        yield Check(
            False,
            f"{len(pending)} day(s) an interrupted or failed run left unfinished: {pending[0]}..{pending[-1]}",
            f"`{RUN_CHANGED}` finishes them",
        )


def _json_problem(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return f"not JSON ({error})"
    return None if isinstance(state, dict) else f"a JSON {type(state).__name__}, not an object"


def _pending_days(path: Path) -> list[dt.date]:
    if _json_problem(path) or not path.exists():
        return []
    return sorted(dt.date.fromisoformat(day) for day in json.loads(path.read_text(encoding="utf-8")).get("days", []))


def _warehouse(config: CostwatchConfig) -> Iterator[Check]:
    import duckdb

    warehouse = config.warehouse_path
    days = lake_days(config.lake)
    if not warehouse.exists():
        if days:
            yield Check(
                False,
                f"warehouse {warehouse}: missing while the lake holds {len(days)} day(s) ({min(days)}..{max(days)})",
                "`costwatch rebuild` recomputes every mart from the lake",
            )
        else:
            yield Check(True, f"warehouse {warehouse}: not created yet (no day has run)")
        return
    for path, role, fix in (
        (warehouse, "warehouse", "`costwatch rebuild` moves it aside and recomputes every mart from the lake"),
        (
            published_path(warehouse),
            "published copy",
            "the next `costwatch run` publishes it again (or delete it: analysts then read the warehouse)",
        ),
    ):
        if not path.exists():
            continue
        try:
            tables = read_every_row(path)
        except duckdb.Error as error:
            if locked_by_another_process(error):  # a run is writing it: busy, not damaged
                yield Check(True, f"{role} {path}: in use by a running costwatch run")
            else:
                yield Check(False, f"{role} {path}: cannot be opened or read ({str(error).splitlines()[0]})", fix)
        else:
            yield Check(True, f"{role} {path}: opens, {tables} table(s), every row reads")


def _ledger(config: CostwatchConfig) -> Iterator[Check]:
    from pipelines.alerts.ledger import DeliveryLedger, ledger_path, ledger_problem

    path = ledger_path(config.lake_dir)
    problem = ledger_problem(path)
    if problem:
        # The ledger's own message carries the fix (restore it, or move it aside knowingly).
        yield Check(False, f"Slack delivery ledger {path}: {problem}")
        return
    if not path.exists():
        yield Check(True, f"Slack delivery ledger {path}: none yet (the first delivery creates it)")
        return
    with DeliveryLedger(path) as ledger:
        statuses = ledger.statuses()
    uncertain = sorted(alert for alert, entry in statuses.items() if entry.status in ("uncertain", "posting"))
    if uncertain:
        yield Check(
            False,
            f"Slack delivery ledger {path}: {len(uncertain)} alert(s) uncertain (posted, the answer lost): "
            + ", ".join(uncertain[:5]),
            "with a bot token the next run looks each up in the channel's history; with a webhook, look in the "
            "channel, then `costwatch alerts mark-sent ID` (it is there) or `costwatch alerts resend ID`",
        )
    else:
        yield Check(True, f"Slack delivery ledger {path}: {len(statuses)} alert(s) recorded, none uncertain")
