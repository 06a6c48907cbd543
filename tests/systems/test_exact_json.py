"""``exact_json``: what vendor clients send when amounts must stay exact (X3's ``$create``).

Amounts are number literals written digit for digit; everything else is written exactly as
``json.dumps(..., ensure_ascii=False)`` writes it, so a vendor reads the same document.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from integrations.systems.http import exact_json


class Sense(enum.IntEnum):
    DEBIT = 1
    CREDIT = -1


PLAIN = [
    {"BPSNUM": "SUP001", "BPSNAM": "Café Müller \"&\" Söhne\n\t\x00\u2028", "LINES": [1, -2, 0], "OK": True,
     "NO": False, "NONE": None, "SNS": Sense.CREDIT, "nested": {"deeper": [[], {}, ["x"]]}, "emoji": "🚚"},
    [],
    {},
    "just text",
    12345678901234567890,
    (1, "two"),
]


@pytest.mark.parametrize("value", PLAIN)
def test_everything_but_amounts_is_written_as_json_writes_it(value):
    assert exact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def test_amounts_are_exact_number_literals():
    body = exact_json({"AMTATI": Decimal("12.10"), "lines": [{"AMTCUR": Decimal("0.005")},
                                                            {"AMTCUR": Decimal("-99999999999999.99")}],
                       "tiny": Decimal("1E-7"), "big": Decimal("1E+3")})
    assert body == b'{"AMTATI":12.10,"lines":[{"AMTCUR":0.005},{"AMTCUR":-99999999999999.99}],' \
                   b'"tiny":0.0000001,"big":1000}'
    assert json.loads(body, parse_float=Decimal)["AMTATI"] == Decimal("12.10")


def test_dates_are_iso_strings():
    assert exact_json({"ACCDAT": date(2026, 12, 4), "at": datetime(2026, 12, 4, 3, 5, tzinfo=UTC)}) == \
        b'{"ACCDAT":"2026-12-04","at":"2026-12-04T03:05:00+00:00"}'


@pytest.mark.parametrize("bad, error", [(1.5, TypeError), (Decimal("NaN"), ValueError),
                                        (Decimal("Infinity"), ValueError), ({1, 2}, TypeError),
                                        (object(), TypeError)])
def test_what_cannot_be_an_exact_amount_or_json_is_refused(bad, error):
    with pytest.raises(error):
        exact_json({"AMTATI": bad})
