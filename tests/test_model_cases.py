"""Every SQL model case in tests/model_cases/<model>.yaml: hand-built input rows through the real
model, compared with output rows whose numbers the case's `why:` works out by hand.

A case: `day` (daily models), optional `settings` (the model's `$name` parameters), `inputs`
(relation -> rows, or {columns, rows}), `expected` (every output row, each with the columns worth
checking), `tolerance` (absolute, for DOUBLE columns; DECIMAL, integers and text are exact).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from model_harness import same_value, unmatched_rows

from pipelines.models.engine import load_models

CASES_DIR = Path(__file__).parent / "model_cases"
DEFAULT_TOLERANCE = 1e-9


def _cases():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for name, case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"].items():
            yield pytest.param(path.stem, case, id=f"{path.stem}:{name}")


@pytest.mark.parametrize(("model", "case"), list(_cases()))
def test_model_case(run_model_on, model, case):
    assert case.get("why", "").strip(), "a case works its expected numbers out by hand in `why:`"
    rows = run_model_on(model, case["inputs"], day=case.get("day"), settings=case.get("settings"))
    problems = unmatched_rows(case["expected"], rows, case.get("tolerance", DEFAULT_TOLERANCE))
    assert not problems, "\n".join(problems)


def test_every_case_file_names_a_model():
    assert {path.stem for path in CASES_DIR.glob("*.yaml")} <= set(load_models())


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        (0.004, Decimal("0.004000"), True),
        (0.0041, Decimal("0.004000"), False),
        (None, Decimal("0"), False),
        (0, None, False),
        (0.15, 0.15 + 1e-12, True),
        (0.15, 0.15 + 1e-6, False),
        (True, 1, False),
        ("chat", "chat", True),
    ],
)
def test_the_comparison_is_exact_for_money_and_null(expected, actual, same):
    assert same_value(expected, actual, DEFAULT_TOLERANCE) is same


def test_a_missing_or_extra_row_is_reported():
    actual = [{"feature": "chat", "requests": 3}, {"feature": "search", "requests": 1}]
    assert unmatched_rows([{"feature": "chat", "requests": 3}], actual, 0) == [
        "unexpected output row {'feature': 'search', 'requests': 1}"
    ]
    assert unmatched_rows([{"feature": "chat", "requests": 4}, {"feature": "search"}], actual, 0)[0].startswith(
        "no output row matches"
    )
