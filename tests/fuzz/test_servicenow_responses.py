"""ServiceNow client against a hostile server: whatever comes back, a classified error or well-typed data.

The Table API, the Batch API (whose items carry base64 bodies of their own) and the OAuth2
token endpoint are all answered from drawn statuses, headers and bodies: random bytes, any
JSON, and ServiceNow-shaped envelopes holding values of the wrong type.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.systems.auth import MemoryTokenStore, Token, utcnow
from integrations.systems.errors import SyncError
from integrations.systems.servicenow import UpsertRow, build_client
from integrations.systems.spec import ConnectionSpec
from tests.fuzz.wire import JSON, answers, drain, failure_report, json_bytes, policy, serve, shaped

URL = "https://fuzz.service-now.com"
ROWS = st.lists(st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "sys_id": JSON, "sys_updated_on": JSON, "u_source_key": st.sampled_from(["K1", "K2", ""]),
    "role.name": JSON, "user.user_name": JSON, "name": JSON})), max_size=4)
ITEM_BODY = st.one_of(JSON.map(json_bytes), shaped({"result": JSON, "error": JSON})).map(
    lambda b: base64.b64encode(b).decode("ascii"))
SERVICED = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(["0", "1", "2", "x"]) | JSON, "status_code": st.sampled_from([200, 201, 400, 500]) | JSON,
    "body": ITEM_BODY | JSON | st.sampled_from(["!!!", "eyJ"]), "error_message": JSON, "status_text": JSON})
SN_BODIES = st.one_of(
    JSON.map(json_bytes),
    shaped({"result": st.one_of(ROWS, JSON), "error": st.one_of(JSON, st.fixed_dictionaries(
        {}, optional={"message": JSON, "detail": JSON})), "status": JSON, "error_description": JSON}),
    shaped({"serviced_requests": st.one_of(st.lists(st.one_of(SERVICED, JSON), max_size=3), JSON),
            "unserviced_requests": st.one_of(st.lists(JSON, max_size=3), JSON)}),
    shaped({"access_token": JSON, "expires_in": JSON, "refresh_token": JSON, "error": JSON}),
)
OPERATIONS = {
    "pages": lambda c: c.iter_pages("sn_apo_invoice", "active=true", fields=["sys_id"]),
    "updated_since": lambda c: c.iter_updated_since("sn_apo_invoice", "2024-05-31 00:00:00"),
    "lookup": lambda c: c.lookup("proc_vendor", "u_source_key", ["K1", "K2"], fields=["name"]),
    "upsert": lambda c: c.upsert("proc_vendor", [UpsertRow("K1", {"name": "A"}),
                                                 UpsertRow("K2", {"name": "B"}, uncertain=True)]),
    "delete": lambda c: c.delete("proc_vendor", "abc"),
    "check": lambda c: c.check(),
}


def spec() -> ConnectionSpec:
    return ConnectionSpec("servicenow", URL, "oauth2_client_credentials",
                          settings={"client_id": "id", "service_account": "integration.user", "batch_size": 2},
                          secrets={"client_secret": "secret"})


def check_contract(name: str, result: list) -> None:
    if name in ("pages", "updated_since"):
        assert all(isinstance(page, list) and all(isinstance(row, dict) for row in page) for page in result)
    elif name == "lookup":
        assert all(isinstance(k, str) and isinstance(v, dict) for k, v in result[0].items())
    elif name == "upsert":
        assert set(result[0]) == {"K1", "K2"}
        for outcome in result[0].values():
            assert outcome.error is not None or (isinstance(outcome.sys_id, str) and isinstance(outcome.record, dict))
    elif name == "check":
        assert all(isinstance(line, dict) and "ok" in line for line in result[0])


@pytest.mark.parametrize("cached", [False, True], ids=["token-endpoint", "cached-token"])
@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(OPERATIONS)), drawn=answers(SN_BODIES))
def test_the_servicenow_client_classifies_whatever_the_server_answers(name, cached, drawn):
    store = MemoryTokenStore(Token("live", expires_at=utcnow() + timedelta(hours=1)) if cached else None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server = serve(rsps, drawn)
        client = build_client(spec(), store, policy=policy())
        try:
            result = drain(OPERATIONS[name](client))
        except SyncError:
            return
        except Exception as exc:  # noqa: BLE001 - the point: nothing unclassified gets out
            pytest.fail(failure_report(server, exc))
        check_contract(name, result)
