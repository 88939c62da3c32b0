"""The costwatch code location: one root that builds every domain's definitions from the config.

The config is read when the code location loads (`COSTWATCH_CONFIG`, default `./costwatch.yaml`),
so a bad config shows up in the Dagster UI as a load error that names the key and the fix.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.alerts.compose import ALERT_SOURCES
from pipelines.defs.alerts import build_alerts_asset
from pipelines.defs.ingest import gateway_logs, gpu, provider_billing
from pipelines.defs.models import build_model_assets
from pipelines.defs.publish import PUBLISHED, build_publish_asset
from pipelines.defs.schedules import build_daily_job, build_daily_schedule, build_rebuild_job, build_stage_jobs
from pipelines.defs.settings.pools import budget_settings, pool_settings
from pipelines.defs.settings.prices import price_catalog
from pipelines.defs.settings.savings import savings_findings_state
from pipelines.models.engine import load_models, stages
from pipelines.resources.config import load_config
from pipelines.resources.warehouse import build_resources, daily_partitions


def build_definitions(config_path: str | Path | None = None) -> dg.Definitions:
    config = load_config(config_path)
    partitions = daily_partitions(config)
    # Every asset that is not a SQL model, keyed by the tables it writes.
    sources = [
        price_catalog,
        pool_settings,
        budget_settings,
        savings_findings_state,
        gateway_logs.build_gateway_ingest(partitions),
        provider_billing.build_provider_billing(partitions),
        gpu.build_gpu_billing(partitions),
        gpu.build_gpu_telemetry(partitions),
    ]
    models = build_model_assets(partitions, sources)
    alerts = build_alerts_asset(partitions)
    published = build_publish_asset([*sources, *models, alerts])
    job = build_daily_job(partitions)
    assets = [*sources, *models, alerts, published]
    jobs = [job, build_rebuild_job(partitions)]
    if config.distributed:  # several days: one run per day and stage, the days of a stage at once
        stage_of = stages(load_models())
        stage_of[alerts.key.to_user_string()] = max(stage_of[name] for name in ALERT_SOURCES)
        jobs += build_stage_jobs(partitions, stage_of, alerts.key.to_user_string(), PUBLISHED)
    if config.owners:  # the config's owners on every asset (the tables a multi-asset writes too)
        assets = dg.map_asset_specs(lambda spec: spec.replace_attributes(owners=list(config.owners)), assets)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=[build_daily_schedule(job)],
        resources=build_resources(config),
        # Steps run in the run's own process: no per-step subprocess start-up, and never two
        # writers on the DuckDB file from one run.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
