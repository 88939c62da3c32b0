"""Price catalogs (LiteLLM's `model_prices_and_context_window.json` format) and overrides.

Prices are USD per token. They are turned into exact decimals from their JSON text, never
through binary floating point arithmetic, so a hand-priced call matches to the micro-dollar.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa

from pipelines.resources.config import PRICE_FIELDS, CostwatchConfig
from pipelines.sources.values import NotADecimal, to_decimal

PRICE_TYPE = pa.decimal128(18, 12)  # USD per token; 1e-12 resolution is below any list price

PRICE_SCHEMA = pa.schema(
    [
        ("model_key", pa.string()),
        ("litellm_provider", pa.string()),
        *[(name, PRICE_TYPE) for name in PRICE_FIELDS],
        ("effective_from", pa.date32()),
        ("price_source", pa.string()),  # 'catalog:<file>' or 'override'
    ]
)


def _decimal(value: object) -> Decimal | None:
    """A catalog price as an exact decimal, or None where the entry has no usable price."""
    try:
        return to_decimal(value).quantize(Decimal("1e-12"))
    except (NotADecimal, ArithmeticError):
        return None


def price_rows(config: CostwatchConfig) -> pa.Table:
    """Every catalog version's entries with a token price, plus the config's overrides."""
    rows: list[dict] = []
    for version in config.price_versions:
        catalog = json.loads(version.catalog.read_text(encoding="utf-8"))
        for model_key, entry in sorted(catalog.items()):
            if not isinstance(entry, dict) or _decimal(entry.get("input_cost_per_token")) is None:
                continue  # e.g. LiteLLM's `sample_spec`, or per-image/per-second-only models
            rows.append(
                {
                    "model_key": model_key,
                    "litellm_provider": entry.get("litellm_provider"),
                    **{name: _decimal(entry.get(name)) for name in PRICE_FIELDS},
                    "effective_from": version.effective_from,
                    "price_source": f"catalog:{version.catalog.name}",
                }
            )
    for override in config.price_overrides:
        rows.append(
            {
                "model_key": override.model,
                "litellm_provider": None,
                **{name: _decimal(override.prices.get(name)) for name in PRICE_FIELDS},
                "effective_from": override.effective_from,
                "price_source": "override",
            }
        )
    return pa.Table.from_pylist(rows, schema=PRICE_SCHEMA)
