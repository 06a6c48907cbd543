"""Sizes and bounds on what the API accepts (issue 13, defects 1 and 5)."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from integrations.models import AuditEvent, Connection, Integration, RecordStatus, SyncRecord


def _patch_raw(world, url: str, body: bytes):
    client = world.client("owner")
    return client.generic("PATCH", url, body, content_type="application/json")


def test_a_megabyte_settings_value_is_refused_at_once_and_stores_nothing(world):
    x3 = world.acme.source
    before = dict(x3.settings)
    body = json.dumps({"settings": {**before, "username": "a" * 1_000_000}}).encode()
    started = time.perf_counter()
    response = _patch_raw(world, f"/api/connections/{x3.pk}/", body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 413
    assert "at most 262,144" in response.json()["detail"]
    assert elapsed < 1.0
    assert Connection.objects.get(pk=x3.pk).settings == before


def test_a_long_value_under_the_body_limit_is_refused_by_the_settings_bounds(world):
    x3 = world.acme.source
    response = world.call("owner", "patch", f"/api/connections/{x3.pk}/",
                          {"settings": {**x3.settings, "username": "a" * 200_000}})
    assert response.status_code == 400
    assert "at most 16,384 bytes" in json.dumps(response.json()["settings"])


@pytest.mark.parametrize(("document", "words"), [
    ({"page_size": 10**30}, "page_size: must be between 1 and 10,000"),
    ({"page_size": "200"}, "page_size: must be a whole number"),
    ({"where_template": "ok\x00"}, "where_template: must not contain control characters"),
    ({"pagesize": 10}, "pagesize: not a setting here"),
    ({"x3_fields": {"PINVOICE": {"number": 7}}}, "x3_fields.PINVOICE.number: must be a text"),
])
def test_connection_settings_are_checked_against_the_systems_schema(world, document, words):
    x3 = world.acme.source
    events = AuditEvent.objects.count()
    response = world.call("owner", "patch", f"/api/connections/{x3.pk}/", {"settings": {**x3.settings, **document}})
    assert response.status_code == 400
    assert words in json.dumps(response.json()["settings"])
    assert AuditEvent.objects.count() == events
    assert Connection.objects.get(pk=x3.pk).settings == x3.settings


@pytest.mark.parametrize(("document", "words"), [
    ({"page_size": 10**30}, "page_size: must be between 1 and 10,000"),
    ({"call_budget": -1}, "call_budget: must be between 0 and 10,000,000"),
    ({"field_names": {"invoice": {"subtotal": "u_net\x00"}}}, "control characters"),
    ({"page_sise": 10}, "page_sise: not a setting here"),
])
def test_integration_settings_are_checked_against_the_flows_schema(world, document, words):
    before = dict(world.acme.settings)
    response = world.call("owner", "patch", f"/api/integrations/{world.acme.pk}/", {"settings": document})
    assert response.status_code == 400
    assert words in json.dumps(response.json()["settings"])
    assert Integration.objects.get(pk=world.acme.pk).settings == before


def test_a_replay_reason_needs_three_letters_as_in_the_console(world):
    record = world.held_record(world.acme)
    response = world.call("operator", "post", f"/api/records/{record.pk}/replay/", {"reason": "ok"})
    assert response.status_code == 400
    assert "at least 3" in json.dumps(response.json()["reason"])


def test_a_replay_through_the_api_is_audited_like_one_in_the_console(world):
    record = world.held_record(world.acme)
    response = world.call("operator", "post", f"/api/records/{record.pk}/replay/", {"reason": "mapping fixed"})
    assert response.status_code == 202
    event = AuditEvent.objects.filter(action="records.replay_requested").latest("pk")
    assert event.actor_name == "operator"
    assert event.detail["reason"] == "mapping fixed"
    assert event.detail["records"] == [record.pk]
    assert SyncRecord.objects.get(pk=record.pk).status in (RecordStatus.HELD, RecordStatus.SYNCED)


@pytest.mark.django_db
def test_a_65000_character_url_is_answered_in_under_a_second():
    client = Client()
    started = time.perf_counter()
    response = client.get("/api/" + "secretpasswordtoken" * 3421)  # 65,000 characters of secret words
    assert response.status_code in (401, 403, 404)
    assert time.perf_counter() - started < 1.0
