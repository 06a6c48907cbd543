"""Sage X3 client against a hostile server: whatever comes back, a classified error or well-typed data.

Every request the client makes (its pages, a record's details, writes, the OAuth2 token
endpoint) is answered from a drawn list of statuses, headers and bodies: random bytes, any JSON,
and X3-shaped envelopes holding values of the wrong type. The client may succeed, or raise a
``SyncError`` the engine can classify; anything else (KeyError, TypeError, ValueError from a
parser...) would reach the engine as an unexplained crash.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.systems.auth import MemoryTokenStore, Token, utcnow
from integrations.systems.errors import SyncError
from integrations.systems.sage_x3 import build_client
from integrations.systems.spec import ConnectionSpec
from tests.fuzz.wire import JSON, answers, drain, failure_report, json_bytes, policy, serve, shaped

URL = "http://x3.fuzz.test:8124"
X3_BODIES = st.one_of(
    JSON.map(json_bytes),
    shaped({"$resources": st.one_of(JSON, st.lists(JSON, max_size=3)), "$links": JSON,
            "$diagnoses": st.one_of(JSON, st.lists(st.fixed_dictionaries({}, optional={"$message": JSON,
                                                                                        "$severity": JSON})))}),
    shaped({"$links": st.fixed_dictionaries({}, optional={"$next": st.fixed_dictionaries(
        {}, optional={"$url": st.sampled_from([f"{URL}/next", "", "not a url", "http://[::1", "/relative"])})})}),
    shaped({"access_token": JSON, "expires_in": JSON, "refresh_token": JSON, "refresh_token_expires_in": JSON,
            "error": JSON}),
)
OPERATIONS = {
    "pages": lambda c: c.iter_pages("PINVOICE", since="2024-05-31T00:00:00Z"),
    "read": lambda c: c.read("PINVOICE", "PI0001"),
    "update": lambda c: c.update("BPSUPPLIER", "S1", {"BPSNAM": "Acme"}),
    "create": lambda c: c.create("BPSUPPLIER", {"BPSNUM": "S2"}),
    "check": lambda c: c.check(),
}


def spec(auth: str) -> ConnectionSpec:
    if auth == "basic":
        return ConnectionSpec("sage_x3", URL, "basic", company="SEED", settings={"username": "admin"},
                              secrets={"password": "pw"})
    return ConnectionSpec("sage_x3", URL, "oauth2_refresh_token", company="SEED",
                          settings={"client_id": "id", "token_url": f"{URL}/token"},
                          secrets={"client_secret": "secret", "refresh_token": "refresh"})


def token_store(auth: str) -> MemoryTokenStore:
    if auth == "oauth2_cached":  # a live token: the answers go to the data endpoints
        return MemoryTokenStore(Token("live", expires_at=utcnow() + timedelta(hours=1)))
    return MemoryTokenStore()  # oauth2: the first answer goes to the token endpoint


def check_contract(name: str, result: list) -> None:
    if name == "pages":
        assert all(isinstance(page, list) and all(isinstance(row, dict) for row in page) for page in result)
    elif name == "read":
        assert result[0] is None or isinstance(result[0], dict)
    elif name in ("update", "create"):
        assert isinstance(result[0], dict)
    else:
        assert all(isinstance(line, dict) and "ok" in line for line in result[0])


@pytest.mark.parametrize("auth", ["basic", "oauth2", "oauth2_cached"])
@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(OPERATIONS)), drawn=answers(X3_BODIES))
def test_the_x3_client_classifies_whatever_the_server_answers(name, auth, drawn):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        server = serve(rsps, drawn)
        client = build_client(spec("basic" if auth == "basic" else "oauth2"), token_store(auth), policy=policy())
        try:
            result = drain(OPERATIONS[name](client))
        except SyncError:
            return
        except Exception as exc:  # noqa: BLE001 - the point: nothing unclassified gets out
            pytest.fail(failure_report(server, exc))
        check_contract(name, result)
