"""`savings_findings_state`: what people decided about savings findings (`costwatch findings`),
copied from the lake's state file into the warehouse for the savings models to join."""

from pathlib import Path

import dagster as dg

from pipelines.defs.settings import SETTINGS_GROUP
from pipelines.lake.savings_state import state_table
from pipelines.models.relations import replace_table
from pipelines.resources.warehouse import WAREHOUSE_POOL, CostwatchConfigResource, WarehouseResource

STATE_DESCRIPTION = (
    "What people decided about savings findings (costwatch findings ack|dismiss|done), one row per finding "
    "decided; a finding without a row is open. From data/lake/_manifests/savings_findings.json."
)

STATE_COLUMNS = {
    "finding_key": "The finding, as fct_savings_opportunities.finding_key names it (kind:feature:provider/model:target).",
    "status": "acknowledged (seen, being worked on: out of the digest), dismissed (not worth doing: never shown or "
    "posted again unless asked) or done (changed: realized savings are measured from then on).",
    "changed_at": "When the status was set, UTC.",
    "note": "What the person said, if anything (--note).",
    "baseline_unit_cost_usd": "For done: the cost per useful call (not a duplicate, not a re-sent cut call) of the "
    "finding's feature, provider and model over its window when it was marked, USD.",
    "baseline_start": "For done: the first day of that window.",
    "baseline_end": "For done: the last day of that window; realized savings count the days after it.",
}


@dg.asset(
    name="savings_findings_state",
    description=STATE_DESCRIPTION,
    group_name=SETTINGS_GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
)
def savings_findings_state(costwatch: CostwatchConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """`savings_findings_state`: the findings' statuses and the baselines of those marked done."""
    with warehouse.get_connection() as conn:
        count = write_state(conn, costwatch.config.lake_dir, lake=warehouse.tables_lake)
    return dg.MaterializeResult(metadata={"dagster/row_count": count})


def write_state(conn, lake_dir: Path, *, lake=None) -> int:
    """The state file (in the local `lake_dir`) as the warehouse table, documented; as a dataset of
    `lake` in a distributed run. Returns its rows."""
    return replace_table(
        conn,
        "savings_findings_state",
        state_table(lake_dir),
        STATE_DESCRIPTION,
        STATE_COLUMNS,
        lake_dir=lake,
    )
