"""The HTTP policy's hooks every client builds on: errors inside 200 bodies, sessions ended by
the vendor, bodies that are not JSON, and the call budget checked before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from integrations.systems.auth import BearerAuth, MemoryTokenStore, Token, TokenManager
from integrations.systems.errors import AuthError, BudgetExhausted, DataError, SessionExpired, TransientError
from integrations.systems.http import CallCounter, HttpClient, HttpPolicy, decode_json

BASE = "https://erp.example.test"


def classify_body(response: requests.Response):
    text = response.text
    if text.startswith("ERROR: The supplied UserID is invalid"):
        return SessionExpired("The session ended")
    if text.startswith("ERROR"):
        return DataError(text[:80])
    return None


def session_client(counter: CallCounter | None = None):
    logons: list[int] = []

    def fetch(current):
        logons.append(1)
        return Token(access_token=f"session-{len(logons)}", expires_at=datetime.now(UTC) + timedelta(hours=1))

    auth = BearerAuth(TokenManager(fetch, MemoryTokenStore()), header="X-Session", prefix="")
    client = HttpClient(BASE, auth=auth, body_classifier=classify_body, counter=counter,
                        policy=HttpPolicy(max_retries=2, backoff_base=0.001, backoff_max=0.002))
    return client, logons


@responses.activate
def test_a_session_ended_by_the_vendor_signs_in_again_once_and_retries_once():
    responses.get(f"{BASE}/query", body="ERROR: The supplied UserID is invalid.", status=200)
    responses.get(f"{BASE}/query", body="<rows/>", status=200)
    client, logons = session_client()

    assert client.request("GET", "/query").text == "<rows/>"
    assert len(logons) == 2
    assert [call.request.headers["X-Session"] for call in responses.calls] == ["session-1", "session-2"]


@responses.activate
def test_a_session_refused_again_after_the_new_sign_in_is_not_retried_forever():
    responses.get(f"{BASE}/query", body="ERROR: The supplied UserID is invalid.", status=200)
    client, logons = session_client()

    with pytest.raises(AuthError, match="refused again right after signing in again"):
        client.request("GET", "/query", idempotent=True)  # not retried with backoff either: a person must look
    assert len(logons) == 2 and len(responses.calls) == 2


@responses.activate
def test_an_error_in_a_200_body_is_classified_not_returned():
    responses.get(f"{BASE}/query", body="ERROR: Invalid key 'X'", status=200)
    client, _ = session_client()

    with pytest.raises(DataError, match="Invalid key"):
        client.request("GET", "/query")


@responses.activate
def test_a_200_page_that_is_not_json_is_a_transient_error_that_says_why():
    responses.get(f"{BASE}/api/now/table/x", body="<html><body>Your instance is hibernating</body></html>",
                  status=200, content_type="text/html")
    client = HttpClient(BASE)
    response = client.request("GET", "/api/now/table/x")

    with pytest.raises(TransientError, match=r"not JSON \(text/html\).*asleep, in maintenance"):
        decode_json(response, "ServiceNow")


@responses.activate
def test_a_spent_budget_sends_nothing():
    responses.get(f"{BASE}/query", body="<rows/>", status=200)
    counter = CallCounter(budget=2, label="ERP")
    client, _ = session_client(counter)
    client.request("GET", "/query")
    client.request("GET", "/query")

    with pytest.raises(BudgetExhausted, match="ERP used its budget of 2 calls"):
        client.request("GET", "/query")
    assert len(responses.calls) == 2 and counter.calls == 2


def test_closing_releases_the_pooled_connections():
    client = HttpClient(BASE)
    adapter = client.session.get_adapter(BASE)
    adapter.poolmanager.connection_from_url(BASE)  # a pool, as after a first call
    assert len(adapter.poolmanager.pools) == 1

    client.close()
    assert len(adapter.poolmanager.pools) == 0


# --- the environment's proxies, read once per host ------------------------------------------------
@responses.activate
def test_the_environments_proxy_is_used_and_no_proxy_respected_without_rereading_it_per_call(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "intranet.example")
    responses.add(responses.GET, "https://erp.example/api/a", json={})
    responses.add(responses.GET, "https://intranet.example/api/b", json={})
    client = HttpClient("https://erp.example")

    client.request("GET", "/api/a")
    client.request("GET", "https://intranet.example/api/b")
    monkeypatch.setenv("HTTPS_PROXY", "http://changed.corp:3128")  # read once per host: not seen now
    client.request("GET", "/api/a")

    proxies = [call.request.req_kwargs["proxies"] for call in responses.calls]
    assert proxies[0].get("https") == "http://proxy.corp:3128"
    assert not proxies[1].get("https"), "no_proxy covers the intranet host"
    assert proxies[2].get("https") == "http://proxy.corp:3128"
    assert client.session.trust_env is False, "no .netrc credentials, no environment read per call"
