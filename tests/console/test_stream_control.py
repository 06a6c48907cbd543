"""Per-sync control on an integration's page: Run now per sync, Resume on a paused one, and a
question before running a paused one; every click audited, each for operators and above only."""

from __future__ import annotations

from integrations.engine.operations import set_enabled
from integrations.models import AuditEvent, SyncRun

LABEL = "Purchase orders (X3 → ServiceNow)"


def _page(w) -> str:
    return f"/admin/integrations/integration/{w.acme.pk}/change/"


def _run(w) -> str:
    return f"/admin/integrations/integration/{w.acme.pk}/run/"


def test_the_page_names_each_sync_in_words_with_the_technical_name_in_a_tooltip(w):
    body = w.client("viewer").get(_page(w)).content.decode()
    assert '<span title="technical name: purchase_orders">Purchase orders (X3 → ServiceNow)</span>' in body
    assert "What it syncs, and when" in body and "Latest run of each sync" in body
    for internal in (">Stream<", ">Cursor<", ">Lock<", ">stream<", ">cursor<", ">lock<"):
        assert internal not in body, internal


def test_an_operator_runs_one_sync_and_only_that_sync_runs(w):
    client = w.client("operator")
    assert 'form="stream-run" name="stream" value="purchase_orders"' in client.get(_page(w)).content.decode()
    before = {s: SyncRun.objects.filter(integration=w.acme, stream=s).count() for s in ("purchase_orders", "invoices")}
    response = client.post(_run(w), {"stream": "purchase_orders"}, follow=True)
    assert f"Run of {LABEL} in x3-to-sn queued" in response.content.decode()
    assert SyncRun.objects.filter(integration=w.acme, stream="purchase_orders").count() == before["purchase_orders"] + 1
    assert SyncRun.objects.filter(integration=w.acme, stream="invoices").count() == before["invoices"]
    event = AuditEvent.objects.filter(action="integration.run_requested").order_by("-pk").first()
    assert event.actor_name == "operator" and event.detail["streams"] == ["purchase_orders"]
    assert "(purchase_orders)" in event.message


def test_a_sync_the_integration_does_not_have_runs_nothing(w):
    before = SyncRun.objects.filter(integration=w.acme).count()
    response = w.client("operator").post(_run(w), {"stream": "payments"}, follow=True)
    assert "That sync is not part of this integration; nothing was run." in response.content.decode()
    assert SyncRun.objects.filter(integration=w.acme).count() == before


def test_a_viewer_sees_the_run_buttons_disabled_with_the_reason_and_cannot_run(w):
    client = w.client("viewer")
    body = client.get(_page(w)).content.decode()
    assert 'form="stream-run"' not in body and 'id="stream-run"' not in body
    # each per-sync Run now keeps its label and name, with the reason as tooltip and description
    assert (f'<button type="button" class="console-stream-run" disabled aria-label="Run {LABEL} now" '
            'aria-describedby="run-now-reason" title="Operators and above may run integrations">Run now</button>') in body
    assert '<span class="console-reason" id="run-now-reason">Operators and above may run integrations</span>' in body
    before = SyncRun.objects.count()
    assert client.post(_run(w), {"stream": "purchase_orders"}).status_code == 403
    assert SyncRun.objects.count() == before


def test_another_tenants_operator_finds_no_such_integration(w):
    assert w.client("outsider").post(_run(w), {"stream": "purchase_orders"}).status_code == 404
    assert w.client("outsider").post(f"/admin/integrations/integration/{w.acme.pk}/resume/").status_code == 404


def test_running_a_paused_sync_asks_first_then_runs_once_and_it_stays_paused(w):
    set_enabled([w.acme], False)
    client = w.client("operator")
    before = SyncRun.objects.filter(integration=w.acme).count()
    asked = client.post(_run(w), {"stream": "purchase_orders"})
    body = asked.content.decode()
    assert asked.status_code == 200
    assert "x3-to-sn is paused: run" in body and "once anyway?" in body and LABEL in body
    assert 'name="confirm" value="yes"' in body and 'name="stream" value="purchase_orders"' in body
    assert SyncRun.objects.filter(integration=w.acme).count() == before
    assert not AuditEvent.objects.filter(action="integration.run_requested", actor_name="operator").exists()

    done = client.post(_run(w), {"stream": "purchase_orders", "confirm": "yes"}, follow=True)
    assert f"Run of {LABEL} in x3-to-sn queued" in done.content.decode()
    assert SyncRun.objects.filter(integration=w.acme).count() == before + 1
    w.acme.refresh_from_db()
    assert not w.acme.enabled


def test_running_a_whole_paused_integration_asks_first_too(w):
    set_enabled([w.acme], False)
    body = w.client("operator").post(_run(w)).content.decode()
    assert "x3-to-sn is paused: run it once anyway?" in body
    assert 'name="stream"' not in body


def test_a_paused_integration_shows_the_banner_and_resume_restarts_it_audited(w):
    set_enabled([w.acme], False)
    client = w.client("operator")
    body = client.get(_page(w)).content.decode()
    assert 'id="paused-banner"' in body and "<strong>Paused</strong>" in body
    assert f'action="/admin/integrations/integration/{w.acme.pk}/resume/"' in body
    response = client.post(f"/admin/integrations/integration/{w.acme.pk}/resume/", follow=True)
    assert "Resumed x3-to-sn: its scheduled runs start again." in response.content.decode()
    assert 'id="paused-banner"' not in response.content.decode()
    w.acme.refresh_from_db()
    assert w.acme.enabled
    event = AuditEvent.objects.filter(action="integration.resumed").order_by("-pk").first()
    assert event.actor_name == "operator" and "in the console" in event.message


def test_a_viewer_cannot_resume(w):
    set_enabled([w.acme], False)
    client = w.client("viewer")
    body = client.get(_page(w)).content.decode()
    assert 'id="resume"' not in body
    assert ('<button type="button" id="resume-disabled" disabled aria-describedby="resume-reason" '
            'title="Operators and above may resume integrations">Resume</button>') in body
    assert '<span class="console-reason" id="resume-reason">Operators and above may resume integrations</span>' in body
    assert client.post(f"/admin/integrations/integration/{w.acme.pk}/resume/").status_code == 403
    w.acme.refresh_from_db()
    assert not w.acme.enabled


def test_a_running_integration_has_no_banner(w):
    assert 'id="paused-banner"' not in w.client("operator").get(_page(w)).content.decode()
