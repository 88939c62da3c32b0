"""The daily job (every asset, one UTC day or a range of days in one run) and the schedule that runs it each morning."""

from __future__ import annotations

import dagster as dg

DAILY_JOB = "costwatch_daily"
REBUILD_JOB = "costwatch_rebuild"


def build_daily_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Ingest, price and roll up one UTC day or a range of days (one run either way); unpartitioned "
        "assets (prices, views) refresh with it.",
    )


def build_rebuild_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        REBUILD_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ingest"),
        partitions_def=partitions,
        description="Recompute every mart of a range of days from the lake, reading no input file: what "
        "`costwatch rebuild` runs after the warehouse was lost or damaged (the lake keeps what inputs "
        "no longer hold, e.g. gateway logs rotated away since).",
    )


def build_daily_schedule(job: dg.UnresolvedAssetJobDefinition):
    # 06:15 UTC: yesterday is complete, late log batches have landed, and the team reads it at 09:00.
    # Running by default: once a Dagster daemon is up (`dagster dev`, a deployment), the mornings run.
    return dg.build_schedule_from_partitioned_job(
        job, hour_of_day=6, minute_of_hour=15, default_status=dg.DefaultScheduleStatus.RUNNING
    )
