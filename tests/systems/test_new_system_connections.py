"""SYSPRO and ServiceTitan connections load from a tenant document with every credential encrypted."""

from __future__ import annotations

import pytest

from integrations.models import Connection
from integrations.tenants import load_document

pytestmark = pytest.mark.django_db

WEBHOOK_KEY = "k" * 40


def document() -> dict:
    return {
        "tenant": {"slug": "acme", "name": "Acme"},
        "connections": [
            {"name": "syspro", "system": "syspro", "url": "http://syspro.acme.local:20000", "company": "EDU1",
             "auth": {"method": "enet", "operator": "ADMIN", "operator_password": "p&ss word+1#",
                      "company_password": "c0mpany"}},
            {"name": "st", "system": "servicetitan", "url": "https://api-integration.servicetitan.io",
             "company": "1234567",
             "auth": {"method": "oauth2_client_credentials", "client_id": "cid", "client_secret": "cs3cret",
                      "app_key": "ak1.appkey", "webhook_key": WEBHOOK_KEY},
             "settings": {"environment": "integration"}},
        ],
    }


def test_each_secret_lands_encrypted_and_nothing_secret_is_a_setting():
    load_document(document())
    syspro = Connection.objects.get(name="syspro")
    assert syspro.auth_method == "enet"
    assert syspro.secrets == {"operator_password": "p&ss word+1#", "company_password": "c0mpany"}
    assert syspro.settings.get("operator") == "ADMIN"
    st = Connection.objects.get(name="st")
    assert set(st.secrets) == {"client_secret", "app_key", "webhook_key"}
    assert not {"app_key", "webhook_key", "client_secret"} & set(st.settings)
    for connection in (syspro, st):
        connection.full_clean()


def test_a_secret_given_as_a_setting_is_refused_by_name():
    from integrations.tenants import DocumentError

    doc = document()
    doc["connections"][1]["settings"]["app_key"] = "ak1.appkey"
    with pytest.raises(DocumentError, match="app_key"):
        load_document(doc)
