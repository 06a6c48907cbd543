"""Sage Intacct client against a hostile gateway: whatever comes back, a classified error or well-typed data.

Gateway answers are drawn XML: random bytes, random markup, and Intacct-shaped responses whose
statuses, counts, result ids, timestamps, session data and records are garbled (XML-escaped,
so the fuzz reaches the parsing of the values, not only the XML parser's refusal).
"""

from __future__ import annotations

from datetime import timedelta
from xml.sax.saxutils import escape

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.systems.auth import MemoryTokenStore, Token, utcnow
from integrations.systems.errors import SyncError
from integrations.systems.intacct import WriteOp, build_client, credentials
from integrations.systems.spec import ConnectionSpec
from tests.fuzz.wire import answers, drain, failure_report, policy, serve

GATEWAY = "https://fuzz.intacct.test/ia/xml/xmlgw.phtml"
VALUES = st.one_of(st.text(max_size=20), st.sampled_from([
    "", "success", "failure", "aborted", "0", "-3", "1e9", "abc", "99999999999999999999", "05/31/2024 10:00:00",
    "13/45/2024 99:99:99", "2024-05-31T10:00:00", "2024-05-31T10:00:00+99:00", "9999-12-31T23:59:59-12:00",
    GATEWAY, "https://evil.test/x", "http://[::1", "readByQuery", "q-1", "XL03000006", "GW-0010",
    "A successful transaction has already been recorded with the control id",
]))
# mostly "success", so the fuzz gets past the envelope to the values inside it
STATUS = st.one_of(st.just("success"), st.just("success"), st.just("success"), VALUES)
FIELDS = ("RECORDNO", "WHENMODIFIED", "VENDORID", "APBILLITEMS", "TOTALDUE")


def text(value: str) -> str:
    return escape(value)


@st.composite
def record(draw) -> str:
    tag = draw(st.sampled_from(["APBILL", "VENDOR", "GLACCOUNT", "x"]))
    if draw(st.booleans()):
        return f"<{tag}>{text(draw(VALUES))}</{tag}>"  # a record that is only text
    fields = draw(st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), max_size=4))
    inner = "".join(f"<{name}>{text(value)}</{name}>" for name, value in fields)
    return f"<{tag}>{inner}</{tag}>"


@st.composite
def error_message(draw) -> str:
    if draw(st.integers(0, 3)):
        return ""
    return ("<errormessage><error><errorno>" + text(draw(VALUES)) + "</errorno><description2>"
            + text(draw(VALUES)) + "</description2></error></errormessage>")


@st.composite
def gateway_response(draw) -> bytes:
    results = []
    for _ in range(draw(st.integers(0, 3))):  # controlids rarely match: results are matched by position too
        attrs = "".join(f' {name}="{text(draw(VALUES))}"' for name in ("numremaining", "resultId", "count")
                        if draw(st.booleans()))
        records = "".join(draw(st.lists(record(), max_size=3)))
        api = (f"<api><sessionid>{text(draw(VALUES))}</sessionid><endpoint>{text(draw(VALUES))}</endpoint></api>"
               if draw(st.booleans()) else "")
        results.append(f"<result><status>{text(draw(STATUS))}</status><function>{text(draw(VALUES))}</function>"
                       f"<controlid>{text(draw(VALUES))}</controlid>{draw(error_message())}"
                       f"<data{attrs}>{records}{api}</data></result>")
    auth = (f"<authentication><status>{text(draw(STATUS))}</status>"
            f"<sessiontimeout>{text(draw(VALUES))}</sessiontimeout>{draw(error_message())}</authentication>")
    operation = f"<operation>{auth}{''.join(results)}</operation>" if draw(st.integers(0, 4)) else ""
    control = f"<control><status>{text(draw(STATUS))}</status></control>"
    return f"<?xml version='1.0'?><response>{control}{draw(error_message())}{operation}</response>".encode()


BODIES = st.one_of(gateway_response(), gateway_response(), st.text(max_size=60).map(str.encode))
OPERATIONS = {
    "query": lambda c: c.iter_query("VENDOR", "STATUS = 'active'", ["VENDORID"]),
    "changed": lambda c: c.iter_changed("APBILL", "2024-05-31 00:00:00", fields=["RECORDNO", "WHENMODIFIED"]),
    "read": lambda c: c.read("APBILL", ["1", "2"]),
    "find": lambda c: c.find("VENDOR", [{"VENDORID": "V1"}, {"VENDORID": "V2"}]),
    "write": lambda c: c.write([WriteOp("K1", "create", "VENDOR", {"VENDORID": "V1"}, "mlc-1", {"VENDORID": "V1"}),
                                WriteOp("K2", "update", "VENDOR", {"RECORDNO": "7"}, "mlc-2")]),
    "check": lambda c: c.check(),
}


def spec() -> ConnectionSpec:
    return ConnectionSpec("sage_intacct", GATEWAY, "session", company="acme-demo",
                          settings={"sender_id": "sender", "user_id": "user", "scan_window": 2, "page_size": 2},
                          secrets={"sender_password": "sp", "user_password": "up"})


def session_store(cached: bool) -> MemoryTokenStore:
    if not cached:
        return MemoryTokenStore()  # the first answer goes to getAPISession
    key = credentials(spec()).session_key()
    return MemoryTokenStore(Token("session-1", expires_at=utcnow() + timedelta(minutes=30),
                                  extra={"endpoint": GATEWAY, **key}))


def check_contract(name: str, result: list) -> None:
    if name in ("query", "changed"):
        assert all(isinstance(page, list) and all(isinstance(row, dict) for row in page) for page in result)
    elif name == "read":
        assert all(isinstance(row, dict) for row in result[0])
    elif name == "find":
        assert all(isinstance(row, dict) for row in result[0].values())
    elif name == "write":
        assert set(result[0]) == {"K1", "K2"}
        assert all(isinstance(o.record_no, str) for o in result[0].values())
    else:
        assert all(isinstance(line, dict) and "ok" in line for line in result[0])


@pytest.mark.parametrize("cached", [False, True], ids=["sign-in", "cached-session"])
@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(OPERATIONS)), drawn=answers(BODIES, statuses=(200, 200, 400, 401, 429, 500, 503)))
def test_the_intacct_client_classifies_whatever_the_gateway_answers(name, cached, drawn):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server = serve(rsps, drawn)
        client = build_client(spec(), session_store(cached), policy=policy())
        try:
            result = drain(OPERATIONS[name](client))
        except SyncError:
            return
        except Exception as exc:  # noqa: BLE001 - the point: nothing unclassified gets out
            pytest.fail(failure_report(server, exc))
        check_contract(name, result)
