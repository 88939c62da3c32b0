"""Asset checks and extra metadata for SQL-model assets, registered by model name.

The SQL lives in `sql/`; what must hold of its output lives here, one function per check,
grouped by domain. `models.py` attaches them when it turns each file into an asset.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import duckdb

from pipelines.lib.config import CostwatchConfig


@dataclass(frozen=True)
class ModelCheck:
    name: str
    description: str
    blocking: bool  # ERROR, and downstream stops, where downstream numbers would be wrong; else WARN
    evaluate: Callable[[duckdb.DuckDBPyConnection, CostwatchConfig, dt.date | None], tuple[bool, dict]]

    def run(self, conn: duckdb.DuckDBPyConnection, config: CostwatchConfig, day: dt.date | None) -> dg.AssetCheckResult:
        passed, metadata = self.evaluate(conn, config, day)
        severity = dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(check_name=self.name, passed=passed, severity=severity, metadata=metadata)


CHECKS: dict[str, list[ModelCheck]] = {}
METADATA: dict[str, Callable[[duckdb.DuckDBPyConnection, dt.date | None], dict]] = {}


def check(model: str, name: str, description: str, *, blocking: bool = False):
    def register(function):
        CHECKS.setdefault(model, []).append(ModelCheck(name, description, blocking, function))
        return function

    return register


def metadata(model: str):
    def register(function):
        METADATA[model] = function
        return function

    return register


# --- spend --------------------------------------------------------------------------------------


@check("fct_requests", "unpriced_share",
       "share of API calls whose model has no price stays under checks.max_unpriced_share")
def unpriced_share(conn, config, day):
    api_calls, unpriced, unpriced_models = conn.execute(
        """
        select count(*) filter (where pricing_basis <> 'gpu_billing'),
               count(*) filter (where not priced),
               list(distinct model order by model) filter (where not priced)
        from fct_requests where day = $day
        """,
        {"day": day},
    ).fetchone()
    share = unpriced / api_calls if api_calls else 0.0
    threshold = config.checks.max_unpriced_share
    return share <= threshold, {
        "unpriced_requests": unpriced, "api_requests": api_calls, "share": share, "threshold": threshold,
        "unpriced_models": dg.MetadataValue.json(unpriced_models or []),
    }


# --- reconciliation -----------------------------------------------------------------------------


@check("fct_invoice_reconciliation", "reconciliation_within_tolerance",
       "every billed line matches its estimate within reconciliation.tolerance_usd / tolerance_pct")
def reconciliation_within_tolerance(conn, config, day):
    off = conn.execute(
        """
        select status, count(*), sum(variance_usd)::double from fct_invoice_reconciliation
        where status <> 'matched' group by status order by status
        """
    ).fetchall()
    rows_off = sum(count for _, count, _ in off)
    return rows_off == 0, {
        "rows_off": rows_off,
        "by_status": dg.MetadataValue.json({status: {"rows": count, "variance_usd": round(variance, 6)}
                                            for status, count, variance in off}),
        "tolerance_pct": config.reconciliation.tolerance_pct,
        "tolerance_usd": config.reconciliation.tolerance_usd,
    }


@metadata("fct_invoice_reconciliation")
def reconciliation_by_provider(conn, day):
    rows = conn.execute(
        """
        select provider, sum(billed_usd)::double, sum(estimated_usd)::double, sum(variance_usd)::double
        from fct_invoice_reconciliation where granularity = 'day' group by provider order by provider
        """
    ).fetchall()
    return {
        "billed_usd_by_provider": dg.MetadataValue.json({p: round(b, 6) for p, b, _, _ in rows}),
        "estimated_usd_by_provider": dg.MetadataValue.json({p: round(e, 6) for p, _, e, _ in rows}),
        "variance_usd_by_provider": dg.MetadataValue.json({p: round(v, 6) for p, _, _, v in rows}),
    }


@check("fct_allocated_spend_daily", "allocation_equals_bill",
       "per provider, the day's allocated dollars equal its one-day bills (to the micro-dollar)", blocking=True)
def allocation_equals_bill(conn, config, day):
    rows = conn.execute(
        """
        with billed as (
            select provider, round(sum(billed_usd), 6) as billed_usd
            from stg_provider_costs where is_daily and period_start = $day group by provider
        ),
        allocated as (
            select provider, sum(allocated_usd) as allocated_usd
            from fct_allocated_spend_daily where day = $day group by provider
        )
        select provider, coalesce(billed.billed_usd, 0)::double, coalesce(allocated.allocated_usd, 0)::double,
               coalesce(billed.billed_usd, 0) = coalesce(allocated.allocated_usd, 0)
        from billed full outer join allocated using (provider) order by provider
        """,
        {"day": day},
    ).fetchall()
    return all(equal for *_, equal in rows), {"by_provider": dg.MetadataValue.json(
        {provider: {"billed_usd": billed, "allocated_usd": allocated} for provider, billed, allocated, _ in rows})}
