"""Credentials and tokens are encrypted at rest and never written anywhere in plain text."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db

from integrations.demo import X3_CLIENT_SECRET, x3_servicenow_document
from integrations.engine.checks import test_connection as check_connection
from integrations.engine.runner import run_integration
from integrations.models import AuditEvent, Connection, Integration
from integrations.sandbox.base import Faults
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.snseed import INTEGRATION_PASSWORD, OAUTH_CLIENT_SECRET
from integrations.tenants import load_document
from tests.conftest import SN_URL, X3_URL
from tests.support import sync_everything

pytestmark = pytest.mark.django_db

X3_PASSWORD = "x3-demo-pass"


def every_secret(x3_sim, sn_sim) -> set[str]:
    """Every credential the portal was given and every token the two systems ever issued to it."""
    return {
        X3_CLIENT_SECRET, OAUTH_CLIENT_SECRET, X3_PASSWORD, INTEGRATION_PASSWORD,
        *x3_sim.oauth.state.refresh_tokens, *x3_sim.oauth.state.access_tokens,
        *sn_sim.auth.access, *sn_sim.auth.refresh,
    }


def raw_rows(sql: str, params=()) -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def whole_database_text() -> str:
    """Every cell of every table, read with SQL (what a stolen backup would show)."""
    cells = []
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            cells.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(cells)


@pytest.fixture
def busy_history(integration, x3_sim, sn_sim):
    """A tenant that lived a little: syncs, retries, token refreshes, 401s, a connection test."""
    sn_sim.set_faults(Faults(error_rate=0.2, burst_429_rate=0.05, retry_after=0, seed=3))
    sync_everything(integration)
    sn_sim.expire_tokens()  # the next call meets a 401 and refreshes
    x3_sim.set_clock(ManualClock(datetime.now(UTC) + timedelta(seconds=301)))  # X3 tokens expired too...
    x3_sim.set_faults(Faults(token_lifetime=0))  # ...and X3 refuses even fresh ones: an AuthError on record
    run_integration(integration)
    x3_sim.set_faults(Faults())
    sn_sim.set_faults(Faults())
    check_connection(Connection.objects.get(pk=integration.target_id))
    return integration


def test_connection_secrets_and_token_cache_columns_hold_no_plain_text(busy_history, x3_sim, sn_sim):
    rows = raw_rows("SELECT secrets, token_cache FROM integrations_connection")

    assert len(rows) == 2
    secrets = every_secret(x3_sim, sn_sim)
    for secrets_cell, token_cell in rows:
        for value in (str(secrets_cell), str(token_cell)):
            assert not [s for s in secrets if s in value]
            stored = json.loads(value)
            assert stored, "the column is filled"
            # key names stay readable; every value is a Fernet token
            assert all(isinstance(v, str) and v.startswith("gAAAAA") for v in stored.values()), stored.keys()
    conn = Connection.objects.get(system="sage_x3")
    assert conn.secrets["client_secret"] == X3_CLIENT_SECRET, "the application still reads them back"
    assert conn.token_cache["refresh_token"] in x3_sim.valid_refresh_tokens()


def test_no_secret_appears_anywhere_in_the_database(busy_history, x3_sim, sn_sim):
    text = whole_database_text()

    leaked = [s[:12] + "..." for s in every_secret(x3_sim, sn_sim) if s in text]
    assert leaked == []


def test_audit_events_never_carry_a_secret(busy_history, x3_sim, sn_sim):
    secrets = every_secret(x3_sim, sn_sim)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"connection.created", "connection.token_refreshed", "connection.reauthenticated", "http.backoff",
            "run.systemic_error", "connection.tested"} <= actions, "the history exercised what it should"

    for event in AuditEvent.objects.all():
        text = event.message + json.dumps(event.detail)
        assert not [s for s in secrets if s in text], event.action


def test_a_basic_auth_password_is_neither_stored_in_clear_nor_logged(integration, x3_sim, sn_sim, caplog):
    load_document(x3_servicenow_document(X3_URL, SN_URL, slug="beta", name="Beta Ltd"))  # X3 over Basic
    beta = Integration.objects.select_related("source", "target").get(tenant__slug="beta")
    x3_sim.set_faults(Faults(error_rate=0.3, seed=7))  # retries are logged

    with caplog.at_level(logging.DEBUG):
        runs = run_integration(beta)

    assert all(r.status == "succeeded" for r in runs)
    assert any("retrying" in r.getMessage() for r in caplog.records), "the run did log its retries"
    secrets = every_secret(x3_sim, sn_sim)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets if s in logged]
    assert X3_PASSWORD not in whole_database_text()
    assert beta.source.secrets == {"password": X3_PASSWORD}
