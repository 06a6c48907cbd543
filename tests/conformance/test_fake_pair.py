"""A new system and pair can be added from a test alone: schema, client and flow, registered and gone."""

from __future__ import annotations

import pytest

from integrations.flows import flow_kinds, get_flow
from integrations.models import Connection
from integrations.systems.registry import client_builder, connection_settings_errors, schema_for
from integrations.tenants import DocumentError, load_document

from . import fake


def test_the_fake_pair_is_known_while_registered_and_forgotten_afterwards(monkeypatch):
    fake.install(monkeypatch)
    assert fake.KIND in dict(flow_kinds())
    assert get_flow(fake.KIND).stream_names() == ["entries"]
    assert schema_for(fake.SOURCE_SYSTEM) is fake.LEDGER_SCHEMA
    assert client_builder(fake.TARGET_SYSTEM) is fake.build_store_client
    assert connection_settings_errors(fake.SOURCE_SYSTEM, "basic", {"username": "u", "page_size": 0}) == [
        "page_size: must be between 1 and 1,000"]

    monkeypatch.undo()
    assert fake.KIND not in dict(flow_kinds())
    assert schema_for(fake.SOURCE_SYSTEM) is None


@pytest.mark.django_db
def test_a_tenant_document_may_name_a_registered_system(monkeypatch):
    fake.install(monkeypatch)
    auth = {"method": "basic", "username": fake.USERNAME, "password": fake.PASSWORD}
    plan = load_document({
        "tenant": {"slug": "conformance", "name": "Conformance"},
        "connections": [
            {"name": "ledger", "system": fake.SOURCE_SYSTEM, "url": "https://ledger.test", "auth": auth},
            {"name": "store", "system": fake.TARGET_SYSTEM, "url": "https://store.test", "auth": auth},
        ],
        "integrations": [{"name": "ledger-to-store", "kind": fake.KIND, "source": "ledger", "target": "store"}],
    })
    assert any(fake.KIND in action for action in plan.actions)
    ledger = Connection.objects.get(name="ledger")
    assert ledger.system == fake.SOURCE_SYSTEM and ledger.get_system_display() == schema_for(fake.SOURCE_SYSTEM).label
    ledger.full_clean()  # the model's choices are the registry's


def test_a_document_naming_an_unregistered_system_is_refused_by_name():
    with pytest.raises(DocumentError, match=r"\$\.connections\[0\]\.system: 'oracle' is not one of servicenow"):
        load_document({"tenant": {"slug": "t", "name": "T"},
                       "connections": [{"name": "c", "system": "oracle", "url": "https://o.test",
                                        "auth": {"method": "basic", "username": "u", "password": "p"}}]})


@pytest.mark.django_db
def test_a_stream_resumes_from_the_vendors_own_long_token(monkeypatch):
    """The checkpoint carries an export API's continuation token whole, and the next run sends it back."""
    from .harnesses import fake_harness

    with fake_harness(fake.ExportLedgerToStore)(monkeypatch).running() as h:
        h.prepare()
        h.add_records(4)
        first = h.run()
        assert first.created == 4 + 5, first.counts()  # and the five seeded before the integration
        token = h.state().checkpoint["token"]
        assert len(token) > 64, "longer than any cursor column"
        h.source_sim.requests.clear()

        h.add_records(2)
        second = h.run()

        assert (second.read, second.created) == (2, 2), second.counts()
        sent = [r.param("from") for r in h.source_sim.requests if r.path == "/api/v1/export"]
        assert sent[0] == token, "the run resumed from the stored token"
        assert h.state().checkpoint["token"] != token
