"""What people decided about savings findings: `costwatch findings ack|dismiss|done KEY`.

Kept beside the lake (`lake/_manifests/savings_findings.json`, written atomically), not in the
warehouse: it is people's word, which a rebuilt warehouse must not lose. Each run copies it into
the warehouse table `savings_findings_state` (the settings asset of that name), which
`fct_savings_opportunities` (each finding's `status`), the digest and `fct_savings_realized` read.

A finding marked `done` keeps its **baseline**: the cost per useful call (calls that were not
duplicates or re-sent cut calls) of its feature, provider and model over the finding's window
when it was marked, and the window's last day. Realized savings are measured against it on the
days after.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from pipelines.lake.manifest import write_json_atomic

# `costwatch findings VERB`: the status each verb records.
VERBS = {"ack": "acknowledged", "dismiss": "dismissed", "done": "done"}
STATE_NAME = "savings_findings.json"


class SavingsStateError(RuntimeError):
    """The state file cannot be read: named, with the fix."""


def state_path(lake_dir: Path) -> Path:
    return lake_dir / "_manifests" / STATE_NAME


def read_state(lake_dir: Path) -> dict[str, dict]:
    """finding_key -> {status, changed_at, note, baseline?}; empty when nothing was decided yet.
    An unreadable file is an error naming it, never read as empty (every finding would reopen)."""
    path = state_path(lake_dir)
    if not path.exists():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        payload, problem = None, str(error)
    else:
        problem = "it holds no `findings` object"
    findings = payload.get("findings") if isinstance(payload, dict) else None
    if not isinstance(findings, dict) or not all(
        isinstance(entry, dict) and entry.get("status") in VERBS.values() for entry in findings.values()
    ):
        raise SavingsStateError(
            f"{path} cannot be read ({problem if findings is None else 'an entry has no known status'}): restore it "
            "from the lake's backup, or move it aside and mark the findings again (until then every finding is open)"
        )
    return findings


def record(
    lake_dir: Path,
    key: str,
    status: str,
    *,
    at: dt.datetime,
    note: str | None = None,
    baseline: dict | None = None,
) -> None:
    """Set `key`'s status (with the time, a note, and for `done` its baseline)."""
    findings = read_state(lake_dir)
    findings[key] = {"status": status, "changed_at": at.isoformat(), "note": note}
    if baseline is not None:
        findings[key]["baseline"] = baseline
    write_json_atomic(state_path(lake_dir), {"findings": findings})


def baseline(unit_cost_usd: Decimal, start: dt.date, end: dt.date) -> dict:
    return {"unit_cost_usd": str(unit_cost_usd), "start": start.isoformat(), "end": end.isoformat()}


STATE_SCHEMA = pa.schema(
    [
        ("finding_key", pa.string()),
        ("status", pa.string()),
        ("changed_at", pa.timestamp("us", tz="UTC")),
        ("note", pa.string()),
        ("baseline_unit_cost_usd", pa.decimal128(38, 12)),
        ("baseline_start", pa.date32()),
        ("baseline_end", pa.date32()),
    ]
)


def state_table(lake_dir: Path) -> pa.Table:
    """The state as the warehouse table `savings_findings_state`, one row per finding decided."""
    rows = []
    for key, entry in sorted(read_state(lake_dir).items()):
        base = entry.get("baseline") or {}
        rows.append(
            {
                "finding_key": key,
                "status": entry["status"],
                "changed_at": dt.datetime.fromisoformat(entry["changed_at"]),
                "note": entry.get("note"),
                "baseline_unit_cost_usd": Decimal(base["unit_cost_usd"]) if base else None,
                "baseline_start": dt.date.fromisoformat(base["start"]) if base else None,
                "baseline_end": dt.date.fromisoformat(base["end"]) if base else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=STATE_SCHEMA)
