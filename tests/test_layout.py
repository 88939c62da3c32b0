"""The layout the tree promises (README, STYLE.md): one room per concern, Dagster wiring without
SQL or parsing, and analytic SQL in `.sql` files. What Python still holds is listed below, each
with its reason; the list fails when it is missing an entry or keeps one that is gone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlglot
from conftest import REPO

PIPELINES = REPO / "pipelines"
ROOMS = ("defs", "resources", "models", "sources", "lake", "quality", "alerts", "demo")

# A string that starts like a SQL statement and reads a relation, writes one, or defines one.
_STATEMENT = re.compile(
    r"^\s*(?:"
    r"(?:select|with)\b.*\bfrom\b"
    r"|insert\s+(?:or\s+\w+\s+)?into\b"
    r"|create\s+(?:or\s+replace\s+)?(?:temp\w*\s+)?(?:table|view|macro|schema|sequence|index)\b"
    r"|update\s+\S+\s+set\b"
    r"|delete\s+from\b"
    r"|copy\b.*\bto\b"
    r"|drop\s+(?:table|view|macro)\b"
    r"|comment\s+on\b"
    r")",
    re.IGNORECASE | re.DOTALL,
)
# What makes a query analytic rather than a lookup: it aggregates, joins, windows or groups.
_ANALYTIC = re.compile(
    r"\bgroup\s+by\b|\bjoin\b|\bover\s*\(|\bhaving\b|\bqualify\b"
    r"|\b(?:sum|avg|count|min|max|median|quantile\w*|stddev\w*|string_agg|list|arg_max|arg_min|any_value)\s*\(",
    re.IGNORECASE,
)
# A row count (`select count(*) from x [where ...]`, x a name or a `({})` subquery from code): what a
# materialization reports about the rows it wrote, not analysis.
_ROW_COUNT = re.compile(r"^\s*select\s+count\(\*\)\s+from\s+(?:[\w{}.\"]+|\(\{\}\))(?:\s+where\s+[^()]*)?\s*$", re.I)
# Imports that mean a module parses input text itself, which belongs in pipelines/sources/.
PARSING_MODULES = {"json", "csv", "gzip", "re", "codecs", "io", "zipfile", "tarfile"}


def string_literals(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """(node, text) of every string constant and f-string (its `{...}` read as `{}`), docstrings
    left out (they describe data in prose)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
            found.append((node, text))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstrings
        ):
            found.append((node, node.value))
    return found


def is_sql_statement(text: str) -> bool:
    """Starts like a SQL statement, and sqlglot reads it as one (`{}` holes stand for names)."""
    if not _STATEMENT.match(text):
        return False
    try:
        parsed = sqlglot.parse_one(text.replace("{}", "placeholder"), read="duckdb")
    except sqlglot.errors.ParseError:
        return False
    return parsed is not None and not isinstance(parsed, (sqlglot.exp.Column, sqlglot.exp.Identifier))


def is_analytic_sql(text: str) -> bool:
    if _ROW_COUNT.match(text):
        return False
    return bool(re.match(r"^\s*(?:select|with)\b", text, re.IGNORECASE)) and bool(
        re.search(r"\bfrom\b", text, re.IGNORECASE) and _ANALYTIC.search(text)
    )


def holders(tree: ast.AST) -> dict[int, str]:
    """id(node) -> the name that holds it: the innermost function, else the module-level name
    it is assigned to, else `<module>`."""
    names: dict[int, str] = {}

    def visit(node: ast.AST, holder: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            holder = node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and holder == "<module>":
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = [target.id for target in targets if isinstance(target, ast.Name)]
            holder = named[0] if named else holder
        names[id(node)] = holder
        for child in ast.iter_child_nodes(node):
            visit(child, holder)

    visit(tree, "<module>")
    return names


def analytic_sql_in_python(root: Path = REPO) -> dict[tuple[str, str], int]:
    """(file, holder) -> how many analytic SQL strings it holds, over pipelines/**/*.py."""
    found: dict[tuple[str, str], int] = {}
    for path in sorted((root / "pipelines").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        held_by = holders(tree)
        for node, text in string_literals(tree):
            if is_analytic_sql(text):
                key = (path.relative_to(root).as_posix(), held_by[id(node)])
                found[key] = found.get(key, 0) + 1
    return found


# Analytic SQL still in Python strings, by (file, function or constant that holds it), each with
# why it is not a `.sql` file (yet). The lead finalises this list as the rooms settle.
ANALYTIC_SQL_IN_PYTHON: dict[tuple[str, str], str] = {
    ("pipelines/models/relations.py", "daily_totals"): (
        "a range run's per-day progress line (rows and money) of whichever model ran: its text is built "
        "from that model's own name and `*_usd` columns, so there is no fixed query to keep in a .sql file"
    ),
    ("pipelines/lake/health.py", "read_every_row"): (
        "doctor's and rebuild's read of every row of every table the DuckDB file holds: one query per table "
        "the catalog names, so there is no fixed query to keep in a .sql file"
    ),
}


# --------------------------------------------------------------------------- rooms


@pytest.mark.parametrize("room", ROOMS)
def test_every_room_exists_as_a_package(room):
    folder = PIPELINES / room
    assert (folder / "__init__.py").is_file(), f"pipelines/{room}/ is not a package"
    assert any(path.name != "__init__.py" for path in folder.rglob("*.py")), f"pipelines/{room}/ is empty"


# --------------------------------------------------------------------------- defs/: wiring only


def defs_modules() -> list[Path]:
    return sorted((PIPELINES / "defs").rglob("*.py"))


def test_no_module_under_defs_holds_sql_text():
    holding = []
    for path in defs_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, text in string_literals(tree):
            if is_sql_statement(text):
                first = next(line.strip() for line in text.splitlines() if line.strip())
                holding.append(f"{path.relative_to(REPO)}:{node.lineno}: {first[:60]}")
    assert not holding, "SQL belongs in a .sql file or in the room that runs it: " + "; ".join(holding)


def test_no_module_under_defs_parses_input():
    parsing = []
    for path in defs_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            parsing += [
                f"{path.relative_to(REPO)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] in PARSING_MODULES
            ]
    assert not parsing, "parsing belongs in pipelines/sources/: " + "; ".join(parsing)


def test_the_sql_detectors_tell_sql_from_prose():
    tree = ast.parse(
        "def f():\n"
        '    """select the rows from the lake, grouped by day."""\n'
        '    a = "select day, sum(cost_usd) from fct_requests group by day"\n'
        '    b = f"create or replace view {name} as select * from read_parquet($glob)"\n'
        '    c = "select one of the formats from the registry, or add one."\n'
        '    d = "select request_id from gateway_requests where day = $day"\n'
        '    e = "insert into alerts_outbox values ($key, $text)"\n'
        '    g = "with pools as (select pool from p) select pool, count(*) over () from pools"\n'
        '    h = f"select count(*) from {table} where day = $day"\n'
        '    return "the select-from pair"\n'
    )
    texts = {text: node.lineno for node, text in string_literals(tree)}
    assert sorted(texts.values()) == [3, 4, 5, 6, 7, 8, 9, 10]  # the docstring is prose
    assert sorted(line for text, line in texts.items() if is_sql_statement(text)) == [3, 4, 6, 7, 8, 9]
    # An aggregate, a window: analytic. A lookup, a write, a row count: not.
    assert sorted(line for text, line in texts.items() if is_analytic_sql(text)) == [3, 8]


# --------------------------------------------------------------------------- analytic SQL


def listing_problems(found: dict, listed: dict) -> tuple[list, list]:
    """(found but not listed, listed but not found)."""
    return sorted(set(found) - set(listed)), sorted(set(listed) - set(found))


def test_analytic_sql_left_in_python_is_listed_with_its_reason():
    found = analytic_sql_in_python()
    unlisted, gone = listing_problems(found, ANALYTIC_SQL_IN_PYTHON)
    assert not unlisted, "move this SQL to a .sql file, or list it with its reason: " + "; ".join(
        f"{file}: {holder} ({found[(file, holder)]})" for file, holder in unlisted
    )
    assert not gone, "no longer holds analytic SQL: drop it from the list: " + "; ".join(
        f"{file}: {holder}" for file, holder in gone
    )
    assert all(reason.strip() for reason in ANALYTIC_SQL_IN_PYTHON.values())


def test_the_listing_catches_new_sql_and_stale_entries(tmp_path):
    module = tmp_path / "pipelines" / "report" / "digest.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        'MOVERS = """\n    select feature, sum(cost_usd) as cost_usd\n    from fct_spend_daily\n    group by feature\n"""\n'
        "def rows(conn, table):\n"
        '    conn.execute(f"select count(*) from {table}")\n'
        '    return conn.execute(f"select a.x from {table} as a join b using (x)").fetchall()\n',
        encoding="utf-8",
    )
    found = analytic_sql_in_python(tmp_path)
    assert found == {("pipelines/report/digest.py", "MOVERS"): 1, ("pipelines/report/digest.py", "rows"): 1}
    listed = {("pipelines/report/digest.py", "MOVERS"): "why", ("pipelines/alerts/gone.py", "EPISODES"): "why"}
    assert listing_problems(found, listed) == (
        [("pipelines/report/digest.py", "rows")],
        [("pipelines/alerts/gone.py", "EPISODES")],
    )


# --------------------------------------------------------------------------- upstream bugs

# A test that says it fails once a dependency is fixed pins that dependency's bug.
_PINS_UPSTREAM = re.compile(
    r"has fixed it|workaround can go|remove the \S+ workaround|no longer \w+ the", re.IGNORECASE
)


def upstream_bug_names(function: ast.FunctionDef) -> list:
    """The arguments of the function's `@pytest.mark.upstream_bug(...)` decorators."""
    names = []
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.upstream_bug":
            names.append(
                decorator.args[0].value if decorator.args and isinstance(decorator.args[0], ast.Constant) else None
            )
    return names


def test_tests_that_pin_an_upstream_bug_say_which():
    unmarked, unnamed, marked = [], [], []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            names = upstream_bug_names(node)
            where = f"{path.name}::{node.name}"
            marked += [where] * bool(names)
            unnamed += [where for name in names if not (isinstance(name, str) and name.strip())]
            if _PINS_UPSTREAM.search(ast.get_source_segment(source, node)) and not names:  # decorators not included
                unmarked.append(where)
    assert not unmarked, "mark these @pytest.mark.upstream_bug(name): " + ", ".join(unmarked)
    assert not unnamed, "say which dependency's bug: " + ", ".join(unnamed)
    assert {
        "test_quality.py::test_stock_gx_sql_engine_loses_duckdb_results",
        "test_sqlmodels.py::test_the_optimizer_setting_is_what_makes_it_right",
    } <= set(marked)
