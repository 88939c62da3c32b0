"""GPU-hour billing (FOCUS cost-and-usage exports, a simple GPU-hours CSV) and GPU telemetry
(nvidia-smi CSV logs) → per-replica GPU lines and busy time.

GPU-hours = instance hours x GPUs per instance. The GPU count comes from the export's
`SkuPriceDetails.GpuCount` (FOCUS 1.2) when present, else from the instance-type table the
project ships (`fixtures/gpu/instance_types.csv`), matched on `SkuPriceDetails.InstanceType` or
the instance type named in `ChargeDescription` (FOCUS 1.0 exports such as AWS's say
"$1.624 per On Demand Linux g5.4xlarge Instance Hour"). A row whose instance has no GPU is not
GPU spend and is counted, not kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.sources.records import read_file_bytes, text_record
from pipelines.sources.registry import register

REPO = Path(__file__).resolve().parents[3]
INSTANCE_TYPES = REPO / "fixtures" / "gpu" / "instance_types.csv"

# Instance type names of AWS, GCP, Azure and Lambda, as they appear inside a charge description.
INSTANCE_PATTERN = (
    r"([a-z][a-z0-9]*\.[0-9]*x?large|a[23]-[a-z]+-[0-9]+g|g2-standard-[0-9]+"
    r"|Standard_[A-Za-z0-9_]+|gpu_[0-9]+x_[a-z0-9_]+)"
)

GPU_LINES_DDL = """(
    source_format varchar, source_file varchar, record_ref varchar, day date, provider_name varchar,
    pool varchar, replica_id varchar, resource_id varchar, instance_type varchar, gpu_type varchar,
    gpu_count integer, instance_hours double, gpu_hours double, billed_usd decimal(18, 10),
    effective_usd decimal(18, 10), list_usd decimal(18, 10)
)"""
QUARANTINE_DDL = (
    "(source_format varchar, source_file varchar, record_ref varchar, day date, reason varchar, raw varchar)"
)


class GpuCurrencyError(ValueError):
    """A GPU bill in a currency with no configured rate."""


@dataclass
class GpuBilling:
    """Where every record of one billing file went: GPU lines kept, rows skipped as not GPU
    spend (by reason), quarantined rows. records = gpu_rows + non_gpu_rows + quarantined."""

    source_file: str = ""
    source_format: str = ""
    records: int = 0
    gpu_rows: int = 0
    non_gpu_rows: int = 0
    quarantined: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    effective_above_billed: list[dict] = field(default_factory=list)

    @property
    def accounted_for(self) -> bool:
        return self.records == self.gpu_rows + self.non_gpu_rows + self.quarantined


def load_instance_types(conn: duckdb.DuckDBPyConnection, extra: Path | None = None) -> None:
    paths = [INSTANCE_TYPES, *([extra] if extra else [])]
    conn.execute(
        "create or replace temp table instance_types as "
        "select lower(instance_type) as instance_key, any_value(gpu_type) as gpu_type, "
        "any_value(gpu_count)::int as gpu_count from read_csv($paths, header = true, union_by_name = true) "
        "group by 1",
        {"paths": [str(path) for path in paths]},
    )


def _currency_check(conn, relation: str, column: str, rates: dict[str, float], source: str) -> None:
    """Stop on a currency code that has no configured rate. Text that is no currency code at all
    (empty, a cut cell) is not a config problem: such rows are quarantined."""
    for code, first_ref in conn.execute(
        f"select upper(trim({column})), min(record_ref) from {relation} "
        f"where regexp_full_match(upper(trim({column})), '[A-Z]{{3}}') and upper(trim({column})) <> 'USD' "
        "group by 1 order by 1"
    ).fetchall():
        if code not in rates:
            raise GpuCurrencyError(
                f"{source} {first_ref}: billed in {code} with no rate; add currency_rates: {{{code}: <USD per {code}>}}"
            )


def read_csv_export(conn: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """A billing CSV → temp table `{table}_raw` (every cell text, NULL for the literal `NULL`,
    `record_ref` = 'row N' with the header as row 1) and `{table}_rejects` (record_ref, reason,
    raw) for rows that cannot be split into the header's columns or are not UTF-8.

    DuckDB reads a well-formed file fast, told the header's columns and the dialect: its
    sniffer, left to guess, can take a ragged last row for the header and return no rows at
    all. Damage (bytes that are not UTF-8, a ragged or cut row, an unclosed quote, a line past
    DuckDB's line limit, a cut gzip stream) fails DuckDB's reader for the whole file; such a
    file is read again row by row in Python, which sets aside only the damaged rows."""
    conn.execute(f"create or replace temp table {table}_rejects (record_ref varchar, reason varchar, raw varchar)")
    header = _csv_header(path)
    if header:
        try:
            conn.execute(
                f"create or replace temp table {table}_raw as "
                "select *, 'row ' || (row_number() over () + 1) as record_ref from read_csv($path, header = true, "
                "auto_detect = false, skip = 0, columns = $columns, nullstr = 'NULL', delim = ',', quote = '\"', "
                "escape = '\"', strict_mode = true)",
                {"path": str(path), "columns": {name: "VARCHAR" for name in header}},
            )
        except duckdb.Error:
            pass
        else:
            # A row of empty cells is no record (the Python reader below skips it too).
            conn.execute(
                f"delete from {table}_raw where "
                + " and ".join(f"coalesce(trim({_identifier(name)}), '') = ''" for name in header)
            )
            return
    data, damage = read_file_bytes(path)
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff"), newline=""))
    header = _column_names(next(reader, []))
    columns: list[list[str | None]] = [[] for _ in header]
    refs, rejects, number = [], [], 1
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        raw, not_utf8 = text_record(json.dumps(row, ensure_ascii=False))
        if not_utf8 or len(row) != len(header):
            rejects.append(
                (f"row {number}", not_utf8 or f"ragged_row:{len(row)}_fields_for_{len(header)}_columns", raw)
            )
            continue
        for values, cell in zip(columns, row):
            values.append(None if cell == "NULL" else cell)
        refs.append(f"row {number}")
    if damage:  # the rest of a cut gzip stream: one record, counted and quarantined
        rejects.append((f"row {number + 1}", damage, ""))
    raw_table = pa.table(
        {
            **{name: pa.array(values, pa.string()) for name, values in zip(header, columns)},
            "record_ref": pa.array(refs, pa.string()),
        }
    )
    conn.register(f"{table}_arrow", raw_table)
    conn.execute(f"create or replace temp table {table}_raw as select * from {table}_arrow")
    conn.unregister(f"{table}_arrow")
    if rejects:
        conn.executemany(f"insert into {table}_rejects values (?, ?, ?)", rejects)


def _csv_header(path: Path) -> list[str] | None:
    """The header row as column names, read without reading the file; None when it does not
    read cleanly (then the careful reader takes the whole file)."""
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
            header = next(csv.reader(text), None)
    except (OSError, EOFError, zlib.error, csv.Error):
        return None
    if not header or any(text_record(cell)[1] for cell in header):
        return None
    names = _column_names([header[0].removeprefix("\ufeff"), *header[1:]])
    return names if names == [header[0].removeprefix("\ufeff"), *header[1:]] else None


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_names(header: list[str]) -> list[str]:
    """Header cells as column names: readable, non-empty and unique, as DuckDB would make them."""
    names: list[str] = []
    for index, cell in enumerate(header):
        name = text_record(cell)[0] or f"column{index}"
        while name in names or name == "record_ref":
            name += "_1"
        names.append(name)
    return names


def _counts(conn: duckdb.DuckDBPyConnection, table: str, path: Path, fmt: str) -> GpuBilling:
    """Where each record of a billing file went, each count from its own table or predicate."""
    (read,) = conn.execute(
        f"select (select count(*) from {table}_raw) + (select count(*) from {table}_rejects)"
    ).fetchone()
    (kept,) = conn.execute(f"select count(*) from {table}").fetchone()
    (quarantined,) = conn.execute(f"select count(*) from {table}_quarantine").fetchone()
    skipped = dict(
        conn.execute(
            f"select skip_reason, count(*) from {table}_typed where reason is null and skip_reason is not null "
            "group by 1 order by 1"
        ).fetchall()
    )
    return GpuBilling(
        source_file=str(path),
        source_format=fmt,
        records=read,
        gpu_rows=kept,
        non_gpu_rows=sum(skipped.values()),
        quarantined=quarantined,
        skipped_by_reason=skipped,
    )


def read_focus(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    rates: dict[str, float],
    pool_tag: str,
    replica_tag: str,
    table: str,
) -> GpuBilling:
    """A FOCUS 1.x export (AWS, GCP, Azure): one temp table `table` of GPU usage lines and one
    `{table}_quarantine`. Columns a FOCUS version lacks (SkuPriceDetails before 1.2) read as NULL.
    Rows that are not GPU usage (other services, taxes, credits) are skipped and counted by reason."""
    read_csv_export(conn, path, table)
    present = {row[0] for row in conn.execute(f"describe {table}_raw").fetchall()}

    def column(name: str) -> str:
        return _identifier(name) if name in present else "null::varchar"

    _currency_check(conn, f"{table}_raw", column("BillingCurrency"), rates, str(path))
    # USD is 1 USD whatever the config says: a USD entry there must not join twice.
    rate_rows = [*{**rates, "USD": 1.0}.items()]
    conn.execute("create or replace temp table currency_rates (code varchar, usd_per_unit double)")
    conn.executemany("insert into currency_rates values (?, ?)", rate_rows)
    conn.execute(
        f"""
        create or replace temp table {table}_typed as
        with typed as (
            select
                record_ref,
                {column("ProviderName")} as provider_name,
                {column("ChargeCategory")} as charge_category,
                try_cast({column("ChargePeriodStart")} as timestamp) as period_start,
                try_cast({column("ChargePeriodEnd")} as timestamp) as period_end,
                try_cast({column("BilledCost")} as decimal(18, 10)) as billed_cost,
                try_cast({column("EffectiveCost")} as decimal(18, 10)) as effective_cost,
                try_cast({column("ListCost")} as decimal(18, 10)) as list_cost,
                try_cast({column("ConsumedQuantity")} as double) as consumed_quantity,
                lower({column("ConsumedUnit")}) as consumed_unit,
                {column("ResourceId")} as resource_id,
                coalesce(upper(trim({column("BillingCurrency")})), 'USD') as currency,
                case when json_valid({column("SkuPriceDetails")}) then {column("SkuPriceDetails")} end as sku_details,
                case when json_valid({column("Tags")}) then {column("Tags")} end as tags,
                -- FOCUS columns that hold JSON: broken JSON is damage (a cut last row ends in Tags)
                {column("SkuPriceDetails")} is not null and not json_valid({column("SkuPriceDetails")})
                    as sku_details_broken,
                {column("Tags")} is not null and not json_valid({column("Tags")}) as tags_broken,
                {column("ChargeDescription")} as charge_description
            from {table}_raw
        ),
        resolved as (
            select
                typed.*,
                coalesce(json_extract_string(sku_details, '$.InstanceType'),
                         nullif(regexp_extract(charge_description, $pattern, 1), '')) as instance_type,
                try_cast(json_extract_string(sku_details, '$.GpuCount') as int) as sku_gpu_count,
                json_extract_string(tags, '$."' || $pool_tag || '"') as pool,
                json_extract_string(tags, '$."' || $replica_tag || '"') as replica_id,
                currency_rates.usd_per_unit
            from typed
            left join currency_rates on currency_rates.code = typed.currency
        )
        select
            resolved.*,
            coalesce(sku_gpu_count, instance_types.gpu_count, 0) as gpu_count,
            instance_types.gpu_type,
            try_cast(billed_cost * usd_per_unit as decimal(18, 10)) as billed_usd,
            case
                when period_start is null or not isfinite(period_start)
                     or year(period_start) not between 1 and 9999 then 'bad_timestamp:ChargePeriodStart'
                when not isfinite(period_end) or year(period_end) not between 1 and 9999
                    then 'bad_timestamp:ChargePeriodEnd'
                when billed_cost is null then 'bad_number:BilledCost'
                when usd_per_unit is null then 'bad_currency:BillingCurrency'
                when try_cast(billed_cost * usd_per_unit as decimal(18, 10)) is null then 'out_of_range:BilledCost'
                when not isfinite(consumed_quantity) then 'bad_number:ConsumedQuantity'
                when tags_broken then 'bad_json:Tags'
                when sku_details_broken then 'bad_json:SkuPriceDetails'
                when sku_gpu_count < 0 then 'bad_number:GpuCount'
                when period_end < period_start then 'charge_period_ends_before_start'
                when period_end - period_start > interval 1 day then 'charge_period_longer_than_a_day'
            end as reason,
            case
                when coalesce(charge_category, 'Usage') <> 'Usage' then 'not_a_usage_charge'
                when coalesce(sku_gpu_count, instance_types.gpu_count, 0) = 0 then 'not_a_gpu_instance'
            end as skip_reason
        from resolved
        left join instance_types on instance_types.instance_key = lower(resolved.instance_type)
        """,
        {"pattern": INSTANCE_PATTERN, "pool_tag": pool_tag, "replica_tag": replica_tag},
    )
    conn.execute(
        f"""
        create or replace temp table {table} as
        select
            'focus' as source_format,
            $source_file as source_file,
            record_ref,
            period_start::date as day,
            provider_name,
            coalesce(pool, 'untagged') as pool,
            coalesce(replica_id, resource_id) as replica_id,
            resource_id,
            instance_type,
            gpu_type,
            gpu_count,
            -- Usage is metered in hours; where a row is not, its charge period is its duration.
            coalesce(case when consumed_unit in ('hours', 'hour', 'hrs', 'hr') then consumed_quantity end,
                     epoch(period_end - period_start) / 3600.0) as instance_hours,
            coalesce(case when consumed_unit in ('hours', 'hour', 'hrs', 'hr') then consumed_quantity end,
                     epoch(period_end - period_start) / 3600.0) * gpu_count as gpu_hours,
            billed_usd,
            (effective_cost * usd_per_unit)::decimal(18, 10) as effective_usd,
            (list_cost * usd_per_unit)::decimal(18, 10) as list_usd
        from {table}_typed
        where reason is null and skip_reason is null
        """,
        {"source_file": str(path)},
    )
    conn.execute(
        f"create or replace temp table {table}_quarantine as select 'focus' as source_format, "
        "$source_file as source_file, record_ref, typed.period_start::date as day, reason, "
        f"to_json(raw)::varchar as raw from {table}_typed typed join {table}_raw raw using (record_ref) "
        "where reason is not null "
        f"union all select 'focus', $source_file, record_ref, null::date, reason, raw from {table}_rejects",
        {"source_file": str(path)},
    )
    conn.execute(f"describe {table}")  # fail here, not downstream, if the projection is broken
    above = conn.execute(
        f"select record_ref, resource_id, billed_usd::double, effective_usd::double from {table} "
        "where effective_usd > billed_usd order by record_ref"
    ).fetchall()
    billing = _counts(conn, table, path, "focus")
    billing.effective_above_billed = [
        {
            "source_file": str(path),
            "record_ref": ref,
            "resource_id": resource,
            "billed_usd": billed,
            "effective_usd": effective,
        }
        for ref, resource, billed, effective in above
    ]
    return billing


def read_gpu_hours_csv(conn: duckdb.DuckDBPyConnection, path: Path, rates: dict[str, float], table: str) -> GpuBilling:
    """`day, pool, replica_id, gpu_type, gpu_count, hours, usd`: hours are instance hours; USD."""
    read_csv_export(conn, path, table)
    present = {row[0] for row in conn.execute(f"describe {table}_raw").fetchall()}

    def column(name: str) -> str:
        return _identifier(name) if name in present else "null::varchar"

    conn.execute(
        f"""
        create or replace temp table {table}_typed as
        select
            record_ref,
            try_cast({column("day")} as date) as day,
            nullif(trim({column("pool")}), '') as pool,
            nullif(trim({column("replica_id")}), '') as replica_id,
            {column("gpu_type")} as gpu_type,
            try_cast({column("gpu_count")} as int) as gpu_count,
            try_cast({column("hours")} as double) as hours,
            try_cast({column("usd")} as decimal(18, 10)) as usd,
            case
                when try_cast({column("day")} as date) is null
                     or not isfinite(try_cast({column("day")} as date))
                     or year(try_cast({column("day")} as date)) not between 1 and 9999 then 'bad_date:day'
                when nullif(trim({column("pool")}), '') is null then 'missing:pool'
                when try_cast({column("gpu_count")} as int) is null
                     or try_cast({column("gpu_count")} as int) <= 0 then 'bad_number:gpu_count'
                when try_cast({column("hours")} as double) is null or try_cast({column("hours")} as double) < 0
                     or not isfinite(try_cast({column("hours")} as double)) then 'bad_number:hours'
                when try_cast({column("usd")} as decimal(18, 10)) is null then 'bad_number:usd'
            end as reason,
            null::varchar as skip_reason  -- every row of this file is GPU spend
        from {table}_raw
        """
    )
    conn.execute(
        f"""
        create or replace temp table {table} as
        select 'gpu_hours_csv' as source_format, $source_file as source_file, record_ref, day,
            null::varchar as provider_name, pool, coalesce(replica_id, pool) as replica_id,
            null::varchar as resource_id, null::varchar as instance_type, gpu_type, gpu_count,
            hours as instance_hours, hours * gpu_count as gpu_hours, usd as billed_usd,
            usd as effective_usd, usd as list_usd
        from {table}_typed where reason is null
        """,
        {"source_file": str(path)},
    )
    conn.execute(
        f"create or replace temp table {table}_quarantine as select 'gpu_hours_csv' as source_format, "
        "$source_file as source_file, record_ref, typed.day, reason, to_json(raw)::varchar as raw "
        f"from {table}_typed typed join {table}_raw raw using (record_ref) where reason is not null "
        f"union all select 'gpu_hours_csv', $source_file, record_ref, null::date, reason, raw from {table}_rejects",
        {"source_file": str(path)},
    )
    return _counts(conn, table, path, "gpu_hours_csv")


# --- telemetry ------------------------------------------------------------------------------------

_DATE_SUFFIX = re.compile(r"_\d{4}-\d{2}-\d{2}$")


def replica_from_filename(path: Path, prefix: str = "nvidia_smi_") -> str:
    """`nvidia_smi_<replica_id>[_YYYY-MM-DD].csv` → replica_id: nvidia-smi logs carry no replica
    name, so the file that holds them does."""
    stem = path.name.split(".")[0]
    stem = stem[len(prefix) :] if stem.startswith(prefix) else stem
    return _DATE_SUFFIX.sub("", stem)


def read_nvidia_smi(conn: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """An `nvidia-smi --query-gpu=... --format=csv` log → temp table `table` of samples
    (replica_id, gpu, ts, utilization 0-1). `--query-gpu` picks the columns and their order, so
    they are found by header name (`timestamp`, `utilization.gpu [%]`, and `pci.bus_id` or
    `index` to tell GPUs apart). Rows that do not parse have a NULL ts or utilization."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = [name.strip() for name in handle.readline().split(",")]
    if "timestamp" not in header or "utilization.gpu [%]" not in header:
        raise ValueError(f"{path}: not an nvidia-smi --format=csv log with timestamp and utilization.gpu [%]")
    names = [f"c{index}" for index in range(len(header))]
    column = dict(zip(header, names))
    gpu = column.get("pci.bus_id") or column.get("index")
    conn.execute(
        f"""
        create or replace temp table {table} as
        select
            $replica as replica_id,
            {f"trim({gpu})" if gpu else "'0'"} as gpu,
            try_strptime(trim({column["timestamp"]}), ['%Y/%m/%d %H:%M:%S.%g', '%Y/%m/%d %H:%M:%S']) as ts,
            try_cast(trim(replace({column["utilization.gpu [%]"]}, '%', '')) as double) / 100 as utilization
        from read_csv($path, header = true, names = $names, all_varchar = true, strict_mode = false,
                      null_padding = true)
        """,
        {"path": str(path), "replica": replica_from_filename(path), "names": names},
    )


_DCGM_SAMPLE = re.compile(
    r"^DCGM_FI_DEV_GPU_UTIL\{(?P<labels>[^}]*)\}\s+(?P<value>[-+0-9.eE]+)\s+(?P<timestamp_ms>\d+)\s*$"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def read_dcgm(conn: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """DCGM exporter samples in the Prometheus text format, as scraped with their timestamps:
    `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-..",Hostname="..",pod=".."} 37 1730419200000`
    (percent, milliseconds since the epoch). The replica is the `pod` label, else `Hostname`;
    other metrics and lines without a timestamp are skipped."""
    replicas, gpus, stamps, utilizations = [], [], [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            sample = _DCGM_SAMPLE.match(line.strip())
            if not sample:
                continue
            labels = dict(_LABEL.findall(sample["labels"]))
            replicas.append(labels.get("pod") or labels.get("Hostname"))
            gpus.append(labels.get("UUID") or labels.get("gpu") or "0")
            stamps.append(
                dt.datetime.fromtimestamp(int(sample["timestamp_ms"]) / 1000, dt.timezone.utc).replace(tzinfo=None)
            )
            utilizations.append(float(sample["value"]) / 100)
    conn.register(
        f"{table}_rows",
        pa.table(
            {
                "replica_id": pa.array(replicas, pa.string()),
                "gpu": pa.array(gpus, pa.string()),
                "ts": pa.array(stamps, pa.timestamp("us")),
                "utilization": pa.array(utilizations, pa.float64()),
            }
        ),
    )
    conn.execute(f"create or replace temp table {table} as select * from {table}_rows")
    conn.unregister(f"{table}_rows")


TELEMETRY_READERS = {"nvidia_smi": read_nvidia_smi, "dcgm": read_dcgm}
register("focus", "gpu_billing", read_focus, "FOCUS 1.x cost and usage exports (AWS, GCP, Azure)")
register("gpu_hours_csv", "gpu_billing", read_gpu_hours_csv, "a GPU-hours CSV (day, pool, replica_id, gpu_type, gpu_count, hours, usd)")
register("nvidia_smi", "gpu_telemetry", read_nvidia_smi, "nvidia-smi --query-gpu=... --format=csv logs")
register("dcgm", "gpu_telemetry", read_dcgm, "DCGM exporter samples (Prometheus text with timestamps)")


def telemetry_busy_sql(samples: str) -> str:
    """SQL over `samples` for the day `$day`: per replica, sampled and busy GPU-hours. Each sample stands
    for the time to the next sample of the same GPU, capped at twice the median interval, so a
    gap in the log is not read as busy or idle time."""
    return f"""
        with day_samples as (
            select * from {samples} where ts is not null and utilization between 0 and 1 and ts::date = $day
        ),
        spaced as (
            select *, epoch(lead(ts) over (partition by replica_id, gpu order by ts) - ts) as gap_s
            from day_samples
        ),
        typical as (
            select replica_id, gpu, median(gap_s) as median_gap_s from spaced group by all
        ),
        weighted as (
            select spaced.replica_id, spaced.gpu, spaced.utilization,
                least(coalesce(spaced.gap_s, typical.median_gap_s), 2 * typical.median_gap_s) / 3600.0 as hours
            from spaced join typical using (replica_id, gpu)
        )
        select replica_id, count(distinct gpu) as gpus_seen, count(*) as samples,
            sum(hours) as sampled_gpu_hours, sum(hours * utilization) as busy_gpu_hours
        from weighted group by replica_id
    """
