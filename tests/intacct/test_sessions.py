"""getAPISession sessions: cached encrypted, capped at 50 minutes, refreshed, keyed per sender/company/user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection as database

from integrations.sandbox.intacct_seed import COMPANY_ID
from integrations.systems.auth import MemoryTokenStore, Token, utcnow
from integrations.systems.errors import AuthError, SystemicError
from integrations.systems.intacct import SESSION_MAX_AGE
from integrations.systems.intacct_envelope import fn_read_by_query

from .conftest import INTACCT_URL


def sign_ins(sim) -> int:
    return sum(1 for name, _, status in sim.function_log if name == "getAPISession" and status == "success")


def test_it_signs_in_once_and_reuses_the_session(make_client, intacct_sim):
    client = make_client()
    for _ in range(3):
        client.call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 1))
    assert sign_ins(intacct_sim) == 1


def test_a_session_is_kept_at_most_50_minutes_even_when_intacct_allows_longer(make_client, intacct_sim):
    assert intacct_sim.session_lifetime == 3600
    token = make_client().tokens.token()
    assert token.expires_at - token.issued_at == SESSION_MAX_AGE


def test_a_session_is_kept_no_longer_than_intacct_says(make_client, intacct_sim):
    intacct_sim.session_lifetime = 600
    token = make_client().tokens.token()
    assert timedelta(minutes=9) < token.expires_at - token.issued_at <= timedelta(minutes=10)


def test_the_session_is_refreshed_before_it_expires(make_client, intacct_sim):
    client = make_client()
    first = client.tokens.token()
    client.tokens.clock = lambda: first.issued_at + timedelta(minutes=44)
    assert client.tokens.token().access_token == first.access_token
    client.tokens.clock = lambda: first.issued_at + timedelta(minutes=46)  # inside the 5-minute margin
    assert client.tokens.token().access_token != first.access_token
    assert sign_ins(intacct_sim) == 2


def test_a_session_that_expires_mid_run_is_survived(make_client, intacct_sim):
    events = []
    client = make_client(page_size=5)
    client.http.on_event = lambda action, detail: events.append(action)  # a refused session is the HTTP layer's
    seen = []
    for page in client.iter_query("APBILL", "", ["RECORDNO"]):
        seen.extend(row["RECORDNO"] for row in page)
        if len(seen) == 10:
            intacct_sim.expire_sessions()  # Intacct times the session out between two pages
    assert len(seen) == len(set(seen)) == 36
    assert sign_ins(intacct_sim) == 2
    assert events == ["connection.reauthenticated"]


def test_a_refusal_after_a_fresh_sign_in_is_an_auth_error(make_client, intacct_sim):
    client = make_client()
    client.tokens.token()
    intacct_sim.inject_error("authentication", "XL03000006", "Sign-in information is incorrect", times=2)
    with pytest.raises(AuthError, match="Sign-in information is incorrect"):
        client.call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 1))


def test_a_cached_session_of_another_user_is_discarded_not_reused(make_client, intacct_sim):
    foreign = Token("someone-elses-session", expires_at=utcnow() + timedelta(minutes=30),
                    extra={"endpoint": f"{INTACCT_URL}/ia/xml/xmlgw.phtml", "sender_id": "mlconnector",
                           "company_id": COMPANY_ID, "user_id": "another_user", "location_id": ""})
    store = MemoryTokenStore(foreign)
    client = make_client(store)
    client.call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 1))
    assert store.token.access_token != "someone-elses-session"
    assert store.token.extra["user_id"] == "xml_gateway"
    assert sign_ins(intacct_sim) == 1


def test_calls_go_to_the_endpoint_getapisession_returned(make_client, intacct_sim):
    intacct_sim.session_endpoint_path = "/pod7/ia/xml/xmlgw.phtml"
    make_client().call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 1))
    paths = [request.path for request in intacct_sim.requests]
    assert paths == ["/ia/xml/xmlgw.phtml", "/pod7/ia/xml/xmlgw.phtml"]


def test_an_endpoint_on_a_foreign_host_is_refused_so_the_session_id_never_leaves(make_client, intacct_sim):
    intacct_sim.session_endpoint = "https://collector.attacker.example/ia/xml/xmlgw.phtml"
    with pytest.raises(SystemicError, match="unexpected endpoint host"):
        make_client().tokens.token()


def _raw_token_cache(pk: int) -> str:
    with database.cursor() as cursor:
        cursor.execute("SELECT token_cache FROM integrations_connection WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_the_session_is_cached_encrypted_on_the_connection(intacct_integration, intacct_sim):
    from integrations.engine.runner import run_stream

    run_stream(intacct_integration, "intacct_gl_accounts")
    source = intacct_integration.source
    source.refresh_from_db()
    session_id = source.token_cache["access_token"]
    assert session_id in intacct_sim.sessions
    assert source.token_cache["extra"]["endpoint"].startswith(INTACCT_URL)
    raw = _raw_token_cache(source.pk)
    assert session_id not in raw and "acme-demo" not in raw
    run_stream(intacct_integration, "intacct_departments")  # another run, another worker: same session
    assert sign_ins(intacct_sim) == 1


def test_two_tenants_on_one_gateway_never_share_a_session(db, intacct_sandbox, intacct_sim):
    from integrations.engine.context import build_client
    from integrations.models import Connection
    from integrations.systems.http import CallCounter
    from integrations.tenants import load_document

    intacct_sim.add_company("globex", senders=("mlconnector",))
    intacct_sim.add_user("globex", "xml_gateway", "globex-pass")
    for slug, company, password in (("acme", COMPANY_ID, "intacct-user-pass"), ("globex", "globex", "globex-pass")):
        load_document({"tenant": {"slug": slug, "name": slug.title()}, "connections": [
            {"name": "intacct", "system": "sage_intacct", "url": f"{INTACCT_URL}/ia/xml/xmlgw.phtml",
             "company": company, "auth": {"method": "session", "sender_id": "mlconnector",
                                          "sender_password": "intacct-sender-pass", "user_id": "xml_gateway",
                                          "user_password": password}}]})
    sessions = {}
    for conn in Connection.objects.filter(system="sage_intacct"):
        build_client(conn, CallCounter()).call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 1))
        conn.refresh_from_db()
        sessions[conn.company] = conn.token_cache["access_token"]
    assert sessions[COMPANY_ID] != sessions["globex"]
    assert {intacct_sim.sessions[s].company_id for s in sessions.values()} == {COMPANY_ID, "globex"}
