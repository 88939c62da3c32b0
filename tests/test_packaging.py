"""costwatch as a user installs it: `pip install .` (not editable), then `costwatch demo` in an
empty folder. The SQL models, the price catalog and the demo config are package data; nothing may
be read from the checkout beside it."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.cli import _write_demo_config

REPO = Path(__file__).resolve().parents[1]
GOOD_REQUEST_ID = re.compile(r"^req_\d{8}_\d{8}$")  # the demo's malformed lines carry an `_x` id or none


def test_setuptools_lists_every_package_under_pipelines():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "pipelines").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert listed == on_disk | {"pipelines._sql", "pipelines._fixtures"}


def test_shipped_demo_config_is_the_repository_demo_config():
    # `make demo` reads the top-level file; an installed costwatch writes the packaged copy.
    assert (REPO / "pipelines" / "demo" / "costwatch.yaml").read_text() == (REPO / "costwatch.yaml").read_text()


def test_demo_writes_its_config_where_none_is_and_never_over_one(tmp_path):
    config_path = tmp_path / "project" / "costwatch.yaml"
    assert _write_demo_config(config_path)
    written = config_path.read_text()
    catalog = yaml.safe_load(written)["prices"]["catalog"]
    assert Path(catalog).is_absolute() and Path(catalog).is_file()
    assert Path(catalog).read_bytes() == (REPO / "fixtures" / "prices" / "litellm_2026_11.json").read_bytes()
    # Everything else is the shipped demo config, comments included.
    repository_config = (REPO / "costwatch.yaml").read_text()
    assert written.replace(json.dumps(catalog), "fixtures/prices/litellm_2026_11.json") == repository_config

    config_path.write_text("data_dir: mine\n")
    assert not _write_demo_config(config_path)
    assert config_path.read_text() == "data_dir: mine\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """costwatch installed non-editable into a fresh folder (dependencies come from this venv)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("pipelines", "sql", "fixtures"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--target", str(site), str(source)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return site


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("COSTWATCH_CONFIG", "DAGSTER_HOME")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_package_data_is_inside_pipelines(installed):
    assert not (installed / "sql").exists() and not (installed / "fixtures").exists()
    assert (installed / "pipelines" / "_sql" / "marts" / "fct_spend_daily.sql").is_file()
    assert (installed / "pipelines" / "_sql" / "columns.yml").is_file()
    assert (installed / "pipelines" / "_fixtures" / "prices" / "model_prices.json").is_file()
    assert (installed / "pipelines" / "_fixtures" / "prices" / "litellm_2026_11.json").is_file()
    assert (installed / "pipelines" / "_fixtures" / "gpu" / "instance_types.csv").is_file()
    assert not (installed / "pipelines" / "_fixtures" / "focus").exists()  # test-only fixtures stay home
    assert list((installed / "pipelines" / "sources").rglob("*.sql")), "SQL beside source modules ships too"


@pytest.mark.slow
def test_demo_in_an_empty_folder_from_a_non_editable_install(installed, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    where = _run_installed(
        installed,
        folder,
        "-c",
        "import pipelines, pipelines.resources.files as f; print(pipelines.__file__, f.sql_dir())",
    )
    assert where.returncode == 0, where.stderr
    package_file, sql_dir = map(Path, where.stdout.split())
    assert package_file.is_relative_to(installed) and not package_file.is_relative_to(REPO)
    assert sql_dir == installed / "pipelines" / "_sql"

    demo = _run_installed(
        installed,
        folder,
        str(installed / "bin" / "costwatch"),
        "demo",
        "--days",
        "2",
        "--requests-per-day",
        "200",
        "--last-day",
        "2026-10-02",
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert f"wrote the demo config to {folder / 'costwatch.yaml'}" in demo.stdout
    config = (folder / "costwatch.yaml").read_text()
    assert f'catalog: "{installed / "pipelines" / "_fixtures" / "prices" / "litellm_2026_11.json"}"' in config

    # Independently of the pipeline: the logged calls of the two days, deduplicated, priced by the
    # catalog (status ok, no gateway cache hit; self-hosted and unpriced models carry no token price).
    catalog = json.loads((REPO / "fixtures" / "prices" / "litellm_2026_11.json").read_text())
    calls = {}
    for path in sorted((folder / "data" / "inputs" / "gateway").glob("requests_*.jsonl.gz")):
        for line in gzip.open(path, "rt", encoding="utf-8"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and GOOD_REQUEST_ID.match(str(record.get("request_id"))):
                calls[record["request_id"]] = record
    expected = defaultdict(Decimal)
    for call in calls.values():
        # An Azure deployment is priced at Azure's entry, azure/<model>.
        price = catalog.get(f"azure/{call['model']}" if call["provider"] == "azure" else call["model"])
        if call["status"] != "ok" or call["gateway_cache_hit"] or price is None:
            continue
        # The demo's calls name every catalog field they need: the service tier's suffix, and
        # gpt-6-luna's long-context fields above 272k prompt tokens.
        tier = {"batch": "_batches", "priority": "_priority"}.get(call.get("service_tier"), "")
        above = "_above_272k_tokens" if call["model"] == "gpt-6-luna" and call["input_tokens"] > 272_000 else ""
        one_hour = call.get("cache_creation_1h_input_tokens", 0)
        audio_in, audio_out = call.get("audio_input_tokens", 0), call.get("audio_output_tokens", 0)
        tokens_by_field = {
            "input_cost_per_token": call["input_tokens"]
            - call["cached_input_tokens"]
            - call["cache_creation_input_tokens"]
            - audio_in,
            "cache_read_input_token_cost": call["cached_input_tokens"],
            "cache_creation_input_token_cost": call["cache_creation_input_tokens"] - one_hour,
            "cache_creation_input_token_cost_above_1hr": one_hour,
            "input_cost_per_audio_token": audio_in,
            "output_cost_per_token": call["output_tokens"] - audio_out,
            "output_cost_per_audio_token": audio_out,
        }
        expected[call["ts"][:10]] += sum(
            (tokens * Decimal(str(price[field + above + tier])) for field, tokens in tokens_by_field.items() if tokens),
            Decimal(0),
        )
    assert sorted(expected) == ["2026-10-01", "2026-10-02"] and all(expected.values())

    with duckdb.connect(str(folder / "data" / "warehouse.duckdb"), read_only=True) as conn:
        spend = dict(
            conn.execute("select day::varchar, sum(cost_usd) from fct_spend_daily group by day order by day").fetchall()
        )
    assert sorted(spend) == sorted(expected)
    for day, usd in expected.items():
        # fct_spend_daily rounds each group to 6 decimals (a few hundred groups a day here).
        assert abs(spend[day] - usd) < Decimal("0.0005"), (day, spend[day], usd)
