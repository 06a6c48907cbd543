"""Integrations and runs through the API: run now, pause, resume, settings."""

from __future__ import annotations

import pytest
from django_q.models import Schedule as QSchedule

from integrations.models import AuditEvent, Integration, RunStatus, SyncRun, Trigger


def test_run_now_queues_the_run_and_audits_who_asked(world):
    before = SyncRun.objects.filter(integration=world.acme).count()
    response = world.call("operator", "post", f"/api/integrations/{world.acme.pk}/run/",
                          {"streams": ["x3_gl_accounts", "sn_gl_accounts"]})
    assert response.status_code == 202
    assert response.json()["task_id"]
    runs = SyncRun.objects.filter(integration=world.acme).order_by("-pk")[:2]
    assert SyncRun.objects.filter(integration=world.acme).count() == before + 2
    assert {(r.stream, r.trigger, r.triggered_by, r.status) for r in runs} == {
        ("x3_gl_accounts", Trigger.MANUAL, "operator", RunStatus.SUCCEEDED),
        ("sn_gl_accounts", Trigger.MANUAL, "operator", RunStatus.SUCCEEDED)}
    requested = AuditEvent.objects.get(action="integration.run_requested")
    assert requested.actor_name == "operator" and requested.integration_id == world.acme.pk
    assert requested.detail == {"streams": ["x3_gl_accounts", "sn_gl_accounts"]}


def test_run_now_without_a_body_runs_every_enabled_stream(world):
    response = world.call("owner", "post", f"/api/integrations/{world.acme.pk}/run/")
    assert response.status_code == 202
    assert AuditEvent.objects.filter(action="run.finished", actor_name="owner").count() >= 5


@pytest.mark.parametrize("body", [{"streams": ["nope"]}, {"streams": "invoices"}])
def test_run_now_with_an_unknown_stream_is_refused_and_queues_nothing(world, body):
    runs, events = SyncRun.objects.count(), AuditEvent.objects.count()
    response = world.call("owner", "post", f"/api/integrations/{world.acme.pk}/run/", body)
    assert response.status_code == 400 and "streams" in response.json()
    assert (SyncRun.objects.count(), AuditEvent.objects.count()) == (runs, events)


def test_pause_and_resume_toggle_schedules_and_audit_only_real_changes(world):
    url = f"/api/integrations/{world.acme.pk}"
    world.call("owner", "post", f"{url}/resume/")  # already enabled: nothing to record
    assert not AuditEvent.objects.filter(action__in=["integration.paused", "integration.resumed"]).exists()
    response = world.call("operator", "post", f"{url}/pause/")
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert not Integration.objects.get(pk=world.acme.pk).enabled
    assert not QSchedule.objects.filter(name__contains=str(world.acme.uuid)).exists()
    world.call("operator", "post", f"{url}/pause/")
    assert AuditEvent.objects.filter(action="integration.paused", actor_name="operator").count() == 1
    response = world.call("operator", "post", f"{url}/resume/")
    assert response.json()["enabled"] is True
    assert QSchedule.objects.filter(name__contains=str(world.acme.uuid)).exists()
    assert AuditEvent.objects.filter(action="integration.resumed").count() == 1


def test_an_admin_changes_settings_and_the_change_is_audited(world):
    response = world.call("owner", "patch", f"/api/integrations/{world.acme.pk}/",
                          {"settings": {"page_size": 25, "call_budget": 0}})
    assert response.status_code == 200
    assert Integration.objects.get(pk=world.acme.pk).settings == {"page_size": 25, "call_budget": 0}
    event = AuditEvent.objects.get(action="integration.updated")
    assert event.detail["before"]["settings"] == {"page_size": 50}
    assert event.detail["after"]["settings"] == {"page_size": 25, "call_budget": 0}


@pytest.mark.parametrize(("body", "field"), [
    ({"settings": {"page_size": 0}}, "settings"),
    ({"settings": {"page_size": "50"}}, "settings"),
    ({"settings": {"supplier_writeback": "yes"}}, "settings"),
    ({"settings": ["page_size"]}, "settings"),
    ({"name": ""}, "name"),
])
def test_bad_settings_are_refused_and_change_nothing(world, body, field):
    events = AuditEvent.objects.count()
    response = world.call("owner", "patch", f"/api/integrations/{world.acme.pk}/", body)
    assert response.status_code == 400 and field in response.json()
    integration = Integration.objects.get(pk=world.acme.pk)
    assert (integration.name, integration.settings) == ("x3-to-sn", {"page_size": 50})
    assert AuditEvent.objects.count() == events


def test_enabled_and_kind_are_not_writable_through_update(world):
    response = world.call("owner", "patch", f"/api/integrations/{world.acme.pk}/",
                          {"enabled": False, "kind": "other"})
    assert response.status_code == 200
    integration = Integration.objects.get(pk=world.acme.pk)
    assert integration.enabled and integration.kind == "sage_x3__servicenow"


def test_an_integration_shows_its_streams_and_connections(world):
    body = world.call("viewer", "get", f"/api/integrations/{world.acme.pk}/").json()
    assert body["tenant"] == "acme" and body["source"]["system"] == "sage_x3"
    streams = {s["stream"]: s for s in body["streams"]}
    assert streams["invoices"]["schedule"] == "daily" and streams["invoices"]["running"] is False
    assert streams["invoices"]["last_success_at"]


def test_integrations_list_costs_the_same_few_queries_however_many_there_are(world, django_assert_max_num_queries):
    client = world.client("superuser")
    with django_assert_max_num_queries(5):
        assert len(client.get("/api/integrations/").json()["results"]) == 2


def test_runs_filter_by_integration_stream_and_status_newest_first(world):
    rows = world.call("viewer", "get", f"/api/runs/?integration={world.acme.pk}&stream=invoices").json()["results"]
    assert [r["stream"] for r in rows] == ["invoices"] and rows[0]["status"] == "succeeded"
    assert rows[0]["read"] == 60 and rows[0]["held"] == 60
    rows = world.call("viewer", "get", "/api/runs/?status=failed").json()["results"]
    assert rows == []
    response = world.call("viewer", "get", "/api/runs/?status=exploded&integration=x")
    assert response.status_code == 400 and set(response.json()) == {"status", "integration"}


def test_runs_list_pages_with_a_cursor_and_never_counts(world, django_assert_max_num_queries):
    client = world.client("owner")
    with django_assert_max_num_queries(3) as captured:
        page = client.get("/api/runs/?page_size=3").json()
    assert len(page["results"]) == 3 and page["next"] and "count" not in page
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    second = client.get(page["next"]).json()["results"]
    assert len(second) == 3
    assert not {r["id"] for r in second} & {r["id"] for r in page["results"]}
