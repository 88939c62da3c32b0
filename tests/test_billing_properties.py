"""Nothing is lost reading provider exports and GPU bills: property-based tests.

Hypothesis writes export files that mix valid records with damage (malformed or cut JSON,
wrong types, bytes that are not UTF-8, a BOM, CRLF rows, ragged and cut CSV rows, unknown
currencies) while keeping its own count of what each file holds. Properties, per file:

- reading never raises, except a currency with no configured rate, which stops the run with
  a message naming the file and the fix (an answer, not a crash);
- records read = kept + skipped (with a reason) + quarantined, each equal to the test's count;
- the money and GPU-hours of the kept records are exactly those of the valid records written;
- every quarantined record carries a reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.sources.billing.day import read_exports, tables
from pipelines.sources.gpu.common import load_instance_types
from pipelines.sources.gpu.focus import read_focus
from pipelines.sources.gpu.gpu_hours_csv import read_gpu_hours_csv
from pipelines.sources.prices import _number as price_decimal
from pipelines.sources.quarantine import CurrencyError
from pipelines.sources.values import NotADecimal, to_decimal

UTC = dt.timezone.utc
DAY = dt.date(2026, 11, 20)
DAY_START = int(dt.datetime.combine(DAY, dt.time(), UTC).timestamp())
RATES = {"EUR": 1.1}  # USD per EUR; GBP has no rate: it must stop the run with the fix
BOM = b"\xef\xbb\xbf"
INVALID_UTF8 = [b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80"]
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Expected:
    records: int = 0
    kept: int = 0
    skipped: int = 0
    usd: Decimal = Decimal(0)  # kept money, in USD (GPU lines: the cost, FOCUS EffectiveCost)
    cash_usd: Decimal = Decimal(0)  # GPU lines: the cash, FOCUS BilledCost
    gpu_hours: Decimal = Decimal(0)
    needs_rate: bool = False  # holds an otherwise valid record in a currency without a rate
    skipped_reasons: dict = field(default_factory=dict)


@dataclass
class ExportFile:
    name: str
    fmt: str
    data: bytes
    expected: Expected

    def __repr__(self) -> str:  # falsifying examples can hold megabytes
        text = repr(self.data)
        return f"ExportFile({self.name!r}, {self.fmt!r}, {text[:3000]}, {self.expected})"


# --- provider JSON pages ------------------------------------------------------------------------

cents = st.integers(0, 10**9)  # money as integer cents, so expectations are exact
ids = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x01"), max_size=12)
WRONG = [{"a": 1}, [1], True, 12.5, "twelve", None]


@st.composite
def csv_bytes(draw, lines: list[str]) -> bytes:
    """CSV lines as a file: LF or CRLF, a final newline or not, \x01 markers turned into bytes
    that are not UTF-8, maybe a BOM."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    data = (newline.join(lines) + (newline if draw(st.booleans()) else "")).encode()
    data = data.replace(b"\x01", draw(st.sampled_from(INVALID_UTF8)))
    return BOM + data if draw(st.booleans()) else data


@st.composite
def openai_cost_results(draw):
    """(result, expectation): expectation is ('kept', usd) | ('bad',) | ('needs_rate',)."""
    amount = draw(cents)
    value = Decimal(amount) / 100
    result = {
        "object": "organization.costs.result",
        "amount": {"value": draw(st.sampled_from([float(value), str(value)])), "currency": "usd"},
        "line_item": draw(
            st.sampled_from(
                [
                    "gpt-4o-mini-2024-07-18, input",
                    "gpt-4o, output",
                    None,
                    "fine-tuning training",
                    "priority | gpt-5.6-sol, output, long context",
                    "gpt-audio-mini-2025-12-15 audio, cache writes",
                    "scale | gpt-4o, input",  # unrecognised: kept with its money all the same
                ]
            )
        ),
        "project_id": draw(st.one_of(st.none(), ids)),
    }
    if draw(st.booleans()):
        result["quantity"] = draw(st.sampled_from([1_000_000.0, 12, "3.5", None]))
    usd = Decimal(repr(float(value))) if isinstance(result["amount"]["value"], float) else value
    kind = draw(st.sampled_from(["kept", "kept", "eur", "gbp", "bad"]))
    if kind == "eur":
        result["amount"]["currency"] = "eur"
        return result, ("kept", (usd * Decimal("1.1")).quantize(Decimal("1e-10")))
    if kind == "gbp":
        result["amount"]["currency"] = "GBP"
        return result, ("needs_rate",)
    if kind == "kept":
        return result, ("kept", usd)
    mutation = draw(
        st.sampled_from(["amount_type", "value", "currency_type", "currency_code", "text_type", "quantity", "huge"])
    )
    if mutation == "amount_type":
        result["amount"] = draw(st.sampled_from([None, 12, [1], "12"]))
    elif mutation == "value":
        result["amount"]["value"] = draw(
            st.sampled_from(["abc", None, {"v": 1}, [1], float("inf"), float("nan"), True])
        )
    elif mutation == "currency_type":
        result["amount"]["currency"] = draw(st.sampled_from([1, ["usd"], {"c": "usd"}, "", None]))
    elif mutation == "currency_code":
        result["amount"]["currency"] = draw(st.sampled_from(["US", "dollars", "U$D"]))
    elif mutation == "text_type":
        result[draw(st.sampled_from(["line_item", "project_id"]))] = draw(st.sampled_from(WRONG[:4]))
    elif mutation == "quantity":
        result["quantity"] = draw(st.sampled_from(["many", [1], {"n": 1}, 1e30, float("nan")]))
    else:
        result["amount"]["value"] = draw(st.sampled_from([1e20, "1e30", 10**40]))
    return result, ("bad",)


@st.composite
def anthropic_cost_results(draw):
    amount = draw(cents)
    result = {
        "currency": "USD",
        "amount": str(amount),
        "workspace_id": "wrk_1",
        "description": None,
        "cost_type": "tokens",
        "model": "claude-3-5-sonnet-20241022",
        "token_type": draw(st.sampled_from(["uncached_input_tokens", "cache_creation.ephemeral_1h_input_tokens"])),
        "service_tier": draw(st.sampled_from(["standard", "batch", None])),
        "context_window": draw(st.sampled_from(["0-200k", "200k-1M", None])),
    }
    if draw(st.booleans()):
        return result, ("kept", (Decimal(amount) / 100).quantize(Decimal("1e-10")))
    mutation = draw(st.sampled_from(["amount", "token_type", "unknown_token", "text", "currency", "window"]))
    if mutation == "amount":
        result["amount"] = draw(st.sampled_from(["12 cents", None, [1], "1e20"]))
    elif mutation == "token_type":
        result["token_type"] = draw(st.sampled_from([["x"], {"t": 1}, 7]))
    elif mutation == "unknown_token":
        result["token_type"] = "mystery_tokens"
    elif mutation == "text":
        result[draw(st.sampled_from(["model", "workspace_id", "cost_type", "description", "service_tier"]))] = draw(
            st.sampled_from(WRONG[:4])
        )
    elif mutation == "window":  # a context window not known: its rate cannot be told
        result["context_window"] = draw(st.sampled_from(["1M-2M", "", 200000, ["0-200k"]]))
    else:
        result["currency"] = draw(st.sampled_from([None, 5, "usdollars"]))
    return result, ("bad",)


token = st.one_of(st.integers(0, 10**6), st.integers(0, 2**62))
part_token = st.one_of(st.integers(0, 10**6), st.integers(0, 2**60))  # four of them still fit in 64 bits


@st.composite
def openai_usage_results(draw):
    input_tokens = draw(token)
    result = {
        "object": "organization.usage.completions.result",
        "input_tokens": input_tokens,
        "output_tokens": draw(token),
        "input_cached_tokens": draw(st.integers(0, input_tokens)),
        "num_model_requests": draw(st.integers(0, 10**6)),
        "service_tier": draw(st.sampled_from(["default", "priority", "flex", None])),
        "project_id": "proj",
        "model": "gpt-4o",
        "batch": False,
    }
    result["input_cache_write_tokens"] = draw(st.integers(0, input_tokens - result["input_cached_tokens"]))
    if draw(st.booleans()):
        return result, ("kept", Decimal(0))
    field_name = draw(
        st.sampled_from(
            ["input_tokens", "output_tokens", "num_model_requests", "model", "batch", "project_id", "cached", "writes"]
        )
    )
    if field_name == "cached":
        result["input_cached_tokens"] = input_tokens + 1
    elif field_name == "writes":  # reads and writes together beyond the input they are part of
        result["input_cache_write_tokens"] = input_tokens - result["input_cached_tokens"] + 1
    elif field_name in ("model", "project_id"):
        result[field_name] = draw(st.sampled_from(WRONG[:4]))
    elif field_name == "batch":
        result["batch"] = draw(st.sampled_from(["false", 0, [True]]))
    else:
        result[field_name] = draw(st.sampled_from(["12", -1, 2**63, 10**30, 1.5, True, [3]]))
    return result, ("bad",)


@st.composite
def anthropic_usage_results(draw):
    result = {
        "uncached_input_tokens": draw(part_token),
        "cache_read_input_tokens": draw(part_token),
        "cache_creation": {
            "ephemeral_5m_input_tokens": draw(part_token),
            "ephemeral_1h_input_tokens": draw(part_token),
        },
        "output_tokens": draw(token),
        "model": "claude-3-5-haiku-20241022",
        "workspace_id": None,
    }
    if draw(st.booleans()):
        return result, ("kept", Decimal(0))
    mutation = draw(st.sampled_from(["tokens", "creation", "overflow", "text"]))
    if mutation == "tokens":
        result[draw(st.sampled_from(["uncached_input_tokens", "cache_read_input_tokens", "output_tokens"]))] = draw(
            st.sampled_from(["12", -5, 2**64, 2.5, [1]])
        )
    elif mutation == "creation":
        result["cache_creation"] = draw(st.sampled_from([[1], "x", {"ephemeral_5m_input_tokens": -1}]))
    elif mutation == "overflow":  # each count fits in 64 bits, their sum does not
        result["uncached_input_tokens"] = result["cache_read_input_tokens"] = 2**62 + 1
        result["cache_creation"]["ephemeral_5m_input_tokens"] = 2**62
    else:
        result["model"] = draw(st.sampled_from(WRONG[:4]))
    return result, ("bad",)


PAGE_FORMATS = {
    "openai_costs": (openai_cost_results, "start_time", "end_time", False),
    "anthropic_cost_report": (anthropic_cost_results, "starting_at", "ending_at", True),
    "openai_usage": (openai_usage_results, "start_time", "end_time", False),
    "anthropic_usage_report": (anthropic_usage_results, "starting_at", "ending_at", True),
}


def bucket_bounds(iso: bool, days: int = 1) -> tuple:
    start, end = DAY_START, DAY_START + 86_400 * days
    if iso:
        return (
            dt.datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z"),
            dt.datetime.fromtimestamp(end, UTC).isoformat().replace("+00:00", "Z"),
        )
    return start, end


@st.composite
def page_files(draw, fmt: str, index: int) -> ExportFile:
    results_strategy, start_key, end_key, iso = PAGE_FORMATS[fmt]
    expected = Expected()
    buckets = []
    for _ in range(draw(st.integers(0, 4))):
        start, end = bucket_bounds(iso)
        kind = draw(st.sampled_from(["good", "good", "good", "bad_start", "wide", "results", "not_object"]))
        if kind == "not_object":
            buckets.append(draw(st.sampled_from([[1], "bucket", 3])))
            expected.records += 1
            continue
        bucket = {start_key: start, end_key: end, "results": []}
        if kind == "bad_start":
            bucket[start_key] = draw(
                st.sampled_from(
                    [
                        "nope",
                        None,
                        True,
                        1e20,
                        float("nan"),
                        float("inf"),
                        10**30,
                        "2026-13-40T00:00:00Z",
                        "0001-01-01T00:00:00+01:00",
                    ]
                )
            )
        elif kind == "wide":
            bucket[end_key] = bucket_bounds(iso, days=3)[1]
        elif kind == "results":
            bucket["results"] = draw(st.sampled_from(["x", {"a": 1}, 5]))
        if kind != "good":
            expected.records += 1
            buckets.append(bucket)
            continue
        for _ in range(draw(st.integers(0, 5))):
            if draw(st.integers(0, 9)) == 0:
                bucket["results"].append(draw(st.sampled_from([[1], "r", 7, None])))
                expected.records += 1
                continue
            result, outcome = draw(results_strategy())
            bucket["results"].append(result)
            expected.records += 1
            if outcome[0] == "kept":
                expected.kept += 1
                expected.usd += outcome[1]
            elif outcome[0] == "needs_rate":
                expected.needs_rate = True
        buckets.append(bucket)
    page = {"object": "page", "data": buckets, "has_more": False, "next_page": None}
    document = draw(st.sampled_from([page, [page], [page, {"object": "page", "data": []}]]))
    data = json.dumps(document).encode()
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "garbage", "not_utf8", "not_a_page", "deep", "bom"]))
    if damage == "bom":
        data = BOM + data
    elif damage != "none":
        data = {
            "cut": data[: draw(st.integers(0, max(0, len(data) - 1)))],
            "garbage": draw(st.binary(max_size=40)).replace(b"{", b"").replace(b"[", b"") + b"}{",
            "not_utf8": data[:1] + draw(st.sampled_from(INVALID_UTF8)) + data[1:],
            "not_a_page": json.dumps(draw(st.sampled_from([{"data": "x"}, 5, [1, 2], {"object": "page"}]))).encode(),
            "deep": b"[" * 100_000 + b"]" * 100_000,
        }[damage]
        expected = Expected(records=1)  # a file that cannot be split into buckets is one bad record
    return ExportFile(f"{fmt}_{index}.json", fmt, data, expected)


# --- invoice CSV ----------------------------------------------------------------------------------

INVOICE_HEADER = ["invoice_id", "provider", "period_start", "period_end", "line_item", "model", "amount", "currency"]


def csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)  # quotes cells holding CR or LF
    return out.getvalue().removesuffix("\r\n")


@st.composite
def invoice_files(draw, index: int) -> ExportFile:
    expected = Expected()
    lines = [csv_line(INVOICE_HEADER)]
    for number in range(draw(st.integers(0, 8))):
        amount = Decimal(draw(cents)) / 100
        cells = [
            f"inv-{number}",
            draw(st.sampled_from(["openai", "Anthropic"])),
            "2026-11-01",
            "2026-11-30",
            draw(ids),
            draw(st.sampled_from(["gpt-4o", ""])),
            str(amount),
            draw(st.sampled_from(["USD", "usd", "EUR"])),
        ]
        kind = draw(st.sampled_from(["kept", "kept", "kept", "blank", "ragged", "bad", "gbp", "not_utf8", "huge"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", ",,,,,,,", "  "])))
            continue
        expected.records += 1
        if kind == "kept":
            expected.kept += 1
            expected.usd += amount * (Decimal("1.1") if cells[-1] == "EUR" else 1)
        elif kind == "gbp":
            cells[-1] = "GBP"
            expected.needs_rate = True
        elif kind == "ragged":
            cells = cells[: draw(st.integers(1, len(cells) - 1))] if draw(st.booleans()) else cells + ["extra"]
        elif kind == "bad":
            position, value = draw(
                st.sampled_from(
                    [
                        (2, "someday"),
                        (3, "2026-10-01"),
                        (1, ""),
                        (6, "abc"),
                        (6, ""),
                        (6, "1e20"),
                        (7, ""),
                        (7, "US"),
                        (2, "2026-02-30"),
                    ]
                )
            )
            cells[position] = value
        elif kind == "huge":
            cells[4] = "x" * 300_000  # past csv's default field limit; the row itself is fine
            expected.kept += 1
            expected.usd += amount * (Decimal("1.1") if cells[-1] == "EUR" else 1)
        else:
            cells[4] = "line\x01item"
        lines.append(csv_line(cells))
    if draw(st.booleans()):  # the last row cut inside its last cell, currency: never a whole code
        cut_row = csv_line(["inv-cut", "openai", "2026-11-01", "2026-11-30", "x", "", "1.00", "USD"])
        lines.append(cut_row[: len(cut_row) - draw(st.integers(1, 3))])
        expected.records += 1
    data = draw(csv_bytes(lines))
    return ExportFile(f"invoice_{index}.csv", "invoice_csv", data, expected)


@st.composite
def export_sets(draw) -> list[ExportFile]:
    files = []
    for index in range(draw(st.integers(1, 3))):
        fmt = draw(st.sampled_from([*PAGE_FORMATS, "invoice_csv"]))
        files.append(draw(invoice_files(index) if fmt == "invoice_csv" else page_files(fmt, index)))
    return files


@PROPERTY_SETTINGS
@given(export_sets())
def test_every_export_record_is_kept_or_quarantined(files):
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for export in files:
            path = Path(folder) / export.name
            path.write_bytes(export.data)
            paths.append((path, export.fmt))
        if any(export.expected.needs_rate for export in files):
            with pytest.raises(CurrencyError) as stopped:
                read_exports(paths, RATES)
            assert "GBP" in str(stopped.value) and "currency_rates" in str(stopped.value)
            assert any(str(path) in str(stopped.value) for path, _ in paths)
            return
        parsed = read_exports(paths, RATES)
        by_name = tables(parsed)  # every kept value fits its column
    per_file = {row["source_file"]: row for row in parsed.per_file()}
    assert len(per_file) == len(files)
    for export, (path, _) in zip(files, paths, strict=True):
        row = per_file[str(path)]
        assert row["records"] == row["kept"] + row["quarantined"]
        assert (row["records"], row["kept"]) == (export.expected.records, export.expected.kept), export.name
        billed = sum((line["billed_usd"] for line in parsed.cost_lines if line["source_file"] == str(path)), Decimal(0))
        assert billed == export.expected.usd, export.name
    assert all(reason for reason in by_name["quarantine"].column("reason").to_pylist())


# --- GPU billing: FOCUS exports and GPU-hours CSVs -------------------------------------------------

# FOCUS columns in the order the AWS sample has them (Tags last).
FOCUS_COLUMNS = [
    "BilledCost",
    "BillingCurrency",
    "ChargeCategory",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "ConsumedQuantity",
    "ConsumedUnit",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "ResourceId",
    "SkuPriceDetails",
    "Tags",
]


@st.composite
def focus_files(draw, index: int) -> ExportFile:
    expected = Expected()
    lines = [csv_line(FOCUS_COLUMNS)]
    for number in range(draw(st.integers(0, 10))):
        billed = Decimal(draw(st.integers(0, 10**8))) / 10**4
        hours = Decimal(draw(st.integers(1, 3600))) / 3600  # within the hour row's period
        gpus = draw(st.integers(1, 8))
        row = {
            "BilledCost": str(billed),
            "BillingCurrency": draw(st.sampled_from(["USD", "usd", "EUR"])),
            "ChargeCategory": "Usage",
            "ChargeDescription": "GPU instance hour",
            "ChargePeriodStart": "2026-11-20 10:00:00",
            "ChargePeriodEnd": "2026-11-20 11:00:00",
            "CommitmentDiscountId": draw(st.sampled_from(["", "NULL"])),
            "CommitmentDiscountStatus": draw(st.sampled_from(["", "NULL"])),
            "ConsumedQuantity": str(hours),
            "ConsumedUnit": "Hours",
            "EffectiveCost": str(billed),
            "ListCost": str(billed),
            "ProviderName": "AWS",
            "ResourceId": f"i-{index}-{number}",
            "SkuPriceDetails": json.dumps({"InstanceType": "p5.48xlarge", "GpuCount": gpus}),
            "Tags": json.dumps({"costwatch-pool": "p", "note": draw(ids)}),
        }
        rate = Decimal("1.1") if row["BillingCurrency"] == "EUR" else Decimal(1)
        kind = draw(
            st.sampled_from(
                [
                    "gpu",
                    "gpu",
                    "gpu",
                    "covered",
                    "covered",
                    "purchase",
                    "unused",
                    "not_gpu",
                    "tax",
                    "bad",
                    "gbp",
                    "ragged",
                    "not_utf8",
                    "blank",
                    "multiline",
                    "huge",
                ]
            )
        )
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", ",,,,,,,,,,,,,"])))
            continue
        expected.records += 1
        # FOCUS: a commitment's Purchase row is its cash (EffectiveCost 0); the Usage rows it covers
        # have BilledCost 0 and their share of it as EffectiveCost; its Unused rows name no instance.
        commitment = f"arn:aws:ec2:us-east-1:123456789012:reserved-instances/ri-{index}"
        if kind in ("covered", "purchase", "unused"):
            row["CommitmentDiscountId"] = commitment
        if kind == "covered":
            row["BilledCost"], row["CommitmentDiscountStatus"] = "0.00", "Used"
            expected.kept += 1
            expected.usd += (billed * rate).quantize(Decimal("1e-10"))
            expected.gpu_hours += hours * gpus
        elif kind == "purchase":
            row.update({"ChargeCategory": "Purchase", "EffectiveCost": "0.00", "ConsumedQuantity": "NULL"})
            row.update({"ConsumedUnit": "NULL", "ResourceId": commitment, "SkuPriceDetails": "NULL"})
            expected.skipped += 1
            expected.skipped_reasons["commitment_purchase"] = expected.skipped_reasons.get("commitment_purchase", 0) + 1
        elif kind == "unused":
            row.update({"BilledCost": "0.00", "CommitmentDiscountStatus": "Unused", "ResourceId": ""})
            row.update({"ConsumedQuantity": "", "ConsumedUnit": ""})
            expected.skipped += 1
            expected.skipped_reasons["unused_commitment"] = expected.skipped_reasons.get("unused_commitment", 0) + 1
        if kind in ("gpu", "multiline", "huge"):
            if kind == "multiline":  # a quoted cell holding line ends
                row["ChargeDescription"] = "GPU instance hour\r\nsecond line\nthird"
            if kind == "huge":
                row["ChargeDescription"] = "y" * 3_000_000  # past DuckDB's line limit
            expected.kept += 1
            expected.usd += (billed * rate).quantize(Decimal("1e-10"))
            expected.cash_usd += (billed * rate).quantize(Decimal("1e-10"))
            expected.gpu_hours += hours * gpus
        elif kind in ("not_gpu", "tax"):
            if kind == "not_gpu":
                row["SkuPriceDetails"], row["ChargeDescription"] = "NULL", "$0.023 per GB-month of S3 storage"
                reason = "not_a_gpu_instance"
            else:
                row["ChargeCategory"], reason = "Tax", "not_a_usage_charge"
            expected.skipped += 1
            expected.skipped_reasons[reason] = expected.skipped_reasons.get(reason, 0) + 1
        elif kind == "gbp":
            row["BillingCurrency"] = "GBP"
            expected.needs_rate = True
        elif kind == "bad":
            column, value = draw(
                st.sampled_from(
                    [
                        ("ChargePeriodStart", "not a time"),
                        ("ChargePeriodStart", "infinity"),
                        ("BilledCost", "abc"),
                        ("BilledCost", "NaN"),
                        ("BilledCost", "1e30"),
                        ("EffectiveCost", "abc"),
                        ("EffectiveCost", ""),
                        ("EffectiveCost", "1e30"),
                        ("ConsumedQuantity", "NaN"),
                        ("ConsumedQuantity", "inf"),
                        ("ChargePeriodEnd", "2026-11-23 10:00:00"),
                        ("ChargePeriodEnd", "2026-11-20 09:00:00"),
                        ("BillingCurrency", ""),
                        ("BillingCurrency", "US"),
                        ("Tags", '{"costwatch-pool": '),
                        ("SkuPriceDetails", json.dumps({"InstanceType": "p5.48xlarge", "GpuCount": -8})),
                    ]
                )
            )
            row[column] = value
        if kind == "ragged":
            cells = [row[column] for column in FOCUS_COLUMNS]
            lines.append(csv_line(cells[: -draw(st.integers(1, 5))] if draw(st.booleans()) else cells + ["extra"]))
            continue
        line = csv_line([row[column] for column in FOCUS_COLUMNS])
        if kind == "not_utf8":
            line = line.replace("GPU instance hour", "GPU inst\x01ance hour")
        lines.append(line)
    if draw(st.booleans()):  # the last row cut short inside Tags (past its closing quote): broken JSON
        cut_row = csv_line(
            [
                "1.0",
                "USD",
                "Usage",
                "GPU instance hour",
                "2026-11-20 11:00:00",
                "2026-11-20 10:00:00",
                "NULL",
                "NULL",
                "1",
                "Hours",
                "1.0",
                "1.0",
                "AWS",
                "i-cut",
                "NULL",
                '{"costwatch-pool": "p"}',
            ]
        )
        lines.append(cut_row[: len(cut_row) - draw(st.integers(2, 20))])
        expected.records += 1
    data = draw(csv_bytes(lines))
    return ExportFile(f"focus_{index}.csv", "focus", data, expected)


@st.composite
def gpu_hours_files(draw, index: int) -> ExportFile:
    expected = Expected()
    lines = [csv_line(["day", "pool", "replica_id", "gpu_type", "gpu_count", "hours", "usd"])]
    for number in range(draw(st.integers(0, 8))):
        hours, usd, gpus = (
            Decimal(draw(st.integers(0, 2400))) / 100,
            Decimal(draw(st.integers(0, 10**7))) / 100,
            draw(st.integers(1, 8)),
        )
        cells = [DAY.isoformat(), "p", f"r{number}", "H100", str(gpus), str(hours), str(usd)]
        kind = draw(st.sampled_from(["kept", "kept", "kept", "bad", "ragged", "not_utf8", "blank"]))
        if kind == "blank":
            lines.append("")
            continue
        expected.records += 1
        if kind == "kept":
            expected.kept += 1
            expected.usd += usd
            expected.cash_usd += usd  # the CSV has one amount: cost and cash alike
            expected.gpu_hours += hours * gpus
        elif kind == "bad":
            position, value = draw(
                st.sampled_from(
                    [
                        (0, "someday"),
                        (0, "infinity"),
                        (1, " "),
                        (4, "0"),
                        (4, "two"),
                        (5, "-1"),
                        (5, "NaN"),
                        (5, "inf"),
                        (6, "lots"),
                    ]
                )
            )
            cells[position] = value
        elif kind == "ragged":
            cells = cells[: draw(st.integers(1, 6))] if draw(st.booleans()) else cells + ["extra"]
        else:
            cells[3] = "H1\x0100"
        lines.append(csv_line(cells))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    data = (newline.join(lines) + newline).encode().replace(b"\x01", draw(st.sampled_from(INVALID_UTF8)))
    if draw(st.booleans()):
        data = BOM + data
    return ExportFile(f"gpu_hours_{index}.csv", "gpu_hours_csv", data, expected)


@st.composite
def gpu_sets(draw) -> list[ExportFile]:
    return [
        draw(focus_files(index) if draw(st.booleans()) else gpu_hours_files(index))
        for index in range(draw(st.integers(1, 3)))
    ]


@PROPERTY_SETTINGS
@given(gpu_sets())
def test_every_gpu_billing_row_is_kept_skipped_or_quarantined(files):
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        load_instance_types(conn)
        for export in files:
            path = Path(folder) / export.name
            path.write_bytes(export.data)
            if export.fmt == "gpu_hours_csv":
                stats = read_gpu_hours_csv(conn, path, RATES)
            elif export.expected.needs_rate:
                with pytest.raises(CurrencyError) as stopped:
                    read_focus(conn, path, RATES, "costwatch-pool", "costwatch-replica")
                assert str(path) in str(stopped.value) and "currency_rates: {GBP" in str(stopped.value)
                continue
            else:
                stats = read_focus(conn, path, RATES, "costwatch-pool", "costwatch-replica")
            assert stats.accounted_for, stats
            assert (stats.records, stats.gpu_rows, stats.non_gpu_rows) == (
                export.expected.records,
                export.expected.kept,
                export.expected.skipped,
            ), export.name
            assert stats.skipped_by_reason == export.expected.skipped_reasons
            usd, cash, hours = conn.execute(
                "select sum(effective_usd), sum(billed_usd), sum(gpu_hours) from billing_lines"
            ).fetchone()
            assert (usd or 0) == export.expected.usd and (cash or 0) == export.expected.cash_usd
            assert float(hours or 0) == pytest.approx(float(export.expected.gpu_hours), rel=1e-9, abs=1e-9)
            reasons = conn.execute("select reason from billing_quarantine").fetchall()
            assert len(reasons) == stats.quarantined and all(reason for (reason,) in reasons)


# --- the one float/str -> Decimal parser (sources/values.py) ----------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),  # Decimal(0.1) would be 0.1000000000000000055511151231257827...
        (3e-6, "0.000003"),
        (2.5e-06, "0.0000025"),
        (1e22, "1E+22"),
        (-0.07, "-0.07"),
        (42, "42"),
        ("0.1", "0.1"),
        (" 12.50 ", "12.50"),  # CSV cells arrive with spaces; the digits are kept as written
        ("1234567.0000000001", "1234567.0000000001"),
        ("-3E-6", "-0.000003"),
        (Decimal("7.25"), "7.25"),
    ],
)
def test_a_number_becomes_the_exact_decimal_it_was_written_as(value, expected):
    parsed = to_decimal(value)
    assert parsed == Decimal(expected) and str(parsed) == str(Decimal(expected))


@pytest.mark.parametrize(
    ("value", "missing"),
    [
        (None, True),
        (True, True),
        ("", False),
        ("abc", False),
        ("NaN", False),
        ("inf", False),
        (float("nan"), False),
        (float("inf"), False),
        ([1], False),
        ({"value": 1}, False),
    ],
)
def test_what_is_no_finite_number_is_a_clear_error(value, missing):
    with pytest.raises(NotADecimal) as raised:
        to_decimal(value)
    assert raised.value.missing is missing
    assert ("missing" if missing else "not a finite decimal") in str(raised.value) and repr(value) in str(raised.value)


def test_billing_and_prices_read_numbers_through_the_one_parser(tmp_path):
    """An export's float amount and a catalog's float price land as the decimal of their repr;
    a rate is applied as the decimal of its repr too (0.1 x 1.08 is 0.108 exactly)."""
    path = tmp_path / "invoice.csv"
    path.write_text(
        "invoice_id,provider,period_start,period_end,line_item,model,amount,currency\n"
        "i1,openai,2026-11-20,2026-11-20,usage,,0.1,EUR\n"
        "i2,openai,2026-11-20,2026-11-20,usage,,abc,USD\n"
        "i3,openai,2026-11-20,2026-11-20,usage,,,USD\n"
    )
    parsed = read_exports([(path, "invoice_csv")], {"EUR": 1.08})
    assert [line["billed_usd"] for line in parsed.cost_lines] == [Decimal("0.108")]
    assert [row["reason"] for row in parsed.quarantine] == ["bad_amount", "missing_amount"]
    assert price_decimal(3e-6) == Decimal("0.000003") and price_decimal("x") is None and price_decimal(None) is None
