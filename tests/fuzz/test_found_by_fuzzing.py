"""What the fuzz tests found, pinned down one case each: answers that used to crash a client unclassified.

Each was a KeyError, TypeError, ValueError, OverflowError... reaching the engine as an
"unexpected error"; each is now a classified ``SyncError`` (or, where the answer is usable,
well-typed data).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import pytest
import requests
import responses

from integrations.systems.auth import MemoryTokenStore, Token, utcnow
from integrations.systems.errors import DataError, SystemicError, TransientError
from integrations.systems.intacct import build_client as intacct_client
from integrations.systems.intacct import credentials
from integrations.systems.intacct_envelope import IntacctDataError, IntacctSystemicError, IntacctTransientError
from integrations.systems.sage_x3 import build_client as x3_client
from integrations.systems.servicenow import UpsertRow
from integrations.systems.servicenow import build_client as sn_client
from tests.fuzz.test_intacct_responses import GATEWAY
from tests.fuzz.test_intacct_responses import spec as intacct_spec
from tests.fuzz.test_sage_x3_responses import URL as X3
from tests.fuzz.test_sage_x3_responses import spec as x3_spec
from tests.fuzz.test_servicenow_responses import URL as SN
from tests.fuzz.test_servicenow_responses import spec as sn_spec
from tests.fuzz.wire import policy

X3_PAGE = f"{X3}/api1/x3/erp/SEED/PINVOICE"


def live() -> MemoryTokenStore:
    return MemoryTokenStore(Token("live", expires_at=utcnow() + timedelta(hours=1)))


def x3() -> object:
    return x3_client(x3_spec("basic"), MemoryTokenStore(), policy=policy())


def sn() -> object:
    # These tests are about batch answers: the dictionary check before the first write is not
    # readable for this user, so the client notes it and writes (see SourceColumnGuard).
    responses.get(re.compile(rf"{re.escape(SN)}/api/now/table/sys_dictionary.*"), status=403,
                  json={"error": {"message": "User Not Authorized"}})
    return sn_client(sn_spec(), live(), policy=policy())


def intacct() -> object:
    key = credentials(intacct_spec()).session_key()
    store = MemoryTokenStore(Token("s-1", expires_at=utcnow() + timedelta(minutes=30),
                                   extra={"endpoint": GATEWAY, **key}))
    return intacct_client(intacct_spec(), store, policy=policy())


def gateway(result: str, *, auth: str = "<status>success</status>") -> str:
    return (f"<response><control><status>success</status></control><operation><authentication>{auth}"
            f"</authentication><result><status>success</status><function>readByQuery</function>{result}</result>"
            "</operation></response>")


# --- the HTTP policy -----------------------------------------------------------------------------
@responses.activate
def test_an_answer_cut_short_on_the_wire_is_transient():
    responses.get(X3_PAGE, body=requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"))
    with pytest.raises(TransientError, match="ChunkedEncodingError"):
        list(x3().iter_pages("PINVOICE"))
    assert len(responses.calls) == 2  # a GET is retried, like a dropped connection


@responses.activate
def test_a_next_page_link_that_is_no_url_is_systemic():
    responses.get(X3_PAGE, json={"$resources": [{"NUM": "1"}], "$links": {"$next": {"$url": "http://[::1"}}})
    with pytest.raises(SystemicError, match="cannot be sent: InvalidURL"):
        list(x3().iter_pages("PINVOICE"))


# --- Sage X3 --------------------------------------------------------------------------------------
@responses.activate
@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b"\x80\x81", b'{"$resources": [{"AMT": NaN}]}'])
def test_an_x3_page_that_is_not_json_is_transient(body):
    responses.get(X3_PAGE, body=body, status=200)
    with pytest.raises(TransientError, match="Sage X3 answered with a page that is not JSON"):
        list(x3().iter_pages("PINVOICE"))


@responses.activate
@pytest.mark.parametrize("body", [None, [], 5, {"$resources": {"NUM": "1"}}, {"$resources": ["PI1"]},
                                  {"$resources": [], "$links": {"$next": {"$url": 7}}}])
def test_an_x3_page_of_another_shape_is_transient(body):
    responses.get(X3_PAGE, body=json.dumps(body), status=200)
    with pytest.raises(TransientError, match="Sage X3 answered with"):
        list(x3().iter_pages("PINVOICE"))


@responses.activate
def test_x3_diagnoses_that_are_not_a_list_fall_back_to_the_status():
    responses.get(X3_PAGE, json={"$diagnoses": 7}, status=400)
    with pytest.raises(DataError, match="Request rejected"):
        list(x3().iter_pages("PINVOICE"))


@responses.activate
def test_an_x3_write_answered_with_no_body_gives_an_empty_record():
    responses.put(f"{X3}/api1/x3/erp/SEED/BPSUPPLIER('S1')", status=204)
    assert x3().update("BPSUPPLIER", "S1", {"BPSNAM": "Acme"}) == {}


@responses.activate
def test_an_x3_write_answered_with_a_list_is_an_ambiguous_transient_error():
    responses.post(f"{X3}/api1/x3/erp/SEED/BPSUPPLIER", json=[1, 2])
    with pytest.raises(TransientError) as caught:
        x3().create("BPSUPPLIER", {"BPSNUM": "S2"})
    assert caught.value.ambiguous  # it may have been created: look before writing again


# --- OAuth2 token endpoints -----------------------------------------------------------------------
@responses.activate
@pytest.mark.parametrize("body, error", [
    (b"<html>proxy</html>", TransientError), (b"[1]", TransientError), (b'{"access_token": 5}', SystemicError),
    (b'{"access_token": "t", "refresh_token": ["r"]}', SystemicError),
])
def test_a_token_endpoint_answer_that_is_no_token_is_classified(body, error):
    responses.post(f"{X3}/token", body=body, status=200)
    client = x3_client(x3_spec("oauth2"), MemoryTokenStore(), policy=policy())
    with pytest.raises(error):
        list(client.iter_pages("PINVOICE"))


@responses.activate
def test_a_token_lifetime_past_any_calendar_is_no_expiry_not_a_crash():
    responses.post(f"{X3}/token", body=b'{"access_token": "t", "expires_in": 1e400}', status=200)
    responses.get(X3_PAGE, json={"$resources": [{"NUM": "1"}]})
    client = x3_client(x3_spec("oauth2"), MemoryTokenStore(), policy=policy())
    assert list(client.iter_pages("PINVOICE")) == [[{"NUM": "1"}]]


# --- ServiceNow ------------------------------------------------------------------------------------
TABLE = f"{SN}/api/now/table/sn_apo_invoice"
BATCH = f"{SN}/api/now/v1/batch"


@responses.activate
@pytest.mark.parametrize("body", ["<html>hibernating</html>", "null", "[]", '{"result": {"sys_id": "1"}}',
                                  '{"result": ["row"]}'])
def test_a_table_api_answer_that_is_not_a_list_of_rows_is_transient(body):
    responses.get(TABLE, body=body, status=200)
    with pytest.raises(TransientError, match="ServiceNow answered with"):
        list(sn().iter_pages("sn_apo_invoice"))


@responses.activate
@pytest.mark.parametrize("answer", [[], {"serviced_requests": 5}, {"serviced_requests": [7]},
                                    {"serviced_requests": [], "unserviced_requests": [["0"]]}])
def test_a_batch_answer_of_another_shape_fails_its_rows_ambiguously(answer):
    responses.post(BATCH, json=answer)
    outcome = sn().upsert("proc_vendor", [UpsertRow("K1", {"name": "A"})])["K1"]
    assert isinstance(outcome.error, TransientError) and outcome.error.ambiguous  # looked up before a rewrite


def item(status, body) -> dict:
    return {"id": "0", "status_code": status,
            "body": base64.b64encode(json.dumps(body).encode()).decode() if body is not None else ""}


@responses.activate
@pytest.mark.parametrize("served, error", [
    (item("abc", None), TransientError),          # a status that is no status
    (item(400, {"error": "bad"}), DataError),     # an error envelope that is a string
    ({"id": ["0"], "status_code": 201}, TransientError),  # an id nobody asked for: no answer for the row
])
def test_a_garbled_batch_item_fails_its_row_classified(served, error):
    responses.post(BATCH, json={"serviced_requests": [served], "unserviced_requests": []})
    outcome = sn().upsert("proc_vendor", [UpsertRow("K1", {"name": "A"})])["K1"]
    assert isinstance(outcome.error, error)


@responses.activate
def test_a_created_row_without_a_sys_id_is_ambiguous_not_created_as_nothing():
    responses.post(BATCH, json={"serviced_requests": [item(201, {"result": {"name": "A"}})],
                                "unserviced_requests": []})
    outcome = sn().upsert("proc_vendor", [UpsertRow("K1", {"name": "A"})])["K1"]
    assert isinstance(outcome.error, TransientError) and outcome.error.ambiguous and outcome.sys_id == ""


@responses.activate
def test_a_looked_up_row_without_a_sys_id_is_transient():
    responses.get(f"{SN}/api/now/table/proc_vendor", json={"result": [{"u_source_key": "K1"}]})
    with pytest.raises(TransientError, match="without a sys_id"):
        sn().lookup("proc_vendor", "u_source_key", ["K1"], fields=[])


@responses.activate
def test_a_row_without_a_sys_id_in_the_look_up_sharing_the_column_checks_call_is_transient():
    # the first look-up before a write goes with the dictionary query (here refused: unverified)
    responses.post(BATCH, json={"unserviced_requests": [], "serviced_requests": [
        item(200, {"result": [{"u_source_key": "K1"}]}),
        {**item(403, {"error": {"message": "User Not Authorized"}}), "id": "1"}]})
    with pytest.raises(TransientError, match="without a sys_id"):
        sn().upsert("proc_vendor", [UpsertRow("K1", {"name": "A"}, uncertain=True)])


# --- Sage Intacct ----------------------------------------------------------------------------------
@responses.activate
def test_a_numremaining_that_is_no_count_is_transient():
    responses.post(GATEWAY, body=gateway('<data numremaining="many" resultId="r1"><VENDOR><VENDORID>V1</VENDORID>'
                                         '</VENDOR></data>'))
    with pytest.raises(IntacctTransientError, match="numremaining that is not a count"):
        list(intacct().iter_query("VENDOR"))


@responses.activate
def test_a_whenmodified_that_is_no_time_is_a_data_error_naming_the_record():
    responses.post(GATEWAY, body=gateway('<data numremaining="0"><APBILL><RECORDNO>7</RECORDNO>'
                                         '<WHENMODIFIED>13/45/2024 99:99:99</WHENMODIFIED></APBILL></data>'))
    with pytest.raises(IntacctDataError, match=r"APBILL '7' with a WHENMODIFIED"):
        list(intacct().iter_changed("APBILL", ""))


@responses.activate
def test_a_record_that_is_only_text_is_transient():
    responses.post(GATEWAY, body=gateway('<data numremaining="0"><VENDOR>V1</VENDOR></data>'))
    with pytest.raises(IntacctTransientError, match="record that has no fields"):
        list(intacct().iter_query("VENDOR"))


def session_answer(endpoint: str, timeout: str) -> str:
    return ("<response><control><status>success</status></control><operation><authentication>"
            f"<status>success</status><sessiontimeout>{timeout}</sessiontimeout></authentication><result>"
            "<status>success</status><function>getAPISession</function><data><api><sessionid>s-9</sessionid>"
            f"<endpoint>{endpoint}</endpoint></api></data></result></operation></response>")


@responses.activate
def test_a_session_timeout_past_the_calendar_keeps_the_50_minute_limit():
    responses.post(GATEWAY, body=session_answer(GATEWAY, "9999-12-31T23:59:59-12:00"))
    client = intacct_client(intacct_spec(), MemoryTokenStore(), policy=policy())
    token = client.tokens.token()
    assert token.access_token == "s-9" and token.expires_at - token.issued_at == timedelta(minutes=50)


@responses.activate
def test_a_session_endpoint_that_is_no_address_is_refused():
    responses.post(GATEWAY, body=session_answer("http://[::1", ""))
    client = intacct_client(intacct_spec(), MemoryTokenStore(), policy=policy())
    with pytest.raises(IntacctSystemicError, match="unexpected endpoint"):
        client.tokens.token()
