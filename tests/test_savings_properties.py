"""Properties of the savings levers on generated calls (hypothesis), run by the engine on the
prices a real pipeline run resolved from the current LiteLLM catalog.

For any day of calls: every lever's dollars lie between 0 and what the calls in its scope cost
(prompt caching may cost more than it saves: its simulated saving is at most the calls' cost, and
the writes nobody read at most what the writes cost); every counterfactual price is >= 0; a wider
"easy" threshold never lowers the routing saving (each sibling here is cheaper on every token kind);
the samples and the eval kit name only calls in scope, at most 5, and at most 2 per kit cell; and
running a day again gives the same rows.

Each example is a fresh DuckDB file holding the pipeline's own `stg_prices` rows and the generated
calls priced by `price_calls` (as `fct_requests` prices them) into `int_billed_calls`; the models
are the real SQL files, materialized by `pipelines.models.engine.run_model`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import open_project, request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pricing import CURRENT_CATALOG
from test_savings import LEVERS_PER_CALL

from pipelines.models.engine import DayRange, load_models, prepare_session, run_model

DAY = dt.date(2026, 11, 20)
SETTINGS = {
    "duplicate_window_s": 60.0,
    "truncation_retry_window_s": 120.0,
    "gateway_cache_ttl_s": 86_400.0,
    "routes": '{"gpt-4o": "gpt-4o-mini", "claude-sonnet-4-5": "claude-haiku-4-5"}',
    "easy_max_input_tokens": 1500,
    "easy_max_output_tokens": 150,
    "service_accounts": '["u2"]',
    "pseudonymise_user_id": False,
    "user_key_inner_pad": None,
    "user_key_outer_pad": None,
}
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")]
PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def prices(tmp_path_factory) -> Path:
    """A DuckDB file holding the stg_prices rows a one-day pipeline run resolved."""
    root = tmp_path_factory.mktemp("savings_properties")
    with open_project(root) as project:
        project.write_config(prices={"catalog": str(CURRENT_CATALOG), "effective_from": "2025-09-01"})
        project.write_jsonl(
            "calls.jsonl", [request("r1", f"{DAY}T00:00:00Z", "gpt-4o", input_tokens=1, output_tokens=1)]
        )
        project.run_day(DAY.isoformat())
        out = root / "prices.duckdb"
        with duckdb.connect(str(out)) as conn:
            conn.execute("attach $path as wh (read_only)", {"path": str(project.warehouse)})
            conn.execute("create table stg_prices as select * from wh.stg_prices")
            conn.execute(
                "create table calls_schema as select * exclude (billed_service_tier, billed_price_tier,"
                " billed_pricing_basis, billed_cost_usd, billed_charges) from wh.int_billed_calls limit 0"
            )
        return out


@st.composite
def calls(draw) -> list[dict]:
    """A day of calls: a few users and features repeating a few prompts, of every size and kind."""
    rows = []
    for n in range(draw(st.integers(1, 40))):
        provider, model = draw(st.sampled_from(MODELS))
        input_tokens = draw(st.sampled_from([10, 700, 1_400, 1_500, 1_501, 4_000, 30_000, 210_000]))
        cached = draw(st.integers(0, input_tokens)) if draw(st.booleans()) else 0
        writes = draw(st.integers(0, input_tokens - cached)) if provider == "anthropic" else 0
        writes_1h = draw(st.integers(0, writes))
        output_tokens = draw(st.sampled_from([0, 50, 150, 151, 300, 2_000]))
        status = draw(st.sampled_from(["ok", "ok", "ok", "error"]))
        prefix = draw(st.sampled_from([None, "p1", "p2"]))
        rows.append(
            {
                "request_id": f"r{n}",
                "day": DAY,
                # Four minutes of traffic: repeats within the duplicate and retry windows happen.
                "ts": dt.datetime.combine(DAY, dt.time(12)) + dt.timedelta(seconds=draw(st.integers(0, 240))),
                "feature": draw(st.sampled_from(["chat", "rag"])),
                "user_id": draw(st.sampled_from(["u1", "u2"])),
                "provider": provider,
                "model": model,
                "service_tier": draw(st.sampled_from(["standard", "priority"])) if provider == "openai" else "standard",
                "workload": draw(st.sampled_from([None, "batch"])),
                "status": status,
                "gateway_cache_hit": draw(st.booleans()) and status == "ok",
                "input_tokens": input_tokens,
                "uncached_input_tokens": input_tokens - cached - writes,
                "cached_input_tokens": cached,
                "cache_creation_5m_input_tokens": writes - writes_1h,
                "cache_creation_1h_input_tokens": writes_1h,
                "audio_input_tokens": 0,
                "output_tokens": output_tokens,
                "reasoning_tokens": draw(st.integers(0, output_tokens)) if model == "gpt-4o" else 0,
                "audio_output_tokens": 0,
                "web_search_requests": 0,
                "context_tokens": input_tokens,
                "finish_reason": draw(st.sampled_from(["stop", "length"])) if status == "ok" else None,
                "prompt_hash": draw(st.sampled_from([None, "h1", "h2", "h3"])),
                "prefix_hashes": None if prefix is None else [{"tokens": min(1_024, input_tokens), "hash": prefix}],
            }
        )
    return rows


def _day_of(conn: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """int_billed_calls for the generated calls: each priced by price_calls, as fct_requests is."""
    conn.execute("create table generated as select * from calls_schema")
    columns = list(rows[0])
    conn.execute(
        f"insert into generated by name select {', '.join(f'unnest(?) as {name}' for name in columns)}",  # noqa: S608 (names from the strategy above)
        [[row[name] for row in rows] for name in columns],
    )
    conn.execute(
        "create temp table priced as select request_id, priced_service_tier, price_tier, pricing_basis, cost_usd,"
        " charges from price_calls(generated, $day, $day)",
        {"day": DAY},
    )
    conn.execute(
        "create table int_billed_calls as select generated.*, priced.priced_service_tier as billed_service_tier,"
        " priced.price_tier as billed_price_tier, priced.pricing_basis as billed_pricing_basis,"
        " priced.cost_usd as billed_cost_usd, priced.charges as billed_charges"
        " from generated inner join priced using (request_id)"
    )


def _run(conn: duckdb.DuckDBPyConnection, lake: Path, name: str) -> list[tuple]:
    run_model(conn, load_models()[name], lake, DayRange.of(DAY), SETTINGS)
    return conn.execute(f"select * from {name} order by all").fetchall()  # noqa: S608 (a model's name)


def _dicts(conn: duckdb.DuckDBPyConnection, name: str) -> list[dict]:
    cursor = conn.execute(f"select * from {name}")  # noqa: S608 (a model's name)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@PROPERTY_SETTINGS
@given(rows=calls())
def test_every_lever_lies_between_nothing_and_what_its_calls_cost(prices, tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("example")
    path = folder / "warehouse.duckdb"
    path.write_bytes(prices.read_bytes())
    with duckdb.connect(str(path)) as conn:
        prepare_session(conn)  # price_calls, before the calls are priced
        _day_of(conn, rows)
        # The per-call models first: their marts add up their rows.
        efficiency_calls = _run(conn, folder / "lake", "int_token_efficiency_calls")
        efficiency = _run(conn, folder / "lake", "fct_token_efficiency_daily")
        fit_calls = _run(conn, folder / "lake", "int_model_fit_calls")
        fit = _run(conn, folder / "lake", "fct_model_fit_daily")
        batch_calls = _run(conn, folder / "lake", "int_batch_calls")
        batch = _run(conn, folder / "lake", "fct_batch_opportunity_daily")
        cache_calls = _run(conn, folder / "lake", "int_prompt_cache_calls")
        cache = _run(conn, folder / "lake", "fct_prompt_cache_opportunity_daily")
        billed = {
            (feature, model): ids
            for feature, model, ids in conn.execute(
                "select feature, model, list(request_id) from int_billed_calls"
                " where status = 'ok' and not gateway_cache_hit group by all"
            ).fetchall()
        }

        for row in _dicts(conn, "fct_token_efficiency_daily"):
            cost = row["cost_usd"]
            for lever in (
                "duplicate_usd",
                "finish_length_usd",
                "long_context_premium_usd",
                "gateway_repeat_usd",
                "tail_trim_usd",
                "output_cap_usd",
                "reasoning_usd",
                "uncached_input_usd",
            ):
                assert 0 <= row[lever] <= cost, (lever, row)
            # A duplicate is never also a gateway repeat: the two never count one call twice.
            assert row["duplicate_usd"] + row["gateway_repeat_usd"] <= cost, row
            assert row["useful_requests"] >= 0 and row["tail_requests"] <= row["requests"], row

        for row in _dicts(conn, "fct_model_fit_daily"):
            # The counterfactual is a price: never negative. Each sibling here is cheaper on every
            # token kind, so no call saves less than 0 and a wider threshold never saves less.
            assert row["target_cost_usd"] >= 0, row
            assert 0 <= row["rightsize_savings_usd"] <= row["current_cost_usd"], row
            assert 0 <= row["route_savings_half_usd"] <= row["route_savings_usd"] <= row["route_savings_double_usd"], (
                row
            )
            assert row["route_savings_double_usd"] <= row["rightsize_savings_usd"], row
            assert row["easy_requests_half"] <= row["easy_requests"] <= row["easy_requests_double"] <= row["requests"]
            assert row["easy_cost_usd"] <= row["current_cost_usd"], row
            in_scope = set(billed[(row["feature"], row["model"])])
            kit = row["eval_kit"]
            cells = [(cell["input_decile"], cell["output_decile"]) for cell in kit]
            assert len(kit) <= min(200, row["requests"]) and max(cells.count(c) for c in cells) <= 2, row
            assert {cell["request_id"] for cell in kit} <= in_scope, row
            for draws in (row["route_draws"], row["rightsize_draws"]):
                assert draws is None or (len(draws) <= 5 and set(draws) <= in_scope), row

        for row in _dicts(conn, "fct_batch_opportunity_daily"):
            # The same calls at a cheaper tier: a price >= 0, a saving between 0 and their cost.
            assert row["target_cost_usd"] >= 0, row
            assert 0 <= row["savings_usd"] <= row["current_cost_usd"], row
            assert len(row["draws"]) <= 5 and set(row["draws"]) <= set(billed[(row["feature"], row["model"])]), row

        for row in _dicts(conn, "fct_prompt_cache_opportunity_daily"):
            for policy in ("ttl_short", "ttl_long"):
                assert row[f"counterfactual_cost_usd_{policy}"] >= 0, row
                assert row[f"savings_usd_{policy}"] <= row["actual_cost_usd"], row
            assert 0 <= row["cache_write_waste_usd"] <= row["cache_write_premium_usd"] <= row["cache_writing_cost_usd"]
            assert row["unread_write_requests"] <= row["cache_writing_requests"] <= row["requests"], row

        # The per-call savings add up to the marts' (the combined bound over the levers reads them per call).
        for mart, per_call, key, columns in (
            (
                "fct_token_efficiency_daily",
                "(select *, case when is_gateway_repeat then billed_cost_usd end as gateway_repeat_usd,"
                " trim_savings_usd as tail_trim_usd, cap_savings_usd as output_cap_usd"
                " from int_token_efficiency_calls)",
                ("day", "feature", "provider", "model"),
                ("gateway_repeat_usd", "tail_trim_usd", "output_cap_usd"),
            ),
            (
                "fct_batch_opportunity_daily",
                "int_batch_calls",
                ("day", "feature", "provider", "model", "current_tier", "target_tier", "reason"),
                ("savings_usd",),
            ),
            (
                "fct_model_fit_daily",
                "int_model_fit_calls",
                ("day", "feature", "provider", "model", "target_model"),
                ("rightsize_savings_usd", "route_savings_usd"),
            ),
            (
                "fct_prompt_cache_opportunity_daily",
                "int_prompt_cache_calls",
                ("day", "feature", "provider", "model"),
                ("savings_usd_ttl_short", "savings_usd_ttl_long"),
            ),
        ):
            summed: dict[tuple, dict] = {}
            for row in _dicts(conn, per_call):
                group = summed.setdefault(tuple(row[k] for k in key), dict.fromkeys(columns, 0))
                for column in columns:
                    group[column] += row[column] or 0
            for row in _dicts(conn, mart):  # a group without per-call rows saves nothing
                expected = summed.pop(tuple(row[k] for k in key), dict.fromkeys(columns, 0))
                assert {column: row[column] or 0 for column in columns} == expected, (mart, row)
            assert not summed, (mart, summed)  # no per-call row outside the mart's groups

        # The combined upper bound: for every set of levers a window could have findings for, the
        # overlap mart's rankings give what a plain loop over the per-call savings gives - per call
        # the largest saving of the set (0 if none saves) plus what its levers cost on the call - and
        # that is never more than the levers' savings summed (with one lever, exactly its saving).
        overlap = _run(conn, folder / "lake", "fct_savings_overlap_daily")
        per_call_savings: dict[tuple, dict[str, dict[str, Decimal]]] = {}
        for lever, (table, saving) in LEVERS_PER_CALL.items():
            for day, feature, provider, model, request_id, usd in conn.execute(
                f"select day, feature, provider, model, request_id, {saving} from {table}"  # noqa: S608 (constants)
            ).fetchall():
                if usd:
                    calls_of = per_call_savings.setdefault((day, feature, provider, model), {})
                    calls_of.setdefault(request_id, {})[lever] = usd
        rows = {
            (r["day"], r["feature"], r["provider"], r["model"]): r for r in _dicts(conn, "fct_savings_overlap_daily")
        }
        assert set(rows) == set(per_call_savings)
        for group, calls_of in per_call_savings.items():
            row = rows[group]
            assert row["requests"] == len(calls_of), row
            present = sorted({lever for savings in calls_of.values() for lever in savings})
            for size in range(1, len(present) + 1):
                for fired in itertools.combinations(present, size):
                    by_loop = sum(
                        max([Decimal(0), *(s for lever, s in savings.items() if lever in fired)])
                        + sum(min(Decimal(0), s) for lever, s in savings.items() if lever in fired)
                        for savings in calls_of.values()
                    )
                    by_rankings = sum(
                        next(
                            (usd for lever, usd in zip(r["levers"], r["savings_usd"], strict=True) if lever in fired), 0
                        )
                        for r in row["rankings"] or []
                    ) + sum(c["cost_usd"] for c in row["lever_costs"] or [] if c["lever"] in fired)
                    alone = {lever: sum(s.get(lever, 0) for s in calls_of.values()) for lever in fired}
                    assert by_rankings == by_loop, (group, fired)
                    assert by_rankings <= sum(alone.values()), (group, fired)
                    if size == 1:
                        assert by_rankings == alone[fired[0]], (group, fired)

        # Running the day again replaces its rows with the same rows.
        assert _run(conn, folder / "lake", "int_token_efficiency_calls") == efficiency_calls
        assert _run(conn, folder / "lake", "fct_token_efficiency_daily") == efficiency
        assert _run(conn, folder / "lake", "int_batch_calls") == batch_calls
        assert _run(conn, folder / "lake", "fct_savings_overlap_daily") == overlap
        assert _run(conn, folder / "lake", "int_model_fit_calls") == fit_calls
        assert _run(conn, folder / "lake", "fct_model_fit_daily") == fit
        assert _run(conn, folder / "lake", "fct_batch_opportunity_daily") == batch
        assert _run(conn, folder / "lake", "int_prompt_cache_calls") == cache_calls
        assert _run(conn, folder / "lake", "fct_prompt_cache_opportunity_daily") == cache
