"""Sage X3 cloud OAuth2: 5-minute access tokens refreshed before they expire, rotating refresh tokens.

The simulator plays the documented lifecycle (API_FACTS 2.2): access tokens valid 300 s, a
refresh grant answers a new access *and* refresh token, and a spent refresh token is refused.
Time is controlled with one manual clock shared by the simulator's token service and our
TokenManager, so "four minutes later" costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from django.db import connection as db

from integrations.demo import X3_CLIENT_ID, X3_CLIENT_SECRET
from integrations.engine.context import connection_spec
from integrations.engine.runner import run_integration
from integrations.engine.tokens import ConnectionTokenStore
from integrations.models import AuditEvent, Connection, Integration, RunStatus
from integrations.sandbox.clock import ManualClock
from integrations.systems.auth import BearerAuth, TokenManager, oauth2_fetcher
from integrations.systems.http import HttpClient
from integrations.systems.sage_x3 import REFRESH_TOKEN_LIFETIME, SageX3Client
from integrations.tenants import load_document
from tests.conftest import X3_URL

pytestmark = pytest.mark.django_db


def x3_client(conn: Connection, clock: ManualClock) -> SageX3Client:
    """The X3 client exactly as ``sage_x3.build_client`` assembles it, with a controllable clock."""
    spec = connection_spec(conn)
    token_http = HttpClient(spec.url, secrets=spec.secret_values())
    fetch = oauth2_fetcher(
        token_http, spec.setting("token_url"), client_id=spec.setting("client_id"),
        client_secret=spec.secret("client_secret"), grant="refresh_token", refresh_token=spec.secret("refresh_token"),
        default_refresh_lifetime=REFRESH_TOKEN_LIFETIME, clock=clock,
    )
    tokens = TokenManager(fetch, ConnectionTokenStore(conn), clock=clock)
    return SageX3Client(spec, HttpClient(spec.url, auth=BearerAuth(tokens), secrets=spec.secret_values()))


def api_calls(x3_sim) -> list:
    return [r for r in x3_sim.requests if r.path.startswith("/api1/")]


def token_calls(x3_sim) -> list:
    return [r for r in x3_sim.requests if r.path == "/token"]


def spend_refresh_token(refresh_token: str) -> requests.Response:
    return requests.post(f"{X3_URL}/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": X3_CLIENT_ID, "client_secret": X3_CLIENT_SECRET,
    }, timeout=5)


def raw_token_cache(conn: Connection) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT token_cache FROM integrations_connection WHERE id = %s", [conn.pk])
        return str(cursor.fetchone()[0])


def test_it_refreshes_the_access_token_within_the_last_minute_before_its_five_minute_expiry(integration, x3_sim):
    clock = ManualClock(datetime.now(UTC))
    x3_sim.set_clock(clock)
    client = x3_client(integration.source, clock)

    client.read("GACCOUNT", "60100")
    first = Connection.objects.get(pk=integration.source_id).token_cache
    assert len(token_calls(x3_sim)) == 1

    clock.advance(230)  # 70 s left: outside the refresh margin (a fifth of 300 s)
    client.read("GACCOUNT", "60200")
    assert len(token_calls(x3_sim)) == 1, "a token with 70 s left must be reused"

    clock.advance(15)  # 55 s left: inside the margin, and X3 still accepts the old token
    assert x3_sim.oauth.check_bearer(first["access_token"]) is None
    client.read("GACCOUNT", "60300")

    assert len(token_calls(x3_sim)) == 2, "the token is refreshed before it expires"
    assert len(api_calls(x3_sim)) == 3, "no call was refused: nothing was sent with an expired token"
    second = Connection.objects.get(pk=integration.source_id).token_cache
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert spend_refresh_token(first["refresh_token"]).json()["error"] == "invalid_grant", "rotated away"
    assert AuditEvent.objects.filter(connection_id=integration.source_id, action="connection.token_refreshed",
                                     detail__refresh_token_rotated=True).count() == 2
    assert not AuditEvent.objects.filter(action="connection.reauthenticated").exists()


def test_it_stores_the_rotated_refresh_token_encrypted_and_the_old_one_is_refused(integration, x3_sim):
    seed_refresh = integration.source.secrets["refresh_token"]

    run = run_integration(integration, streams=["x3_gl_accounts"])[0]

    assert run.status == RunStatus.SUCCEEDED
    conn = Connection.objects.get(pk=integration.source_id)
    rotated = conn.token_cache["refresh_token"]
    assert rotated and rotated != seed_refresh
    assert x3_sim.valid_refresh_tokens(X3_CLIENT_ID) == [rotated]
    assert conn.refresh_token_expires_at is not None
    raw = raw_token_cache(conn)
    assert rotated not in raw and conn.token_cache["access_token"] not in raw
    refused = spend_refresh_token(seed_refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(connection_id=conn.pk, action="connection.token_refreshed",
                                     detail__refresh_token_rotated=True).exists()


def test_it_keeps_rotating_across_runs_and_clients_sharing_the_connection_row(integration, x3_sim):
    clock = ManualClock(datetime.now(UTC))
    x3_sim.set_clock(clock)
    seen = []
    for _ in range(3):
        run = run_integration(integration, streams=["x3_gl_accounts"])[0]
        assert run.status == RunStatus.SUCCEEDED
        seen.append(Connection.objects.get(pk=integration.source_id).token_cache["refresh_token"])
        clock.advance(301)  # every access token handed out so far has expired at X3

    assert len(set(seen)) == 3, "each refresh spends the current refresh token and stores the new one"
    assert AuditEvent.objects.filter(action="connection.reauthenticated",
                                     connection_id=integration.source_id).count() == 2, "X3 said 401 in runs 2 and 3"
    assert x3_sim.valid_refresh_tokens(X3_CLIENT_ID) == [seen[-1]]
    assert not Connection.objects.get(pk=integration.source_id).needs_reauth


def test_reloading_the_same_tenant_document_keeps_the_rotated_refresh_token(integration, x3_sim, tenant_doc):
    run_integration(integration, streams=["x3_gl_accounts"])  # spends the seed refresh token
    rotated = Connection.objects.get(pk=integration.source_id).token_cache["refresh_token"]

    load_document(tenant_doc)  # same credentials: the live token chain must survive

    assert Connection.objects.get(pk=integration.source_id).token_cache["refresh_token"] == rotated
    run = run_integration(integration, streams=["x3_cost_centers"])[0]
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert not Connection.objects.get(pk=integration.source_id).needs_reauth


def test_a_new_refresh_token_in_the_tenant_document_replaces_the_cached_chain(integration, x3_sim, tenant_doc):
    run_integration(integration, streams=["x3_gl_accounts"])
    x3_sim.revoke_refresh_tokens(X3_CLIENT_ID)  # the customer paired the application again...
    fresh = x3_sim.issue_refresh_token(X3_CLIENT_ID)
    tenant_doc["connections"][0]["auth"]["refresh_token"] = fresh  # ...and the operator pasted the new token

    load_document(tenant_doc)

    integration = Integration.objects.select_related("source", "target").get(pk=integration.pk)  # a new task
    run = run_integration(integration, streams=["x3_cost_centers"])[0]
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert x3_sim.valid_refresh_tokens(X3_CLIENT_ID) == [
        Connection.objects.get(pk=integration.source_id).token_cache["refresh_token"]
    ]
