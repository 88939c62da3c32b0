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
