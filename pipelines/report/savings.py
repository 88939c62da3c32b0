"""`costwatch savings`: the savings findings of a day, per basis, read from the warehouse.

Each basis is its own kind of dollars (money measured as wasted, an exact cheaper price, an upper
bound that assumes a change of behaviour), so the findings print basis by basis, each with its own
total (`sql/macros/savings_per_basis.sql`) and never one across bases.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal

from pipelines.alerts.render import format_usd
from pipelines.lake.savings_state import VERBS, baseline, read_state, record
from pipelines.models.engine import REPORTS_DIR, connect_read_only
from pipelines.report.summary import read_report_query
from pipelines.resources.config import CostwatchConfig

FINDINGS = REPORTS_DIR / "savings_findings.sql"
LATEST_DAY = REPORTS_DIR / "latest_savings_day.sql"
REALIZED = REPORTS_DIR / "savings_realized.sql"
BASELINE = REPORTS_DIR / "finding_baseline.sql"
KNOWN_KEY = REPORTS_DIR / "known_finding.sql"
EVAL_KIT = REPORTS_DIR / "eval_kit.sql"
# fct_savings_opportunities.kind, as its header lists them.
KINDS = (
    "duplicate_calls",
    "truncation_retries",
    "cache_write_waste",
    "batch",
    "service_tier",
    "long_context_tier",
    "prompt_cache",
    "gateway_cache",
    "trim_input",
    "cap_output",
    "route_by_difficulty",
    "right_size_model",
    "autoscale",
    "queue_batch",
    "split_pools",
    "selfhost_trigger",
)
BASES = ("measured", "price_rule", "validated", "upper_bound", "exposure", "realized")  # print order: surest first
BASIS_WORDS = {
    "measured": "measured: money spent on waste",
    "price_rule": "price rule: the same tokens at a cheaper documented price",
    "validated": "validated: an upper bound backed by an eval",
    "upper_bound": "upper bound: at most, if the change fully happens",
    "exposure": "exposure: spend in scope, not estimated",
    "realized": "realized: saved since a finding was done",
}


def _dicts(conn, sql: str, params: dict | None = None) -> list[dict]:
    conn.execute(sql, params or {})
    names = [description[0] for description in conn.description]
    return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def findings(
    conn,
    day: dt.date,
    min_monthly_usd: float,
    kind: str | None = None,
    basis: str | None = None,
    *,
    settled: bool = False,
) -> list[dict]:
    """The day's findings at or above `min_monthly_usd` a month, largest first, by column name;
    with `settled`, the dismissed and done ones too."""
    params = {"day": day, "min_monthly_usd": min_monthly_usd, "kind": kind, "basis": basis, "settled": settled}
    return _dicts(conn, read_report_query(FINDINGS)[1], params)


# How a basis's total keeps a call from counting twice (sql/macros/savings_per_basis.sql).
TOTAL_WORDS = {
    "upper_bound": "combined: per call the largest single lever, never the sum; per model or pool the larger of"
    " its per-call levers and a finding on all of it",
    None: "the largest finding per feature and model, summed: two may act on the same calls",
}


def per_basis(conn, day: dt.date, min_monthly_usd: float) -> dict[str, tuple[int, float]]:
    """basis -> (findings, monthly USD) of the day, as `savings_per_basis` totals them."""
    rows = conn.execute(
        "select basis, findings, monthly_savings_usd from savings_per_basis(fct_savings_opportunities, fct_savings_overlap_daily, $day, $min)",
        {"day": day, "min": min_monthly_usd},
    ).fetchall()
    return {basis: (count, total) for basis, count, total in rows}


def render(
    day: dt.date,
    rows: list[dict],
    totals: dict[str, tuple[int, float]],
    min_monthly_usd: float,
    decided: dict[str, dict] | None = None,
    realized: list[dict] = (),
) -> str:
    """The findings as text, basis by basis (surest first), largest first within each, then what
    the findings marked done saved. `decided`: the statuses set since (the state file), shown
    beside a finding whose status the last run did not know yet."""
    realized_lines = _realized_lines(realized)
    if not rows:
        return "\n".join(
            [
                f"costwatch savings as of {day}: no open finding saves {format_usd(min_monthly_usd)} a month or more "
                "(savings.min_monthly_usd; --all lists every finding)",
                *realized_lines,
            ]
        )
    first = rows[0]
    lines = [
        f"costwatch savings as of {day}: {first['window_days']}-day window from {first['period_start']}, "
        f"{first['days_observed']} day(s) with calls; monthly = window x 30.44 / days with calls",
        "Each basis is its own kind of dollars: never add them up.",
    ]
    for basis in BASES:
        of_basis = [row for row in rows if row["basis"] == basis]
        if not of_basis:
            continue
        if basis in totals:
            count, total = totals[basis]
            lines += ["", f"[{BASIS_WORDS[basis]}] {format_usd(total)}/mo over {count} finding(s)"]
            if count > 1:
                lines.append(f"  ({TOTAL_WORDS.get(basis, TOTAL_WORDS[None])})")
        else:  # a filtered list: the basis's total is of findings not shown
            lines += ["", f"[{BASIS_WORDS[basis]}]"]
        for row in of_basis:
            target = f" -> {row['target']}" if row["target"] else ""
            status = row["status"]
            now = (decided or {}).get(row["finding_key"], {}).get("status", status)
            if now != status:
                status = f"{status}; now {now}, from the next run"
            if row["estimated_savings_usd"] is None:  # exposure: spend in scope, nothing estimated
                headline = f"  {format_usd(row['monthly_in_scope_usd'])}/mo in scope"
                window = f"      {format_usd(row['spend_in_scope_usd'])} in the window, not estimated"
            else:
                headline = f"  {format_usd(row['monthly_savings_usd'])}/mo"
                window = f"      {format_usd(row['estimated_savings_usd'])} in the window, of {format_usd(row['spend_in_scope_usd'])} spent"
            lines += [
                f"{headline}  {row['kind']}  {row['feature']}  {row['provider']}/{row['model']}{target}  [{status}]",
                f"{window} on {row['requests_in_scope']:,} call(s) in scope ({row['requests_affected']:,} affected)",
                f"      {row['assumptions']}",
                f"      key: {row['finding_key']}",
            ]
    return "\n".join(lines + realized_lines)


def _realized_lines(realized: list[dict]) -> list[str]:
    if not realized:
        return []
    lines = ["", f"[{BASIS_WORDS['realized']}]"]
    for row in realized:
        lines.append(
            f"  {format_usd(row['realized_savings_usd'], signed=True)} since {row['first_month']:%Y-%m} "
            f"({row['volume_after']:,} useful call(s) over {row['days']} day(s)): {row['finding_key']}"
        )
    return lines


def print_savings(
    config: CostwatchConfig,
    warehouse,
    day: dt.date | None,
    kind: str | None,
    basis: str | None,
    *,
    every: bool = False,
) -> int:
    """Print the findings of `day` (default: the latest day with findings computed). 2 when there is none."""
    min_monthly_usd = 0.0 if every else config.savings.min_monthly_usd
    with connect_read_only(warehouse, config.lake) as conn:
        day = day or conn.execute(read_report_query(LATEST_DAY)[1]).fetchone()[0]
        if day is None:
            print("costwatch: no savings findings computed yet; run `costwatch run` first")
            return 2
        rows = findings(conn, day, min_monthly_usd, kind, basis, settled=every)
        totals = per_basis(conn, day, min_monthly_usd)
        realized = _dicts(conn, read_report_query(REALIZED)[1])
    if kind:  # a basis's total is of every kind: it is not the sum of what is shown
        totals = {}
    print(render(day, rows, totals, min_monthly_usd, read_state(config.lake_dir), realized))
    return 0


def print_eval_kit(config: CostwatchConfig, warehouse, day: dt.date | None, key: str) -> int:
    """`costwatch savings --eval-kit KEY`: the finding's eval kit as tab-separated lines (a header,
    then one call a line: id, time, feature, model, prompt and answer tokens), smallest calls first.
    1 when the finding has no kit that day (not a routing or right-size finding, or no such key)."""
    with connect_read_only(warehouse, config.lake) as conn:
        day = day or conn.execute(read_report_query(LATEST_DAY)[1]).fetchone()[0]
        rows = conn.execute(read_report_query(EVAL_KIT)[1], {"key": key, "day": day}).fetchall()
    if not rows:
        print(
            f"costwatch: no eval kit for {key!r} on {day}: only route_by_difficulty and right_size_model findings "
            "carry one; `costwatch savings --all` lists the findings with their keys",
            file=sys.stderr,
        )
        return 1
    print("request_id\tts\tfeature\tmodel\tinput_tokens\toutput_tokens")
    for request_id, ts, feature, model, input_tokens, output_tokens in rows:
        print(f"{request_id}\t{ts.isoformat()}\t{feature}\t{model}\t{input_tokens}\t{output_tokens}")
    return 0


def mark(config: CostwatchConfig, warehouse, verb: str, key: str, note: str | None) -> int:
    """`costwatch findings VERB KEY`: record the status (for `done`, the baseline its realized
    savings are measured against). The next run applies it. 1 when the key names no finding."""
    with connect_read_only(warehouse, config.lake) as conn:
        known = conn.execute(read_report_query(KNOWN_KEY)[1], {"key": key}).fetchall()
        if not known[0][0]:
            print(f"costwatch: no savings finding {key!r}; `costwatch savings --all` lists them with their keys")
            return 1
        base = None
        if verb == "done":
            ((start, end, unit),) = conn.execute(read_report_query(BASELINE)[1], {"key": key}).fetchall()
            base = baseline(unit, start, end) if unit is not None else None
    status = VERBS[verb]
    record(config.lake_dir, key, status, at=dt.datetime.now(dt.timezone.utc), note=note, baseline=base)
    told = f"{key}: {status}"
    if base:
        told += (
            f"; realized savings are measured on the days after {base['end']}, against "
            f"${Decimal(base['unit_cost_usd']):.6f} per useful call ({base['start']} to {base['end']})"
        )
    print(told + ". The next `costwatch run` applies it.")
    return 0


def list_decided(config: CostwatchConfig) -> int:
    """`costwatch findings`: what was decided, newest first."""
    decided = read_state(config.lake_dir)
    if not decided:
        print("no savings finding has been acknowledged, dismissed or marked done yet")
        return 0
    for key, entry in sorted(decided.items(), key=lambda item: item[1]["changed_at"], reverse=True):
        note = f" ({entry['note']})" if entry.get("note") else ""
        print(f"{entry['changed_at'][:19]}  {entry['status']:<12}  {key}{note}")
    return 0
