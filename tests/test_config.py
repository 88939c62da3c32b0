"""costwatch.yaml validation: every error names the key and says how to fix it."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from conftest import CATALOG, REPO

from pipelines.resources.config import ConfigError, load_config

VALID = {
    "data_dir": "data",
    "start_date": "2026-10-01",
    "sources": {"gateway_logs": [{"path": "inputs/*.jsonl.gz", "format": "canonical"}]},
    "prices": {
        "catalog": str(CATALOG),
        "overrides": {"my-finetune": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.2e-5}},
    },
    "pools": {
        "llama-8b-h100": {
            "gpu_type": "H100",
            "latency_slo_s": 5,
            "headroom": 0.3,
            "warm_floor": 2,
            "api_equivalent": "gpt-4o-mini",
        }
    },
    "budgets": {"chat": 30000},
    "alerts": {"min_impact_usd": 50, "min_impact_pct": 0.2, "slack_channel": "#llm-cost"},
}


def write(tmp_path, config) -> str:
    (tmp_path / "inputs").mkdir(exist_ok=True)
    path = tmp_path / "costwatch.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return str(path)


def with_changes(**changes):
    config = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        target = config
        *parents, leaf = dotted.split("__")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return config


DELETE = object()


def test_the_design_example_loads(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.start_date == dt.date(2026, 10, 1)
    assert config.data_dir == tmp_path / "data"  # relative to the config file, not the cwd
    assert config.pools["llama-8b-h100"].warm_floor == 2
    assert config.price_overrides[0].prices["output_cost_per_token"] == 1.2e-5
    assert config.price_versions[0].effective_from == dt.date(2026, 10, 1)  # default: start_date


def test_the_shipped_demo_config_is_valid(tmp_path):
    # A copy beside the folders and files it names (as `costwatch demo` generates them), so the
    # test leaves the checkout untouched.
    shipped = yaml.safe_load((REPO / "costwatch.yaml").read_text())
    for entries in shipped["sources"].values():
        for entry in entries:
            (tmp_path / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
    for pool in shipped["pools"].values():
        if "load_test" in pool:
            (tmp_path / pool["load_test"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / pool["load_test"]).touch()
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    (tmp_path / "costwatch.yaml").write_text((REPO / "costwatch.yaml").read_text())
    config = load_config(tmp_path / "costwatch.yaml")
    assert config.sources["gateway_logs"][0].format == "canonical"
    assert set(config.pools) == {"llama-8b-h100", "qwen-32b-a100"}
    assert config.privacy.pseudonymise_user_id is False  # documented there, off by default


@pytest.mark.parametrize(
    ("config", "key", "fix"),
    [
        (with_changes(colour="blue"), "colour: unknown key", "valid keys here are"),
        (with_changes(start_date=DELETE), "start_date: missing", "start_date: 2026-10-01"),
        (with_changes(start_date="2026-13-01"), "start_date: '2026-13-01' is not a date", "YYYY-MM-DD"),
        (
            with_changes(sources__gateway_logs=[{"path": "inputs/[a-z.jsonl", "format": "canonical"}]),
            "sources.gateway_logs[0].path",
            "close the character class",
        ),
        (
            with_changes(sources__gateway_logs=[{"path": "inptus/*.jsonl", "format": "canonical"}]),
            "sources.gateway_logs[0].path: folder",
            "fix the path",
        ),
        (
            with_changes(sources__gateway_logs=[{"path": "inputs/*.jsonl", "format": "csv"}]),
            "sources.gateway_logs[0].format: 'csv' is not a gateway_logs format",
            "canonical",
        ),
        (with_changes(sources__gpu_metrics=[{"path": "x", "format": "y"}]), "sources.gpu_metrics", "use one of"),
        (with_changes(sources=DELETE), "sources.gateway_logs: missing", "list the gateway log files"),
        (with_changes(prices__catalog="nope.json"), "prices.catalog: file", "fix the path"),
        (
            with_changes(prices__overrides={"m": {"input_cost_per_token": 1e-6}}),
            "prices.overrides.m.output_cost_per_token: missing",
            "USD price per token",
        ),
        (
            with_changes(prices__overrides={"m": {"input_cost_per_token": "cheap", "output_cost_per_token": 1}}),
            "prices.overrides.m.input_cost_per_token: must be a number",
            "'cheap'",
        ),
        (with_changes(pools__llama_8b={"latency_slo_s": 5}), "pools.llama_8b.gpu_type: missing", "name the GPU"),
        (with_changes(pools__x={"gpu_type": "H100", "warm_floor": 1.5}), "pools.x.warm_floor", "whole number"),
        (
            with_changes(pools__x={"gpu_type": "H100", "load_test": "curve.csv"}),
            "pools.x.load_test: file",
            "fix the path",
        ),
        (with_changes(gpu={"pool_label": "pool"}), "gpu.pool_label: unknown key", "pool_tag"),
        (with_changes(currency_rates={"euro": 1.1}), "currency_rates.euro: not an ISO 4217 code", "EUR"),
        (with_changes(reconciliation={"tolerance_pct": "2%"}), "reconciliation.tolerance_pct: must be a number", "2%"),
        (with_changes(budgets__chat=-5), "budgets.chat: must be >= 0", "-5"),
        (with_changes(alerts__min_impact_usd="fifty"), "alerts.min_impact_usd: must be a number", "fifty"),
        (
            with_changes(privacy={"pseudonymise_user_id": "yes"}),
            "privacy.pseudonymise_user_id: must be true or false",
            "'yes'",
        ),
        (
            with_changes(privacy={"pseudonymize_user_id": True}),
            "privacy.pseudonymize_user_id: unknown key",
            "pseudonymise_user_id",
        ),
        ("data_dir: [unclosed", "not valid YAML", "fix the syntax"),
    ],
)
def test_bad_config_names_the_key_and_the_fix(tmp_path, config, key, fix):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, config))
    message = str(raised.value)
    assert key in message and fix in message, message


def test_missing_config_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="--config PATH or set COSTWATCH_CONFIG"):
        load_config(tmp_path / "absent.yaml")
