"""One plain test per input that crashed an ingest or lost records before it was fixed (most
found by the property tests in test_ingest_properties.py and test_billing_properties.py)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from decimal import Decimal

import duckdb
import pytest
from conftest import REPO, request

from pipelines.sources.billing.day import read_exports, tables
from pipelines.sources.gateway import day as gateway
from pipelines.sources.gpu.common import load_instance_types
from pipelines.sources.gpu.focus import read_focus
from pipelines.sources.gpu.gpu_hours_csv import read_gpu_hours_csv

DAY = "2026-11-20"
FOCUS_SAMPLE = REPO / "fixtures" / "focus" / "focus_sample.csv"


def ingest(tmp_path, files, day=DAY):
    with duckdb.connect() as conn:
        return gateway.ingest_day(conn, tmp_path / "lake", files, dt.date.fromisoformat(day))


def lake(tmp_path, dataset, day=DAY):
    with duckdb.connect() as conn:
        conn.execute(
            "select * from read_parquet($path)",
            {"path": str(tmp_path / "lake" / dataset / f"day={day}" / "data.parquet")},
        )
        names = [column[0] for column in conn.description]
        return [dict(zip(names, row, strict=True)) for row in conn.fetchall()]


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


# --- gateway logs ---------------------------------------------------------------------------------


def test_cache_counts_near_the_int64_limit_do_not_overflow(tmp_path):
    """cached + creation overflowed BIGINT (DuckDB raised) for counts each within the limit."""
    big = 2**62
    path = write(
        tmp_path,
        "a.jsonl",
        jsonl(
            request(
                "over",
                f"{DAY}T10:00:00Z",
                "m",
                input_tokens=2**63 - 1,
                cached_input_tokens=big,
                cache_creation_input_tokens=big,
            ),
            request(
                "fits",
                f"{DAY}T10:00:00Z",
                "m",
                input_tokens=2**63 - 1,
                cached_input_tokens=big,
                cache_creation_input_tokens=big - 1,
            ),
        ),
    )
    result = ingest(tmp_path, [(path, "canonical")])
    assert result.quarantine_by_reason == {"cache_reads_and_writes_exceed_input": 1}
    (kept,) = lake(tmp_path, "gateway_requests")
    assert (kept["request_id"], kept["cached_input_tokens"] + kept["cache_creation_input_tokens"]) == (
        "fits",
        2**63 - 1,
    )


def test_a_gzip_stream_cut_short_keeps_what_arrived_and_quarantines_the_damage(tmp_path):
    """gzip raised EOFError ('Compressed file ended...') and the whole day failed."""
    lines = [request(f"r{i}", f"{DAY}T10:{i:02d}:00Z", "m", output_tokens=i) for i in range(40)]
    whole = gzip.compress(jsonl(*lines))
    path = write(tmp_path, "cut.jsonl.gz", whole[: len(whole) * 2 // 3])
    result = ingest(tmp_path, [(path, "canonical")])
    reasons = result.quarantine_by_reason
    assert reasons.pop("truncated_gzip:the stream ends before its end marker") == 1
    assert reasons in ({}, {"bad_json": 1})  # the line the cut went through, when it did
    assert result.lines == result.kept + result.quarantined and 0 < result.kept < 40


def test_bytes_after_the_last_gzip_member_are_one_quarantined_record(tmp_path):
    """BadGzipFile('Not a gzipped file') failed the whole day for a few trailing bytes."""
    path = write(tmp_path, "tail.jsonl.gz", gzip.compress(jsonl(request("a", f"{DAY}T10:00:00Z", "m"))) + b"junk")
    result = ingest(tmp_path, [(path, "canonical")])
    assert (result.kept, result.quarantine_by_reason) == (1, {"damaged_gzip:bytes after the last gzip member": 1})


@pytest.mark.parametrize("ts", ["infinity", "20000-01-01T00:00:00Z", "0000-06-01T00:00:00Z", "epoch"])
def test_timestamps_duckdb_reads_but_no_day_can_hold_are_bad(tmp_path, ts):
    """'infinity' was kept on 9999-12-31 (never ingested); years past 9999 or BC came back from
    DuckDB as strings and crashed the manifest with AttributeError."""
    path = write(tmp_path, "a.jsonl", jsonl(request("good", f"{DAY}T10:00:00Z", "m"), request("odd", ts, "m")))
    result = ingest(tmp_path, [(path, "canonical")])
    assert (result.kept, result.quarantine_by_reason) == (1, {"bad_ts": 1})


def test_objects_where_text_belongs_are_bad_types(tmp_path):
    """`->>` turned {"id": 1} into the text of a request id, and the record was kept."""
    path = write(
        tmp_path,
        "a.jsonl",
        jsonl(
            request("good", f"{DAY}T10:00:00Z", "m"),
            request({"id": 1}, f"{DAY}T10:00:00Z", "m"),
            request("arr", f"{DAY}T10:00:00Z", ["gpt-4o"]),
        ),
    )
    result = ingest(tmp_path, [(path, "canonical")])
    assert result.quarantine_by_reason == {"bad_type:request_id": 1, "bad_type:model": 1}


LITELLM_HEADER = "request_id,startTime,model,prompt_tokens,completion_tokens,status\n"


def test_litellm_csv_cells_past_128_kib_and_digits_with_leading_zeros(tmp_path):
    """csv raised 'field larger than field limit'; '007' made DuckDB raise on a JSON cast."""
    path = write(
        tmp_path,
        "spend.csv",
        (
            LITELLM_HEADER + f"long,{DAY} 10:00:00+00:00,{'m' * 200_000},1,2,success\n"
            f"zeros,{DAY} 10:00:00+00:00,gpt-4o,007,0010,success\n"
        ).encode(),
    )
    result = ingest(tmp_path, [(path, "litellm_spend_logs")])
    assert (result.kept, result.quarantined) == (2, 0)
    tokens = {
        row["request_id"]: (row["input_tokens"], row["output_tokens"]) for row in lake(tmp_path, "gateway_requests")
    }
    assert tokens["zeros"] == (7, 10)


def test_litellm_csv_rows_with_bytes_that_are_not_utf8_are_quarantined(tmp_path):
    """They were decoded with replacement characters and kept, silently altered."""
    path = write(
        tmp_path,
        "spend.csv",
        LITELLM_HEADER.encode()
        + f"ok,{DAY} 10:00:00+00:00,gpt-4o,1,2,success\n".encode()
        + f"bad,{DAY} 10:00:00+00:00,gpt\xff4o,1,2,success\n".encode("latin-1"),
    )
    result = ingest(tmp_path, [(path, "litellm_spend_logs")])
    assert (result.kept, result.quarantine_by_reason) == (1, {"not_utf8": 1})
    (row,) = lake(tmp_path, "gateway_quarantine")
    assert "gpt\ufffd4o" in row["raw"]


LITELLM_ROW = {"request_id": "a", "startTime": f"{DAY} 10:00:00+00:00", "model": "gpt-4o", "prompt_tokens": 5}


def test_litellm_json_lines_whose_first_line_is_damaged_keep_their_good_lines(tmp_path):
    """A first line starting with '{' made the file one broken JSON document: every good line
    after it went to the quarantine as part of one record. A single-line file was quarantined
    as 'no_list_of_rows'."""
    damaged = write(
        tmp_path, "spend.jsonl", jsonl('{"request_id": "cut', LITELLM_ROW, {**LITELLM_ROW, "request_id": "b"})
    )
    single = write(tmp_path, "single.json", json.dumps({**LITELLM_ROW, "request_id": "c"}).encode())
    result = ingest(tmp_path, [(damaged, "litellm_spend_logs"), (single, "litellm_spend_logs")])
    assert (result.lines, result.kept, result.quarantine_by_reason) == (4, 3, {"bad_json": 1})


def test_a_litellm_json_array_cut_or_nested_too_deep_keeps_every_whole_row(tmp_path):
    """json.loads raised RecursionError on deep nesting (a crash), and a cut array was one
    quarantined record holding every row."""
    rows = [json.dumps({**LITELLM_ROW, "request_id": f"r{i}"}) for i in range(3)]
    deep = "[" * 5000 + "]" * 5000
    text = "[" + ", ".join([rows[0], deep, rows[1], rows[2]])
    path = write(tmp_path, "spend.json", text[:-10].encode())  # cut inside the last row
    result = ingest(tmp_path, [(path, "litellm_spend_logs")])
    assert (result.lines, result.kept) == (4, 2)
    quarantine = {row["record_ref"]: row for row in lake(tmp_path, "gateway_quarantine")}
    assert (quarantine["[1]"]["reason"], quarantine["[1]"]["raw"]) == ("not_an_object", deep)
    assert quarantine["[3]"]["raw"] == rows[2][:-10] and quarantine["[3]"]["reason"].startswith("bad_json_document")


# --- provider exports -----------------------------------------------------------------------------


def openai_page(bucket_start, results):
    return {"object": "page", "data": [{"start_time": bucket_start, "end_time": None, "results": results}]}


def test_provider_records_of_wrong_types_are_quarantined_not_crashes(tmp_path):
    """Each of these raised (TypeError, AttributeError, decimal.InvalidOperation, OverflowError,
    ValueError from NaN, ArrowInvalid / ArrowTypeError in `tables`) and failed the asset."""
    start = int(dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc).timestamp())
    cost = {"amount": {"value": 1.5, "currency": "usd"}, "line_item": "gpt-4o, input", "project_id": "p"}
    costs = write(
        tmp_path,
        "costs.json",
        json.dumps(
            [
                openai_page(
                    start,
                    [
                        cost,
                        {**cost, "line_item": {"a": 1}},
                        {**cost, "project_id": ["p"]},
                        {**cost, "amount": {"value": 1.5, "currency": 840}},
                        {**cost, "amount": {"value": 1e20, "currency": "usd"}},
                    ],
                ),
                openai_page(float("nan"), [cost]),
                openai_page(10**30, [cost]),
            ]
        ).encode(),
    )
    usage = write(
        tmp_path,
        "usage.json",
        json.dumps(
            openai_page(
                start,
                [
                    {"input_tokens": 2**63, "output_tokens": 1, "model": "gpt-4o"},
                    {"input_tokens": 1, "output_tokens": 1, "model": {"name": "gpt-4o"}},
                    {"input_tokens": 1, "output_tokens": 1, "model": "gpt-4o", "batch": "false"},
                    {"input_tokens": 3, "output_tokens": 1, "model": "gpt-4o"},
                ],
            )
        ).encode(),
    )
    token_cost = {"amount": "150", "currency": "USD", "cost_type": "tokens", "token_type": "output_tokens"}
    anthropic = write(
        tmp_path,
        "anthropic.json",
        json.dumps(
            {
                "data": [
                    {
                        "starting_at": "2026-11-20T00:00:00Z",
                        "ending_at": "2026-11-21T00:00:00Z",
                        "results": [{**token_cost, "token_type": ["uncached_input_tokens"]}, token_cost],
                    }
                ]
            }
        ).encode(),
    )
    parsed = read_exports([(costs, "openai_costs"), (usage, "openai_usage"), (anthropic, "anthropic_cost_report")], {})
    by_name = tables(parsed)
    assert {row["source_file"]: (row["records"], row["kept"], row["quarantined"]) for row in parsed.per_file()} == {
        str(costs): (7, 1, 6),
        str(usage): (4, 1, 3),
        str(anthropic): (2, 1, 1),
    }
    assert sorted(by_name["quarantine"].column("reason").to_pylist()) == sorted(
        [
            "bad_type:line_item",
            "bad_type:project_id",
            "bad_type:currency",
            "amount_out_of_range",
            "bad_start_time",
            "bad_start_time",
            "out_of_range:input_tokens",
            "bad_type:model",
            "bad_type:batch",
            "bad_type:token_type",
        ]
    )
    assert sum(line["billed_usd"] for line in parsed.cost_lines) == Decimal("1.5") + Decimal("1.5")


def test_an_invoice_row_cut_inside_its_currency_is_quarantined_not_a_config_error(tmp_path):
    """A cut 'USD' read as currency 'US' stopped the run asking for a rate for 'US'."""
    path = write(
        tmp_path,
        "invoice.csv",
        (
            "invoice_id,provider,period_start,period_end,line_item,model,amount,currency\n"
            "i1,openai,2026-11-01,2026-11-30,usage,,10.00,USD\n"
            "i2,openai,2026-11-01,2026-11-30,usage,,10.00,US"
        ).encode(),
    )
    parsed = read_exports([(path, "invoice_csv")], {})
    assert [row["reason"] for row in parsed.quarantine] == ["bad_currency"]
    assert parsed.per_file()[0] | {"source_file": None} == {
        "source_file": None,
        "source_format": "invoice_csv",
        "records": 2,
        "kept": 1,
        "quarantined": 1,
    }


# --- GPU billing ----------------------------------------------------------------------------------

GPU_HOURS_HEADER = "day,pool,replica_id,gpu_type,gpu_count,hours,usd\n"


def read_gpu_hours(tmp_path, text: bytes):
    path = write(tmp_path, "gpu_hours.csv", text)
    with duckdb.connect() as conn:
        stats = read_gpu_hours_csv(conn, path, {})
        rows = conn.execute("select replica_id, gpu_hours from billing_lines order by 1").fetchall()
        reasons = dict(conn.execute("select record_ref, reason from billing_quarantine").fetchall())
    return stats, rows, reasons


def test_a_ragged_last_row_does_not_make_duckdb_read_no_rows(tmp_path):
    """DuckDB's sniffer took the 8-field last row for the header and returned no rows: every
    GPU-hour of the file silently lost."""
    stats, rows, reasons = read_gpu_hours(
        tmp_path, (GPU_HOURS_HEADER + f"{DAY},p,r0,H100,1,2,3\n{DAY},p,r1,H100,1,2,3,extra\n").encode()
    )
    assert rows == [("r0", 2.0)] and reasons == {"row 3": "ragged_row:8_fields_for_7_columns"}
    assert (stats.records, stats.gpu_rows, stats.quarantined) == (2, 1, 1)


def test_a_gpu_row_that_is_not_utf8_costs_only_itself(tmp_path):
    """DuckDB raised 'Invalid unicode' for the whole file and the asset failed."""
    stats, rows, reasons = read_gpu_hours(
        tmp_path, GPU_HOURS_HEADER.encode() + f"{DAY},p,r0,H100,1,2,3\n".encode() + b"2026-11-20,p,r1,H1\xff00,1,2,3\n"
    )
    assert rows == [("r0", 2.0)] and reasons == {"row 3": "not_utf8"} and stats.accounted_for


def test_nan_hours_and_infinite_days_are_quarantined(tmp_path):
    """'NaN' hours were kept (NaN GPU-hours for the pool); day 'infinity' was kept on no day."""
    stats, rows, reasons = read_gpu_hours(
        tmp_path, (GPU_HOURS_HEADER + f"{DAY},p,r0,H100,1,NaN,3\ninfinity,p,r1,H100,1,2,3\n").encode()
    )
    assert rows == [] and reasons == {"row 2": "bad_number:hours", "row 3": "bad_date:day"}


def test_a_usd_rate_in_the_config_does_not_count_usd_rows_twice(tmp_path):
    """currency_rates: {USD: 1} joined every USD row to two rate rows: GPU cost doubled."""
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        load_instance_types(conn)
        plain = read_focus(conn, FOCUS_SAMPLE, {}, "costwatch-pool", "costwatch-replica")
        conn.execute("create table plain as select * from billing_lines")
        with_usd = read_focus(conn, FOCUS_SAMPLE, {"USD": 1.0}, "costwatch-pool", "costwatch-replica")
        conn.execute("create table with_usd as select * from billing_lines")
        totals = conn.execute(
            "select (select sum(billed_usd) from plain), (select sum(billed_usd) from with_usd)"
        ).fetchone()
    assert with_usd.gpu_rows == plain.gpu_rows == 8 and totals[0] == totals[1] == Decimal("10.203682944")


def test_the_focus_sample_reads_the_same_when_a_damaged_row_sends_it_to_the_careful_reader(tmp_path):
    """The two CSV readers (DuckDB for clean files, Python for damaged ones) agree row for row."""
    damaged = write(tmp_path, "focus.csv", FOCUS_SAMPLE.read_bytes() + b'"\xff",broken\n')
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        load_instance_types(conn)
        clean = read_focus(conn, FOCUS_SAMPLE, {}, "costwatch-pool", "costwatch-replica")
        conn.execute("create table clean as select * from billing_lines")
        careful = read_focus(conn, damaged, {}, "costwatch-pool", "costwatch-replica")
        conn.execute("create table careful as select * from billing_lines")
        columns = (
            "record_ref, day, pool, replica_id, instance_type, gpu_count, instance_hours, billed_usd, effective_usd"
        )
        assert (
            conn.execute(f"select {columns} from clean order by 1").fetchall()  # noqa: S608 (column list written above)
            == conn.execute(f"select {columns} from careful order by 1").fetchall()  # noqa: S608 (column list written above)
        )
    with FOCUS_SAMPLE.open(newline="") as handle:  # the sample's 3 non-usage rows, counted with csv
        not_usage = sum(row["ChargeCategory"] != "Usage" for row in csv.DictReader(handle))
    assert not_usage == 3
    assert (clean.records, clean.gpu_rows, clean.skipped_by_reason, clean.quarantined) == (
        1000,
        8,
        {"not_a_gpu_instance": 992 - not_usage, "not_a_usage_charge": not_usage},
        0,
    )
    assert (careful.records, careful.gpu_rows, careful.non_gpu_rows, careful.quarantined) == (1001, 8, 992, 1)


# --- the assets: conservation in metadata and a blocking check --------------------------------------


def test_billing_assets_report_per_source_counts_and_a_blocking_accounting_check(project):
    invoice = project.root / "inputs" / "invoice.csv"
    invoice.write_bytes(
        b"\xef\xbb\xbfinvoice_id,provider,period_start,period_end,line_item,model,amount,currency\r\n"
        b"i1,openai,2024-09-27,2024-09-27,usage,,10.00,USD\r\n"
        b"i2,openai,2024-09-27,2024-09-27,usage,,abc,USD\r\n"
        b"i3,openai,2024-09-27\r\n"
    )
    project.write_config(
        start_date="2024-09-01",
        sources={
            "gateway_logs": [{"path": "inputs/*.jsonl", "format": "canonical"}],
            "provider_costs": [{"path": "inputs/invoice.csv", "format": "invoice_csv"}],
            "gpu_billing": [{"path": str(FOCUS_SAMPLE), "format": "focus"}],
        },
    )
    project.write_jsonl("logs.jsonl", [])
    result = project.run_day("2024-09-27")
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    # The conservation check sits on the table the kept records went to.
    provider = checks[("provider_cost_lines", "every_record_accounted_for")]
    gpu_check = checks[("gpu_billing_lines", "every_record_accounted_for")]
    assert provider.passed and provider.severity.value == "ERROR"
    assert (
        provider.metadata["records"].value,
        provider.metadata["kept"].value,
        provider.metadata["quarantined"].value,
    ) == (3, 1, 2)
    assert gpu_check.passed and (
        gpu_check.metadata["records"].value,
        gpu_check.metadata["kept"].value,
        gpu_check.metadata["skipped"].value,
    ) == (1000, 8, 992)
    from pipelines.definitions import build_definitions

    defs = build_definitions(project.config_path)
    for asset in ("provider_cost_lines", "gpu_billing_lines"):
        (spec,) = [
            spec for spec in defs.resolve_assets_def(asset).check_specs if spec.name == "every_record_accounted_for"
        ]
        assert spec.blocking and spec.asset_key.to_user_string() == asset, asset
    materializations = {
        event.asset_key.to_user_string(): event
        for node in ("provider_billing", "gpu_billing")
        for event in result.asset_materializations_for_node(node)
    }
    gpu_meta = materializations["gpu_billing_lines"].metadata
    assert gpu_meta["per_source_counts"].value[str(FOCUS_SAMPLE)]["skipped_by_reason"] == {
        "not_a_gpu_instance": 989,
        "not_a_usage_charge": 3,
    }
    assert "| yes |" in gpu_meta["per_source"].value
    provider_meta = materializations["provider_cost_lines"].metadata
    assert provider_meta["records_by_source"].value["provider_costs"] == {"records": 3, "kept": 1, "quarantined": 2}


def test_the_accounting_check_fails_for_a_file_whose_records_do_not_add_up():
    from pipelines.defs.ingest.accounting import accounting_check

    rows = [
        {"source_file": "a.csv", "source_format": "focus", "records": 5, "kept": 2, "skipped": 1, "quarantined": 2},
        {"source_file": "b.csv", "source_format": "focus", "records": 5, "kept": 2, "skipped": 1, "quarantined": 1},
    ]
    result = accounting_check(rows)
    assert result.passed is False and result.metadata["files_not_adding_up"].value == ["b.csv"]
    assert accounting_check(rows[:1]).passed is True
