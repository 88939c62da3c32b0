"""Great Expectations gates and extra metadata for SQL-model assets, registered by model name.

The SQL lives in `sql/`; what must hold of its output lives here, grouped by domain: each
suite names the rows it validates and its gates (one asset check each, blocking where
downstream numbers would be wrong). `models.py` attaches them when it turns each file into an
asset; GX evaluates them inside DuckDB (pipelines/quality/engine.py).
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg
import duckdb
import great_expectations.expectations as gxe

from pipelines.quality.engine import DAY_VARIABLE, Gate, Suite, non_negative, rows_of_day, token_rules, unique_keys

SUITES: dict[str, list[Suite]] = {}
METADATA: dict[str, Callable[[duckdb.DuckDBPyConnection, dt.date | None], dict]] = {}


def suite(model: str, sql: str, keys: tuple[str, ...], *gates: Gate) -> None:
    SUITES.setdefault(model, []).append(Suite(sql, keys, gates))


def metadata(model: str):
    def register(function):
        METADATA[model] = function
        return function

    return register


# --- spend --------------------------------------------------------------------------------------

# Not prompt_cache_savings_usd: a cache write is billed above the input price (Anthropic: 1.25x),
# so a request that only writes the cache saves a negative amount.
REQUEST_MONEY = ("cost_usd", "list_cost_usd", "gateway_cache_avoided_usd")


def _unpriced_models(cursor, config) -> dict:
    (models,) = cursor.execute(
        f"select list(distinct model order by model) from fct_requests where day = getvariable('{DAY_VARIABLE}') and not priced"
    ).fetchone()
    return {"unpriced_models": dg.MetadataValue.json(models or []), "threshold": config.checks.max_unpriced_share}


suite(
    "fct_requests",
    rows_of_day("fct_requests"),
    ("request_id", "model"),
    Gate(
        "request_ids_unique",
        "one row per request_id in the day's priced requests (a repeat is money counted twice)",
        unique_keys("request_id"),
        blocking=True,
    ),
    Gate(
        "money_non_negative",
        "cost, list cost and gateway-cache avoided cost per request are >= 0 USD",
        non_negative(*REQUEST_MONEY),
        blocking=True,
    ),
    Gate(
        "cached_within_input",
        "tokens >= 0, and cache reads and writes are part of input_tokens (never above it)",
        token_rules,
        blocking=True,
    ),
    # Not blocking: an unpriced model's calls carry no cost (never a made-up one); a person adds the price.
    Gate(
        "unpriced_share",
        "share of API calls whose model has no price stays under checks.max_unpriced_share",
        lambda config: [
            gxe.ExpectColumnValuesToBeInSet(
                column="priced",
                value_set=[True],
                mostly=1 - config.checks.max_unpriced_share,
                row_condition='col("pricing_basis")!="gpu_billing"',
                condition_parser="great_expectations",
            )
        ],
        explain=_unpriced_models,
    ),
)

suite(
    "fct_spend_daily",
    rows_of_day("fct_spend_daily"),
    ("feature", "user_id", "provider", "model"),
    Gate(
        "spend_non_negative",
        "spend, list spend and gateway-cache avoided cost per day x feature x user x model are >= 0 USD",
        non_negative(*REQUEST_MONEY),
        blocking=True,
    ),
)


# --- reconciliation -----------------------------------------------------------------------------


def _reconciliation_by_status(cursor, config) -> dict:
    off = cursor.execute(
        """
        select status, count(*), sum(variance_usd)::double from fct_invoice_reconciliation
        where status <> 'matched' group by status order by status
        """
    ).fetchall()
    return {
        "by_status": dg.MetadataValue.json(
            {status: {"rows": count, "variance_usd": round(variance, 6)} for status, count, variance in off}
        ),
        "tolerance_pct": config.reconciliation.tolerance_pct,
        "tolerance_usd": config.reconciliation.tolerance_usd,
    }


suite(
    "fct_invoice_reconciliation",
    "select * from fct_invoice_reconciliation",
    ("provider", "granularity", "period_start", "line_key"),
    Gate(
        "reconciliation_within_tolerance",
        "every billed line matches its estimate within reconciliation.tolerance_usd / tolerance_pct",
        lambda config: [gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["matched"])],
        explain=_reconciliation_by_status,
    ),
)


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


# Per provider: the day's one-day bills next to the dollars allocated to features and users.
ALLOCATION_TOTALS = f"""
with billed as (
    select provider, round(sum(billed_usd), 6) as billed_usd
    from stg_provider_costs where is_daily and period_start = getvariable('{DAY_VARIABLE}') group by provider
),
allocated as (
    select provider, sum(allocated_usd) as allocated_usd
    from fct_allocated_spend_daily where day = getvariable('{DAY_VARIABLE}') group by provider
)
select provider, coalesce(billed.billed_usd, 0) as billed_usd, coalesce(allocated.allocated_usd, 0) as allocated_usd
from billed full outer join allocated using (provider)
"""


suite(
    "fct_allocated_spend_daily",
    ALLOCATION_TOTALS,
    ("provider", "billed_usd", "allocated_usd"),
    Gate(
        "allocation_equals_bill",
        "per provider, the day's allocated dollars equal its one-day bills (to the micro-dollar)",
        lambda config: [gxe.ExpectColumnPairValuesToBeEqual(column_A="billed_usd", column_B="allocated_usd")],
        blocking=True,
    ),
)

# --- self-hosted GPUs ---------------------------------------------------------------------------

suite(
    "fct_gpu_utilization_daily",
    rows_of_day("fct_gpu_utilization_daily"),
    ("pool",),
    Gate(
        "utilization_within_0_1",
        "GPU utilization is a ratio between 0 and 1",
        lambda config: [gxe.ExpectColumnValuesToBeBetween(column="utilization", min_value=0, max_value=1)],
        blocking=True,
    ),
    Gate(
        "gpu_money_non_negative",
        "GPU-hours, GPU cost and idle cost per pool are >= 0",
        non_negative("billed_gpu_hours", "busy_gpu_hours", "gpu_cost_usd", "idle_cost_usd"),
        blocking=True,
    ),
)
