"""Integrations: run now with visible progress, pause and resume, schedules in step with django-q."""

from __future__ import annotations

import json

from django_q.models import Schedule as QSchedule

from integrations.engine.schedules import PREFIX
from integrations.models import AuditEvent, Integration, Schedule, StreamState, SyncRun


def _schedules(integration: Integration) -> dict[str, QSchedule]:
    return {s.name.rsplit(":", 1)[1]: s for s in QSchedule.objects.filter(name__startswith=f"{PREFIX}{integration.uuid}:")}


def _form(integration: Integration, streams: list[StreamState], **changes) -> dict:
    data = {"tenant": integration.tenant_id, "name": integration.name, "kind": integration.kind,
            "source": integration.source_id, "target": integration.target_id,
            "settings": json.dumps(integration.settings), "streams-TOTAL_FORMS": str(len(streams)),
            "streams-INITIAL_FORMS": str(len(streams)), "streams-MIN_NUM_FORMS": "0", "streams-MAX_NUM_FORMS": "1000"}
    if integration.enabled:
        data["enabled"] = "on"
    for i, state in enumerate(streams):
        data.update({f"streams-{i}-id": str(state.pk), f"streams-{i}-integration": str(integration.pk),
                     f"streams-{i}-schedule": state.schedule, f"streams-{i}-cron": state.cron})
        if state.enabled:
            data[f"streams-{i}-enabled"] = "on"
    data.update(changes)
    return data


def test_run_now_queues_a_run_and_the_page_shows_each_streams_latest_counts(w):
    before = SyncRun.objects.filter(integration=w.acme).count()
    response = w.client("operator").post(f"/admin/integrations/integration/{w.acme.pk}/run/", follow=True)
    body = response.content.decode()
    assert "Run of x3-to-sn queued" in body
    runs = SyncRun.objects.filter(integration=w.acme)
    assert runs.count() > before
    latest = runs.filter(stream="purchase_orders").first()
    assert latest.triggered_by == "operator"
    assert 'class="console-table compact"' in body and "purchase_orders" in body and f"?run={latest.pk}" in body
    assert AuditEvent.objects.filter(action="integration.run_requested", actor_name="operator").exists()


def test_run_now_action_counts_what_it_queued(w):
    response = w.client("operator").post("/admin/integrations/integration/", {
        "action": "run_now", "_selected_action": [w.acme.pk], "index": 0}, follow=True)
    assert "Queued a run of 1 integration(s)" in response.content.decode()
    assert "once anyway?" not in response.content.decode()  # none of them paused: nothing to ask


def test_pause_drops_the_schedules_and_resume_restores_them(w):
    assert _schedules(w.acme)  # the world installed them
    client = w.client("operator")
    response = client.post("/admin/integrations/integration/", {
        "action": "pause", "_selected_action": [w.acme.pk], "index": 0}, follow=True)
    assert "Paused 1 integration(s)." in response.content.decode()
    w.acme.refresh_from_db()
    assert not w.acme.enabled and _schedules(w.acme) == {}
    assert "Paused" in client.get("/admin/").content.decode()
    client.post("/admin/integrations/integration/", {"action": "resume", "_selected_action": [w.acme.pk], "index": 0})
    w.acme.refresh_from_db()
    assert w.acme.enabled and set(_schedules(w.acme)) == set(
        StreamState.objects.filter(integration=w.acme, enabled=True).exclude(schedule=Schedule.MANUAL)
        .values_list("stream", flat=True))
    actions = list(AuditEvent.objects.filter(integration_id=w.acme.pk, action__in=["integration.paused",
                                                                                  "integration.resumed"])
                   .values_list("action", "actor_name"))
    assert sorted(actions) == [("integration.paused", "operator"), ("integration.resumed", "operator")]


def test_saving_stream_schedules_keeps_django_q_in_step(w):
    streams = list(StreamState.objects.filter(integration=w.acme).order_by("id"))
    invoices = next(i for i, s in enumerate(streams) if s.stream == "invoices")
    suppliers = next(i for i, s in enumerate(streams) if s.stream == "suppliers")
    data = _form(w.acme, streams, **{f"streams-{invoices}-schedule": Schedule.HOURLY})
    data.pop(f"streams-{suppliers}-enabled", None)  # switch the suppliers stream off
    response = w.client("owner").post(f"/admin/integrations/integration/{w.acme.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    schedules = _schedules(w.acme)
    assert schedules["invoices"].schedule_type == QSchedule.HOURLY
    assert "suppliers" not in schedules
    event = AuditEvent.objects.filter(action="integration.updated", actor_name="owner").first()
    assert "invoices: hourly" in event.detail["streams"] and "suppliers: daily (off)" in event.detail["streams"]


def test_an_integration_needs_connections_of_the_right_systems_in_its_tenant(w):
    streams = list(StreamState.objects.filter(integration=w.acme).order_by("id"))
    swapped = _form(w.acme, streams, source=w.acme.target_id, target=w.acme.source_id)
    response = w.client("owner").post(f"/admin/integrations/integration/{w.acme.pk}/change/", swapped)
    assert response.status_code == 200 and "needs a sage_x3 connection here" in response.content.decode()
    foreign = _form(w.acme, streams, source=w.globex.source_id)
    response = w.client("owner").post(f"/admin/integrations/integration/{w.acme.pk}/change/", foreign)
    assert "Select a valid choice" in response.content.decode()


def test_adding_an_integration_creates_its_streams_and_schedules(w):
    data = {"tenant": w.acme.tenant_id, "name": "second", "kind": w.acme.kind, "source": w.acme.source_id,
            "target": w.acme.target_id, "enabled": "on", "settings": "{}", "streams-TOTAL_FORMS": "0",
            "streams-INITIAL_FORMS": "0"}
    response = w.client("owner").post("/admin/integrations/integration/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Integration.objects.get(tenant=w.acme.tenant, name="second")
    assert StreamState.objects.filter(integration=created).count() == 8
    assert _schedules(created)


def test_the_list_shows_last_run_and_links_failed_and_held_counts(w):
    body = w.client("viewer").get("/admin/integrations/integration/").content.decode()
    assert f"/admin/integrations/failedrecord/?integration__id__exact={w.acme.pk}\">2<" in body
    assert f"/admin/integrations/heldrecord/?integration__id__exact={w.acme.pk}\">58<" in body
    assert "Succeeded" in body or "succeeded" in body


def test_run_now_on_a_selection_with_paused_integrations_asks_first_and_names_them(w):
    from integrations.engine.operations import set_enabled

    set_enabled([w.acme], False)
    client = w.client("root")
    before = SyncRun.objects.count()
    selection = {"action": "run_now", "_selected_action": [w.acme.pk, w.globex.pk], "index": 0}
    asked = client.post("/admin/integrations/integration/", selection)
    body = asked.content.decode()
    assert asked.status_code == 200
    assert "1 of the 2 selected integrations is paused: run all 2 once anyway?" in body
    paused = body[body.index('id="paused-selected"'):body.index("</ul>", body.index('id="paused-selected"'))]
    assert "x3-to-sn" in paused and "globex-sync" not in paused
    assert 'name="confirm" value="yes"' in body and 'name="action" value="run_now"' in body
    assert f'name="_selected_action" value="{w.acme.pk}"' in body
    assert f'name="_selected_action" value="{w.globex.pk}"' in body
    assert SyncRun.objects.count() == before  # nothing ran yet
    assert not AuditEvent.objects.filter(action="integration.run_requested").exists()

    done = client.post("/admin/integrations/integration/", {
        "action": "run_now", "_selected_action": [w.acme.pk, w.globex.pk], "confirm": "yes"}, follow=True)
    assert "Queued a run of 2 integration(s)" in done.content.decode()
    assert {e.integration_id for e in AuditEvent.objects.filter(action="integration.run_requested")} == {
        w.acme.pk, w.globex.pk}
    w.acme.refresh_from_db()
    assert not w.acme.enabled  # ran once, still paused

