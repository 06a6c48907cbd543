"""Connections through the API: secrets go in and never come out; bad input changes nothing."""

from __future__ import annotations

import json

import pytest

from integrations.demo import SN_CLIENT_SECRET, X3_CLIENT_SECRET
from integrations.models import AuditEvent, Connection


def secret_values(world) -> list[str]:
    values = [X3_CLIENT_SECRET, SN_CLIENT_SECRET]
    for connection in Connection.objects.all():
        values += [str(v) for v in connection.secrets.values()]
        values += [str(v) for k, v in connection.token_cache.items() if "token" in k and v]
    return [v for v in values if len(v) >= 6]


def snapshot(connection: Connection) -> dict:
    connection.refresh_from_db()
    return {f.name: getattr(connection, f.name) for f in Connection._meta.concrete_fields}


def test_no_response_ever_contains_a_secret_or_a_token(world):
    x3 = world.acme.source
    assert Connection.objects.get(pk=x3.pk).token_cache, "the sync should have cached a token"
    owner = world.client("owner")
    bodies = [
        owner.get("/api/connections/").content,
        owner.get(f"/api/connections/{x3.pk}/").content,
        owner.patch(f"/api/connections/{x3.pk}/", {"secrets": {"client_secret": "rotated-secret-1"}},
                    format="json").content,
        owner.post("/api/connections/", {"tenant": "acme", "name": "sn2", "system": "servicenow",
                                         "url": "https://acme2.service-now.com",
                                         "auth_method": "oauth2_client_credentials",
                                         "settings": {"client_id": "portal"},
                                         "secrets": {"client_secret": "created-secret-2"}}, format="json").content,
        owner.get("/api/audit/?page_size=500").content,
    ]
    text = b"\n".join(bodies).decode()
    for secret in [*secret_values(world), "rotated-secret-1", "created-secret-2"]:
        assert secret not in text
    shown = owner.get(f"/api/connections/{x3.pk}/").json()
    assert "secrets" not in shown and "token_cache" not in shown
    assert shown["secrets_set"] == ["client_secret", "refresh_token"]


def test_a_blank_or_absent_secret_keeps_the_stored_value(world):
    x3 = Connection.objects.get(pk=world.acme.source_id)
    stored, cache = dict(x3.secrets), dict(x3.token_cache)
    response = world.call("owner", "patch", f"/api/connections/{x3.pk}/",
                          {"company": "SEED", "secrets": {"client_secret": ""}})
    assert response.status_code == 200
    x3.refresh_from_db()
    assert x3.secrets == stored
    assert x3.token_cache == cache, "nothing about the logon changed: keep the live token"


def test_a_new_secret_replaces_the_old_one_resets_the_token_and_is_audited_by_name_only(world):
    x3 = Connection.objects.get(pk=world.acme.source_id)
    refresh_token = x3.secrets["refresh_token"]
    response = world.call("owner", "patch", f"/api/connections/{x3.pk}/", {"secrets": {"client_secret": "n3w-one"}})
    assert response.status_code == 200
    x3.refresh_from_db()
    assert x3.secrets == {"client_secret": "n3w-one", "refresh_token": refresh_token}
    assert x3.token_cache == {} and x3.token_expires_at is None
    event = AuditEvent.objects.filter(action="connection.updated", connection_id=x3.pk).get()
    assert event.actor_name == "owner" and event.request_id
    assert event.detail["rotated"] == ["client_secret"]
    assert "n3w-one" not in json.dumps(event.detail) + event.message


def test_an_admin_creates_a_connection_and_it_is_audited(world):
    response = world.call("owner", "post", "/api/connections/", {
        "tenant": "acme", "name": "sn-test", "system": "servicenow", "url": "http://sn.acme.test",
        "port": 20000, "auth_method": "basic", "settings": {"username": "admin"},
        "secrets": {"password": "pa55word"}})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["tenant"] == "acme" and body["secrets_set"] == ["password"]
    connection = Connection.objects.get(pk=body["id"])
    assert connection.secrets == {"password": "pa55word"} and connection.address == "http://sn.acme.test:20000"
    assert AuditEvent.objects.filter(action="connection.created", connection_id=connection.pk,
                                     actor_name="owner").exists()


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"secrets": {"password": "x"}}, "secrets", "not a secret of oauth2_refresh_token"),
    ({"settings": {"client_id": "ml-connector", "token_url": "http://x3.acme.test:8124/token",
                   "password": "oops"}}, "settings", "secrets go in 'secrets'"),
    ({"settings": {"token_url": "http://x3.acme.test:8124/token"}}, "settings", "client_id: required"),
    ({"system": "servicenow"}, "system", "Cannot be changed"),
    ({"tenant": "globex"}, "tenant", "Cannot be changed"),
    ({"name": "sn"}, "name", "already exists"),
    ({"company": ""}, "company", "required for Sage X3"),
    ({"url": "not a url"}, "url", "valid URL"),
    ({"port": 70000}, "port", "less than or equal to 65535"),
    ({"auth_method": "basic"}, "secrets", "password: required for basic"),
])
def test_a_bad_change_is_refused_clearly_and_changes_nothing(world, change, field, words):
    x3 = world.acme.source
    before, events = snapshot(x3), AuditEvent.objects.count()
    response = world.call("owner", "patch", f"/api/connections/{x3.pk}/", change)
    assert response.status_code == 400
    assert words in json.dumps(response.json()[field])
    assert snapshot(x3) == before
    assert AuditEvent.objects.count() == events


def test_switching_auth_method_drops_secrets_the_new_method_has_no_use_for(world):
    x3 = world.acme.source
    response = world.call("owner", "patch", f"/api/connections/{x3.pk}/", {
        "auth_method": "basic", "settings": {"username": "admin"}, "secrets": {"password": "x3-demo-pass"}})
    assert response.status_code == 200, response.json()
    x3.refresh_from_db()
    assert x3.secrets == {"password": "x3-demo-pass"}
    assert response.json()["secrets_set"] == ["password"]


def test_testing_a_connection_returns_the_report_and_stores_it(world):
    sn = world.acme.target
    response = world.call("operator", "post", f"/api/connections/{sn.pk}/test/")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True and report["checks"]
    sn.refresh_from_db()
    assert sn.last_test_ok is True
    shown = world.call("viewer", "get", f"/api/connections/{sn.pk}/").json()
    assert shown["last_test_ok"] is True and shown["last_test_report"]["ok"] is True
    assert AuditEvent.objects.filter(action="connection.tested", connection_id=sn.pk, actor_name="operator").exists()


def test_connections_filter_by_system_and_reject_unknown_values(world):
    rows = world.call("owner", "get", "/api/connections/?system=servicenow").json()["results"]
    assert [r["name"] for r in rows] == ["sn"]
    response = world.call("owner", "get", "/api/connections/?system=oracle")
    assert response.status_code == 400 and "system" in response.json()


def test_connections_list_has_no_n_plus_one(world, django_assert_max_num_queries):
    client = world.client("superuser")
    with django_assert_max_num_queries(3):
        assert client.get("/api/connections/").json()["count"] == 4


def test_a_system_without_a_connector_yet_is_refused_by_name(world, monkeypatch):
    from integrations.systems import registry

    monkeypatch.delitem(registry.SCHEMAS, "syspro")  # as before its client was written
    response = world.call("owner", "post", "/api/connections/", {
        "tenant": "acme", "name": "erp", "system": "syspro", "url": "http://syspro.acme.test",
        "auth_method": "basic", "settings": {"username": "admin"}, "secrets": {"password": "pa55word"}})
    assert response.status_code == 400
    assert response.json()["system"] == ["No connector for syspro yet."]
    assert not Connection.objects.filter(name="erp").exists()


def test_each_system_accepts_only_its_own_sign_in_methods(world):
    response = world.call("owner", "post", "/api/connections/", {
        "tenant": "acme", "name": "gl", "system": "sage_intacct", "url": "https://api.intacct.com/ia/xml/xmlgw.phtml",
        "company": "acme", "auth_method": "basic", "settings": {"username": "admin"}, "secrets": {"password": "p"}})
    assert response.status_code == 400
    assert "Sage Intacct signs in with 'session'" in response.json()["auth_method"][0]
