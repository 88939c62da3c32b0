"""Turn the generator's canonical gateway logs into what other producers write for the same calls,
so the format benchmarks read realistic files of any size:

- `litellm_spend_logs`: a `LiteLLM_SpendLogs` export as psql's `\\copy ... csv header` writes it,
  column for column as `fixtures/gateway/litellm_real_spend_logs.csv` (rows LiteLLM 1.110.2 built
  itself). `metadata` is that fixture's JSON with each call's usage, cost breakdown, key, team and
  feature, and, as LiteLLM logs it, the catalog entry it priced with (`model_map_information`,
  about 12 KB a row: most of the file). OpenAI-shaped usage for every provider but Anthropic, whose
  rows carry the Anthropic usage object of the fixture's Anthropic row. One row per request id.
- `otlp_json`: OTLP JSON spans, one `ExportTraceServiceRequest` per line as the SDK's file exporter
  writes them (`fixtures/gateway/otel_spans.otlp.jsonl`); SQL in `bench/sql/otlp_json_requests.sql`.

Malformed canonical lines are left out (a producer writes none of those).

    .venv/bin/python bench/convert.py {litellm_spend_logs,otlp_json} --out FILE CANONICAL_FILE...
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CATALOG, REPO, SQL_DIR  # noqa: E402

LITELLM_FIXTURE = REPO / "fixtures" / "gateway" / "litellm_real_spend_logs.csv"
BATCH_ROWS = 50_000


def _connect() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("set TimeZone = 'UTC'")
    records = (SQL_DIR / "canonical_records.sql").read_text(encoding="utf-8")
    conn.execute(f"create temp macro canonical_records(files) as table {records}")
    prices = (SQL_DIR / "catalog_prices.sql").read_text(encoding="utf-8")
    conn.execute(f"create temp macro catalog_prices(catalog_path) as table {prices}")
    return conn


def otlp_json(files: list[Path], out: Path) -> int:
    """Write the spans of `files` to `out` (OTLP JSON lines); return the spans written."""
    with _connect() as conn:
        conn.execute((SQL_DIR / "otlp_json_macros.sql").read_text(encoding="utf-8"))
        requests = (SQL_DIR / "otlp_json_requests.sql").read_text(encoding="utf-8")
        conn.execute(f"create temp macro otlp_requests(files) as table {requests}")
        # Streamed from the files to `out` by COPY (no parameters there: the paths are literals).
        paths = ", ".join(f"'{_quoted(file)}'" for file in files)
        return conn.execute(f"copy (from otlp_requests([{paths}])) to '{_quoted(out)}' (format json)").fetchone()[0]


def litellm_spend_logs(files: list[Path], out: Path) -> int:
    """Write the rows of `files` to `out` (LiteLLM_SpendLogs CSV export); return the rows written."""
    with open(LITELLM_FIXTURE, newline="", encoding="utf-8") as fixture:
        reader = csv.reader(fixture)
        header = next(reader)
        real_rows = [dict(zip(header, row, strict=True)) for row in reader]
    metadata_at = header.index("metadata")
    templates = MetadataTemplates(real_rows)
    written = 0
    with _connect() as conn, open(out, "w", encoding="utf-8") as export:
        conn.execute((SQL_DIR / "litellm_spend_logs_macros.sql").read_text(encoding="utf-8"))
        query = (SQL_DIR / "litellm_spend_logs_rows.sql").read_text(encoding="utf-8")
        result = conn.execute(query, {"files": [str(file) for file in files], "catalog": str(CATALOG)})
        column = {description[0]: index for index, description in enumerate(result.description)}
        scalar_columns = len(header) - 1  # every column but metadata, in the table's order
        export.write(",".join(header) + "\n")
        while batch := result.fetchmany(BATCH_ROWS):
            lines = []
            for row in batch:
                cells = [_csv_cell(value) for value in row[:scalar_columns]]
                cells.insert(metadata_at, templates.render(row, column))
                lines.append(",".join(cells))
            export.write("\n".join(lines) + "\n")
            written += len(batch)
    return written


def _csv_cell(value) -> str:
    """A cell as psql's csv format writes it: quoted (quotes doubled) only when it must be."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    if text == "" or any(char in text for char in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


class MetadataTemplates:
    """LiteLLM's `metadata` JSON per (usage shape, catalog entry), pre-rendered once as a quoted CSV
    cell with `%(name)s` holes for the per-call values, so a row costs one string format, not a
    12 KB json.dumps and quoting."""

    def __init__(self, real_rows: list[dict]) -> None:
        self.openai = json.loads(next(row for row in real_rows if row["model"] == "gpt-4o-mini")["metadata"])
        self.anthropic = json.loads(
            next(row for row in real_rows if row["custom_llm_provider"] == "anthropic")["metadata"]
        )
        self.catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
        self.skeleton = self.openai["model_map_information"]["model_map_value"]
        self.rendered: dict[tuple[str, str | None], str] = {}

    def render(self, row: tuple, column: dict[str, int]) -> str:
        shape = "anthropic" if row[column["provider"]] == "anthropic" else "openai"
        key = (shape, row[column["price_key"]])
        template = self.rendered.get(key)
        if template is None:
            template = self.rendered[key] = self._template(*key)
        prompt, completion = row[column["prompt_tokens"]], row[column["completion_tokens"]]
        cached, creation = row[column["cached_input_tokens"]], row[column["cache_creation_input_tokens"]]
        creation_1h, reasoning = row[column["cache_creation_1h_input_tokens"]], row[column["reasoning_tokens"]]
        team = row[column["team_name"]] or "none"
        fields = {
            "prompt": prompt,
            "completion": completion,
            "total": row[column["total_tokens"]],
            "cached": cached,
            "creation": creation,
            "creation_1h": creation_1h,
            "creation_5m": creation - creation_1h,
            "text": prompt - cached - creation,
            "completion_text": completion - reasoning,
            "audio_in": row[column["audio_input_tokens"]],
            "audio_out": row[column["audio_output_tokens"]],
            "reasoning": reasoning,
            "input_cost": repr(float(row[column["input_usd"]])),
            "cache_read_cost": repr(float(row[column["cache_read_usd"]])),
            "output_cost": repr(float(row[column["output_usd"]])),
            "total_cost": repr(float(row[column["spend"]])),
            # JSON strings inside a quoted CSV cell: their quotes doubled
            "service_tier": _cell_json(row[column["service_tier"]]),
            "call_id": _cell_json(row[column["litellm_call_id"]]),
            "alias": _cell_json(f"svc-{team}"),
            "team": _cell_json(f"team-{team}"),
            "key_user": _cell_json(row[column["user"]]),
            "feature": _cell_json(row[column["feature"]]),
        }
        return template % fields

    def _template(self, shape: str, price_key: str | None) -> str:
        metadata = copy.deepcopy(self.anthropic if shape == "anthropic" else self.openai)
        if shape == "anthropic":
            usage = metadata["usage_object"]
            usage.update(
                total_tokens=_hole("total"),
                prompt_tokens=_hole("prompt"),
                completion_tokens=_hole("completion"),
                service_tier=_hole("service_tier"),
                cache_read_input_tokens=_hole("cached"),
                cache_creation_input_tokens=_hole("creation"),
            )
            usage["prompt_tokens_details"].update(
                text_tokens=_hole("text"),
                cached_tokens=_hole("cached"),
                cache_write_tokens=_hole("creation"),
                cache_creation_tokens=_hole("creation"),
            )
            usage["prompt_tokens_details"]["cache_creation_token_details"].update(
                ephemeral_1h_input_tokens=_hole("creation_1h"), ephemeral_5m_input_tokens=_hole("creation_5m")
            )
            usage["completion_tokens_details"].update(
                text_tokens=_hole("completion_text"), reasoning_tokens=_hole("reasoning")
            )
            metadata["additional_usage_values"] = {
                key: value
                for key, value in usage.items()
                if key not in ("total_tokens", "prompt_tokens", "completion_tokens")
            }
            metadata["cost_breakdown"]["cache_creation_cost"] = 0.0
        else:
            usage = {
                "total_tokens": _hole("total"),
                "prompt_tokens": _hole("prompt"),
                "completion_tokens": _hole("completion"),
                "prompt_tokens_details": {"audio_tokens": _hole("audio_in"), "cached_tokens": _hole("cached")},
                "completion_tokens_details": {
                    "audio_tokens": _hole("audio_out"),
                    "reasoning_tokens": _hole("reasoning"),
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            metadata["usage_object"] = usage
            metadata["additional_usage_values"] = {
                "prompt_tokens_details": usage["prompt_tokens_details"],
                "completion_tokens_details": usage["completion_tokens_details"],
            }
            metadata["cost_breakdown"]["service_tier"] = _hole("service_tier")
        metadata["cost_breakdown"].update(
            input_cost=_hole("input_cost"),
            output_cost=_hole("output_cost"),
            total_cost=_hole("total_cost"),
            original_cost=_hole("total_cost"),
            cache_read_cost=_hole("cache_read_cost"),
        )
        metadata.update(
            litellm_call_id=_hole("call_id"),
            user_api_key_alias=_hole("alias"),
            user_api_key_team_id=_hole("team"),
            user_api_key_user_id=_hole("key_user"),
            spend_logs_metadata={"feature": _hole("feature")},
        )
        metadata.pop("litellm_overhead_time_ms", None)
        metadata["model_map_information"] = self._model_map(price_key)
        text = json.dumps(_jsonb_order(metadata)).replace("%", "%%").replace('"', '""')
        for name in HOLES:
            text = text.replace(json.dumps(_hole(name)).replace('"', '""'), f"%({name})s")
        return f'"{text}"'

    def _model_map(self, price_key: str | None) -> dict | None:
        """The catalog entry LiteLLM priced the call with, in the shape its logging writes: every
        field of its model-info type (the fixture's keys, null when the entry lacks it) plus the
        entry's own. None for a model the catalog does not know (LiteLLM logs no entry then)."""
        if price_key is None:
            return None
        entry = self.catalog[price_key]
        value = {key: None for key in self.skeleton} | {key: item for key, item in entry.items()}
        value["key"] = price_key
        return {"model_map_key": price_key.split("/")[-1], "model_map_value": value}


HOLES = (
    "prompt completion total cached creation creation_1h creation_5m text completion_text audio_in audio_out "
    "reasoning input_cost cache_read_cost output_cost total_cost service_tier call_id alias team key_user feature"
).split()


def _cell_json(value) -> str:
    return json.dumps(value).replace('"', '""')


def _hole(name: str) -> str:
    return f"@@{name}@@"


def _jsonb_order(value):
    """Keys in PostgreSQL jsonb's output order (shorter keys first, then bytewise), as psql
    exports a jsonb column."""
    if isinstance(value, dict):
        return {
            key: _jsonb_order(value[key]) for key in sorted(value, key=lambda key: (len(key.encode()), key.encode()))
        }
    if isinstance(value, list):
        return [_jsonb_order(item) for item in value]
    return value


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


CONVERTERS = {"litellm_spend_logs": litellm_spend_logs, "otlp_json": otlp_json}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("format", choices=sorted(CONVERTERS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    written = CONVERTERS[args.format](args.files, args.out)
    print(f"wrote {written:,} {args.format} records to {args.out}")


if __name__ == "__main__":
    main()
