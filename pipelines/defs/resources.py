"""Resources every domain shares: the validated config and the DuckDB warehouse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.lib.config import CostwatchConfig, load_config
from pipelines.lib.sqlmodels import prepare_session


class CostwatchConfigResource(dg.ConfigurableResource):
    """The costwatch.yaml this code location was loaded with."""

    config_path: str

    @cached_property
    def config(self) -> CostwatchConfig:
        return load_config(self.config_path)


class WarehouseResource(DuckDBResource):
    """The analysts' DuckDB file, opened for writing with the project's session settings.
    Waits (with backoff) while another process holds DuckDB's single-writer lock."""

    @contextmanager
    def get_connection(self) -> Iterator:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as conn:
            prepare_session(conn)
            yield conn


def build_resources(config: CostwatchConfig) -> dict[str, object]:
    return {
        "costwatch": CostwatchConfigResource(config_path=str(config.path)),
        # The analysts' file: one writer at a time (see the `warehouse` pool in dagster.yaml).
        "warehouse": WarehouseResource(database=str(config.warehouse_path)),
    }


# Every asset that writes the warehouse joins this pool; dagster_home/dagster.yaml limits it to
# one step at a time across runs, because a DuckDB file has a single writer.
WAREHOUSE_POOL = "warehouse"


def daily_partitions(config: CostwatchConfig) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=config.start_date.isoformat(), timezone="UTC")


def partition_day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
