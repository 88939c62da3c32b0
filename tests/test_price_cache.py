"""The resolved price catalog kept in `<data_dir>/cache`: a daily run reads an unchanged catalog's
rows back instead of resolving every entry again, and gets exactly the rows a fresh resolution
gives; any change to the catalog's bytes is resolved afresh."""

import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from pipelines.resources.config import load_config
from pipelines.sources import prices
from pipelines.sources.prices import PRICE_SCHEMA, price_rows

REPO_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "prices" / "model_prices.json"


def project(tmp_path, catalog, **prices_section):
    config = {
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}]},
        "prices": {"catalog": str(catalog), "effective_from": "2026-01-01", **prices_section},
    }
    (tmp_path / "inputs").mkdir(exist_ok=True)
    (tmp_path / "costwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_config(tmp_path / "costwatch.yaml")


def catalog_file(tmp_path, input_cost: float):
    path = tmp_path / "catalog.json"
    entry = {"litellm_provider": "openai", "input_cost_per_token": input_cost, "output_cost_per_token": 8e-6}
    path.write_text(json.dumps({"tiny-model": entry}), encoding="utf-8")
    return path


def input_price(table: pa.Table) -> Decimal:
    (row,) = [r for r in table.to_pylist() if r["service_tier"] == "standard" and r["component"] == "input"]
    return row["price_usd"]


def test_a_cached_catalog_gives_exactly_the_rows_a_fresh_resolution_gives(tmp_path, monkeypatch):
    config = project(
        tmp_path, REPO_CATALOG, overrides={"my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    )
    fresh = price_rows(config)
    first = price_rows(config, cache_dir=tmp_path / "cache")  # resolves and keeps the result
    (kept,) = (tmp_path / "cache").iterdir()

    def resolving(*args):
        raise AssertionError("an unchanged catalog was resolved again")

    monkeypatch.setattr(prices, "_catalog_rows", resolving)
    second = price_rows(config, cache_dir=tmp_path / "cache")  # read back
    assert fresh.num_rows > 1000 and fresh.schema.equals(PRICE_SCHEMA) and second.schema.equals(PRICE_SCHEMA)
    assert first.to_pylist() == fresh.to_pylist()
    assert second.to_pylist() == fresh.to_pylist()  # every row, in order, every value exact (Decimal)
    overridden = [r["layer"] for r in second.to_pylist()].count("override")  # the overrides come last, as before
    assert overridden and {r["model_key"] for r in second.to_pylist()[-overridden:]} == {"my-model"}
    assert list((tmp_path / "cache").iterdir()) == [kept]


def test_a_changed_catalog_is_resolved_again_even_with_the_same_size_and_time(tmp_path):
    catalog = catalog_file(tmp_path, 1e-6)
    config = project(tmp_path, catalog)
    assert input_price(price_rows(config, cache_dir=tmp_path / "cache")) == Decimal("0.000001")
    stat = catalog.stat()
    catalog_file(tmp_path, 3e-6)  # same length, same name
    os.utime(catalog, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same modification time
    assert catalog.stat().st_size == stat.st_size
    config = project(tmp_path, catalog)
    assert input_price(price_rows(config, cache_dir=tmp_path / "cache")) == Decimal("0.000003")
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the old resolution is gone


def test_another_effective_date_is_another_resolution(tmp_path):
    catalog = catalog_file(tmp_path, 1e-6)
    (tmp_path / "older.json").write_bytes(catalog.read_bytes())
    config = project(
        tmp_path, catalog, history=[{"catalog": str(tmp_path / "older.json"), "effective_from": "2025-01-01"}]
    )
    for _ in range(2):  # both versions cached side by side, neither evicting the other
        table = price_rows(config, cache_dir=tmp_path / "cache")
        assert sorted({str(day) for day in table.column("effective_from").to_pylist()}) == ["2025-01-01", "2026-01-01"]
        assert len(list((tmp_path / "cache").iterdir())) == 2


@pytest.mark.parametrize("damage", [b"", b"not arrow at all"])
def test_a_damaged_cache_file_is_resolved_again(tmp_path, damage):
    config = project(tmp_path, catalog_file(tmp_path, 1e-6))
    price_rows(config, cache_dir=tmp_path / "cache")
    (kept,) = (tmp_path / "cache").iterdir()
    kept.write_bytes(damage)
    assert input_price(price_rows(config, cache_dir=tmp_path / "cache")) == Decimal("0.000001")
    assert pa.ipc.open_file(pa.OSFile(str(kept))).read_all().schema.equals(PRICE_SCHEMA)
