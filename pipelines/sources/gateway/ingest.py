"""Gateway request logs: read any supported format into canonical records, or a quarantine row.

Every input record ends in exactly one of three places, so a day's lines always add up:
kept (a canonical record), quarantined (with its reason and verbatim text), or counted as a
duplicate delivery of a kept `request_id`.

Files are split into records in Python and parsed in DuckDB. Python owns the byte level
(gzip, BOM, CRLF, invalid UTF-8 caught per line instead of failing the file); DuckDB's
`json_valid` and JSON functions then validate and project a million records a second while
keeping bad lines verbatim. polars' NDJSON reader would fail the whole file on one bad line.

Token semantics are normalised here, per source, to the canonical rule: `input_tokens` counts
ALL prompt tokens, cache reads and cache writes included.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.lake.manifest import InputManifest, file_state, reading_input
from pipelines.lake.partitions import sql_string, write_partition
from pipelines.sources.records import read_file_bytes, text_record
from pipelines.sources.registry import register

RAW_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_no", pa.int64()),  # 1-based line (JSONL) or record number (CSV/JSON exports)
        ("raw", pa.string()),  # verbatim record text; for undecodable bytes, a replacement-decoded copy
        ("read_error", pa.string()),  # set when the record failed before JSON parsing
    ]
)

_BOM = "\ufeff"
_DECODER = json.JSONDecoder()
_JSON_STRUCTURE = re.compile(r'["\[\]{}]')
_JSON_STRING_END = re.compile(r'["\\]')


def read_jsonl(path: Path) -> pa.Table:
    """One record per non-blank line. Blank lines are not records and are not counted."""
    return _jsonl_table(path, *read_file_bytes(path))


def _jsonl_table(path: Path, data: bytes, damage: str | None) -> pa.Table:
    try:
        lines = data.decode("utf-8").split("\n")
        decode_failed: set[int] = set()
    except UnicodeDecodeError:
        lines, decode_failed = [], set()
        for index, chunk in enumerate(data.split(b"\n")):
            try:
                lines.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(chunk.decode("utf-8", errors="replace"))
                decode_failed.add(index)
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][1:]
    # Vectorised: a Python loop over a million lines costs more than the JSON parsing.
    count = len(lines)
    text = pc.utf8_rtrim(pa.array(lines, pa.string()), characters="\r")
    flags = [None] * count
    for index in decode_failed:
        flags[index] = "not_utf8"
    table = pa.table(
        {
            "source_file": pa.array([str(path)] * count, pa.string()),
            "line_no": pa.array(range(1, count + 1), pa.int64()),
            "raw": text,
            "read_error": pa.array(flags, pa.string()),
        },
        schema=RAW_SCHEMA,
    )
    return _with_damage(table.filter(pc.not_equal(pc.utf8_trim_whitespace(text), "")), path, count + 1, damage)


def _with_damage(table: pa.Table, path: Path, line_no: int, damage: str | None) -> pa.Table:
    """Append the record that stands for a damaged file's unreadable rest (it has no text)."""
    if damage is None:
        return table
    return pa.concat_tables([table, _raw_table(path, [line_no], [""], [damage])])


def read_litellm_export(path: Path) -> pa.Table:
    """A `LiteLLM_SpendLogs` export: CSV with a header row, a JSON array (or `{"data": [...]}`),
    or JSON lines. Each row becomes one JSON object record.

    The file name says which (`.csv`, `.json`, `.jsonl`/`.ndjson`, each optionally `.gz`): a
    JSON-lines file whose first line is damaged must not be read as a CSV header or as one
    broken document, which would lose every good line after it. Other names are sniffed."""
    data, damage = read_file_bytes(path)
    text = data.decode("utf-8", errors="surrogateescape").removeprefix(_BOM)
    stripped = text.lstrip()
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_table(path, data, damage)
    if suffix == ".json" or (suffix != ".csv" and stripped[:1] in ("[", "{")):
        if stripped.startswith("["):
            table = _read_json_array(path, stripped)
            return _with_damage(table, path, table.num_rows + 1, damage)
        rows = _page_rows(stripped)
        if rows is None:  # not one `{"data": [...]}` page: JSON lines (a single line included)
            return _jsonl_table(path, data, damage)
        records = [text_record(json.dumps(row, ensure_ascii=False)) for row in rows]
        table = _raw_table(
            path, list(range(1, len(rows) + 1)), [raw for raw, _ in records], [error for _, error in records]
        )
        return _with_damage(table, path, len(rows) + 1, damage)
    numbers, raws, errors = [], [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    number = 0
    for number, row in enumerate(reader, start=1):
        if not any(cell.strip() for cell in row):
            continue
        numbers.append(number)
        if header is None or len(row) != len(header):
            raw, error = text_record(json.dumps(row, ensure_ascii=False))
            raws.append(raw)
            errors.append(error or f"ragged_row:{len(row)}_fields_for_{len(header or [])}_columns")
            continue
        raw, error = text_record(json.dumps(dict(zip(header, row)), ensure_ascii=False))
        raws.append(raw)
        errors.append(error)
    return _with_damage(_raw_table(path, numbers, raws, errors), path, number + 1, damage)


def _page_rows(text: str) -> list | None:
    """The rows of a `{"data": [...]}` page, or None when the text is not one such page."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python parses
        return None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document["data"]
    return None


def _read_json_array(path: Path, text: str) -> pa.Table:
    """A JSON array of rows, read element by element, each kept verbatim: a cut or damaged
    array keeps every row before the damage and quarantines the rest as one record."""
    rows: list[tuple[str, str | None]] = []
    position, expect_row = _skip_space(text, 1), True
    while position < len(text):
        if text[position] == "]":
            position = _skip_space(text, position + 1)
            if position < len(text):
                rows.append((text[position:], "bad_json_document:data after the closing bracket"))
            break
        if not expect_row and text[position] == ",":
            position, expect_row = _skip_space(text, position + 1), True
            continue
        if not expect_row:
            rows.append((text[position:], "bad_json_document:expected ',' or ']' after a row"))
            break
        end = _value_end(text, position)
        if end is None:
            rows.append((text[position:], "bad_json_document:a row is cut or is not JSON"))
            break
        rows.append((text[position:end], None))
        position, expect_row = _skip_space(text, end), False
    else:
        rows.append(("", "bad_json_document:the array is cut before its closing bracket"))
    raws, errors = [], []
    for raw, error in rows:
        raw, read_error = text_record(raw)
        raws.append(raw)
        errors.append(read_error or error)
    return _raw_table(path, list(range(1, len(rows) + 1)), raws, errors)


def _value_end(text: str, position: int) -> int | None:
    """Where the JSON value starting at `position` ends, or None when it does not end.

    Python's parser finds it for a well-formed row. For a malformed object or array, or one
    nested deeper than Python parses (about 1,000 levels), brackets are counted outside
    strings instead: DuckDB validates every row later, so such a row is one quarantined row,
    not the end of the file."""
    try:
        return _DECODER.raw_decode(text, position)[1]
    except (json.JSONDecodeError, RecursionError):
        if text[position] not in "[{":
            return None
    depth, index = 0, position
    while match := _JSON_STRUCTURE.search(text, index):
        index = match.end()
        if match.group() == '"':
            while (inside := _JSON_STRING_END.search(text, index)) and inside.group() == "\\":
                index = inside.end() + 1  # an escaped character
            if inside is None:
                return None
            index = inside.end()
        elif match.group() in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return index
    return None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _raw_table(path: Path, numbers: list[int], raws: list[str], errors: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "source_file": pa.array([str(path)] * len(numbers), pa.string()),
            "line_no": pa.array(numbers, pa.int64()),
            "raw": pa.array(raws, pa.string()),
            "read_error": pa.array(errors, pa.string()),
        },
        schema=RAW_SCHEMA,
    )


READERS = {"canonical": read_jsonl, "litellm_spend_logs": read_litellm_export, "otel_genai": read_jsonl}
for _name, _description in {
    "canonical": "costwatch's canonical JSON Lines (.jsonl, .jsonl.gz)",
    "litellm_spend_logs": "LiteLLM's LiteLLM_SpendLogs table exported as CSV or JSON",
    "otel_genai": "OpenTelemetry spans with gen_ai.* attributes, one JSON object per line",
}.items():
    register(_name, "gateway_logs", READERS[_name], _description)

# Per format: a projection of `records` (raw, j = parsed JSON object or NULL) onto the canonical
# fields, each still JSON (numbers) or VARCHAR (text), so one validation applies to all.
# One json_extract with a list of paths parses each record once; seventeen `->>` would parse it
# seventeen times (7x slower on a million records).
_CANONICAL_PATHS = (
    "request_id",
    "ts",
    "duration_ms",
    "provider",
    "model",
    "feature",
    "user_id",
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
    "gateway_cache_hit",
    "status",
    "pool",
    "replica_id",
    "workload",
    "tags",
)
_CANONICAL_FIELDS = """
    v[1]->>'$' as request_id,
    v[2]->>'$' as ts_text,
    v[3] as duration_json,
    v[4]->>'$' as provider,
    v[5]->>'$' as model,
    v[6]->>'$' as feature,
    v[7]->>'$' as user_id,
    v[8] as input_json,            -- inclusive of cache reads and writes
    v[9] as cached_json,
    v[10] as creation_json,
    v[11] as output_json,
    v[12] as cache_hit_json,
    v[13]->>'$' as status,
    v[14]->>'$' as pool,
    v[15]->>'$' as replica_id,
    v[16]->>'$' as workload,
    v[17] as tags_json
"""
_CANONICAL_EXTRACT = "json_extract(j, [" + ", ".join(f"'$.{name}'" for name in _CANONICAL_PATHS) + "])"

# LiteLLM reports usage the OpenAI way for every provider: `prompt_tokens` includes cached
# tokens, which `metadata.usage_object` breaks out as `cache_read_input_tokens` (Anthropic via
# LiteLLM) or `prompt_tokens_details.cached_tokens` (OpenAI), plus `cache_creation_input_tokens`.
# CSV exports carry every cell as text, so numbers arrive as strings of digits.
_LITELLM_FIELDS = """
    j->>'request_id' as request_id,
    j->>'startTime' as ts_text,
    coalesce(
        _num(j->'request_duration_ms'),
        to_json(round(epoch_ms(_timestamp(j->>'endTime')) - epoch_ms(_timestamp(j->>'startTime'))))
    ) as duration_json,
    coalesce(nullif(j->>'custom_llm_provider', ''),
             case when contains(j->>'model', '/') then split_part(j->>'model', '/', 1) end) as provider,
    case when contains(j->>'model', '/') then split_part(j->>'model', '/', 2) else j->>'model' end as model,
    coalesce(nullif(_meta(j)->'spend_logs_metadata'->>'feature', ''),
             nullif(regexp_extract(j->>'request_tags', '"feature:([^"]+)"', 1), '')) as feature,
    coalesce(nullif(j->>'end_user', ''), nullif(j->>'user', '')) as user_id,
    _num(j->'prompt_tokens') as input_json,
    coalesce(_num(_meta(j)->'usage_object'->'cache_read_input_tokens'),
             _num(_meta(j)->'usage_object'->'prompt_tokens_details'->'cached_tokens')) as cached_json,
    _num(_meta(j)->'usage_object'->'cache_creation_input_tokens') as creation_json,
    _num(j->'completion_tokens') as output_json,
    case lower(coalesce(j->>'cache_hit', ''))
        when 'true' then 'true'::json when 'false' then 'false'::json when '' then null
        else j->'cache_hit' end as cache_hit_json,
    case lower(coalesce(j->>'status', 'success'))
        when 'success' then 'ok' when 'failure' then 'error' else j->>'status' end as status,
    null::varchar as pool,
    null::varchar as replica_id,
    null::varchar as workload,
    json_object('team_id', nullif(j->>'team_id', ''), 'request_tags', j->>'request_tags',
                'api_key_alias', _meta(j)->>'user_api_key_alias') as tags_json
"""

# OpenTelemetry GenAI spans, one JSON span per line as the SDKs' JSON exporters write them
# (`context`, `start_time`, `end_time`, `status`, flat `attributes`). The semantic conventions
# say gen_ai.usage.input_tokens SHOULD include gen_ai.usage.cache_read.input_tokens and
# gen_ai.usage.cache_creation.input_tokens: the canonical rule already.
_OTEL_ATTRIBUTES = (
    "gen_ai.response.id",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "feature",
    "app.feature",
    "user.id",
    "enduser.id",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.conversation.id",
)
_OTEL_EXTRACT = "json_extract(j->'attributes', [" + ", ".join(f"'$.\"{name}\"'" for name in _OTEL_ATTRIBUTES) + "])"
_OTEL_FIELDS = """
    coalesce(v[1]->>'$', j->'context'->>'span_id') as request_id,
    j->>'start_time' as ts_text,
    to_json(round(epoch_ms(_timestamp(j->>'end_time')) - epoch_ms(_timestamp(j->>'start_time')))) as duration_json,
    coalesce(v[2]->>'$', v[3]->>'$') as provider,
    coalesce(v[4]->>'$', v[5]->>'$') as model,
    coalesce(v[6]->>'$', v[7]->>'$') as feature,
    coalesce(v[8]->>'$', v[9]->>'$') as user_id,
    v[10] as input_json,
    v[11] as cached_json,
    v[12] as creation_json,
    v[13] as output_json,
    null::json as cache_hit_json,
    case when upper(j->'status'->>'status_code') = 'ERROR' then 'error' else 'ok' end as status,
    null::varchar as pool,
    null::varchar as replica_id,
    null::varchar as workload,
    json_object('trace_id', j->'context'->>'trace_id', 'span_name', j->>'name',
                'conversation_id', v[14]->>'$') as tags_json
"""

# Per format: the fields that must be text (or a number, as ids often are), never a JSON object
# or array: `->>` would otherwise turn `{"a": 1}` into the text of a request id or a model.
TEXT_FIELDS = {
    "canonical": {
        "request_id": "v[1]",
        "ts": "v[2]",
        "provider": "v[4]",
        "model": "v[5]",
        "feature": "v[6]",
        "user_id": "v[7]",
        "status": "v[13]",
        "pool": "v[14]",
        "replica_id": "v[15]",
        "workload": "v[16]",
    },
    "litellm_spend_logs": {
        "request_id": "j->'request_id'",
        "startTime": "j->'startTime'",
        "endTime": "j->'endTime'",
        "model": "j->'model'",
        "custom_llm_provider": "j->'custom_llm_provider'",
        "end_user": "j->'end_user'",
        "user": "j->'user'",
        "status": "j->'status'",
    },
    "otel_genai": {
        "gen_ai.response.id": "v[1]",
        "context.span_id": "j->'context'->'span_id'",
        "start_time": "j->'start_time'",
        "end_time": "j->'end_time'",
        "gen_ai.provider.name": "v[2]",
        "gen_ai.system": "v[3]",
        "gen_ai.response.model": "v[4]",
        "gen_ai.request.model": "v[5]",
    },
}


def _text_type_error(fields: dict[str, str]) -> str:
    cases = " ".join(
        f"when json_type({expr}) in ('OBJECT', 'ARRAY') then 'bad_type:{name}'" for name, expr in fields.items()
    )
    return f"case {cases} end as text_type_error"


FIELD_SQL = {"canonical": _CANONICAL_FIELDS, "litellm_spend_logs": _LITELLM_FIELDS, "otel_genai": _OTEL_FIELDS}
# What each format's field SQL calls `v`: the values extracted in one parse, or nothing.
EXTRACT_SQL = {"canonical": _CANONICAL_EXTRACT, "litellm_spend_logs": "null", "otel_genai": _OTEL_EXTRACT}

_MACROS = r"""
create or replace temp macro _meta(j) as
    case when json_type(j->'metadata') = 'VARCHAR' and json_valid(j->>'metadata')
         then (j->>'metadata')::json else j->'metadata' end;
-- A count exported as text (CSV cells): digits -> a JSON number (leading zeros allowed, which
-- JSON itself forbids); an empty cell -> absent; anything else stays text, a bad type.
create or replace temp macro _num(x) as
    case when json_type(x) = 'VARCHAR' and trim(x->>'$') = '' then null
         when json_type(x) = 'VARCHAR' and regexp_full_match(trim(x->>'$'), '-?[0-9]{1,30}')
         then to_json(trim(x->>'$')::hugeint) else x end;
-- A request time: text that starts as a date (YYYY-MM-DD) and DuckDB reads, in years 1-9999.
-- DuckDB alone also reads 'infinity', 'epoch' and years past 9999, none a real request time
-- and none a day a partition can hold.
create or replace temp macro _timestamp(t) as
    case when regexp_matches(t, '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}')
              and year(try_cast(t as timestamptz) at time zone 'UTC') between 1 and 9999
         then try_cast(t as timestamptz) end;
-- A token count: JSON integer (or integral double) -> BIGINT; absent -> 0; else NULL (bad type).
create or replace temp macro _tokens(x) as
    case when x is null or json_type(x) = 'NULL' then 0
         when json_type(x) in ('BIGINT', 'UBIGINT') then try_cast(x::varchar as bigint)
         when json_type(x) = 'DOUBLE' and try_cast(x::varchar as double) = floor(try_cast(x::varchar as double))
              and abs(try_cast(x::varchar as double)) < 9e15
              then try_cast(x::varchar as double)::bigint
         end;
create or replace temp macro _token_type_ok(x) as
    x is null or json_type(x) = 'NULL' or _tokens(x) is not null;
"""


def parse_records(conn: duckdb.DuckDBPyConnection, raw: pa.Table, fmt: str, view: str) -> None:
    """Create temp view `view` over `raw`: one row per record with canonical typed columns,
    `day` (UTC) where the timestamp is known, and `reason` (NULL for a good record)."""
    conn.execute("set TimeZone = 'UTC'")
    conn.execute(_MACROS)
    table_name = f"{view}_raw"
    conn.register(table_name, raw)
    conn.execute(
        f"""
        create or replace temp view {view} as
        with records as (
            select *, case when read_error is null and json_valid(raw) then raw::json end as parsed
            from {table_name}
        ),
        objects as (
            select *, case when json_type(parsed) = 'OBJECT' then parsed end as j from records
        ),
        extracted as (
            select *, {EXTRACT_SQL[fmt]} as v from objects
        ),
        fields as (
            select source_file, line_no, raw, read_error, parsed, j,
                {FIELD_SQL[fmt]},
                {_text_type_error(TEXT_FIELDS[fmt])}
            from extracted
        ),
        typed as (
            select *,
                _timestamp(ts_text) as ts,
                _tokens(input_json) as input_tokens,
                _tokens(cached_json) as cached_input_tokens,
                _tokens(creation_json) as cache_creation_input_tokens,
                _tokens(output_json) as output_tokens,
                case when duration_json is null or json_type(duration_json) = 'NULL' then null
                     else _tokens(duration_json) end as duration_ms,
                case when cache_hit_json is null or json_type(cache_hit_json) = 'NULL' then false
                     when json_type(cache_hit_json) = 'BOOLEAN' then cache_hit_json::varchar = 'true'
                     end as gateway_cache_hit
            from fields
        )
        select
            source_file, line_no, raw,
            request_id, ts, (ts at time zone 'UTC')::date as day,
            duration_ms, provider, model, feature, user_id,
            input_tokens, cached_input_tokens, cache_creation_input_tokens, output_tokens,
            gateway_cache_hit, status, pool, replica_id, workload,
            case when tags_json is null or json_type(tags_json) = 'NULL' then null
                 else tags_json::varchar end as tags,
            case
                when read_error is not null then read_error
                when parsed is null then 'bad_json'
                when j is null then 'not_an_object'
                when text_type_error is not null then text_type_error
                when coalesce(trim(request_id), '') = '' then 'missing_request_id'
                when ts_text is null then 'missing_ts'
                when ts is null then 'bad_ts'
                when coalesce(trim(model), '') = '' then 'missing_model'
                when not _token_type_ok(input_json) then 'bad_type:input_tokens'
                when not _token_type_ok(cached_json) then 'bad_type:cached_input_tokens'
                when not _token_type_ok(creation_json) then 'bad_type:cache_creation_input_tokens'
                when not _token_type_ok(output_json) then 'bad_type:output_tokens'
                when not _token_type_ok(duration_json) then 'bad_type:duration_ms'
                when gateway_cache_hit is null then 'bad_type:gateway_cache_hit'
                when input_tokens < 0 then 'negative:input_tokens'
                when cached_input_tokens < 0 then 'negative:cached_input_tokens'
                when cache_creation_input_tokens < 0 then 'negative:cache_creation_input_tokens'
                when output_tokens < 0 then 'negative:output_tokens'
                when duration_ms < 0 then 'negative:duration_ms'
                when cached_input_tokens > input_tokens then 'cached_exceeds_input'
                -- subtraction, not addition: counts near the BIGINT limit must not overflow
                when cache_creation_input_tokens > input_tokens - cached_input_tokens
                    then 'cache_reads_and_writes_exceed_input'
                when status is not null and status not in ('ok', 'error') then 'bad_status'
                when workload is not null and workload not in ('interactive', 'batch') then 'bad_workload'
            end as reason
        from typed
        """
    )


def assign_days(conn: duckdb.DuckDBPyConnection, view: str, table: str, fallback_day: dt.date) -> None:
    """Materialise `view` as temp table `table` with `assigned_day` on every record.

    A record with a readable timestamp belongs to its UTC day, good or bad. One without (bad
    JSON, a missing or broken `ts`) is counted on the day of the nearest good record before it in the same file (after it when
    it is the first), and on `fallback_day` when its file holds no good record at all. This
    puts every line on exactly one day, so per-day counts add up to the file.
    """
    conn.execute(
        f"""
        create or replace temp table {table} as
        select *,
            coalesce(
                day,
                last_value(case when reason is null then day end ignore nulls)
                    over (partition by source_file order by line_no
                          rows between unbounded preceding and current row),
                first_value(case when reason is null then day end ignore nulls)
                    over (partition by source_file order by line_no
                          rows between current row and unbounded following),
                $fallback_day::date
            ) as assigned_day
        from {view}
        """,
        {"fallback_day": fallback_day},
    )


# ---------------------------------------------------------------------------------------------
# One day's ingest


CANONICAL_COLUMNS = (
    "request_id, ts, duration_ms, provider, model, feature, user_id, input_tokens, "
    "cached_input_tokens, cache_creation_input_tokens, output_tokens, gateway_cache_hit, "
    "status, pool, replica_id, workload, tags"
)

MANIFEST_NAME = "gateway_logs"


@dataclass
class DayIngest:
    """What a day's ingest read and where every line went. lines = kept + quarantined + duplicates."""

    day: dt.date
    files_read: list[str] = field(default_factory=list)
    files_skipped: int = 0
    lines: int = 0
    kept: int = 0
    quarantined: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0  # repeated request_id whose fields differ from the kept copy
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    per_file: list[dict] = field(default_factory=list)
    stale_days: list[str] = field(default_factory=list)  # other ingested days whose files changed


def _load_file(conn: duckdb.DuckDBPyConnection, path: Path, fmt: str, table: str, state: dict) -> list[str]:
    """Parse a file into temp table `table` (one row per record, with `assigned_day`); returns the
    days it holds."""
    with reading_input("gateway_logs", path, fmt):
        raw = READERS[fmt](path)
    parse_records(conn, raw, fmt, f"{table}_parsed")
    fallback = dt.datetime.fromtimestamp(state["mtime_ns"] / 1e9, dt.timezone.utc).date()
    assign_days(conn, f"{table}_parsed", table, fallback)
    return [
        day.isoformat() for (day,) in conn.execute(f"select distinct assigned_day from {table} order by 1").fetchall()
    ]


def stale_days(conn: duckdb.DuckDBPyConnection, lake_dir: Path, files: list[tuple[Path, str]]) -> list[dt.date]:
    """Ingested days whose input changed since they ran. Reads only new or changed files."""
    manifest = InputManifest(lake_dir, MANIFEST_NAME)
    manifest.forget_missing({str(path) for path, _ in files})
    for path, fmt in files:
        with reading_input("gateway_logs", path, fmt):
            state = file_state(path)
        if not manifest.is_current(str(path), state):
            manifest.learn(str(path), state, fmt, _load_file(conn, path, fmt, "learn_days", state))
            conn.execute("drop table learn_days")
    manifest.save()
    return sorted(dt.date.fromisoformat(day) for day in manifest.stale)


def ingest_day(
    conn: duckdb.DuckDBPyConnection, lake_dir: Path, files: list[tuple[Path, str]], day: dt.date
) -> DayIngest:
    """Read every file that can hold `day`, and write the day's partitions of
    `gateway_requests`, `gateway_quarantine` and `gateway_ingest_audit` to the lake."""
    manifest = InputManifest(lake_dir, MANIFEST_NAME)
    manifest.forget_missing({str(path) for path, _ in files})
    result = DayIngest(day=day)
    day_tables = []
    for index, (path, fmt) in enumerate(files):
        with reading_input("gateway_logs", path, fmt):
            name, state = str(path), file_state(path)
        if not manifest.may_hold(name, state, day):
            result.files_skipped += 1
            continue
        table = f"file_{index}"
        days_held = _load_file(conn, path, fmt, table, state)
        manifest.learn(name, state, fmt, days_held)
        if day.isoformat() in days_held:
            result.files_read.append(name)
            day_tables.append((table, fmt))
        else:
            conn.execute(f"drop table {table}")

    if not day_tables:
        # No file holds the day: an empty day with the same columns as a real one.
        parse_records(conn, RAW_SCHEMA.empty_table(), "canonical", "no_file_parsed")
        assign_days(conn, "no_file_parsed", "no_file", day)
        day_tables.append(("no_file", "canonical"))
    union = " union all ".join(
        f"select *, {sql_string(fmt)} as source_format from {table} where assigned_day = $day"
        for table, fmt in day_tables
    )
    conn.execute(
        f"""
        create or replace temp table day_records as
        select *,
            case when reason is null then
                row_number() over (partition by case when reason is null then request_id end
                                   order by source_file, line_no)
            end as delivery
        from ({union})
        """,
        {"day": day},
    )
    params = {}
    kept = write_partition(
        conn,
        f"select {CANONICAL_COLUMNS}, source_format, source_file, line_no from day_records "
        "where reason is null and delivery = 1 order by ts, request_id",
        lake_dir,
        "gateway_requests",
        day,
        params,
    )
    quarantined = write_partition(
        conn,
        "select source_file, line_no, source_format, reason, raw from day_records "
        "where reason is not null order by source_file, line_no",
        lake_dir,
        "gateway_quarantine",
        day,
        params,
    )
    conn.execute(
        """
        create or replace temp table day_audit as
        select source_file, source_format,
            count(*) as lines,
            count(*) filter (where reason is null and delivery = 1) as kept,
            count(*) filter (where reason is not null) as quarantined,
            count(*) filter (where delivery > 1) as duplicates
        from day_records group by all order by source_file
        """
    )
    write_partition(conn, "select * from day_audit", lake_dir, "gateway_ingest_audit", day, params)
    counts = conn.execute(
        """
        with firsts as (select * from day_records where delivery = 1),
        repeats as (select * from day_records where delivery > 1)
        select
            (select count(*) from day_records),
            (select count(*) from repeats),
            (select count(*) from repeats r join firsts f using (request_id)
             where (r.ts, r.model, r.input_tokens, r.cached_input_tokens, r.cache_creation_input_tokens,
                    r.output_tokens, r.gateway_cache_hit)
                   is distinct from
                   (f.ts, f.model, f.input_tokens, f.cached_input_tokens, f.cache_creation_input_tokens,
                    f.output_tokens, f.gateway_cache_hit))
        """
    ).fetchone()
    result.lines, result.duplicates, result.conflicting_duplicates = counts
    result.kept, result.quarantined = kept, quarantined
    result.quarantine_by_reason = dict(
        conn.execute(
            "select reason, count(*) from day_records where reason is not null group by 1 order by 2 desc, 1"
        ).fetchall()
    )
    result.per_file = [
        dict(zip(("source_file", "lines", "kept", "quarantined", "duplicates"), row))
        for row in conn.execute(
            "select source_file, sum(lines), sum(kept), sum(quarantined), sum(duplicates) "
            "from day_audit group by 1 order by 1"
        ).fetchall()
    ]
    for table, _ in day_tables:
        conn.execute(f"drop table {table}")
    conn.execute("drop table day_records")
    conn.execute("drop table day_audit")

    manifest.mark_ingested(day)
    manifest.save()
    result.stale_days = sorted(manifest.stale)
    return result
