"""The connection form checks settings against the system's schema (issue 13, defects 4 and 5)."""

from __future__ import annotations

import json
import time

import pytest

from integrations.models import AuditEvent, Connection
from tests.admin.test_connections import _form


def _save(w, connection: Connection, settings: str):
    url = f"/admin/integrations/connection/{connection.pk}/change/"
    return w.client("owner").post(url, _form(connection, settings=settings))


@pytest.mark.parametrize(("document", "words"), [
    ("null", "must be an object of settings"),
    ("[1, 2]", "must be an object of settings"),
    (json.dumps({"page_size": 10**30}), "page_size: must be between 1 and 10,000"),
    (json.dumps({"where_template": "a\u0000b"}), "where_template: must not contain control characters"),
    (json.dumps({"colour": "blue"}), "colour: not a setting here"),
])
def test_a_bad_settings_document_is_a_form_error_and_changes_nothing(w, document, words):
    x3 = Connection.objects.get(pk=w.acme.source_id)
    events = AuditEvent.objects.count()
    response = _save(w, x3, document)
    assert response.status_code == 200  # the form again, with the error on the field
    assert words in response.content.decode()
    assert Connection.objects.get(pk=x3.pk).settings == x3.settings
    assert AuditEvent.objects.count() == events


def test_a_megabyte_setting_is_refused_quickly(w):
    x3 = Connection.objects.get(pk=w.acme.source_id)
    started = time.perf_counter()
    response = _save(w, x3, json.dumps({**x3.settings, "where_template": "a" * 1_000_000}))
    assert response.status_code == 413
    assert time.perf_counter() - started < 1.0
    assert Connection.objects.get(pk=x3.pk).settings == x3.settings


def test_a_good_change_is_saved_and_audited(w):
    x3 = Connection.objects.get(pk=w.acme.source_id)
    response = _save(w, x3, json.dumps({**x3.settings, "page_size": 500}))
    assert response.status_code == 302
    assert Connection.objects.get(pk=x3.pk).settings["page_size"] == 500
    event = AuditEvent.objects.filter(action="connection.updated", connection_id=x3.pk).latest("pk")
    assert event.detail["settings"]["page_size"] == 500
