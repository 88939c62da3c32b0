"""Great Expectations suites as Dagster asset checks: the specs an asset declares and the
results it yields. The suites themselves are declared beside the relations they gate, in
`sql/**/<relation>.checks.yml` (`pipelines.quality.checks.load_suites`). A run is judged once
over all its days: one check result per gate, whose metadata names the days that failed."""

import datetime as dt
from collections.abc import Iterator, Sequence

import dagster as dg
import duckdb

from pipelines.models.engine import DayRange
from pipelines.quality.engine import GateResult, Suite, validate
from pipelines.resources.config import CostwatchConfig


def gate_specs(
    asset: str, suites: Sequence[Suite], partitions: dg.PartitionsDefinition | None = None
) -> list[dg.AssetCheckSpec]:
    """The gates of `asset` as check specs. With the asset's `partitions`, a one-day run records
    each result against its day (the UI shows it on that partition)."""
    return [
        dg.AssetCheckSpec(
            gate.name, asset=asset, description=gate.description, blocking=gate.blocking, partitions_def=partitions
        )
        for suite in suites
        for gate in suite.gates
    ]


def run_gates(
    conn: duckdb.DuckDBPyConnection,
    suites: Sequence[Suite],
    config: CostwatchConfig,
    days: DayRange | dt.date | None,
) -> Iterator[dg.AssetCheckResult]:
    # A one-day run records each result on its day's partition; a range run records one result for
    # the range (Dagster keeps no range on a check result), so its metadata names the days.
    judged = None if days is None else days if isinstance(days, DayRange) else DayRange.of(days)
    for suite in suites:
        for result in validate(conn, suite, config, days):
            yield _check_result(result, judged)


def _check_result(result: GateResult, days: DayRange | None) -> dg.AssetCheckResult:
    metadata = {
        **({"days": f"{days.start}..{days.end}" if days.end != days.start else str(days.start)} if days else {}),
        "rows_validated": result.rows_validated,
        "unexpected_rows": result.unexpected_rows,
        "share": result.share,
        "expectations": dg.MetadataValue.json(result.expectations),
        "failing_rows_sample": dg.MetadataValue.json(result.failing_rows),
        "validation_seconds": round(result.seconds, 3),
        **result.extra,
    }
    if result.error:
        metadata["error"] = result.error
    if not result.passed:
        # Which of the run's days to look at: the days of the failing rows GX returned, and
        # whether those were all of them (else more days may fail; the gate's rows say which).
        metadata["failing_days"] = dg.MetadataValue.json(result.failing_days)
        metadata["failing_days_complete"] = result.failing_days_complete
    return dg.AssetCheckResult(
        check_name=result.gate.name,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR if result.gate.blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )
