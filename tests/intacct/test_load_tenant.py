"""load_tenant documents accept Intacct connections: sender, company and user, with encrypted passwords."""

from __future__ import annotations

import copy

import pytest
from django.db import connection as database

from integrations.models import Connection, Integration
from integrations.tenants import DocumentError, load_document, validate

from .conftest import INTACCT_URL, SN_URL


def intacct_connection(doc: dict) -> dict:
    return next(c for c in doc["connections"] if c["system"] == "sage_intacct")


def test_the_demo_document_loads_an_intacct_connection_and_integration(db, intacct_doc):
    load_document(intacct_doc)
    conn = Connection.objects.get(system="sage_intacct")
    assert conn.auth_method == "session"
    assert conn.url == f"{INTACCT_URL}/ia/xml/xmlgw.phtml"
    assert conn.company == "acme-demo"
    assert conn.settings == {"sender_id": "mlconnector", "user_id": "xml_gateway"}
    assert conn.secrets == {"sender_password": "intacct-sender-pass", "user_password": "intacct-user-pass"}
    integration = Integration.objects.get(name="intacct-sn")
    assert (integration.kind, integration.source, integration.target.system) == (
        "sage_intacct__servicenow", conn, "servicenow")


def test_passwords_are_encrypted_at_rest(db, intacct_doc):
    load_document(intacct_doc)
    conn = Connection.objects.get(system="sage_intacct")
    with database.cursor() as cursor:
        cursor.execute("SELECT secrets FROM integrations_connection WHERE id = %s", [conn.pk])
        raw = str(cursor.fetchone()[0])
    assert "intacct-sender-pass" not in raw and "intacct-user-pass" not in raw


def test_the_company_id_may_be_given_in_the_auth_block_with_an_entity(db):
    from integrations.demo import intacct_servicenow_document

    doc = intacct_servicenow_document(INTACCT_URL, SN_URL, entity_id="E100")
    conn = intacct_connection(doc)
    conn["auth"]["company_id"] = conn.pop("company")
    load_document(doc)
    stored = Connection.objects.get(system="sage_intacct")
    assert stored.company == "acme-demo"
    assert stored.settings["entity_id"] == "E100"


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("company"), "$.connections[0].company: required for Sage Intacct"),
    (lambda c: c["auth"].pop("sender_password"), "$.connections[0].auth.sender_password: required"),
    (lambda c: c["auth"].pop("user_id"), "$.connections[0].auth.user_id: required"),
    (lambda c: c["auth"].update(company_id="other"), "$.connections[0].auth.company_id: 'other' differs"),
    (lambda c: c["auth"].update(entity_id="E100", location_id="E200"), "$.connections[0].auth.location_id"),
    (lambda c: c["auth"].update(token="x"), "$.connections[0].auth.token: unknown key for method session"),
    (lambda c: c.update(auth={"method": "basic", "username": "u", "password": "p"}),
     "$.connections[0].auth.method: Sage Intacct signs in with 'session'"),
])
def test_an_incomplete_intacct_connection_is_refused_naming_the_path(db, intacct_doc, change, message):
    doc = copy.deepcopy(intacct_doc)
    change(intacct_connection(doc))
    errors = validate(doc)
    assert any(error.startswith(message) for error in errors), errors
    with pytest.raises(DocumentError):
        load_document(doc)
    assert not Connection.objects.exists()
