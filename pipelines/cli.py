"""`costwatch`: a thin shell over the same Dagster definitions the UI loads."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import re
import sys
import time
from pathlib import Path

from pipelines.alerts.ledger import LedgerError
from pipelines.alerts.outbox import SETTLE_HINT
from pipelines.lake.health import (
    WarehouseDamaged,
    WarehouseMissing,
    heal_lake,
    locked_by_another_process,
    require_warehouse,
)
from pipelines.lake.lock import ProjectBusy, project_lock
from pipelines.lake.manifest import InputUnavailable
from pipelines.lake.publish import readable_warehouse
from pipelines.lake.savings_state import SavingsStateError
from pipelines.report import savings as savings_findings
from pipelines.resources.config import ConfigError, config_path_from_env, load_config
from pipelines.resources.state import state_backend

DEMO_START = dt.date(2026, 10, 1)
DEMO_DAYS = 45
DEMO_REQUESTS_PER_DAY = 20_000
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
QUERY_TIMEOUT_S = 300.0  # an analyst's statement: a runaway scan stops instead of running on
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: another run holds the project; trying again later will work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="costwatch", description="Where yesterday's LLM money went, and why.")
    config_help = "costwatch.yaml (default: $COSTWATCH_CONFIG or ./costwatch.yaml)"
    parser.add_argument("--config", help=config_help)
    # `--config` also after the subcommand (`costwatch run --config X`): SUPPRESS keeps a value
    # given before it when the subcommand does not repeat it.
    config_anywhere = argparse.ArgumentParser(add_help=False)
    config_anywhere.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", parents=[config_anywhere], help="generate demo inputs, run every day, print the summary"
    )
    demo.add_argument("--days", type=int, default=DEMO_DAYS)
    demo.add_argument("--requests-per-day", type=int, default=DEMO_REQUESTS_PER_DAY)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--last-day",
        type=_date,
        help="the demo's last day (default: yesterday, UTC, so `current_date - 1` finds it); it spans --days before",
    )

    run = commands.add_parser(
        "run", parents=[config_anywhere], help="materialize daily partitions with the Dagster definitions"
    )
    window = run.add_mutually_exclusive_group(required=True)
    window.add_argument("--date", type=_date, help="one UTC day, YYYY-MM-DD")
    window.add_argument("--from", dest="start", type=_date, help="first day of a range (with --to)")
    window.add_argument("--changed", action="store_true", help="re-run every day whose input files changed")
    run.add_argument("--to", dest="end", type=_date, help="last day of the range, inclusive")
    run.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another run holds the project, wait up to SECONDS for it (default: fail at once)",
    )

    query = commands.add_parser("query", parents=[config_anywhere], help="run read-only SQL on the warehouse")
    query.add_argument("sql")
    query.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (every column, for reading), csv (header row, RFC 4180) or json (an array of objects); "
        "money keeps its exact decimal digits in csv and json",
    )
    query.add_argument("--output", type=Path, metavar="FILE", help="write the result to FILE instead of the terminal")
    query.add_argument(
        "--timeout",
        type=float,
        default=QUERY_TIMEOUT_S,
        metavar="SECONDS",
        help=f"stop the query after SECONDS (default {QUERY_TIMEOUT_S:.0f}; 0: no limit)",
    )
    query.add_argument(
        "--max-rows",
        type=int,
        default=1000,
        metavar="N",
        help="table format: rows shown before it says how many more there are (default 1000; csv and json write all)",
    )

    shell = commands.add_parser(
        "shell",
        parents=[config_anywhere],
        help="an interactive read-only SQL shell on the published warehouse, in the DuckDB version that wrote it",
    )
    shell.add_argument(
        "--timeout",
        type=float,
        default=QUERY_TIMEOUT_S,
        metavar="SECONDS",
        help=f"stop a statement after SECONDS (default {QUERY_TIMEOUT_S:.0f}; 0: no limit)",
    )
    report = commands.add_parser(
        "report", parents=[config_anywhere], help="write the self-contained HTML report of a day (charts inline)"
    )
    report.add_argument("--date", type=_date, help="the report's day (default: the latest day with costs)")
    report.add_argument("--output", type=Path, metavar="FILE", help="default: <data_dir>/reports/costwatch_<day>.html")

    export = commands.add_parser(
        "export", parents=[config_anywhere], help="write the period's LLM spend for a FinOps platform (FOCUS 1.2)"
    )
    export.add_argument(
        "--focus",
        action="store_true",
        required=True,
        help="FOCUS 1.2 rows: API calls per token kind and self-hosted GPU-hours, per day x feature x user x "
        "provider x model, adding up to fct_total_cost_daily",
    )
    export.add_argument("--from", dest="start", type=_date, help="first day (default: the 1st of --to's month)")
    export.add_argument("--to", dest="end", type=_date, help="last day, inclusive (default: the latest day with costs)")
    export.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help=".csv or .parquet (default: <data_dir>/exports/focus_<from>_<to>.csv)",
    )

    rebuild = commands.add_parser(
        "rebuild",
        parents=[config_anywhere],
        help="recompute the warehouse's marts from the lake, reading no input file (after the warehouse was lost "
        "or damaged: a damaged file is moved aside first)",
    )
    rebuild.add_argument("--from", dest="start", type=_date, help="first day (default: the lake's first day)")
    rebuild.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="as for `run`")
    commands.add_parser(
        "doctor",
        parents=[config_anywhere],
        help="check every piece of the project's state; print what is wrong and the command that fixes it",
    )
    alerts = commands.add_parser(
        "alerts",
        parents=[config_anywhere],
        help="list the alerts whose delivery is uncertain (posted, answer lost), and settle them",
    )
    settle = alerts.add_subparsers(dest="settle")
    for verb, meaning in (
        ("mark-sent", "you found it in the channel: record it as sent, never post it again"),
        ("resend", "it is not in the channel: the next run posts it again"),
    ):
        action = settle.add_parser(verb, parents=[config_anywhere], help=meaning)
        action.add_argument("alert_ids", nargs="+", metavar="ALERT_ID", help="as `costwatch alerts` lists them")

    savings = commands.add_parser(
        "savings",
        parents=[config_anywhere],
        help="print what to change: the savings findings of a day, basis by basis, largest first",
    )
    savings.add_argument("--date", type=_date, help="the as-of day (default: the latest day computed)")
    savings.add_argument("--kind", choices=savings_findings.KINDS, help="only findings of this kind")
    savings.add_argument("--basis", choices=savings_findings.BASES, help="only findings of this basis")
    savings.add_argument(
        "--all", dest="every", action="store_true", help="also findings under savings.min_monthly_usd a month"
    )
    savings.add_argument(
        "--eval-kit",
        metavar="KEY",
        help="print a routing or right-size finding's eval kit instead: up to 200 calls to replay against its target",
    )

    findings = commands.add_parser(
        "findings",
        parents=[config_anywhere],
        help="mark a savings finding acknowledged, dismissed or done; without a verb, list what was decided",
    )
    decide = findings.add_subparsers(dest="verb")
    for verb, meaning in (
        ("ack", "seen and being worked on: out of the digest's savings block"),
        ("dismiss", "not worth doing: out of the digest and of `costwatch savings` (its --all shows it)"),
        ("done", "changed: realized savings are measured against its cost per call until now"),
    ):
        action = decide.add_parser(verb, parents=[config_anywhere], help=meaning)
        action.add_argument("key", metavar="KEY", help="a finding's key, as `costwatch savings` prints it")
        action.add_argument("--note", help="why, in words: kept with the status")

    generate = commands.add_parser(
        "generate", parents=[config_anywhere], help="write seeded demo gateway logs of any size"
    )
    generate.add_argument("--days", type=int, default=DEMO_DAYS)
    generate.add_argument("--requests-per-day", type=int, default=DEMO_REQUESTS_PER_DAY)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--start-date", type=_date, default=DEMO_START)
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument(
        "--savings",
        action="store_true",
        help="instead: the savings plants (pipelines/demo/savings.py), each finding's dollars in the manifest;"
        " --requests-per-day is ignored",
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "generate" and args.savings:
            return _generate_savings(args.out, args.start_date, args.days, args.seed)
        if args.command == "generate":
            return _generate(args.out, args.start_date, args.days, args.requests_per_day, args.seed)
        if args.command == "demo":
            return _demo(args)
        config = load_config(args.config)
        if args.command == "query":
            return _query(config, args.sql, args.format, args.output, args.max_rows, args.timeout)
        if args.command == "report":
            return _report(config, args.date, args.output)
        if args.command == "savings":
            return _savings(config, args)
        if args.command == "findings":
            if args.verb is None:
                return savings_findings.list_decided(config)
            # The lock: a run copies the state file into the warehouse.
            with _project_lock(config, argv, wait_s=0):
                return _mark_finding(config, args)
        if args.command == "shell":
            return _shell(config, args.timeout)
        if args.command == "export":
            return _export_focus(config, args.start, args.end, args.output)
        if args.command == "doctor":
            from pipelines.doctor import doctor

            return doctor(config)
        if args.command == "rebuild":
            with _project_lock(config, argv, wait_s=args.wait):
                return _rebuild(args.config, config, args.start)
        if args.command == "alerts":
            if args.settle is None:
                return _list_uncertain_alerts(config)
            # The lock: a run delivering now reads the same ledger entries.
            with _project_lock(config, argv, wait_s=0):
                return _settle_alerts(config, args.settle, args.alert_ids)
        if args.start and not args.end:
            parser.error("--from needs --to")
        # The lock covers choosing the days too: --changed reads and updates the input manifest.
        with _project_lock(config, argv, wait_s=args.wait):
            heal_lake(config.lake_dir, state_backend(config))  # before choosing the days: a healed day is one to re-run
            days = _days_to_run(args, config)
            require_warehouse(config.warehouse_path, config.lake, set(days))
            return _run(args.config, days, config)
    except (WarehouseMissing, WarehouseDamaged) as error:
        print(f"costwatch: {error}", file=sys.stderr)
        return 1
    except ConfigError as error:
        print(f"costwatch: config error: {error}", file=sys.stderr)
        return 2
    except ProjectBusy as error:
        print(f"costwatch: {error}", file=sys.stderr)
        return EXIT_BUSY
    except InputUnavailable as error:  # `run --changed` reads the gateway logs to find the days
        print(f"costwatch: {error}", file=sys.stderr)
        return 1
    except (LedgerError, SavingsStateError) as error:  # a state file beside the lake cannot be read: which, and the fix
        print(f"costwatch: {error}", file=sys.stderr)
        return 1


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def _project_lock(config, argv: list[str] | None, *, wait_s: float):
    command = " ".join(["costwatch", *(sys.argv[1:] if argv is None else argv)])
    return project_lock(
        config.data_dir, command=command, wait_s=wait_s, hint=", or pass --wait SECONDS to queue behind it"
    )


def _days_to_run(args: argparse.Namespace, config) -> list[dt.date]:
    if args.changed:
        import duckdb

        from pipelines.lake.manifest import InputManifest
        from pipelines.sources.gateway.day import MANIFEST_NAME, stale_days

        state = state_backend(config)
        manifests = state.manifests()
        with duckdb.connect() as scratch:
            changed = stale_days(
                scratch,
                config.lake_dir,
                config.source_files("gateway_logs"),
                max_line_bytes=config.inputs.max_line_bytes,
                verify_content=config.inputs.verify_content,
                store=manifests,
            )
        from pipelines.lake.fingerprints import day_fingerprints

        ingested = InputManifest(config.lake_dir, MANIFEST_NAME, store=manifests).ingested
        ran = {dt.date.fromisoformat(day) for day in ingested}
        repriced = state.day_settings().changed(day_fingerprints(config, ran))
        return _with_downstream_days(changed, ran, unfinished=state.pending_days().days, repriced=set(repriced))
    first, last = (args.date, args.date) if args.date else (args.start, args.end)
    if last < first:
        raise ConfigError(f"--to {last} is before --from {first}; swap them")
    latest = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    if last > latest:
        raise ConfigError(f"{last} has not ended yet (UTC); the latest complete day is {latest}")
    if first < config.start_date:
        raise ConfigError(f"{first} is before start_date {config.start_date}; run from start_date or move it")
    return [first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)]


def _with_downstream_days(
    changed: list[dt.date],
    ran: set[dt.date],
    models: dict | None = None,
    unfinished: set[dt.date] = frozenset(),
    repriced: set[dt.date] = frozenset(),
) -> list[dt.date]:
    """The changed days, the days an interrupted or failed run left unfinished (`PendingDays`),
    the days whose prices or mart-shaping settings changed since they ran (`DaySettings`),
    and every later day already run whose marts read one of them through a trailing window
    (anomaly baselines, month-to-date budgets): re-running only the changed day would leave
    those days' numbers computed from the old data. How far a window reaches is the widest
    `lookback:` the SQL models' headers declare (`models`: the loaded models)."""
    from pipelines.models.engine import load_models, widest_lookback

    lookback = widest_lookback((models if models is not None else load_models()).values())
    unfinished = set(unfinished) - set(changed)
    repriced = set(repriced) - set(changed) - unfinished
    downstream: set[dt.date] = set()
    for day in set(changed) | unfinished | repriced:
        reach = lookback.last_day_reading(day)
        downstream |= {later for later in ran if day < later <= reach}
    downstream -= set(changed) | unfinished | repriced
    if changed or unfinished or repriced:
        print(
            "re-running "
            + " and ".join(
                part
                for part in (
                    f"{_day_list(changed)} (inputs changed)" if changed else "",
                    f"{_day_list(unfinished)} (an interrupted or failed run left them unfinished)"
                    if unfinished
                    else "",
                    f"{_day_list(repriced)} (prices or mart settings changed since they ran)" if repriced else "",
                    f"{_day_list(downstream)} (their trailing windows read them)" if downstream else "",
                )
                if part
            )
        )
    return sorted(set(changed) | unfinished | repriced | downstream)


def _day_list(days) -> str:
    days = sorted(days)
    return str(days[0]) if len(days) == 1 else f"{len(days)} days {days[0]}..{days[-1]}"


def _instance(config_path: Path):
    import dagster as dg

    from pipelines.resources.instance import dagster_home

    dagster_home(config_path)
    return dg.DagsterInstance.get()


def _rebuild(config_arg: str | None, config, first: dt.date | None) -> int:
    """The marts of every day from `first` (default: the lake's first) to the lake's last,
    recomputed from the lake as one run of the rebuild job (no ingest: an input file rotated
    away since is not needed, and the lake is not rewritten). A warehouse DuckDB cannot open or
    read every row of is moved aside first (kept for a post-mortem); the new one gets the lake's
    views, then the run."""
    if config.distributed:  # no warehouse to rebuild: every run writes the lake, the catalog is views
        raise ConfigError(
            "costwatch rebuild rebuilds the embedded warehouse; in execution.mode: distributed the marts are "
            "lake partitions: re-run the days instead (costwatch run --from ... --to ...)"
        )
    import duckdb

    from pipelines.defs.ingest import publish_ingest_views
    from pipelines.defs.schedules import REBUILD_JOB
    from pipelines.lake.health import lake_days, read_every_row
    from pipelines.models.engine import prepare_session

    heal_lake(config.lake_dir, state_backend(config))
    held = lake_days(config.lake)
    if not held:
        print(
            f"costwatch: the lake {config.lake} holds no day: nothing to rebuild from. Ingest first: "
            "`costwatch run --from D1 --to D2`.",
            file=sys.stderr,
        )
        return 1
    first, last = max(first or min(held), min(held)), max(held)
    if first > last:
        print(f"costwatch: the lake's last day is {last}, before --from {first}", file=sys.stderr)
        return 1
    warehouse = config.warehouse_path
    try:
        if warehouse.exists():
            read_every_row(warehouse, read_only=False)
    except duckdb.Error as error:
        if locked_by_another_process(error):  # in use, not damaged: never moved aside
            print(f"costwatch: {_one_line(error)}", file=sys.stderr)
            return 1
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
            if path.exists():
                path.replace(path.with_name(f"{path.name}.damaged-{stamp}"))
        print(f"moved the damaged warehouse aside ({str(error).splitlines()[0]}): {warehouse}.damaged-{stamp}")
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as conn:
        prepare_session(conn)
        publish_ingest_views(conn, config.lake)
    print(f"rebuilding the marts of {first}..{last} from the lake {config.lake}")
    days = [first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)]
    return _run(config_arg, days, config, job_name=REBUILD_JOB)


def _run(config_arg: str | None, days: list[dt.date], config, job_name: str | None = None) -> int:
    """Materialize the days in-process, as runs the Dagster UI shows: each stretch of
    consecutive days is ONE run over its partition range (every asset computes the stretch at
    once), so `run --from/--to` and the demo are one run and `run --changed` one per stretch.

    Progress prints as the run's steps finish (done/total, elapsed, ETA). Ctrl-C (SIGINT) or
    SIGTERM stops at once: the current run is marked failed in Dagster, later stretches do not
    start, and the exit code is 130 or 143. Every table and lake file is replaced whole or not
    at all, so what the stopped run did not finish still holds the previous run's data.

    The days are recorded in `PendingDays` before the first run starts, and a stretch's days are
    cleared once its run succeeded: what a kill, a signal or a failure leaves unfinished is
    re-run by the next `run --changed`. A succeeded day also records the prices and settings it
    was computed under (`DaySettings`), so changing them later marks it changed.

    Runs of a process that died mid-run (killed, out of memory) are marked failed first."""
    if config.distributed:
        return _submit_stages(config_arg, days, config)
    # The lock is held already by the caller (re-entrant): taken here for its record of runs.
    with project_lock(config.data_dir, command="costwatch run") as lock:
        return _run_holding(config_arg, days, config, lock, job_name)


def _run_holding(config_arg: str | None, days: list[dt.date], config, lock, job_name: str | None) -> int:
    from pipelines.lake.fingerprints import day_fingerprints
    from pipelines.resources.warehouse import fail_orphaned_runs

    config_path = config_path_from_env(config_arg)

    def settle_orphans() -> None:
        if lock.orphans:
            for run_id in fail_orphaned_runs(_instance(config_path), lock):
                print(f"run {run_id} of a process that died mid-run: marked failed")

    if not days:
        settle_orphans()
        print("nothing to run: no day's inputs changed")
        return 0
    state = state_backend(config)
    pending = state.pending_days()
    pending.add(days)
    started_all = time.perf_counter()
    runs = stretches(days)
    print(
        f"costwatch: {len(days)} day(s) {days[0]}..{days[-1]} in {len(runs)} run(s); loading the definitions",
        flush=True,
    )
    settle_orphans()
    from pipelines.definitions import build_definitions
    from pipelines.defs.schedules import DAILY_JOB

    defs = build_definitions(config_path)
    job = defs.resolve_job_def(job_name or DAILY_JOB)
    instance = _instance(config_path)
    failed: list[str] = []
    done_days = 0
    with _signals_as_interrupts():
        for number, (first, last) in enumerate(runs, 1):
            started = time.perf_counter()
            label = str(first) if first == last else f"{first}..{last}"
            count = (last - first).days + 1
            print(f"[run {number}/{len(runs)}] {label}: {count} day(s) as one Dagster run", flush=True)
            run_id = _new_run_id()
            # Named in the lock before Dagster registers it: if this process dies at any moment
            # from here, the next run of the project finds the run and marks it failed.
            lock.add_run(run_id)
            # Over several days, the alerts' dry-run printout would bury the run lines: it stays in
            # the outbox (and the summary) instead. A single day prints it.
            printed = io.StringIO()
            try:
                with (
                    _signals_seen() as seen,
                    _Progress(instance, run_id, len(job.graph.node_dict), sys.stdout),
                    contextlib.redirect_stdout(printed) if len(days) > 1 else contextlib.nullcontext(),
                ):
                    result = job.execute_in_process(
                        instance=instance,
                        run_config=QUIET_LOGS,
                        raise_on_error=False,
                        run_id=run_id,
                        **_partitions(first, last),
                    )
                # Dagster turns SIGINT and SIGTERM inside a run into a failed step and a failed run,
                # and returns: the signal it swallowed stops the rest here.
                if seen:
                    raise _Interrupted(seen[-1])
            except _Interrupted as stop:
                _mark_failed(instance, run_id, f"stopped by {stop.name}")
                lock.runs_finished([run_id])
                print(
                    f"{label}  STOPPED by {stop.name} after {time.perf_counter() - started:.1f}s: run {run_id} marked "
                    f"failed; its tables and lake files are whole (each is replaced at once or not at all): re-run "
                    f"{label}" + (f"; {len(runs) - number} later run(s) not started" if number < len(runs) else ""),
                    file=sys.stderr,
                )
                _print_tally(done_days, len(days) - done_days, started_all)
                return 128 + stop.signum
            for line in _day_lines(config_path, result, first, last):
                print(line)
            lock.runs_finished([run_id])  # finished (either way): nothing for the next holder to settle
            status = "ok" if result.success else "FAILED"
            print(f"{label}  {status}  {time.perf_counter() - started:5.1f}s  run {result.run_id}")
            _print_undelivered_alerts(result)
            _print_findings(config_path, first, last)
            if result.success:
                done_days += count
                stretch = [first + dt.timedelta(days=offset) for offset in range(count)]
                state.day_settings().record(day_fingerprints(config, stretch))
                pending.done(stretch)
            else:
                failed.append(label)
                _print_run_failure(result, label)
    _print_tally(done_days, len(days) - done_days, started_all)
    if config.run_history_days is not None:
        from pipelines.resources.instance import prune_run_history

        if pruned := prune_run_history(instance, config.run_history_days):
            print(f"deleted {pruned} run(s) older than {config.run_history_days} days from the run history")
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


# How often `costwatch run` looks at a distributed stage's runs, seconds.
STAGE_POLL_S = 1.0


@contextlib.contextmanager
def code_location_workspace(instance, working_directory: Path):
    """The project's code location (pipelines.definitions) loaded into a workspace, in a code server
    process as `dagster job backfill -m` loads it: a few seconds, paid once for all the backfills
    queued inside."""
    from dagster import __version__
    from dagster._cli.workspace.cli_target import get_workspace_from_cli_opts
    from dagster_shared.cli import WorkspaceOpts

    options = WorkspaceOpts(module_name=(CODE_LOCATION,), working_directory=str(working_directory))
    with get_workspace_from_cli_opts(instance, version=__version__, workspace_opts=options) as workspace:
        yield workspace


def queue_backfill(workspace, instance, job_name: str, partitions: list[str], tags: dict[str, str]) -> str:
    """A backfill of the partitioned job `job_name`: one run per partition, each submitted to the
    instance's run queue (the daemon launches them), as `dagster job backfill` submits them; its ID."""
    from dagster._cli.workspace.cli_target import (
        get_code_location_from_workspace,
        get_remote_job_from_remote_repo,
        get_remote_repository_from_code_location,
    )
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.execution.job_backfill import create_backfill_run
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    code_location = get_code_location_from_workspace(workspace, None)
    repository = get_remote_repository_from_code_location(code_location, None)
    job = get_remote_job_from_remote_repo(repository, job_name)
    (partition_set,) = [found for found in repository.get_partition_sets() if found.job_name == job.name]
    backfill = PartitionBackfill(
        backfill_id=make_new_backfill_id(),
        partition_set_origin=partition_set.get_remote_origin(),
        status=BulkActionStatus.REQUESTED,
        partition_names=partitions,
        from_failure=False,
        reexecution_steps=None,
        tags=tags,
        backfill_timestamp=get_current_timestamp(),
    )
    parameters = code_location.get_partition_set_execution_params(
        repository_handle=repository.handle,
        partition_set_name=partition_set.name,
        partition_names=partitions,
        instance=instance,
    )
    for partition in parameters.partition_data:
        run = create_backfill_run(
            workspace, instance, code_location, job, partition_set, backfill, partition.name, partition.tags,
            partition.run_config,
        )  # fmt: skip
        instance.submit_run(run.run_id, workspace)
    instance.add_backfill(backfill.with_status(BulkActionStatus.COMPLETED).with_end_timestamp(get_current_timestamp()))
    return backfill.backfill_id


def _submit_stages(config_arg: str | None, days: list[dt.date], config) -> int:
    """Distributed mode: queue the days on the Dagster instance of DAGSTER_HOME (Postgres storage,
    the daemon, the queued run coordinator) and wait for them.

    One day: one run of the daily job (its window's days are in the lake already). Several days:
    stage by stage (`pipelines.models.engine.stages`), each stage a backfill of its job with one run
    per day, the days of a stage at once (the daemon launches them as the instance's limits allow;
    its tag limit keeps two runs of one day apart), and a stage starts once every day of the one
    before it succeeded, so no day reads a neighbour's half-written history. A failed run stops
    there: the later stages are not submitted. The days are `PendingDays` until they all succeeded
    (this process is that file's only writer), as in embedded mode. Ctrl-C stops waiting; the runs
    already queued go on."""
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    from pipelines.definitions import build_definitions
    from pipelines.defs.schedules import DAILY_JOB, STAGE_JOB
    from pipelines.lake.fingerprints import day_fingerprints

    config_path = config_path_from_env(config_arg)
    if not days:
        print("nothing to run: no day's inputs changed")
        return 0
    instance = _instance(config_path)
    if instance.is_ephemeral or not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        raise ConfigError(
            "execution.mode: distributed needs a Dagster instance with Postgres storage and the queued run "
            f"coordinator, with its daemon running; the instance at DAGSTER_HOME has "
            f"{type(instance.run_coordinator).__name__}. Point DAGSTER_HOME at a folder holding "
            "dagster_home/distributed/dagster.yaml (README, Distributed mode), or set execution.mode: embedded"
        )
    os.environ["COSTWATCH_CONFIG"] = str(config_path)  # the code server this process starts loads it
    defs = build_definitions(config_path)
    stage_jobs = [job.name for job in defs.jobs if job.name.startswith(STAGE_JOB.format(""))]
    jobs = [DAILY_JOB] if len(days) == 1 else sorted(stage_jobs, key=lambda name: int(name.rsplit("_", 1)[1]))
    state = state_backend(config)
    pending = state.pending_days()
    pending.add(days)
    started = time.perf_counter()
    partitions = [day.isoformat() for day in days]
    print(f"costwatch: {len(days)} day(s) {days[0]}..{days[-1]} queued as {len(jobs)} stage(s) of one run per day")
    # The code location is loaded once for every stage (a code server process), as the daemon does.
    with code_location_workspace(instance, config_path.parent) as workspace:
        for number, job in enumerate(jobs, 1):
            stage_started = time.perf_counter()
            # Tagged with the lake: one name for the project on every host.
            backfill_id = queue_backfill(workspace, instance, job, partitions, {"costwatch/project": state.scope})
            runs = []
            try:
                with _signals_as_interrupts():
                    while True:
                        runs = instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
                        if len(runs) == len(days) and all(run.is_finished for run in runs):
                            break
                        time.sleep(STAGE_POLL_S)
            except _Interrupted as stop:
                print(
                    f"stopped waiting ({stop.name}); the queued runs of backfill {backfill_id} go on", file=sys.stderr
                )
                return 128 + stop.signum
            failed = sorted(
                run.tags.get("dagster/partition", "?") for run in runs if run.status != DagsterRunStatus.SUCCESS
            )
            print(
                f"[stage {number}/{len(jobs)}] {job}: {len(runs) - len(failed)}/{len(runs)} day(s) ok in "
                f"{time.perf_counter() - stage_started:.1f}s (backfill {backfill_id})",
                flush=True,
            )
            if failed:
                print(
                    f"{len(failed)} run(s) failed: {', '.join(failed)}; later stages not run: see backfill "
                    f"{backfill_id} in the Dagster UI, then run the days again",
                    file=sys.stderr,
                )
                return 1
    state.day_settings().record(day_fingerprints(config, days))
    pending.done(days)
    print(f"{len(days)} day(s) ok in {_duration(time.perf_counter() - started)}", flush=True)
    return 0


def _print_run_failure(result, label: str) -> None:
    step_failures = [event for event in result.all_events if event.is_step_failure]
    for event in step_failures:
        print(f"    {event.step_key} ({label}): {_root_cause(event.event_specific_data.error)}", file=sys.stderr)
    if not step_failures:  # the run failed before any step (resources): say why
        for event in result.all_events:
            if event.is_failure and getattr(event.event_specific_data, "error", None) is not None:
                print(f"    run ({label}): {_root_cause(event.event_specific_data.error)}", file=sys.stderr)


def _print_tally(ok_days: int, failed_days: int, started: float) -> None:
    print(f"{ok_days} day(s) ok, {failed_days} failed in {_duration(time.perf_counter() - started)}", flush=True)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def _new_run_id() -> str:
    from dagster._core.utils import make_new_run_id

    return make_new_run_id()


class _Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread where the run executes."""

    def __init__(self, signum: int):
        import signal

        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextlib.contextmanager
def _signals_as_interrupts():
    """SIGINT and SIGTERM stop the run where it is (instead of failing one step and going on, or
    dying without a word): the handler raises `_Interrupted` in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum, frame):
        raise _Interrupted(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_seen():
    """The SIGINT/SIGTERM numbers delivered while the block ran, whoever handled them: Python
    writes each signal's number to the wakeup fd before any handler runs."""
    import signal
    import socket

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    seen: list[int] = []
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread: no signals to see
        reader.close()
        writer.close()
        yield seen
        return
    try:
        yield seen
    finally:
        signal.set_wakeup_fd(previous)
        with contextlib.suppress(BlockingIOError):
            seen.extend(signum for signum in reader.recv(4096) if signum in (signal.SIGINT, signal.SIGTERM))
        reader.close()
        writer.close()


def _mark_failed(instance, run_id: str, message: str) -> None:
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message)


class _Progress:
    """Prints the run's progress as its steps finish: `[12/41 steps] fct_requests, 0:31 elapsed,
    ETA 0:42`, at most one line every 2 seconds (and the last step's), read from the instance's
    event log by a background thread."""

    INTERVAL_S = 0.5
    MIN_GAP_S = 2.0

    def __init__(self, instance, run_id: str, total_steps: int, out):
        import threading

        self.instance, self.run_id, self.total, self.out = instance, run_id, total_steps, out
        self.started = time.perf_counter()
        self.seen, self.last_print = 0, 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="costwatch-progress", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self._report(final=True)  # the steps that finished since the last poll

    def _watch(self) -> None:
        while not self.stopping.wait(self.INTERVAL_S):
            self._report(final=False)

    def _report(self, *, final: bool) -> None:
        from dagster import DagsterEventType

        kinds = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED}
        try:
            records = self.instance.all_logs(self.run_id, of_type=kinds)
        except Exception:  # noqa: BLE001 (progress is best effort: never fail the run over it)
            return
        done, now = len(records), time.perf_counter()
        if done == self.seen or (not final and now - self.last_print < self.MIN_GAP_S and done < self.total):
            return
        self.seen, self.last_print = done, now
        elapsed = now - self.started
        eta = elapsed / done * (self.total - done) if done else 0
        step = records[-1].step_key if records else ""
        self.out.write(
            f"  [{done}/{self.total} steps] {step}, {_duration(elapsed)} elapsed"
            + (f", ETA {_duration(eta)}" if done < self.total else "")
            + "\n"
        )
        self.out.flush()


def stretches(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) stretches, in order: `[1, 2, 3, 7, 8]` -> `[(1, 3), (7, 8)]`."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


# The code location the UI loads (`make ui`: `-m pipelines.definitions`; pyproject's
# [tool.dagster] names it the same). The job page and the timeline list a job's runs by the tag
# `.dagster/repository` = "<repository>@<location>"; a run started in process carries it too, so
# the CLI's runs appear there beside the runs the UI and the schedule launch.
CODE_LOCATION = "pipelines.definitions"


def _partitions(first: dt.date, last: dt.date) -> dict:
    """`execute_in_process` arguments for one day (its partition key) or a range of days (the
    partition-range tags a single-run backfill carries: each asset runs once over the range)."""
    from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
        REPOSITORY_LABEL_TAG,
    )

    tags = {REPOSITORY_LABEL_TAG: f"{SINGLETON_REPOSITORY_NAME}@{CODE_LOCATION}"}
    if first == last:
        return {"partition_key": first.isoformat(), "tags": tags}
    return {
        "tags": {
            **tags,
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        }
    }


def _day_lines(config_path: Path, result, first: dt.date, last: dt.date) -> list[str]:
    """A line per day of a range run: requests kept (the gateway ingest's `per_day` metadata)
    and priced spend (`fct_requests` as written). Nothing for a one-day run: its line says it."""
    if first == last:
        return []
    kept: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key.to_user_string() == "gateway_requests" and "per_day" in materialization.metadata:
            kept = materialization.metadata["per_day"].value
            break
    spend = _spend_by_day(config_path, first, last)
    lines = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        requests = kept.get(day.isoformat(), {}).get("kept")
        lines.append(
            f"  {day}  "
            + (f"{requests:>10,} requests kept" if requests is not None else f"{'not ingested':>25}")
            + (f"  ${spend[day]:,.2f} spend" if day in spend else "")
        )
    return lines


def _spend_by_day(config_path: Path, first: dt.date, last: dt.date) -> dict[dt.date, float]:
    """USD priced per day in `fct_requests`, read back from the warehouse; {} if it is not there."""
    import duckdb

    from pipelines.models.engine import DayRange, connect_read_only, load_models
    from pipelines.models.relations import daily_totals

    config = load_config(config_path)
    if not config.warehouse_path.exists():
        return {}
    try:
        with connect_read_only(readable_warehouse(config.warehouse_path), config.lake) as conn:
            totals = daily_totals(conn, load_models()["fct_requests"], DayRange(first, last))
    except duckdb.Error:  # the run failed before fct_requests was written
        return {}
    return {day: values.get("total_cost_usd", 0.0) for day, values in totals.items()}


def _print_undelivered_alerts(result) -> None:
    """A Slack outage is not a failed run (the alerts wait in the outbox), but the person
    running it should know the alerts did not go out: the `alerts_delivered` check says so."""
    from pipelines.defs.alerts import SLACK_DELIVERY

    for check in result.get_asset_check_evaluations():
        if check.check_name != SLACK_DELIVERY or check.passed:
            continue
        metadata = check.metadata
        failed = len(metadata["gave_up"].value)
        deferred = metadata["deferred"].value
        uncertain = len(metadata["uncertain"].value)
        held = metadata["undelivered"].value - failed - deferred - uncertain
        reason = metadata["reason"].value
        parts = [f"{metadata['sent'].value} sent", f"{held} waiting in alerts_outbox for the next run"]
        if deferred:
            parts.append(f"{deferred} deferred to the next run by alerts.delivery_deadline_s")
        if uncertain:
            parts.append(f"{uncertain} uncertain (posted, answer lost; `costwatch alerts` lists them)")
        parts.append(f"{failed} failed")
        print(f"    alerts: {', '.join(parts)}" + (f" (Slack: {reason})" if reason else ""), file=sys.stderr)


_SETTLE_HINT = f"look for each in the Slack channel, then {SETTLE_HINT}"


def _postgres_outbox(config):
    """The Postgres outbox with `state.backend: postgres`, else None (the embedded ledger)."""
    state = state_backend(config)
    return state.outbox(None) if state.database is not None else None


def _list_uncertain_alerts(config) -> int:
    """The ledger's uncertain alerts: posted, answer lost. A bot token settles them by itself
    (the next run looks each up in the channel); a webhook cannot read the channel. With the
    Postgres state, the outbox's uncertain rows."""
    from pipelines.alerts.ledger import DeliveryLedger, ledger_path, ledger_problem

    outbox = _postgres_outbox(config)
    if outbox is not None:
        rows = outbox.uncertain()
        if not rows:
            print("no uncertain alert: every alert posted is known to be in Slack")
            return 0
        print(f"{len(rows)} alert(s) may or may not be in Slack (posted, the answer was lost):")
        for alert_id, claimed_at, reason in rows:
            when = claimed_at.strftime("%Y-%m-%d %H:%M UTC") if claimed_at else "?"
            print(f"  {alert_id}  tried {when}  {reason or ''}".rstrip())
        print(
            "A bot token (SLACK_BOT_TOKEN) with alerts.slack_channel set to the channel's ID (C...) settles them: "
            f"the next run looks each up in the channel. Otherwise, {_SETTLE_HINT}."
        )
        return 0
    path = ledger_path(config.lake_dir)
    problem = ledger_problem(path)
    if problem:
        raise LedgerError(problem)
    if not path.exists():
        print("no alert has been posted yet: nothing is uncertain")
        return 0
    with DeliveryLedger(path) as ledger:
        entries = {alert_id: e for alert_id, e in ledger.statuses().items() if e.status in ("uncertain", "resend")}
    uncertain = {alert_id: e for alert_id, e in entries.items() if e.status == "uncertain"}
    if not uncertain:
        print("no uncertain alert: every alert posted is known to be in Slack")
    else:
        print(f"{len(uncertain)} alert(s) may or may not be in Slack (posted, the answer was lost):")
        for alert_id, entry in sorted(uncertain.items(), key=lambda item: item[1].recorded_at):
            when = (entry.first_attempt_at or entry.recorded_at).strftime("%Y-%m-%d %H:%M UTC")
            print(f"  {alert_id}  first tried {when}  {entry.detail or ''}".rstrip())
        print(
            f"A bot token (SLACK_BOT_TOKEN) settles them: the next run looks each up in the channel. For a webhook, {_SETTLE_HINT}."
        )
    resend = sorted(alert_id for alert_id, e in entries.items() if e.status == "resend")
    if resend:
        print(f"{len(resend)} alert(s) marked to post again with the next run: {', '.join(resend)}")
    return 0


def _settle_alerts(config, verb: str, alert_ids: list[str]) -> int:
    """An operator's word on uncertain alerts, written to the ledger; the next run applies it to
    the outbox (mark-sent: `sent`, never posted; resend: `pending`, posted again)."""
    from pipelines.alerts.ledger import DeliveryLedger, ledger_path

    now = dt.datetime.now(dt.timezone.utc)
    outbox = _postgres_outbox(config)
    if outbox is not None:
        wrong = outbox.settle(alert_ids, verb, now=now)
        for alert_id, state in wrong.items():
            print(f"costwatch: alert {alert_id!r} is not uncertain ({state}); `costwatch alerts` lists the uncertain ones", file=sys.stderr)  # fmt: skip
        if wrong:
            return 1
        what = "marked sent: never posted again" if verb == "mark-sent" else "will be posted again by the next run"
        print(f"{len(alert_ids)} alert(s) {what}: {', '.join(alert_ids)}")
        return 0
    path = ledger_path(config.lake_dir)
    if not path.exists():
        print(f"costwatch: no alert has been posted yet ({path} does not exist): nothing to settle", file=sys.stderr)
        return 1
    with DeliveryLedger(path) as ledger:
        known = ledger.statuses(alert_ids)
        wrong = [a for a in alert_ids if known.get(a) is None or known[a].status not in ("uncertain", "resend")]
        if wrong:
            for alert_id in wrong:
                state = known[alert_id].status if alert_id in known else "not in the ledger"
                print(f"costwatch: alert {alert_id!r} is not uncertain ({state}); `costwatch alerts` lists the uncertain ones", file=sys.stderr)  # fmt: skip
            return 1
        status, detail = ("sent", "marked sent by an operator") if verb == "mark-sent" else ("resend", "to post again")
        ledger.record_many(alert_ids, status, at=now, detail=detail)  # type: ignore[arg-type]
    what = "recorded as sent: never posted again" if verb == "mark-sent" else "will be posted again by the next run"
    print(f"{len(alert_ids)} alert(s) {what}: {', '.join(alert_ids)}")
    return 0


FINDINGS_SHOWN = 10


def _print_findings(config_path: Path, first: dt.date, last: dt.date) -> None:
    """What to know about the run's days before trusting them (fct_data_findings: no gateway data,
    a missing bill, unpriced calls), warnings first, each with its fix."""
    import duckdb

    from pipelines.models.engine import REPORTS_DIR, connect_read_only
    from pipelines.report.summary import read_report_query

    config = load_config(config_path)
    if not config.warehouse_path.exists():
        return
    try:
        with connect_read_only(readable_warehouse(config.warehouse_path), config.lake) as conn:
            conn.execute(read_report_query(REPORTS_DIR / "day_findings.sql")[1], {"first": first, "last": last})
            findings = [(row[1], row[4]) for row in conn.fetchall()]
    except duckdb.Error:  # the run failed before the findings were written
        return
    for severity, message in findings[:FINDINGS_SHOWN]:
        print(f"    {severity}: {message}")
    if len(findings) > FINDINGS_SHOWN:
        hint = "costwatch query \"select * from fct_data_findings where day between '%s' and '%s'\"" % (first, last)  # noqa: S608, UP031 (a hint printed for people, not SQL run here)
        print(f"    ...and {len(findings) - FINDINGS_SHOWN} more: {hint}")


def _root_cause(error) -> str:
    """The innermost error of a Dagster step failure: the one that says what went wrong."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _query(
    config,
    sql: str,
    fmt: str = "table",
    output: Path | None = None,
    max_rows: int = 1000,
    timeout_s: float = QUERY_TIMEOUT_S,
) -> int:
    """Run an analyst's SQL on a read-only connection confined to the lake (see
    `connect_read_only`) and print or write its result. Only SELECT statements (and EXPLAIN of
    one) run: the read-only warehouse refuses CREATE, INSERT, DROP..., and refusing COPY and
    EXPORT here keeps a query from writing files into the lake, the one folder the connection may
    touch (`--output` writes the result from Python instead). Every failure is one line on stderr."""
    import duckdb

    from pipelines.models.engine import connect_read_only, interrupt_after

    warehouse = _analyst_warehouse(config)
    if warehouse is None:
        return 2

    try:
        refused = [kind for kind in _statement_kinds(sql) if kind != "SELECT"]
    except duckdb.Error as error:
        print(f"costwatch: {error}", file=sys.stderr)
        return 1
    if refused:
        print(
            f"costwatch: query is read-only: it runs SELECT statements (and EXPLAIN of one), not {refused[0]}. "
            "To keep a result, pass --output FILE (with --format csv or json); to change the warehouse, run the "
            "pipeline (costwatch run)",
            file=sys.stderr,
        )
        return 1
    try:
        with connect_read_only(warehouse, config.lake) as conn, interrupt_after(conn, timeout_s):
            relation = conn.sql(sql)
            if relation is None:
                return 0
            columns, rows = relation.columns, relation.fetchall()
    except duckdb.InterruptException:
        print(f"costwatch: {_stopped(timeout_s)}", file=sys.stderr)
        return 1
    except duckdb.Error as error:
        print(f"costwatch: {_one_line(error)}", file=sys.stderr)
        return 1
    from pipelines.report.tables import csv_text, json_text, text_table

    if fmt == "csv":
        text = csv_text(columns, rows)
    elif fmt == "json":
        text = json_text(columns, rows)
    else:
        shown = rows[:max_rows]
        text = text_table(columns, shown) + "\n"
        more = len(rows) - len(shown)
        text += (
            f"  ({len(rows):,} rows"
            + (f"; {more:,} not shown: pass --max-rows or --format csv --output FILE)" if more else ")")
            + "\n"
        )
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as error:
        print(f"costwatch: cannot write --output {output}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"costwatch: {len(rows):,} rows written to {output} ({fmt})", file=sys.stderr)
    return 0


def _analyst_warehouse(config) -> Path | None:
    """The warehouse analysts read (the published copy once a run made one); None, with the
    reason on stderr, when no run has written one yet."""
    warehouse = readable_warehouse(config.warehouse_path)
    if warehouse.exists():
        return warehouse
    print(f"costwatch: no warehouse at {warehouse}; run `costwatch run` or `make demo` first", file=sys.stderr)
    return None


def _one_line(error: Exception) -> str:
    import duckdb

    message = " ".join(str(error).split())
    if isinstance(error, duckdb.IOException) and locked_by_another_process(error):
        message = f"the warehouse is locked by another process ({message}); try again when it finishes"
    return message


def _stopped(timeout_s: float) -> str:
    return (
        f"query stopped after {timeout_s:g} s (--timeout); narrow it (a range of days, a LIMIT) "
        "or give it longer with --timeout SECONDS (0: no limit)"
    )


def _shell(config, timeout_s: float = QUERY_TIMEOUT_S) -> int:
    """An interactive read-only SQL shell on the published warehouse, in this DuckDB (the version
    that wrote it). Statements end with `;`; `.tables` lists the relations, `.quit` (or end of
    input) leaves. The same rules as `costwatch query`: SELECT only, files in the lake only."""
    import duckdb

    from pipelines.models.engine import connect_read_only, interrupt_after
    from pipelines.report.tables import text_table

    warehouse = _analyst_warehouse(config)
    if warehouse is None:
        return 2
    interactive = sys.stdin.isatty()
    print(
        f"costwatch shell: DuckDB {duckdb.__version__}, read-only, {warehouse}\n"
        "statements end with ';'  .tables lists the relations  .quit leaves"
    )
    with connect_read_only(warehouse, config.lake) as conn:
        pending: list[str] = []
        while True:
            try:
                line = input("costwatch> " if not pending else "      ...> ") if interactive else sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not interactive and not line:
                return 0
            line = line.rstrip("\n")
            if not pending and line.strip() in (".quit", ".exit"):
                return 0
            if not pending and line.strip() == ".tables":
                line = "select table_name, table_type from information_schema.tables order by all;"
            pending.append(line)
            sql = "\n".join(pending).strip()
            if not sql.endswith(";"):
                continue
            pending = []
            try:
                refused = [kind for kind in _statement_kinds(sql) if kind != "SELECT"]
                if refused:
                    print(f"read-only: SELECT statements only, not {refused[0]}")
                    continue
                with interrupt_after(conn, timeout_s):
                    relation = conn.sql(sql)
                    rows = relation.fetchall() if relation is not None else None
                if relation is not None:
                    print(text_table(relation.columns, rows[:1000]))
                    print(f"  ({len(rows):,} rows" + ("; the first 1,000 shown)" if len(rows) > 1000 else ")"))
            except duckdb.InterruptException:
                print(f"error: {_stopped(timeout_s)}")
            except duckdb.Error as error:
                print(f"error: {_one_line(error)}")


_EXPLAIN = re.compile(r"\A\s*explain\s+(?:analy[sz]e\s+)?(?:\([^)]*\)\s*)?", re.IGNORECASE)


def _statement_kinds(sql: str) -> list[str]:
    """The kind of each statement in `sql` (SELECT, COPY, ...), as DuckDB's parser reads it. An
    EXPLAIN counts as what it explains, because EXPLAIN ANALYZE runs its statement."""
    import duckdb

    kinds = []
    for statement in duckdb.extract_statements(sql):
        kind = statement.type.name
        if kind == "EXPLAIN":
            text = statement.query.strip().rstrip(";")
            prefix = _EXPLAIN.match(text)
            explained = duckdb.extract_statements(text[prefix.end() :]) if prefix else []
            kind = explained[0].type.name if len(explained) == 1 else "EXPLAIN"
        kinds.append(kind)
    return kinds


def _generate(out: Path, start: dt.date, days: int, requests_per_day: int, seed: int) -> int:
    from pipelines.demo import generate

    started = time.perf_counter()
    manifest = generate(out, start_date=start, days=days, requests_per_day=requests_per_day, seed=seed)
    totals = manifest["totals"]
    print(
        f"wrote {totals['records']:,} requests over {days} days to {out} "
        f"({totals['duplicate_lines']:,} duplicate and {totals['malformed_lines']:,} malformed lines) "
        f"in {time.perf_counter() - started:.1f}s"
    )
    for event in manifest["events"]:
        print(f"  planted {event['kind']}: {event}")
    return 0


def _generate_savings(out: Path, start: dt.date, days: int, seed: int) -> int:
    from pipelines.demo.savings import generate_savings

    try:
        manifest = generate_savings(out, start_date=start, days=days, seed=seed)
    except ValueError as error:  # too few days for the plants
        print(f"costwatch: --days {days}: {error}", file=sys.stderr)
        return 2
    records = sum(entry["records"] for entry in manifest["files"] if entry["path"].startswith("gateway/"))
    window = manifest["window"]
    print(f"wrote {records:,} requests over {days} days to {out}; truths over {window['start']}..{window['end']}:")
    for event in manifest["savings_events"]:
        usd = event["estimated_savings_usd"]
        print(
            f"  planted {event['plant']}: {event['kind']} {event['feature']} {event['model']}"
            f" -> {'$' + usd if usd is not None else 'simulated (no closed form)'}"
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    import yaml

    from pipelines.report.html import write_report
    from pipelines.report.summary import print_summary

    config_path = config_path_from_env(args.config)
    started = time.perf_counter()
    if _write_demo_config(config_path):
        print(f"wrote the demo config to {config_path} (no config was there); edit it or delete it to start over")
    inputs = config_path.parent / "data" / "inputs"
    last = args.last_day or dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    days = [last - dt.timedelta(days=args.days - 1 - offset) for offset in range(args.days)]
    # The lock first: a demo refused because a run holds the project writes nothing, so it
    # leaves no input changed behind it. The config cannot load yet (its input folders are what
    # the demo writes): the lock is the one of the data_dir it names.
    data_dir = config_path.parent / (yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}).get(
        "data_dir", "data"
    )
    command = " ".join(["costwatch", *sys.argv[1:]])
    with project_lock(data_dir, command=command, wait_s=0, hint=", or wait for it to finish"):
        _generate(inputs, days[0], args.days, args.requests_per_day, args.seed)
        config = load_config(config_path)
        if days[0] < config.start_date:
            raise ConfigError(
                f"start_date: the demo's first day {days[0]} is before start_date {config.start_date}; "
                f"set start_date to {days[0]} or earlier in {config_path}, or pass fewer --days"
            )
        code = _run(str(config_path), days, config)
    print_summary(config, days[0], days[-1])
    report = write_report(config, days[-1])
    print()
    for line in _closing_lines(config, days[-1]):
        print(line)
    print(f"  report: {report}")
    print(f"\ndemo finished in {time.perf_counter() - started:.0f}s")
    print(
        "next: `make ui` opens the Dagster UI on http://127.0.0.1:3000;\n"
        '      `.venv/bin/costwatch query "select * from fct_total_cost_daily limit 10"` queries the warehouse'
    )
    return code


def _report(config, day: dt.date | None, output: Path | None) -> int:
    import duckdb

    from pipelines.report.html import write_report

    warehouse = _analyst_warehouse(config)
    if warehouse is None:
        return 2
    try:
        day = day or _latest_cost_day(config, warehouse)
        if day is None:
            return 2
        path = write_report(config, day, output)
    except duckdb.Error as error:
        print(f"costwatch: {_one_line(error)}", file=sys.stderr)
        return 1
    print(f"report of {day}: {path}")
    return 0


def _on_warehouse(config, action) -> int:
    """`action(warehouse)` on the analysts' warehouse: 2 when no run wrote one yet, 1 with one line
    on a DuckDB error."""
    import duckdb

    warehouse = _analyst_warehouse(config)
    if warehouse is None:
        return 2
    try:
        return action(warehouse)
    except duckdb.Error as error:
        print(f"costwatch: {_one_line(error)}", file=sys.stderr)
        return 1


def _savings(config, args: argparse.Namespace) -> int:
    if args.eval_kit:
        return _on_warehouse(
            config, lambda warehouse: savings_findings.print_eval_kit(config, warehouse, args.date, args.eval_kit)
        )
    return _on_warehouse(
        config,
        lambda warehouse: savings_findings.print_savings(
            config, warehouse, args.date, args.kind, args.basis, every=args.every
        ),
    )


def _mark_finding(config, args: argparse.Namespace) -> int:
    return _on_warehouse(
        config, lambda warehouse: savings_findings.mark(config, warehouse, args.verb, args.key, args.note)
    )


def _latest_cost_day(config, warehouse: Path) -> dt.date | None:
    """The latest day with costs, the default day of the report and the export; None (said on
    stderr) when no day has any yet."""
    from pipelines.models.engine import REPORTS_DIR, connect_read_only
    from pipelines.report.summary import read_report_query

    with connect_read_only(warehouse, config.lake) as conn:
        (day,) = conn.execute(read_report_query(REPORTS_DIR / "latest_cost_day.sql")[1]).fetchone()
    if day is None:
        print("costwatch: no day has costs yet; run `costwatch run` first", file=sys.stderr)
    return day


def _export_focus(config, first: dt.date | None, last: dt.date | None, output: Path | None) -> int:
    import duckdb

    from pipelines.report.focus import default_period, export_focus

    warehouse = _analyst_warehouse(config)
    if warehouse is None:
        return 2
    try:
        last = last or _latest_cost_day(config, warehouse)
        if last is None:
            return 2
        first = first or default_period(last)[0]
        if first > last:
            print(f"costwatch: --from {first} is after --to {last}", file=sys.stderr)
            return 2
        output = output or config.data_dir / "exports" / f"focus_{first}_{last}.csv"
        rows = export_focus(warehouse, config.lake, first, last, output)
    except ValueError as error:
        print(f"costwatch: {error}", file=sys.stderr)
        return 2
    except duckdb.Error as error:
        print(f"costwatch: {_one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"costwatch: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"FOCUS 1.2 export of {first} to {last}: {rows:,} rows in {output}")
    return 0


def _closing_lines(config, day: dt.date) -> list[str]:
    """What the demo ends with (before the report's path): the day's total cost and its top movers."""
    from pipelines.alerts.render import format_usd
    from pipelines.models.engine import connect_read_only
    from pipelines.report.summary import day_movers, headline, headline_row

    with connect_read_only(readable_warehouse(config.warehouse_path), config.lake) as conn:
        lines = headline(headline_row(conn, day, day), day).splitlines()
        movers = day_movers(conn, day)
    if movers:
        moved = ", ".join(f"{feature} {format_usd(delta, signed=True)}" for feature, delta in movers)
        lines.append(f"  top movers vs {day - dt.timedelta(days=7)} (API spend): {moved}")
    return lines


def _write_demo_config(config_path: Path) -> bool:
    """Write the shipped demo config at `config_path` unless a file is already there (never
    overwritten). Its price catalog is the packaged one, so the demo runs in any empty folder;
    every other path in it is under the config's folder, where the demo writes its inputs."""
    import json

    from pipelines.demo.provider_bills import PRICE_CATALOG_FIXTURE
    from pipelines.resources.files import demo_config_template, fixture

    template = demo_config_template().read_text(encoding="utf-8")
    repository_catalog = f"catalog: fixtures/{PRICE_CATALOG_FIXTURE}"
    if template.count(repository_catalog) != 1:
        raise AssertionError(f"the demo config template must name its price catalog once as `{repository_catalog}`")
    # A JSON string is a YAML double-quoted scalar: any path survives the round trip.
    text = template.replace(repository_catalog, f"catalog: {json.dumps(str(fixture(PRICE_CATALOG_FIXTURE)))}")
    config_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(config_path, "x", encoding="utf-8") as config_file:
            config_file.write(text)
    except FileExistsError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
