"""Value helpers every flow uses, whatever its systems: text, exact amounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def text(value: Any) -> str:
    """A value as text; amounts keep their exact decimal digits (a float is a bug upstream)."""
    if value is None:
        return ""
    if isinstance(value, float):  # never expected: amounts are parsed to Decimal
        raise TypeError("float amount")
    return str(value)


def amount(value: Any) -> str:
    """An amount as exact decimal text ("" when there is none)."""
    if type(value) is Decimal:  # the usual case (amounts are parsed to Decimal): no round trip
        return str(value)
    return str(Decimal(str(value))) if value not in (None, "") else ""
