"""The daily job (every asset, one UTC day or a range of days in one run) and the schedule that runs it each morning."""

from __future__ import annotations

import dagster as dg

DAILY_JOB = "costwatch_daily"
REBUILD_JOB = "costwatch_rebuild"
# Distributed mode: `costwatch run` over several days runs them stage by stage (`stages`), one
# job per stage and one run per day of it, every day of a stage at once.
STAGE_JOB = "costwatch_stage_{}"


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


def build_stage_jobs(
    partitions: dg.PartitionsDefinition, stage_of: dict[str, int], alerts: str, published: str
) -> list[dg.UnresolvedAssetJobDefinition]:
    """One job per stage of the models (pipelines.models.engine.stages): stage 0 also ingests and
    writes the settings; the alerts run in the stage after the marts they read, the publish in
    the last. Each run of one works in its own scratch database, so unpartitioned assets of its
    stage (views, whole-history tables) are computed in every run of it, each time the same."""
    last = max(stage_of.values(), default=0)
    jobs = []
    for number in range(last + 1):
        names = [name for name, stage in stage_of.items() if stage == number]
        names += [alerts] if stage_of[alerts] == number else []
        names += [published] if number == last else []
        selection = dg.AssetSelection.assets(*names)
        if number == 0:
            selection |= dg.AssetSelection.groups("ingest", "settings")
        jobs.append(
            dg.define_asset_job(
                STAGE_JOB.format(number),
                selection=selection,
                partitions_def=partitions,
                description=f"Distributed mode: stage {number} of {last} of `costwatch run` over several days "
                "(one run per day, the days of a stage at once).",
            )
        )
    return jobs
