"""Exact decimals from the numbers inputs carry: JSON floats, integers and decimal strings.

A float becomes the decimal of its shortest repr (`0.1` -> `Decimal('0.1')`, `3e-06` ->
`Decimal('0.000003')`), the text the producer wrote, never the binary float's full expansion
(`Decimal(0.1)` is 0.1000000000000000055...). Money and prices are then exact to the digit.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


class NotADecimal(ValueError):
    """A value that is no finite number. `missing` is True for an absent value (None, or a JSON
    boolean where a number belongs), False for a value that is there but is no number."""

    def __init__(self, value: object, missing: bool):
        super().__init__(f"{'missing' if missing else 'not a finite decimal'}: {value!r}")
        self.missing = missing


def to_decimal(value: object) -> Decimal:
    """A float, int, Decimal or decimal string (surrounding spaces allowed) as an exact Decimal."""
    if value is None or isinstance(value, bool):
        raise NotADecimal(value, missing=True)
    if isinstance(value, float):
        text = repr(value)  # the shortest text that round-trips
    elif isinstance(value, (int, str, Decimal)):
        text = str(value).strip()
    else:
        raise NotADecimal(value, missing=False)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise NotADecimal(value, missing=False) from None
    if not amount.is_finite():
        raise NotADecimal(value, missing=False)
    return amount
