"""costwatch.yaml validation: every error names the key and says how to fix it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
    assert config.pools["llama-8b-h100"].name == "llama-8b-h100"  # the key it is listed under


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
        (
            with_changes(prices__history=[{"catalog": str(CATALOG), "effective_from": "2026-10-01"}]),
            "prices.history: two catalogs share an effective_from date",
            "give each its own date",
        ),
        # Values that are numbers of the right type but make no sense: refused at load, by key.
        (with_changes(alerts__min_impact_usd=float("nan")), "alerts.min_impact_usd: must be a finite number", ".nan"),
        (
            with_changes(reconciliation={"tolerance_usd": float("inf")}),
            "reconciliation.tolerance_usd: must be a fin",
            "inf",
        ),
        (with_changes(budgets__chat=float("nan")), "budgets.chat: must be a finite number", "write a number"),
        (with_changes(currency_rates={"EUR": 0}), "currency_rates.EUR: must be more than 0", "positive number"),
        (
            with_changes(pools__x={"gpu_type": "H100", "latency_slo_s": 0}),
            "pools.x.latency_slo_s: must be more than 0",
            "5.0",
        ),
        (
            with_changes(prices__overrides={"m": {"input_cost_per_token": 3.0, "output_cost_per_token": 1.5e-5}}),
            "prices.overrides.m.input_cost_per_token: 3.0 USD per token is above any model's price",
            "was a per-million price given?",
        ),
        (
            with_changes(
                prices__overrides={
                    "m": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "input_cost_per_request": 1e4}
                }
            ),
            "prices.overrides.m.input_cost_per_request: 10000.0 USD per call or search is above",
            "USD price",
        ),  # fmt: skip
        (
            with_changes(pools__x={"gpu_type": "H100", "api_equivalent": 4}),
            "pools.x.api_equivalent: must be text",
            "quotes",
        ),
        (
            with_changes(pools__x={"gpu_type": "H100", "api_equivalent": "gpt-4o-mimi"}),
            "pools.x.api_equivalent: 'gpt-4o-mimi' is no model of the price catalog",
            "did you mean 'gpt-4o-mini'?",
        ),
        (with_changes(alerts__slack_channel=12345), "alerts.slack_channel: must be text, got 12345", "in quotes"),
        # The delivery deadline bounds how long a run holds the project lock on Slack's account.
        (
            with_changes(alerts__delivery_deadline_s=0),
            "alerts.delivery_deadline_s: must be more than 0.0, got 0",
            "use a positive number, e.g. 60.0 (the default)",
        ),
        (
            with_changes(alerts__delivery_deadline_s=float("inf")),
            "alerts.delivery_deadline_s: must be a finite number",
            "e.g. 60.0 (the default)",
        ),
        (with_changes(alerts__delivery_deadline_s="60s"), "alerts.delivery_deadline_s: must be a number", "units"),
        # A savings window reads at most the day before: a day at most.
        (
            with_changes(savings={"duplicate_window_s": 0}),
            "savings.duplicate_window_s: must be more than 0",
            "e.g. 60.0 (the default)",
        ),
        (
            with_changes(savings={"truncation_retry_window_s": 200_000}),
            "savings.truncation_retry_window_s: must be <= 86400.0, got 200000",
            "use 86400.0 or less",
        ),
        (
            with_changes(savings={"routes": {"gpt-4o": "gpt-4o"}}),
            "savings.routes.gpt-4o: routes a model to itself",
            "name a cheaper sibling",
        ),
        (
            with_changes(savings={"routes": {"gpt-4o": "gpt-4o-mimi"}}),
            "savings.routes.gpt-4o: 'gpt-4o-mimi' is no model of the price catalog",
            "did you mean 'gpt-4o-mini'?",
        ),
        (
            with_changes(savings={"routes": {"gpt-4o-2024-08-06": "gpt-4o-mini"}}),
            "savings.routes.gpt-4o-2024-08-06: 'gpt-4o-2024-08-06' is not a model family",
            "without a date suffix",
        ),
        (
            with_changes(
                savings={
                    "evals": {"summarise": {"gpt-4o-mini": {"pass_rate": 0.9, "baseline_pass_rate": 0.95, "n": 50}}}
                }
            ),
            "savings.evals.summarise.gpt-4o-mini.n: must be >= 100, got 50",
            "",
        ),
        (
            with_changes(
                savings={
                    "evals": {"summarise": {"gpt-4o-mini": {"pass_rate": 0.9, "baseline_pass_rate": 0.95, "n": 400}}}
                }
            ),
            "savings.evals.summarise.gpt-4o-mini.date: missing",
            "add date: the day the eval ran, YYYY-MM-DD",
        ),
        (
            with_changes(
                savings={"selfhost_candidates": {"gpt-4o-mini": {"model": "llama-3.1-8b", "gpu_type": "H100"}}}
            ),
            "savings.selfhost_candidates.gpt-4o-mini.usd_per_gpu_hour: missing",
            "add usd_per_gpu_hour: what one GPU costs an hour, USD",
        ),
        (
            with_changes(
                savings={
                    "selfhost_candidates": {
                        "gpt-4o-mini": {
                            "model": "llama-3.1-8b",
                            "gpu_type": "H100",
                            "usd_per_gpu_hour": 3.29,
                            "load_test": "nowhere/llama.csv",
                        }
                    }
                }
            ),
            "savings.selfhost_candidates.gpt-4o-mini.load_test:",
            "",
        ),
        (
            with_changes(savings={"easy": {"max_input_tokens": 0}}),
            "savings.easy.max_input_tokens: must be more than 0",
            "",
        ),
        (
            with_changes(savings={"gateway_cache_ttl_s": 172_800}),
            "savings.gateway_cache_ttl_s: must be <= 86400.0, got 172800",
            "use 86400.0 or less",
        ),
        # The findings' window is at most the 28 days `run --changed` re-runs after a changed day.
        (
            with_changes(savings={"window_days": 60}),
            "savings.window_days: must be between 1 and 28, got 60",
            "use a value in that range",
        ),
        (
            with_changes(savings={"min_monthly_usd": -5}),
            "savings.min_monthly_usd: must be >= 0.0, got -5",
            "use 0.0 or more",
        ),
        (
            with_changes(owners=["platform team"]),
            "owners[0]: 'platform team' is neither an e-mail",
            "team:llm-platform",
        ),
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


def test_a_default_is_stated_once_on_its_field(tmp_path):
    minimal = {
        "start_date": "2026-10-01",
        "sources": {"gateway_logs": [{"path": "inputs/*.jsonl.gz", "format": "canonical"}]},
        "prices": {
            "catalog": str(CATALOG),
            "overrides": {"m": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
        },
        "pools": {"p": {"gpu_type": "H100"}},
    }
    config = load_config(write(tmp_path, minimal))
    # The defaults the README documents, written out here rather than read back from the models.
    assert (config.alerts.min_impact_usd, config.alerts.min_impact_pct, config.alerts.slack_channel) == (
        50.0,
        0.2,
        None,
    )
    assert (config.alerts.dagster_url, config.alerts.max_age_days, config.alerts.delivery_deadline_s) == (None, 2, 60)
    assert (config.checks.max_quarantine_share, config.checks.max_duplicate_share) == (0.01, 0.02)
    assert config.checks.max_unpriced_share == 0.01
    assert (config.savings.duplicate_window_s, config.savings.truncation_retry_window_s) == (60, 120)
    assert config.savings.gateway_cache_ttl_s == 86_400
    assert (config.savings.window_days, config.savings.min_monthly_usd) == (28, 100)
    reconciliation = config.reconciliation
    assert (reconciliation.tolerance_pct, reconciliation.tolerance_usd, reconciliation.token_tolerance_pct) == (
        0.02,
        0.5,
        0.005,
    )
    pool = config.pools["p"]
    assert (pool.latency_slo_s, pool.headroom, pool.warm_floor, pool.api_equivalent, pool.load_test) == (
        5.0,
        0.3,
        1,
        None,
        None,
    )
    assert pool.scale_ahead is True
    assert (pool.batch_window_s, pool.target_utilization) == (86_400, 0.8)
    assert (config.gpu.pool_tag, config.gpu.replica_tag, config.gpu.instance_types) == (
        "costwatch-pool",
        "costwatch-replica",
        None,
    )
    assert config.privacy.pseudonymise_user_id is False
    assert config.data_dir == tmp_path / "data" and config.warehouse_path == tmp_path / "data" / "warehouse.duckdb"
    assert config.price_overrides[0].effective_from == dt.date(1970, 1, 1)
    assert config.budgets == {} and config.currency_rates == {}
    # ...and every one of them came from its field's default, the only place it is written.
    sections = (config.alerts, config.checks, config.reconciliation, config.gpu, config.privacy, pool)
    defaults = 0
    for section in sections:
        for name, field in type(section).model_fields.items():
            if not field.is_required():
                assert getattr(section, name) == field.default, f"{type(section).__name__}.{name}"
                defaults += 1
    assert defaults == 6 + 3 + 3 + 3 + 1 + 8


def test_history_catalogs_are_ordered_by_their_dates(tmp_path):
    config = load_config(
        write(
            tmp_path,
            with_changes(
                prices__effective_from="2026-11-01",
                prices__history=[
                    {"catalog": str(CATALOG), "effective_from": "2026-12-01"},
                    {"catalog": str(CATALOG), "effective_from": "2025-09-01"},
                ],
            ),
        )
    )
    assert [version.effective_from for version in config.price_versions] == [
        dt.date(2025, 9, 1),
        dt.date(2026, 11, 1),
        dt.date(2026, 12, 1),
    ]
    assert {version.catalog for version in config.price_versions} == {CATALOG.resolve()}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            with_changes(pools__x={"gpu_type": "H100", "latency_slo_s": "fast"}),
            "pools.x.latency_slo_s: must be a number, got 'fast'; write it without quotes or units, e.g. 5.0",
        ),
        (with_changes(pools__x={"gpu_type": "H100", "warm_floor": -1}), "pools.x.warm_floor: must be >= 0, got -1"),
        (
            with_changes(pools__x={"gpu_type": "H100", "headroom": 11}),
            "pools.x.headroom: must be between 0 and 10, got 11",
        ),
        (
            with_changes(pools__x={"gpu_type": "H100", "batch_window_s": 5400}),
            "pools.x.batch_window_s: 5400 s is not a whole number of hours that divides a day",
        ),
        (
            with_changes(pools__x={"gpu_type": "H100", "target_utilization": 0}),
            "pools.x.target_utilization: must be",
        ),
        (
            with_changes(checks={"max_quarantine_share": 1.5}),
            "checks.max_quarantine_share: must be between 0 and 1, got 1.5; use a value in that range (a ratio",
        ),
        (
            with_changes(sources__gateway_logs=["inputs/*.jsonl"]),
            "sources.gateway_logs[0]: must be a mapping (key: value), got str",
        ),
        (
            with_changes(sources__gateway_logs=[{"path": "inputs/*.jsonl"}]),
            "sources.gateway_logs[0].format: missing; name the files' format",
        ),
        (
            with_changes(prices__history=[{"catalog": str(CATALOG), "effective_from": "soon"}]),
            "prices.history[0].effective_from: 'soon' is not a date; write it as YYYY-MM-DD",
        ),
        (with_changes(alerts=["#llm-cost"]), "alerts: must be a mapping (key: value), got list"),
        (with_changes(budgets__chat=True), "budgets.chat: must be a number, got True"),
        (with_changes(currency_rates={"EUR": "1.08"}), "currency_rates.EUR: must be a number, got '1.08'"),
        (with_changes(run_history_days=0), "run_history_days: must be >= 1, got 0"),
        (with_changes(execution={"mode": "cluster"}), "execution.mode: 'cluster' is not an execution mode; use"),
        (
            with_changes(execution={"mode": "distributed"}),
            "execution.mode: distributed runs run days in parallel, so their shared state must be in Postgres; "
            "set state.backend: postgres",
        ),
        (with_changes(run_history_days=30.5), "run_history_days: must be a whole number, got 30.5"),
    ],
)
def test_a_wrong_value_at_a_nested_key_names_the_dotted_key(tmp_path, config, message):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, config))
    assert str(raised.value).startswith(message), str(raised.value)


TOP_KEYS = [
    "alerts",
    "budgets",
    "checks",
    "currency_rates",
    "data_dir",
    "execution",
    "gpu",
    "inputs",
    "owners",
    "pools",
    "prices",
    "privacy",
    "reconciliation",
    "run_history_days",
    "savings",
    "sources",
    "start_date",
    "state",
    "storage",
]
POOL_KEYS = [
    "api_equivalent",
    "batch_window_s",
    "gpu_type",
    "headroom",
    "latency_slo_s",
    "load_test",
    "scale_ahead",
    "target_utilization",
    "warm_floor",
]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        # `path` is an attribute of the loaded config, not a key the file may set.
        (with_changes(path="elsewhere.yaml"), f"path: unknown key; valid keys here are {TOP_KEYS}"),
        (with_changes(strat_date="2026-10-01"), f"strat_date: unknown key; valid keys here are {TOP_KEYS}"),
        (
            with_changes(alerts__slack_chanel="#x"),
            "alerts.slack_chanel: unknown key; valid keys here are "
            "['dagster_url', 'delivery_deadline_s', 'max_age_days', 'min_impact_pct', 'min_impact_usd', "
            "'slack_channel'] "
            "(did you mean 'slack_channel'?)",
        ),
        (
            with_changes(pools__x={"gpu_type": "H100", "gpu_count": 8}),
            f"pools.x.gpu_count: unknown key; valid keys here are {POOL_KEYS}",
        ),
        (
            with_changes(
                prices__overrides__m={"input_cost_per_token": 1, "output_cost_per_token": 2, "currency": "EUR"}
            ),
            # An override takes any LiteLLM price field (a grammar, not a list): the message says which.
            "prices.overrides.m.currency: unknown key, not a price field; use a LiteLLM catalog price field",
        ),
        (
            with_changes(sources__gateway_logs=[{"path": "inputs/*.jsonl", "format": "canonical", "gzip": True}]),
            "sources.gateway_logs[0].gzip: unknown key; valid keys here are ['format', 'path', 'timezone']",
        ),
    ],
)
def test_an_unknown_key_at_any_depth_is_refused_naming_the_valid_keys(tmp_path, config, message):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, config))
    assert str(raised.value).startswith(message), str(raised.value)


def test_every_problem_is_reported_at_once_one_line_each(tmp_path):
    # A misspelt key is an unknown key and a missing one: the unknown key comes first, as it explains the other.
    config = with_changes(start_date=DELETE, start_dat="2026-10-01", budgets__chat="lots")
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, config))
    lines = str(raised.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["start_dat", "start_date", "budgets.chat"], lines
    assert "(did you mean 'start_date'?)" in lines[0] and lines[1].startswith("start_date: missing; add the first")


def test_an_alert_link_needs_an_http_url(tmp_path):
    config = yaml.safe_load((REPO / "pipelines" / "demo" / "costwatch.yaml").read_text())
    config["alerts"]["dagster_url"] = "dagster.internal:3000"
    with pytest.raises(ConfigError, match=r"alerts\.dagster_url: 'dagster\.internal:3000' is not an http\(s\) URL"):
        load_config(write(tmp_path, config))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json at all", "is not JSON (Expecting value: line 1 column 1"),
        ("[1, 2]", "holds a JSON list, not an object of models"),
        ('{"m": {"input_cost_per_token": 10000000, "output_cost_per_token": 1e-6}}',
         "model 'm', input_cost_per_token: 10000000 USD per token is above any model's price"),
        ('{"m": {"input_cost_per_token": NaN, "output_cost_per_token": 1e-6}}',
         "model 'm', input_cost_per_token: must be a finite number >= 0, got nan"),
        ('{"m": {"input_cost_per_token": 1e-6, "output_cost_per_token_batches": -1e-6}}',
         "model 'm', output_cost_per_token_batches: must be a finite number >= 0"),
    ],
)  # fmt: skip
def test_a_catalog_that_is_not_json_or_holds_impossible_prices_is_refused_at_load(tmp_path, text, problem):
    catalog = tmp_path / "prices.json"
    catalog.write_text(text, encoding="utf-8")
    config = with_changes(prices__catalog=str(catalog), pools=DELETE)
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, config))
    assert f"prices.catalog: {catalog}" in str(raised.value) and problem in str(raised.value), str(raised.value)


# --------------------------------------------------------------------------- storage (the lake's location)


def test_the_lake_is_local_by_default_and_an_s3_prefix_when_storage_lake_names_one(tmp_path):
    from upath import UPath

    local = load_config(write(tmp_path, VALID))
    assert local.lake == local.lake_dir == tmp_path / "data" / "lake"
    assert isinstance(local.lake, Path)
    remote = load_config(
        write(
            tmp_path,
            with_changes(
                storage={
                    "lake": "s3://acme-costwatch/prod/lake/",
                    "s3": {"endpoint_url": "http://127.0.0.1:9000/", "region": "eu-central-1"},
                }
            ),
        )
    )
    assert isinstance(remote.lake, UPath) and str(remote.lake) == "s3://acme-costwatch/prod/lake"
    # What stays local (manifests, spool, ledger) stays under data_dir.
    assert remote.lake_dir == tmp_path / "data" / "lake"
    # The filesystem lists afresh every time and is nobody else's instance; endpoint and region as given.
    options = remote.lake.storage_options
    assert options["use_listings_cache"] is False and options["skip_instance_cache"] is True
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["client_kwargs"] == {"region_name": "eu-central-1"}
    assert remote.lake.fs.endpoint_url == "http://127.0.0.1:9000"


SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"lake": "data/lake"}, "storage.lake: 'data/lake' is not an object store URL; write s3://BUCKET/PREFIX"),
        ({"lake": "gs://bucket/lake"}, "storage.lake: gs:// is not a supported lake store; write s3://BUCKET/PREFIX"),
        ({"lake": "s3://Acme_Lake/x"}, "storage.lake: 'Acme_Lake' is not an S3 bucket name;"),
        ({"lake": "s3://acme/lake/day=1"}, "storage.lake: the prefix 'lake/day=1' contains '='"),
        ({"lake": "s3://acme/lake/*"}, "storage.lake: the prefix 'lake/*' contains '*'"),
        ({"lake": "s3://acme//lake"}, "storage.lake: the prefix '/lake' contains an empty folder"),
        ({"lake": 42}, "storage.lake: must be text, got 42"),
        ({"s3": {"endpoint_url": "127.0.0.1:9000"}}, "storage.s3.endpoint_url: '127.0.0.1:9000' is not an http(s) URL"),
        (
            {"s3": {"region": "Frankfurt"}},
            "storage.s3.region: 'Frankfurt' is not an AWS region name; write it as e.g. eu-central-1",
        ),
        ({"bucket": "acme"}, "storage.bucket: unknown key; valid keys here are ['lake', 's3']"),
    ],
)
def test_a_bad_storage_key_names_the_key_and_the_fix(tmp_path, storage, message):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, with_changes(storage=storage)))
    assert str(raised.value).startswith(message), str(raised.value)


@pytest.mark.parametrize(
    ("storage", "key"),
    [
        ({"lake": f"s3://AKIAEXAMPLE:{SECRET}@acme-lake/prod"}, "storage.lake"),
        ({"lake": f"s3://{SECRET}@acme-lake/prod"}, "storage.lake"),
        ({"s3": {"endpoint_url": f"https://AKIAEXAMPLE:{SECRET}@minio.internal:9000"}}, "storage.s3.endpoint_url"),
        ({"s3": {"aws_access_key_id": "AKIAEXAMPLE"}}, "storage.s3.aws_access_key_id"),
        ({"s3": {"aws_secret_access_key": SECRET}}, "storage.s3.aws_secret_access_key"),
        ({"s3": {"session_token": SECRET}}, "storage.s3.session_token"),
        ({"s3": {"profile": "prod"}}, "storage.s3.profile"),
    ],
)
def test_credentials_in_the_file_are_refused_naming_the_key_never_the_value(tmp_path, storage, key):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, with_changes(storage=storage)))
    message = str(raised.value)
    assert message.startswith(f"{key}: "), message
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_SECRET_ACCESS_KEY" in message, message
    assert SECRET not in message and "AKIAEXAMPLE" not in message, message
