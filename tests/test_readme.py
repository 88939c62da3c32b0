"""The README's "Guarantees" table names the tests that prove each promise: every one exists."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_guarantee_names_tests_that_exist():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| promise")]
    assert len(rows) >= 15
    named = 0
    for row in rows:
        module = None
        # `tests/x.py::name`, `tests/x.py` alone, or `::name` (same module as the previous reference).
        for path, name in re.findall(r"`(?:(tests/[\w/]+\.py))?(?:::(\w+))?`", row):
            module = path or module
            if not module:
                continue
            assert (REPO / module).is_file(), f"{module} named in the Guarantees table does not exist"
            if name:
                tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
                functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
                assert name in functions, f"{module}::{name} named in the Guarantees table does not exist"
            named += 1
        assert module, f"a guarantee without a test: {row[:80]}"
    assert named >= 25


def _section_rows(heading: str) -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(heading, 1)[1].split("\n#", 1)[0]
    return [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    ][1:]


def test_the_input_formats_table_is_the_registry():
    """Every registered format has its row (source, format, module), and every row a format."""
    from pipelines.sources import registry

    rows = {(source, fmt, module) for source, fmt, _, module in _section_rows("### Input formats")}
    registered = {
        (f.source, name, f.module.removeprefix("pipelines.").replace(".", "/") + ".py")
        for name, f in registry.formats().items()
    }
    assert rows == registered


def test_the_gates_table_lists_every_declared_gate():
    """The README's gates table and the `.checks.yml` files name the same (table, gate) pairs."""
    from pipelines.quality.checks import load_suites

    tables = {path.name.removesuffix(".checks.yml") for path in (REPO / "sql").rglob("*.checks.yml")}
    declared = {(table, gate.name) for table in tables for suite in load_suites(table) for gate in suite.gates}
    listed = {(row[0], row[1]) for row in _section_rows("## Data quality gates")}
    assert listed == declared
