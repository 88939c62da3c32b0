"""Security guarantees, each proved end to end: secrets stay in the environment, user ids can be
pseudonymised in the marts, analysts' queries cannot write, the UI listens on loopback, and
config or data values never become SQL text."""

from __future__ import annotations

import ast
import hashlib
import hmac
import io
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
import tokenize
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from conftest import CATALOG, REPO, Project, request
from slack_server import SlackTestServer

from pipelines.cli import main as costwatch
from pipelines.lake.partitions import sql_string
from pipelines.models.engine import connect_read_only, pseudonym_parameters
from pipelines.resources.config import ConfigError, load_config

DAY = "2026-10-20"
CHANNEL = "#llm-cost"


# --------------------------------------------------------------------------- helpers


def relations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'main' order by 1"
        ).fetchall()
    ]


def all_text(conn: duckdb.DuckDBPyConnection) -> str:
    """Every value of every table and view (views over the lake included, so the lake's Parquet
    is read decoded, not as compressed bytes), plus the catalog: view SQL, macros, comments."""
    parts = []
    for name in relations(conn):
        parts.append(str(conn.execute(f'select * from "{name}"').fetchall()))  # noqa: S608 (a name from the catalog)
    for catalog_function in ("duckdb_tables()", "duckdb_views()", "duckdb_columns()"):
        parts.append(
            str(conn.execute(f"select * from {catalog_function} where not internal").fetchall())  # noqa: S608 (a constant)
        )
    parts.append(str(conn.execute("select * from duckdb_functions() where not internal").fetchall()))
    return "\n".join(parts)


def hmac_pseudonym(key: bytes, user_id: str) -> str:
    """The documented pseudonym, computed with Python's hmac (the independent side)."""
    return "u_" + hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


# --------------------------------------------------------------------------- 1. secrets


@pytest.fixture
def slack_server():
    server = SlackTestServer(token=f"xoxb-PLANTED-{uuid.uuid4().hex}", lifetime_s=120).start()
    yield server
    server.stop()


def test_secrets_from_the_environment_are_written_nowhere(project, slack_server, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)  # slack-sdk's debug lines quote request URLs: capture them all
    token = slack_server.token
    webhook_url = slack_server.webhook_url(f"PLANTEDHOOK{uuid.uuid4().hex}")  # unknown id: 404
    key = f"PLANTED-KEY-{uuid.uuid4().hex}"
    pads = pseudonym_parameters(
        load_config(project.write_config(privacy={"pseudonymise_user_id": True})), {"COSTWATCH_PSEUDONYM_KEY": key}
    )
    project.write_config(
        # The test's day is a fixed past day: a cut-off that reaches it, so its alerts are posted.
        alerts={"slack_channel": CHANNEL, "max_age_days": 36500},
        budgets={"chat": 0.001},
        privacy={"pseudonymise_user_id": True},
    )
    project.write_jsonl(
        "logs.jsonl",
        [
            request(
                "a", f"{DAY}T10:00:00Z", "gpt-4o", feature="chat", user_id="alice", input_tokens=1000, output_tokens=100
            ),
        ],
    )
    monkeypatch.setenv("COSTWATCH_PSEUDONYM_KEY", key)
    results = []

    # Run 1, webhook mode: Slack answers 404 no_service; the failure is recorded, redacted, and
    # the batch stops (the other two alerts wait).
    monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook_url)
    results.append(project.run_day(DAY))
    errors = [row[0] for row in project.query("select last_error from alerts_outbox where last_error is not null")]
    assert errors == ["webhook: HTTP 404: no_service"]

    # Run 2, Web API mode with the planted token: the first post gets an HTTP 400 error (the
    # alert stays pending with its redacted error), the other two are posted.
    monkeypatch.setenv("SLACK_BOT_TOKEN", token)
    monkeypatch.setenv("SLACK_API_URL", slack_server.api_url)
    slack_server.fail_next(1, status=400)
    results.append(project.run_day(DAY))
    outbox = project.query("select status, last_error from alerts_outbox order by status")
    assert [status for status, _ in outbox] == ["pending", "sent", "sent"]
    assert outbox[0][1] == "chat.postMessage: internal_error (HTTP 400)"
    assert len(slack_server.messages) == 2
    assert [r.status for r in slack_server.requests] == [404, 400, 200, 200]
    # The key was used: the mart's user is alice's pseudonym.
    assert project.query("select distinct user_id from fct_spend_daily") == [(hmac_pseudonym(key.encode(), "alice"),)]

    secrets = {
        "token": token.encode(),
        "webhook URL": webhook_url.encode(),
        "webhook id": webhook_url.rsplit("/", 1)[1].encode(),
        "pseudonym key": key.encode(),
        "inner pad": pads["user_key_inner_pad"],
        "outer pad": pads["user_key_outer_pad"],
        "inner pad hex": pads["user_key_inner_pad"].hex().encode(),
        "outer pad hex": pads["user_key_outer_pad"].hex().encode(),
    }

    # Every file of the project: config, inputs, lake, warehouse (and any WAL), the Dagster
    # instance (run and event-log SQLite, compute logs), manifests.
    instance_dir = Path(project.instance.root_directory).resolve()
    assert instance_dir.is_relative_to(project.root.resolve())
    files = [path for path in project.root.rglob("*") if path.is_file()]
    assert project.warehouse in files and any(path.suffix == ".db" for path in instance_dir.rglob("*"))
    for path in files:
        content = path.read_bytes()
        for name, secret in secrets.items():
            assert secret not in content, f"the {name} is in {path}"

    # Decoded contents: every value of every relation (lake views read the Parquet), every lake
    # file read directly, the catalog.
    with duckdb.connect(str(project.warehouse), read_only=True) as conn:
        texts = [all_text(conn)]
        for parquet in project.lake.rglob("*.parquet"):
            texts.append(str(conn.execute("select * from read_parquet($path)", {"path": str(parquet)}).fetchall()))
    # What the process printed and logged, and everything Dagster recorded about the runs.
    captured = capfd.readouterr()
    texts += [captured.out, captured.err, caplog.text, "\n".join(record.getMessage() for record in caplog.records)]
    for result in results:
        texts.append(repr(result.all_events))
        texts.append(repr(project.instance.all_logs(result.run_id)))
        texts.append(repr(project.instance.get_run_by_id(result.run_id)))
    assert "alice" in texts[0] and "[slack" not in captured.out  # the scan reads real content; no dry run
    for text in texts:
        for name, secret in secrets.items():
            if name.endswith("pad"):
                continue  # raw bytes: only files can hold them
            assert secret.decode() not in text, f"the {name} was written or logged"


SECRET = "xoxb-1234-5678-PLANTEDsecret"


@pytest.mark.parametrize(
    ("config", "key", "env"),
    [
        ({"alerts": {"slack_channel": CHANNEL, "slack_token": SECRET}}, "alerts.slack_token", "SLACK_BOT_TOKEN"),
        ({"slack": {"bot_token": SECRET}}, "slack.bot_token", "SLACK_BOT_TOKEN"),
        (
            {"slack_webhook_url": f"https://hooks.slack.com/services/T0/B0/{SECRET}"},
            "slack_webhook_url",
            "SLACK_WEBHOOK_URL",
        ),
        (
            {"privacy": {"pseudonymise_user_id": True, "pseudonym_key": SECRET}},
            "privacy.pseudonym_key",
            "COSTWATCH_PSEUDONYM_KEY",
        ),
        (
            {"storage": {"lake": "s3://acme-lake/prod", "s3": {"aws_secret_access_key": SECRET}}},
            "storage.s3.aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
        ),
        # A Slack token under a harmless-looking key is recognised by its value.
        ({"alerts": {"slack_channel": SECRET}}, "alerts.slack_channel", "SLACK_BOT_TOKEN"),
    ],
)
def test_a_secret_in_costwatch_yaml_is_refused_naming_the_env_var(project, config, key, env):
    project.write_config(**config)
    with pytest.raises(ConfigError) as raised:
        load_config(project.config_path)
    message = str(raised.value)
    assert message.startswith(f"{key}:") and env in message and "in the environment instead" in message, message
    assert "PLANTED" not in message


def test_price_fields_and_names_that_end_in_token_are_not_secrets(project):
    # `input_cost_per_token` ends in "token"; budgets, pools and overrides are keyed by names.
    project.write_config(
        prices={
            "catalog": str(CATALOG),
            "overrides": {"api_token": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
        },
        budgets={"refresh_token": 10},
    )
    config = load_config(project.config_path)
    assert config.budgets == {"refresh_token": 10.0} and config.price_overrides[0].model == "api_token"


# --------------------------------------------------------------------------- 2. pseudonyms

RAW_USERS = {"alice@example.com": 3, "bob.smith-7731": 2, "carol o'neil": 1}  # user -> requests


def privacy_inputs(project) -> None:
    records = []
    for user, count in RAW_USERS.items():
        for index in range(count):
            records.append(
                request(
                    f"req-{len(records)}",
                    f"{DAY}T1{index}:00:00Z",
                    "gpt-4o-mini" if index % 2 else "gpt-4o",
                    feature="chat" if index else "search",
                    user_id=user,
                    input_tokens=1000 * (index + 1),
                    output_tokens=50,
                )
            )
    records.append(request("no-user", f"{DAY}T09:00:00Z", "gpt-4o", feature="chat", input_tokens=10, output_tokens=1))
    project.write_jsonl("logs.jsonl", records)
    # A one-day bill, so fct_allocated_spend_daily splits it over feature x user x model.
    (project.root / "inputs" / "bills").mkdir()
    (project.root / "inputs" / "bills" / "invoice.csv").write_text(
        "invoice_id,provider,period_start,period_end,line_item,model,amount,currency\n"
        f"INV-1,openai,{DAY},{DAY},gpt-4o usage,gpt-4o,0.05,USD\n"
        f"INV-1,openai,{DAY},{DAY},gpt-4o-mini usage,gpt-4o-mini,0.01,USD\n"
    )


def privacy_config(project, pseudonymise: bool) -> None:
    project.write_config(
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/bills/*.csv", "format": "invoice_csv"}],
        },
        privacy={"pseudonymise_user_id": pseudonymise},
    )


def marts(project) -> dict[str, list[dict]]:
    with duckdb.connect(str(project.warehouse), read_only=True) as conn:
        names = [name for name in relations(conn) if name.startswith("fct_")]
        found = {}
        for name in names:
            conn.execute(f'select * from "{name}"')  # noqa: S608 (a name from the catalog)
            columns = [description[0] for description in conn.description]
            found[name] = [dict(zip(columns, row, strict=True)) for row in conn.fetchall()]
        return found


def per_user_totals(tables: dict[str, list[dict]]) -> dict[str, tuple]:
    return {
        row["user_id"]: (row["requests"], row["input_tokens"], row["output_tokens"], row["cost_usd"])
        for row in tables["fct_spend_by_user_daily"]
    }


def test_user_ids_are_pseudonymised_with_a_keyed_hash_in_every_mart(project, monkeypatch):
    privacy_inputs(project)
    key_a, key_b = b"key-A-0123456789abcdef", b"key-B-" + b"0123456789" * 10

    privacy_config(project, True)
    monkeypatch.setenv("COSTWATCH_PSEUDONYM_KEY", key_a.decode())
    project.run_day(DAY)
    with_a = marts(project)
    expected_a = {hmac_pseudonym(key_a, user) for user in RAW_USERS}

    with_user_id = [name for name, rows in with_a.items() if rows and "user_id" in rows[0]]
    assert {"fct_requests", "fct_spend_daily", "fct_spend_by_user_daily", "fct_allocated_spend_daily"} <= set(
        with_user_id
    )
    for name in with_user_id:
        users = {row["user_id"] for row in with_a[name]}
        assert users <= expected_a | {"anonymous", "unallocated"}, name
    assert {row["user_id"] for row in with_a["fct_requests"]} == expected_a | {"anonymous"}
    # No raw id anywhere in any mart: any column, JSON text (anomaly drivers) included.
    everything = repr(with_a)
    assert not [user for user in RAW_USERS if user in everything]
    requests_per_user = {user_id: totals[0] for user_id, totals in per_user_totals(with_a).items()}
    assert requests_per_user == {hmac_pseudonym(key_a, user): n for user, n in RAW_USERS.items()} | {"anonymous": 1}

    # Another key, other pseudonyms (re-running the day replaces it): B is longer than SHA-256's
    # 64-byte block, which HMAC hashes first.
    monkeypatch.setenv("COSTWATCH_PSEUDONYM_KEY", key_b.decode())
    project.run_day(DAY)
    expected_b = {hmac_pseudonym(key_b, user) for user in RAW_USERS}
    assert {row["user_id"] for row in marts(project)["fct_requests"]} == expected_b | {"anonymous"}
    assert not expected_a & expected_b

    # Off: the raw ids, and the same numbers per user as under the key.
    privacy_config(project, False)
    monkeypatch.delenv("COSTWATCH_PSEUDONYM_KEY")
    project.run_day(DAY)
    plain = per_user_totals(marts(project))
    assert set(plain) == set(RAW_USERS) | {"anonymous"}
    assert per_user_totals(with_a) == {
        (user if user == "anonymous" else hmac_pseudonym(key_a, user)): totals for user, totals in plain.items()
    }
    # Those numbers are the calls': alice's gpt-4o calls (1,000 and 3,000 input, 50 output each)
    # and her gpt-4o-mini call (2,000 input, 50 output) at the catalog's prices.
    assert plain["alice@example.com"] == (3, 6000, 150, Decimal("0.011330"))


def test_pseudonymising_without_a_usable_key_is_a_config_error(project):
    config = load_config(project.write_config(privacy={"pseudonymise_user_id": True}))
    for environ, state in (
        ({}, "is not set"),
        ({"COSTWATCH_PSEUDONYM_KEY": "fifteen-bytes!!"}, "is shorter than 16 bytes"),
    ):
        with pytest.raises(ConfigError) as raised:
            pseudonym_parameters(config, environ)
        message = str(raised.value)
        assert message.startswith("privacy.pseudonymise_user_id") and f"COSTWATCH_PSEUDONYM_KEY {state}" in message
        assert "secrets.token_hex" in message and "fifteen-bytes!!" not in message
    off = load_config(project.write_config(privacy={"pseudonymise_user_id": False}))
    assert pseudonym_parameters(off, {}) == {
        "pseudonymise_user_id": False,
        "user_key_inner_pad": None,
        "user_key_outer_pad": None,
    }


# --------------------------------------------------------------------------- hostile values

# Config and data values shaped to break out of a SQL string literal. The run below, over a
# data_dir, a source folder, a pool, a model, a feature and a budget named with them, serves
# guarantee 5 (values stay data) and 3 (the analysts' connection, over a lake path with quotes).
HOSTILE = "'; drop table fct_spend_daily; --"
POOL, MODEL, FEATURE = f'pool"{HOSTILE}', f"my'model\"{HOSTILE}", f"chat'){HOSTILE}"


@dataclass
class HostileProject(Project):
    data_dir: str = f"data/it's{HOSTILE}"
    source_dir: str = f"in{HOSTILE}"

    @property
    def warehouse(self) -> Path:
        return self.root / self.data_dir / "warehouse.duckdb"

    @property
    def lake(self) -> Path:
        return self.root / self.data_dir / "lake"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One day run under hostile names, shared by the tests that read its warehouse."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "dagster_home").mkdir()
    settings = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8"))
    with dg.instance_for_test(temp_dir=str(root / "dagster_home"), overrides=settings) as instance:
        project = HostileProject(root=root, instance=instance)
        (root / project.source_dir).mkdir()
        project.write_config(
            data_dir=project.data_dir,
            sources={"gateway_logs": [{"path": f"{project.source_dir}/*.jsonl", "format": "canonical"}]},
            prices={
                "catalog": str(CATALOG),
                "effective_from": "2025-09-01",
                "overrides": {MODEL: {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
            },
            pools={POOL: {"gpu_type": "H100", "api_equivalent": "gpt-4o-mini"}},
            budgets={FEATURE: 1.0},
            gpu={"pool_tag": f"costwatch{HOSTILE}"},
            alerts={"slack_channel": f"#cost{HOSTILE}"},
        )
        lines = [
            request(
                "r1",
                f"{DAY}T10:00:00Z",
                MODEL,
                provider="openai",
                feature=FEATURE,
                user_id=HOSTILE,
                input_tokens=1000,
                output_tokens=100,
            ),
            request(
                "r2", f"{DAY}T11:00:00Z", "llama-3.1-8b", feature=FEATURE, pool=POOL, input_tokens=10, output_tokens=5
            ),
        ]
        (root / project.source_dir / "logs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = project.run_day(DAY)
        yield project, result


# --------------------------------------------------------------------------- 3. read-only queries


def lake_state(project) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted(project.lake.rglob("*")) if path.is_file()}


def test_a_query_reads_no_path_outside_the_lake_and_stops_at_its_time_limit(hostile, capsys, tmp_path, monkeypatch):
    """Every way to name a file outside the lake is refused: absolute, relative to the working
    directory, `..` out of the lake, a symlink in the lake, a glob, `~`, and DuckDB's default temp
    directory (`.tmp` under the working directory, which DuckDB allows on its own)."""
    project, _ = hostile
    work = tmp_path / "work"
    (work / ".tmp").mkdir(parents=True)
    (work / ".tmp" / "spilled.txt").write_text("hunter2 in .tmp\n")
    (work / "notes.txt").write_text("hunter2 beside\n")
    link = project.lake / "escape.txt"
    link.symlink_to(work / "notes.txt")
    monkeypatch.chdir(work)
    lake = str(project.lake)
    paths = {
        "temp directory": ".tmp/*",
        "relative": "notes.txt",
        "dot-dot": f"{lake}/{os.path.relpath(work / 'notes.txt', project.lake)}",
        "symlink": str(link),
        "glob": str(work / "*.txt"),
        "home": "~/.bashrc",
        "absolute": str(work / "notes.txt"),
    }
    for name, path in paths.items():
        sql = f"select content from read_text({sql_string(path)})"  # noqa: S608 (the test's own paths, quoted)
        code = costwatch(["--config", str(project.config_path), "query", sql])
        out, err = capsys.readouterr()
        assert code == 1 and "hunter2" not in out and "disabled by configuration" in err, (name, out, err)
        assert "Traceback" not in err
    # The lake itself reads (a glob over it too).
    sql = f"select count(*) as n from glob({sql_string(lake + '/**')})"  # noqa: S608 (the test's lake, quoted)
    code = costwatch(["--config", str(project.config_path), "query", sql])
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    # A runaway scan stops at --timeout with one line.
    started = time.monotonic()
    code = costwatch(
        ["--config", str(project.config_path), "query", "select count(*) from range(1e12::bigint) t(i) where i % 7 = 3",
         "--timeout", "1"]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1 and "query stopped after 1 s (--timeout)" in err and time.monotonic() - started < 30


def test_costwatch_query_cannot_change_the_warehouse_or_write_files(hostile, capsys, tmp_path):
    project, _ = hostile
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.csv").write_text("secret\nhunter2\n")
    partition = next(project.lake.glob("fct_requests/day=*/data.parquet"))
    warehouse_before, lake_before = project.warehouse.read_bytes(), lake_state(project)
    tables_before = project.query("select table_name, table_type from information_schema.tables order by 1")

    def query(sql: str) -> tuple[int, str, str]:
        code = costwatch(["--config", str(project.config_path), "query", sql])
        out, err = capsys.readouterr()
        return code, out, err

    # Reading works: a mart, a view over the lake's Parquet (its path holds quotes), a macro.
    code, out, _ = query(
        "select 'rows=' || count(*) as n, model_family('gpt-4o-2024-08-06') as family from fct_requests"
    )
    assert code == 0 and "rows=2" in out and "gpt-4o" in out and "2024" not in out

    refused = {
        "create table x(i int)": "CREATE",
        "insert into fct_spend_daily select * from fct_spend_daily": "INSERT",
        "drop table fct_spend_daily": "DROP",
        "update fct_spend_daily set requests = 0": "UPDATE",
        f"attach '{outside / 'other.duckdb'}' as other": "ATTACH",
        f"copy fct_spend_daily to '{outside / 'out.csv'}'": "COPY",
        f"copy (select 1 as request_id) to {sql_string(partition)} (format parquet)": "COPY",  # over a lake file
        f"explain analyze copy fct_spend_daily to {sql_string(project.lake / 'x.parquet')}": "COPY",
        f"export database '{outside / 'dump'}'": "EXPORT",
        "select 1; drop table fct_spend_daily": "DROP",
        "set enable_external_access = true": "SET",
        "load httpfs": "LOAD",
    }
    for sql, kind in refused.items():
        code, out, err = query(sql)
        assert code == 1 and f"query is read-only: it runs SELECT statements (and EXPLAIN of one), not {kind}" in err, (
            sql,
            err,
        )
        assert out == ""
    # A SELECT reads the lake and nothing else: no file outside it, even one the user can read.
    # The query a user types, with a path of the test's own in it.
    code, out, err = query(f"select * from read_csv('{outside / 'private.csv'}')")  # noqa: S608 (the test's tmp path)
    assert code == 1 and "disabled by configuration" in err and "hunter2" not in out

    assert project.warehouse.read_bytes() == warehouse_before and lake_state(project) == lake_before
    assert project.query("select table_name, table_type from information_schema.tables order by 1") == tables_before
    assert sorted(path.name for path in outside.iterdir()) == ["private.csv"]

    # The limits cannot be lifted from inside the analysts' connection.
    with (
        connect_read_only(project.warehouse, project.lake) as conn,
        pytest.raises(duckdb.InvalidInputException, match="the configuration has been locked"),
    ):
        conn.execute("set enable_external_access = true")

    # The installed console script, in its own process, says the same.
    script = Path(sys.executable).with_name("costwatch")
    done = subprocess.run(
        [str(script), "--config", str(project.config_path), "query", "drop table fct_spend_daily"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "query is read-only" in done.stderr and "not DROP" in done.stderr
    assert project.warehouse.read_bytes() == warehouse_before


# --------------------------------------------------------------------------- 4. UI on loopback


def test_make_ui_binds_the_dagster_ui_to_loopback():
    done = subprocess.run(["make", "-n", "ui"], cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
    commands = [shlex.split(line) for line in done.stdout.splitlines() if "dagster" in line and " dev" in line]
    assert len(commands) == 1, done.stdout
    args = commands[0]
    hosts = [args[index + 1] for index, arg in enumerate(args) if arg in ("-h", "--host")]
    hosts += [arg.split("=", 1)[1] for arg in args if arg.startswith("--host=")]
    assert hosts == ["127.0.0.1"], args
    assert "DAGSTER_HOME" in (REPO / "Makefile").read_text()


# --------------------------------------------------------------------------- 5. no values in SQL text


def test_hostile_config_and_data_values_are_only_ever_data(hostile):
    project, result = hostile
    assert result.success
    assert (project.lake / "fct_requests" / f"day={DAY}" / "data.parquet").is_file()
    with duckdb.connect(str(project.warehouse), read_only=True) as conn:
        assert {"fct_spend_daily", "pools", "budgets", "fct_requests", "gateway_requests"} <= set(relations(conn))
        # r1 at the override's prices: 1,000 x $1e-6 + 100 x $2e-6; r2 is self-hosted (no token price).
        assert conn.execute("select feature, requests, cost_usd from fct_spend_by_feature_daily").fetchall() == [
            (FEATURE, 2, Decimal("0.001200"))
        ]
        assert conn.execute("select model, user_id, pool from fct_requests order by request_id").fetchall() == [
            (MODEL, HOSTILE, None),
            ("llama-3.1-8b", "anonymous", POOL),
        ]
        assert conn.execute("select pool from pools").fetchall() == [(POOL,)]
        assert conn.execute("select distinct feature from fct_budget_forecast where feature <> 'total'").fetchall() == [
            (FEATURE,)
        ]
        assert conn.execute("select distinct source_file from gateway_requests").fetchall() == [
            (str((project.root / project.source_dir / "logs.jsonl").resolve()),)
        ]


@pytest.mark.parametrize(("data_dir", "character"), [("data[1]", "["), ("data/*", "*"), ("part=1/data", "=")])
def test_a_data_dir_duckdb_would_read_as_a_pattern_is_refused(project, data_dir, character):
    project.write_config(data_dir=data_dir)
    with pytest.raises(ConfigError) as raised:
        load_config(project.config_path)
    message = str(raised.value)
    assert message.startswith("data_dir:") and f"contains {character!r}" in message and "choose a folder" in message


# Every `{...}` interpolated into SQL text in pipelines/ is reviewed where it is written: the line
# carries `# noqa: S608 (why this is safe here)`, the comment ruff's S608 asks for, so the review
# is one list kept beside the code (for a multi-line string, on any of its lines; ruff reads it at
# the end). Identifiers and SQL fragments come from code (our table names, SQL files, column
# lists), never from config or data; values go in as $parameters; `sql_string(...)` is the one
# escape, for statements DuckDB cannot prepare (persisted views over lake paths, COMMENT ON). A
# review holds for its file and line only: the same name interpolated somewhere new needs its own.
_S608_REASON = re.compile(r"#\s*noqa:[\w\s,]*\bS608\b[\w\s,]*(?:\((?P<reason>.*\S.*)\))?")
_SQL_START = re.compile(
    r"^\s*(select|with|create|insert|delete|update|copy|alter|drop|comment\s+on|describe|attach|from|set|pragma|export)\b",
    re.IGNORECASE,
)
_SQL_CALLS = {"execute", "executemany", "sql", "query", "write_partition", "write_file"}


def sql_interpolations(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(first line, last line, expression) of every `{...}` in an f-string passed to a SQL call or
    starting like SQL; the lines are the whole string's."""
    passed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in _SQL_CALLS:
                passed |= {id(arg) for arg in node.args[:2] if isinstance(arg, ast.JoinedStr)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr):
            continue
        head = node.values[0].value if node.values and isinstance(node.values[0], ast.Constant) else ""
        if id(node) in passed or _SQL_START.match(head):
            found += [
                (node.lineno, node.end_lineno, ast.unparse(part.value))
                for part in node.values
                if isinstance(part, ast.FormattedValue)
            ]
    return found


def sql_built_by_operators(tree: ast.AST) -> list[int]:
    """Lines where SQL-looking text is built with %, + or str.format."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
            sides = (node.left, node.right) if isinstance(node.op, ast.Add) else (node.left,)
            if any(
                isinstance(side, ast.Constant) and isinstance(side.value, str) and _SQL_START.match(side.value)
                for side in sides
            ):
                lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
            and _SQL_START.match(node.func.value.value)
        ):
            lines.append(node.lineno)
    return lines


def s608_reasons(source: str) -> dict[int, str | None]:
    """line -> the reason of the `# noqa: S608 (reason)` comment on it (None when it gives none)."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and (match := _S608_REASON.search(token.string)):
            found[token.start[0]] = match["reason"]
    return found


def reviewed_sql_interpolations(source: str) -> dict[tuple[int, str], str | None]:
    """(line, expression) -> the reason given for every `{...}` in SQL text; None where none is."""
    reasons = s608_reasons(source)
    return {
        (first, expression): next((reasons[line] for line in range(first, last + 1) if reasons.get(line)), None)
        for first, last, expression in sql_interpolations(ast.parse(source))
    }


def test_sql_text_interpolates_only_reviewed_identifiers_and_code():
    unreviewed, operators, bare_noqa, reviewed = [], [], [], {}
    for path in sorted((REPO / "pipelines").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(REPO).as_posix()
        for (line, expression), reason in reviewed_sql_interpolations(source).items():
            if reason:
                reviewed[(where, expression)] = reason
            else:
                unreviewed.append((where, line, f"{{{expression}}}"))
        operators += [f"{where}:{line}" for line in sql_built_by_operators(ast.parse(source))]
    for folder in ("pipelines", "tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            reasons = s608_reasons(path.read_text(encoding="utf-8"))
            bare_noqa += [f"{path.relative_to(REPO)}:{line}" for line, reason in reasons.items() if not reason]
    assert not unreviewed, "pass these as $parameters, or say why each is safe here with `# noqa: S608 (reason)`: " + (
        ", ".join(f"{where}:{line}: {expression}" for where, line, expression in sorted(unreviewed))
    )
    assert not operators, "SQL built with %, + or .format: " + ", ".join(operators)
    assert not bare_noqa, "`# noqa: S608` without its (reason): " + ", ".join(bare_noqa)
    # The scan finds what it should: the lake's writer and its views over lake paths.
    assert {
        ("pipelines/lake/partitions.py", "relation_sql"),
        ("pipelines/lake/partitions.py", "sql_string(dataset_glob(lake_dir, dataset))"),
    } <= set(reviewed)


PLANTED = '''
conn.execute(f"select * from t where feature = '{feature}'")
sql = f'delete from t where day = {day}'
conn.execute('select * from t where pool = %s' % pool)
conn.execute('select * from t where model = ' + model)
conn.execute(f'create temp table {stage_table} as select 1')  # noqa: S608 (a name built in code)
conn.execute(f'drop table {stage_table}')  # the same name, at a site nobody reviewed
conn.execute(f'drop table {stage_table}')  # noqa: S608
conn.execute(
    f"""
    select *
    from {relation}
    """  # noqa: S608 (a model name)
)
'''


def test_the_review_of_sql_interpolations_is_per_site_and_gives_a_reason():
    assert reviewed_sql_interpolations(PLANTED) == {
        (2, "feature"): None,
        (3, "day"): None,
        (6, "stage_table"): "a name built in code",
        (7, "stage_table"): None,
        (8, "stage_table"): None,
        (10, "relation"): "a model name",
    }
    assert sorted(sql_built_by_operators(ast.parse(PLANTED))) == [4, 5]
    assert s608_reasons(PLANTED) == {6: "a name built in code", 8: None, 13: "a model name"}
