"""The morning summary `costwatch demo` prints: read-only queries over the warehouse marts."""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines.lib.config import CostwatchConfig

SECTIONS = {
    "Spend per feature": """
        select feature, sum(requests) as requests, sum(cost_usd)::decimal(18, 2) as cost_usd,
               sum(prompt_cache_savings_usd)::decimal(18, 2) as prompt_cache_savings_usd,
               sum(unpriced_requests) as unpriced_requests
        from fct_spend_by_feature_daily where day between $first and $last
        group by feature order by cost_usd desc nulls last""",
    "Top 10 users by spend": """
        select user_id, sum(requests) as requests, sum(cost_usd)::decimal(18, 2) as cost_usd,
               max(features) as features
        from fct_spend_by_user_daily where day between $first and $last
        group by user_id order by cost_usd desc nulls last limit 10""",
    "Top models": """
        select provider, model, sum(requests) as requests, sum(input_tokens) as input_tokens,
               sum(output_tokens) as output_tokens, sum(cost_usd)::decimal(18, 2) as cost_usd,
               sum(unpriced_requests) as unpriced_requests
        from fct_spend_daily where day between $first and $last
        group by all order by cost_usd desc nulls last, requests desc limit 10""",
    "Cache savings": """
        select feature, sum(prompt_cache_savings_usd)::decimal(18, 2) as prompt_cache_savings_usd,
               sum(gateway_cache_hits) as gateway_cache_hits,
               sum(gateway_cache_avoided_usd)::decimal(18, 2) as gateway_cache_avoided_usd
        from fct_cache_savings_daily where day between $first and $last
        group by feature order by prompt_cache_savings_usd desc""",
    "Ingest: where every line went": """
        select sum(lines) as lines, sum(kept) as kept, sum(quarantined) as quarantined,
               sum(duplicates) as duplicates
        from gateway_ingest_audit where day between $first and $last""",
    "Quarantine reasons": """
        select reason, count(*) as lines from gateway_quarantine
        where day between $first and $last group by reason order by lines desc""",
}


def print_summary(config: CostwatchConfig, first: dt.date, last: dt.date) -> None:
    with duckdb.connect(str(config.warehouse_path), read_only=True) as conn:
        total = conn.execute(
            "select sum(cost_usd)::decimal(18, 2), sum(requests) from fct_spend_by_feature_daily "
            "where day between $first and $last",
            {"first": first, "last": last},
        ).fetchone()
        print(f"\ncostwatch: {first} to {last}: ${total[0]:,} API spend over {total[1]:,} requests")
        for title, sql in SECTIONS.items():
            print(f"\n{title}")
            conn.execute(sql, {"first": first, "last": last})
            columns = [description[0] for description in conn.description]
            print(_table(columns, conn.fetchall()))


def _table(columns: list[str], rows: list[tuple]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(column)] + [len(row[index]) for row in cells]) for index, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(value.rjust(width) if _numeric(value) else value.ljust(width) for value, width in zip(row, widths)) for row in cells]
    return "\n".join("  " + line for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").isdigit()
