"""`costwatch report`: one self-contained HTML file (scripts and data inline, no network) with the
day's headline, its data findings, what to change (its savings findings, basis by basis, as
`costwatch savings` lists them) and the charts of the period before it.

Each chart is a query file `sql/reports/charts/NN_<name>.sql` opening with `/* title | kind */`
(kind: stacked, grouped or lines) that returns `x, series, y` rows (lines may add `marked` and
`note`: a marker on the point, e.g. an anomaly) over `$first`..`$last`; pipelines/report/report.js
draws them as SVG in the browser.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from decimal import Decimal
from pathlib import Path

from pipelines.lake.publish import readable_warehouse
from pipelines.models.engine import REPORTS_DIR, connect_read_only
from pipelines.report import savings as savings_findings
from pipelines.report.summary import day_movers, headline, headline_row, read_report_query
from pipelines.resources.config import CostwatchConfig

CHARTS_DIR = REPORTS_DIR / "charts"
# A savings finding's columns the page shows (what `costwatch savings` prints, sql/reports/savings_findings.sql).
SAVINGS_COLUMNS = (
    "basis", "kind", "feature", "provider", "model", "target", "monthly_savings_usd", "monthly_in_scope_usd",
    "window_days", "assumptions", "finding_key",
)  # fmt: skip
SCRIPT = Path(__file__).with_name("report.js")
KINDS = ("stacked", "grouped", "lines")
PERIOD_DAYS = 60  # the charts' span, ending at the report's day

_HEADER = re.compile(r"(?P<title>.*?)\s*\|\s*(?P<kind>\w+)\s*\Z", re.S)


def load_charts(folder: Path = CHARTS_DIR) -> list[dict]:
    """Each chart query's name, title, kind, unit and SQL, in file-name order."""
    charts = []
    for path in sorted(folder.glob("*.sql")):
        header, sql = read_report_query(path)
        match = _HEADER.match(header)
        if not match or match["kind"] not in KINDS:
            raise ValueError(f"{path}: a chart query opens with /* title | kind */, kind one of {KINDS}")
        title = match["title"]
        unit = "ratio" if title.rstrip().endswith("ratio") else "usd"
        charts.append({"name": path.stem[3:], "title": title, "kind": match["kind"], "unit": unit, "sql": sql})
    return charts


def report_data(config: CostwatchConfig, day: dt.date, period_days: int = PERIOD_DAYS) -> dict:
    """Everything the page shows, read from the warehouse (read-only)."""
    first = max(day - dt.timedelta(days=period_days - 1), config.start_date)
    bounds = {"first": first, "last": day}
    with connect_read_only(readable_warehouse(config.warehouse_path), config.lake) as conn:
        head = headline_row(conn, first, day)
        charts = []
        for chart in load_charts():
            conn.execute(chart["sql"], {name: value for name, value in bounds.items() if f"${name}" in chart["sql"]})
            columns = [column[0] for column in conn.description]
            rows = [dict(zip(columns, row, strict=True)) for row in conn.fetchall()]
            charts.append(
                {key: chart[key] for key in ("name", "title", "kind", "unit")}
                | {"rows": [{key: _plain(value) for key, value in row.items()} for row in rows]}
            )
        conn.execute(read_report_query(REPORTS_DIR / "day_findings.sql")[1], {"first": day, "last": day})
        findings = [(row[1], row[4]) for row in conn.fetchall()]
        movers = day_movers(conn, day)
        savings = savings_findings.findings(conn, day, config.savings.min_monthly_usd)
    return {
        "day": day.isoformat(),
        "first": first.isoformat(),
        "headline": headline(head, first),
        "findings": [{"severity": severity, "message": message} for severity, message in findings],
        "movers": [{"feature": feature, "delta_usd": float(delta)} for feature, delta in movers],
        "charts": charts,
        "savings": [
            {key: _plain(row[key]) for key in SAVINGS_COLUMNS}
            for basis in savings_findings.BASES
            for row in savings
            if row["basis"] == basis
        ],
    }


def write_report(config: CostwatchConfig, day: dt.date, output: Path | None = None) -> Path:
    """Write the report of `day` (default: `<data_dir>/reports/costwatch_<day>.html`), atomically."""
    data = report_data(config, day)
    path = output or config.data_dir / "reports" / f"costwatch_{day}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(render_html(data), encoding="utf-8")
    os.replace(staging, path)
    return path


def render_html(data: dict) -> str:
    lines = data["headline"].splitlines()
    findings = "".join(
        f'<li class="{html.escape(f["severity"])}">{html.escape(f["message"])}</li>' for f in data["findings"]
    )
    movers = "".join(f"<li>{html.escape(m['feature'])}: {_signed_usd(m['delta_usd'])}</li>" for m in data["movers"])
    savings = "".join(
        "<tr>"
        f"<td>{html.escape(savings_findings.BASIS_WORDS[row['basis']].split(':')[0])}</td>"
        + (
            f'<td class="usd">{_usd(row["monthly_in_scope_usd"])}/mo in scope</td>'
            if row["monthly_savings_usd"] is None
            else f'<td class="usd">{_usd(row["monthly_savings_usd"])}/mo</td>'
        )
        + f"<td>{html.escape(row['kind'])}</td><td>{html.escape(row['feature'])}</td>"
        f"<td>{html.escape(row['provider'])}/{html.escape(row['model'])}"
        f"{' &rarr; ' + html.escape(row['target']) if row['target'] else ''}</td>"
        f"<td>{html.escape(row['assumptions'])}</td></tr>"
        for row in data["savings"]
    )
    sections = "".join(
        f'<section class="chart" id="chart-{index}"><h2>{html.escape(chart["title"])}</h2></section>'
        for index, chart in enumerate(data["charts"])
    )
    # `</` cannot appear inside the inline JSON: it would end the <script> element early.
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>costwatch {html.escape(data["day"])}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{html.escape(lines[0])}</h1>
{"".join(f"<p>{html.escape(line.strip())}</p>" for line in lines[1:])}
</header>
<div class="row">
<div><h2>Findings</h2><ul class="findings">{findings or "<li>none: every source delivered</li>"}</ul></div>
<div><h2>Top movers vs a week before (API spend)</h2><ul>{movers or "<li>none</li>"}</ul></div>
</div>
<section id="savings"><h2>What to change (a {html.escape(str(data["savings"][0]["window_days"]) if data["savings"] else "28")}-day window; each basis its own kind of dollars, never added up)</h2>
<table class="savings"><thead><tr><th>basis</th><th>saving</th><th>kind</th><th>feature</th><th>model</th><th>assumptions</th></tr></thead>
<tbody>{savings or '<tr><td colspan="6">no open finding saves savings.min_monthly_usd a month or more</td></tr>'}</tbody></table>
</section>
{sections}
<footer>costwatch report of {html.escape(data["day"])}, charts over {html.escape(data["first"])} to {html.escape(data["day"])}</footer>
<script type="application/json" id="report-data">{payload}</script>
<script>{SCRIPT.read_text(encoding="utf-8")}</script>
</body>
</html>
"""


def _plain(value: object) -> object:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _usd(value: float) -> str:
    from pipelines.alerts.render import format_usd

    return format_usd(value)


def _signed_usd(value: float) -> str:
    from pipelines.alerts.render import format_usd

    return format_usd(value, signed=True)


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 900px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px; }
header p { margin: 2px 0; color: #444; }
.row { display: flex; gap: 32px; } .row > div { flex: 1; }
ul { margin: 0; padding-left: 18px; } .findings .warning { color: #b3261e; }
svg { background: #fff; border: 1px solid #e4e4e4; }
.grid { stroke: #eee; } .tick { font-size: 11px; fill: #666; } .empty { fill: #999; }
.anomaly { fill: #e15759; stroke: #fff; stroke-width: 1.5; }
.legend { font-size: 12px; margin: 4px 0 0; } .legend span { margin-right: 12px; white-space: nowrap; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
footer { margin-top: 24px; font-size: 12px; color: #888; }
table.savings { border-collapse: collapse; font-size: 12px; width: 100%; }
table.savings th, table.savings td { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; vertical-align: top; }
table.savings td.usd { text-align: right; white-space: nowrap; }
"""
