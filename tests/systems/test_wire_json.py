"""JSON written on the wire (``integrations.systems.wire_json``): what ``json`` would write, or ``json`` writes it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from integrations.systems import wire_json

DOCUMENTS = [
    {"supplier": "Müller & Söhne GmbH", "amount_invoiced": "1234.56", "lines": [{"n": 1}, {"n": 2}], "active": True},
    {"note": "tab\there, quote \" and backslash \\", "empty": "", "none": None, "nested": {"a": [1, 2.5, -3]}},
    {1: "an integer key, as json writes it: a string"},
    {"emoji": "🧾", "cjk": "請求書"},
    [],
    "plain text",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_what_is_written_reads_back_as_json_would_read_what_json_writes(document):
    assert json.loads(wire_json.dumps(document)) == json.loads(json.dumps(document))


@pytest.mark.parametrize("value", [2**70, {"text": "lone \ud800 surrogate"}, {"supplier": "Müller"}, "請求書"])
def test_what_orjson_refuses_and_text_beyond_ascii_json_writes_as_before(value):
    assert wire_json.dumps(value) == json.dumps(value).encode("ascii")


def test_a_decimal_is_refused_as_json_refuses_it():
    with pytest.raises(TypeError):
        json.dumps({"amount": Decimal("1.10")})
    with pytest.raises(TypeError):
        wire_json.dumps({"amount": Decimal("1.10")})


def test_a_float_nan_is_written_as_null_not_as_a_literal_no_parser_takes():
    assert json.loads(wire_json.dumps({"value": float("nan")})) == {"value": None}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_bytes_are_ascii_whatever_the_text(document):
    assert wire_json.dumps(document).isascii()
