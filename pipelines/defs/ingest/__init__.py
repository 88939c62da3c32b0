"""The ingest assets: input files to lake partitions, each source's datasets published as warehouse views."""

from __future__ import annotations

import duckdb

from pipelines.lake.partitions import lake_datasets
from pipelines.lake.store import LakePath
from pipelines.sources.billing import day as billing_source
from pipelines.sources.gateway import day as gateway_source
from pipelines.sources.gpu import day as gpu_source

# Each ingest asset's warehouse views over its lake datasets: (per-day datasets, one-file
# datasets), names to descriptions (`pipelines.models.engine.publish_lake_views`).
GATEWAY_VIEWS = (gateway_source.DATASETS, {})
BILLING_VIEWS = (billing_source.DAILY_DATASETS, {billing_source.QUARANTINE: billing_source.QUARANTINE_DESCRIPTION})
GPU_BILLING_VIEWS = (
    {gpu_source.BILLING_DATASET: gpu_source.BILLING_DESCRIPTION},
    {gpu_source.QUARANTINE: gpu_source.QUARANTINE_DESCRIPTION},
)
GPU_TELEMETRY_VIEWS = ({gpu_source.TELEMETRY_DATASET: gpu_source.TELEMETRY_DESCRIPTION}, {})


def publish_ingest_views(
    conn: duckdb.DuckDBPyConnection, lake_dir: LakePath, held: dict[str, str] | None = None
) -> list[str]:
    """Every ingest asset's views, over what the lake holds (`held`: `lake_datasets(lake_dir)`,
    listed here when not given): how `costwatch rebuild` gives a new warehouse the lake's data
    without reading an input file. A dataset the lake has no file of gets no view (a source the
    project does not use). Returns the views made."""
    from pipelines.models.engine import publish_lake_views

    held = lake_datasets(lake_dir) if held is None else held
    made = []
    for daily, whole in (GATEWAY_VIEWS, BILLING_VIEWS, GPU_BILLING_VIEWS, GPU_TELEMETRY_VIEWS):
        daily = {name: text for name, text in daily.items() if held.get(name) == "daily"}
        whole = {name: text for name, text in whole.items() if held.get(name) == "whole"}
        publish_lake_views(conn, lake_dir, daily, whole)
        made += [*daily, *whole]
    return made
