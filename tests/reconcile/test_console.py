"""The reconciliation page of an integration, its CSV, the dashboard's verdict, and who may do what."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from django.utils import timezone

from integrations.models import AuditEvent, Period, ReconciliationRun, RecordStatus, SyncRecord
from tests.admin.conftest import World, build_world, module_world
from tests.reconcile.conftest import MONTH


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """The console tests' world: Acme with held and failed invoices, Globex beside it, a user per role."""
    with module_world(django_db_blocker, build_world) as built:
        yield built


@pytest.fixture
def w(world: World, db, settings, monkeypatch) -> World:
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}  # queued reconciliations run inline
    monkeypatch.setattr(Conf, "SYNC", True)
    return world


def page(integration) -> str:
    return f"/admin/integrations/integration/{integration.pk}/reconciliation/"


def reconcile_url(integration) -> str:
    return f"/admin/integrations/integration/{integration.pk}/reconcile/"


def reconciled(w, user: str = "operator", **data) -> ReconciliationRun:
    response = w.client(user).post(reconcile_url(w.acme), data or {"period": MONTH})
    assert response.status_code == 302, response.content[:500]
    return ReconciliationRun.objects.filter(integration=w.acme).order_by("-pk").first()


def test_an_integration_with_no_reconciliation_yet_offers_to_start_one(w):
    body = w.client("viewer").get(page(w.acme)).content.decode()
    assert "No reconciliation of x3-to-sn yet" in body
    assert 'id="reconcile-now"' not in body  # a viewer reads, an operator reconciles
    assert 'id="reconcile-now"' in w.client("operator").get(page(w.acme)).content.decode()


def test_the_page_puts_the_verdict_and_the_money_first_then_every_difference_with_its_way_out(w):
    run = reconciled(w)
    assert run.triggered_by == "operator" and run.period == Period.month(MONTH)
    response = w.client("viewer").get(page(w.acme))  # the integration's page shows its latest run
    body = response.content.decode()
    assert response.status_code == 200
    held = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.HELD,
                                     pk__in=run.lines.values("record_id")).first()
    assert body.index('id="verdict"') < body.index('id="totals"') < body.index('id="differences"')
    assert run.verdict in body and run.verdict.startswith(f"{run.differences} differences, totals off by")
    assert "in Sage X3" in body and "in ServiceNow" in body  # the systems by name, not "source"/"target"
    assert "Held: waiting for a mapping" in body and 'title="held · stream invoices"' in body
    assert f"/admin/integrations/syncrecord/{held.pk}/change/" in body  # its lineage
    kind, code = held.missing_keys[0].split(":")
    assert kind == "gl_account" and f"map GL account {code}</a>" in body  # the mapping that holds it, in words
    assert f'title="mapping {kind}:{code}"' in body and "/admin/integrations/mapping/" in body
    assert "<svg" in body and 'class="recon-chart"' in body
    assert f"/admin/integrations/reconciliationrun/{run.pk}/csv/" in body
    # the viewer may not replay: the button is there, disabled, with the reason; the operator gets the one-click replay
    assert f"/admin/integrations/syncrecord/{held.pk}/replay/" not in body
    assert ('<button type="button" disabled aria-describedby="replay-reason" '
            'title="Operators and above may replay records">replay…</button>') in body
    assert '<p class="console-reason" id="replay-reason">Replay… is disabled: Operators and above may replay records.</p>' in body
    operator = w.client("operator").get(page(w.acme)).content.decode()
    assert f'<a href="/admin/integrations/syncrecord/{held.pk}/replay/">replay…</a>' in operator
    assert 'id="replay-reason"' not in operator and "<button type=\"button\" disabled" not in operator
    assert AuditEvent.objects.filter(action="reconciliation.requested", actor_name="operator").exists()
    assert AuditEvent.objects.filter(action="reconciliation.finished", actor_name="operator").exists()


def test_a_run_keeps_its_own_page_and_earlier_runs_stay_listed(w):
    first = reconciled(w)
    second = reconciled(w, start=f"{MONTH}-01", end=f"{MONTH}-14")
    assert second.period_label == f"{MONTH}-01 – {MONTH}-14"
    body = w.client("viewer").get(f"/admin/integrations/reconciliationrun/{first.pk}/change/").content.decode()
    assert f"<strong>{MONTH}</strong>" in body and f"/admin/integrations/reconciliationrun/{second.pk}/change/" in body


def test_csv_export_is_the_totals_then_the_differences_and_is_audited(w):
    run = reconciled(w)
    response = w.client("viewer").get(f"/admin/integrations/reconciliationrun/{run.pk}/csv/")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="reconciliation-x3-to-sn-20260201-20260228.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["section"] for r in rows] == ["total"] * len(run.totals) + ["difference"] * run.differences
    assert AuditEvent.objects.filter(action="reconciliation.exported", actor_name="viewer").exists()


@pytest.mark.parametrize("data", [{"period": "2026-13"}, {"start": "2026-02-10"}, {"period": ""}])
def test_a_bad_period_is_refused_with_a_message(w, data):
    response = w.client("operator").post(reconcile_url(w.acme), data, follow=True)
    assert not ReconciliationRun.objects.exists()
    assert response.status_code == 200 and 'class="error"' in response.content.decode()


def test_the_dashboard_shows_the_last_verdict_of_each_integration(w):
    assert "not reconciled" in w.client("owner").get("/admin/").content.decode()
    run = reconciled(w)
    body = w.client("owner").get("/admin/").content.decode()
    assert f"/admin/integrations/reconciliationrun/{run.pk}/change/" in body and run.verdict in body


def test_the_integrations_action_reconciles_last_month(w):
    response = w.client("operator").post("/admin/integrations/integration/", {
        "action": "reconcile_last_month", "_selected_action": [w.acme.pk, w.globex.pk], "index": 0}, follow=True)
    assert "queued for 1 integration(s)" in response.content.decode()  # Globex is not the operator's
    run = ReconciliationRun.objects.get()
    assert (run.integration_id, run.period) == (w.acme.pk, Period.month_before(timezone.localdate()))


def test_another_tenant_cannot_see_export_or_reconcile(w):
    run = reconciled(w)
    outsider, stranger = w.client("outsider"), w.client("stranger")
    for url in (page(w.acme), f"/admin/integrations/reconciliationrun/{run.pk}/change/",
                f"/admin/integrations/reconciliationrun/{run.pk}/csv/"):
        assert outsider.get(url).status_code == 404, url
        assert stranger.get(url).status_code in (302, 403), url
    assert outsider.post(reconcile_url(w.acme), {"period": MONTH}).status_code == 404
    assert w.client("viewer").post(reconcile_url(w.acme), {"period": MONTH}).status_code == 403
    assert ReconciliationRun.objects.count() == 1
    listing = outsider.get("/admin/integrations/reconciliationrun/").content.decode()
    assert f"/admin/integrations/reconciliationrun/{run.pk}/change/" not in listing
    assert "x3-to-sn" not in outsider.get("/admin/").content.decode()


def test_the_report_page_costs_a_fixed_number_of_queries(w, django_assert_max_num_queries):
    run = reconciled(w)
    client = w.client("viewer")
    client.get(f"/admin/integrations/reconciliationrun/{run.pk}/change/")
    with django_assert_max_num_queries(10):  # session, user, roles, run, lines, mappings, history...
        assert client.get(f"/admin/integrations/reconciliationrun/{run.pk}/change/").status_code == 200
    client.get("/admin/integrations/reconciliationrun/")
    with django_assert_max_num_queries(9):
        assert client.get("/admin/integrations/reconciliationrun/").status_code == 200


def test_a_run_that_could_not_finish_shows_no_figures_only_why(w):
    from integrations.sandbox.base import Faults

    w.sn.set_faults(Faults(error_rate=1.0))
    try:
        run = reconciled(w)
    finally:
        w.sn.set_faults(Faults())
    assert run.status == "error"
    body = w.client("viewer").get(page(w.acme)).content.decode()
    assert 'id="error"' in body and "could not finish" in body
    assert 'id="totals"' not in body and 'id="differences"' not in body
