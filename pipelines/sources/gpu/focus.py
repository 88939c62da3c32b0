"""FOCUS 1.x cost and usage exports (AWS, GCP, Azure) → GPU billing lines.

GPU-hours = instance hours x GPUs per instance. The GPU count comes from the export's
`SkuPriceDetails.GpuCount` (FOCUS 1.2) when present, else from the instance-type table the
project ships (`fixtures/gpu/instance_types.csv`), matched on `SkuPriceDetails.InstanceType` or
the instance type named in `ChargeDescription` (FOCUS 1.0 exports such as AWS's say
"$1.624 per On Demand Linux g5.4xlarge Instance Hour"). A row whose instance has no GPU is not
GPU spend and is counted, not kept. The pool and replica come from the row's `Tags` (the
config's `gpu.pool_tag` and `gpu.replica_tag`); untagged GPU spend stays visible as `untagged`.

Cost is `EffectiveCost`, the amortized cost of the hour: FOCUS sets `BilledCost` to 0 on usage a
reservation, Savings Plan or CUD covers and puts the hour's share of the commitment in
`EffectiveCost`. `BilledCost` is kept beside it as cash (`billed_usd`). A commitment's `Purchase`
rows (the cash for the commitment, `EffectiveCost` 0 by the spec) and its `Unused` rows are not
GPU usage hours: skipped and counted as `commitment_purchase` / `unused_commitment`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.sources.gpu.common import GpuBilling, finish_billing_file, input_view, read_csv_export
from pipelines.sources.quarantine import CurrencyError
from pipelines.sources.queries import load_queries
from pipelines.sources.registry import register

# The FOCUS columns read; a FOCUS version without one of them reads it as NULL.
FOCUS_COLUMNS = (
    "ProviderName",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ResourceId",
    "BillingCurrency",
    "SkuPriceDetails",
    "Tags",
    "ChargeDescription",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
)

# Instance type names of AWS, GCP, Azure and Lambda, as they appear inside a charge description.
INSTANCE_PATTERN = (
    r"([a-z][a-z0-9]*\.[0-9]*x?large|a[23]-[a-z]+-[0-9]+g|g2-standard-[0-9]+"
    r"|Standard_[A-Za-z0-9_]+|gpu_[0-9]+x_[a-z0-9_]+)"
)


def read_focus(
    conn: duckdb.DuckDBPyConnection, path: Path, rates: dict[str, float], pool_tag: str, replica_tag: str
) -> GpuBilling:
    """One FOCUS export → temp tables `billing_lines` (GPU usage lines) and `billing_quarantine`.
    Rows that are not GPU usage (other services, taxes, credits, commitment purchases) are
    skipped and counted by reason; GPU lines no commitment covers whose EffectiveCost is not
    their BilledCost are listed in `uncommitted_cost_mismatch`. Needs `instance_types` (load_instance_types). Raises CurrencyError for a currency
    without a rate."""
    queries = load_queries(__package__, "focus.sql")
    read_csv_export(conn, path)
    input_view(conn, "focus_input", FOCUS_COLUMNS)
    for code, first_ref in conn.execute(queries["unrated_currencies"]).fetchall():
        if code not in rates:
            raise CurrencyError(
                f"{path} {first_ref}: billed in {code} with no rate; add currency_rates: {{{code}: <USD per {code}>}}"
            )
    conn.execute(queries["currency_rates"])
    # USD is 1 USD whatever the config says: a USD entry there must not join twice.
    conn.executemany(queries["insert_currency_rate"], [*{**rates, "USD": 1.0}.items()])
    conn.execute(
        queries["billing_typed"], {"pattern": INSTANCE_PATTERN, "pool_tag": pool_tag, "replica_tag": replica_tag}
    )
    conn.execute(queries["billing_lines"], {"source_file": str(path)})
    billing = finish_billing_file(conn, path, "focus")
    billing.uncommitted_cost_mismatch = [
        {
            "source_file": str(path),
            "record_ref": ref,
            "resource_id": resource,
            "billed_usd": billed,
            "effective_usd": eff,
        }
        for ref, resource, billed, eff in conn.execute(queries["uncommitted_cost_mismatch"]).fetchall()
    ]
    return billing


register("focus", "gpu_billing", read_focus, "FOCUS 1.x cost and usage exports (AWS, GCP, Azure)")
