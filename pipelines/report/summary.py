"""The morning summary `costwatch demo` prints: read-only queries over the warehouse marts."""

from __future__ import annotations

import datetime as dt

from pipelines.models.engine import connect_read_only
from pipelines.resources.config import CostwatchConfig

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
    "Reconciliation: estimated (logs x catalog) vs billed, one-day bills": """
        select provider, sum(estimated_usd)::decimal(18, 2) as estimated_usd,
               sum(billed_usd)::decimal(18, 2) as billed_usd, sum(variance_usd)::decimal(18, 2) as variance_usd,
               count(*) filter (where status = 'matched') as lines_matched,
               count(*) filter (where status <> 'matched') as lines_off
        from fct_invoice_reconciliation
        where granularity = 'day' and day between $first and $last group by provider order by provider""",
    "Reconciliation: lines off the estimate": """
        select coalesce(day::varchar, period_start || '..' || period_end) as period, provider, line_key, status,
               estimated_usd::decimal(18, 2) as estimated_usd, billed_usd::decimal(18, 2) as billed_usd,
               variance_usd::decimal(18, 2) as variance_usd
        from fct_invoice_reconciliation
        where status <> 'matched' and period_end between $first and $last
        order by status, line_key, period_start limit 25""",
    "Token reconciliation findings (gateway vs provider usage)": """
        select finding, provider, model_family, count(*) as days, min(day) as first_day, max(day) as last_day
        from fct_token_reconciliation where day between $first and $last and finding <> 'matched'
        group by all order by finding, provider, model_family""",
    "Price findings": """
        select provider, model_family, finding, first_day, days,
               round(billed_to_estimated_ratio, 3) as ratio, recommendation
        from fct_price_findings order by provider, model_family""",
    "Billed spend allocated to features (one-day bills)": """
        select feature, sum(estimated_usd)::decimal(18, 2) as estimated_usd,
               sum(allocated_usd)::decimal(18, 2) as allocated_usd
        from fct_allocated_spend_daily where day between $first and $last
        group by feature order by allocated_usd desc""",
    "Self-hosted GPUs: utilization and idle cost": """
        select pool, any_value(busy_method) as busy_method, sum(billed_gpu_hours)::decimal(18, 1) as billed_gpu_hours,
               sum(busy_gpu_hours)::decimal(18, 1) as busy_gpu_hours,
               round(sum(busy_gpu_hours) / nullif(sum(billed_gpu_hours), 0), 3) as utilization,
               sum(gpu_cost_usd)::decimal(18, 2) as gpu_cost_usd, sum(idle_cost_usd)::decimal(18, 2) as idle_cost_usd
        from fct_gpu_utilization_daily where day between $first and $last group by pool order by pool""",
    "Self-hosted GPUs: least-utilized days": """
        select day, dayname(day) as weekday, pool, round(utilization, 3) as utilization,
               idle_cost_usd::decimal(18, 2) as idle_cost_usd
        from fct_gpu_utilization_daily where day between $first and $last
        order by utilization, day limit 5""",
    "Capacity plan (busiest day per pool)": """
        select pool, workload, day, peak_hour, round(peak_rps, 2) as peak_rps, round(per_replica_rps, 2) as per_replica_rps,
               per_replica_rps_source as rate_from, replicas_needed, planned_replicas, billed_replicas,
               planned_cost_usd::decimal(18, 2) as planned_usd, billed_cost_usd::decimal(18, 2) as billed_usd
        from fct_capacity_plan where day between $first and $last
        qualify row_number() over (partition by pool order by peak_rps desc nulls last) = 1
        order by workload, pool""",
    "API vs self-host": """
        select period_start, pool, model, selfhost_cost_usd::decimal(18, 2) as selfhost_usd,
               api_equivalent_model as api_model, api_cost_usd::decimal(18, 2) as api_usd,
               round(utilization, 3) as utilization, round(break_even_utilization, 3) as break_even,
               recommendation
        from fct_api_vs_selfhost order by period_start, pool""",
    "Spend anomalies (alerted episodes) and their top driver": """
        select day, dimension, key, impact_usd::decimal(18, 2) as impact_usd, round(impact_pct, 2) as impact_pct,
               severity, top_driver
        from fct_spend_anomalies
        where is_anomaly and day between $first and $last
          and not exists (select 1 from fct_spend_anomalies as before
                          where before.dimension = fct_spend_anomalies.dimension and before.key = fct_spend_anomalies.key
                            and before.is_anomaly and before.day between fct_spend_anomalies.day - 3 and fct_spend_anomalies.day - 1)
        order by day, dimension, key""",
    "Budgets (latest day)": """
        select feature, month, budget_usd, spend_to_date_usd::decimal(18, 2) as spend_to_date_usd,
               forecast_month_end_usd::decimal(18, 2) as forecast_usd, round(forecast_pct_of_budget, 2) as forecast_pct
        from fct_budget_forecast where day = $last order by feature = 'total', feature""",
    "Alerts outbox": """
        select kind, status, count(*) as alerts from alerts_outbox group by all order by kind, status""",
    "Quarantine reasons": """
        select reason, count(*) as lines from gateway_quarantine
        where day between $first and $last group by reason order by lines desc""",
}


def print_summary(config: CostwatchConfig, first: dt.date, last: dt.date) -> None:
    # The analysts' connection: read-only, files readable in the lake only.
    with connect_read_only(config.warehouse_path, config.lake_dir) as conn:
        total = conn.execute(
            "select sum(cost_usd)::decimal(18, 2), sum(requests) from fct_spend_by_feature_daily "
            "where day between $first and $last",
            {"first": first, "last": last},
        ).fetchone()
        print(f"\ncostwatch: {first} to {last}: ${total[0]:,} API spend over {total[1]:,} requests")
        for title, sql in SECTIONS.items():
            print(f"\n{title}")
            bounds = {"first": first, "last": last}
            conn.execute(sql, {name: value for name, value in bounds.items() if f"${name}" in sql})
            columns = [description[0] for description in conn.description]
            print(_table(columns, conn.fetchall()))


def _table(columns: list[str], rows: list[tuple]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(column)] + [len(row[index]) for row in cells]) for index, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(value.rjust(width) if _numeric(value) else value.ljust(width) for value, width in zip(row, widths))
        for row in cells
    ]
    return "\n".join("  " + line for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").isdigit()
