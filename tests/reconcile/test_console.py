"""The reconciliation page of an integration, its CSV, the dashboard's verdict, and who may do what."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.admin.reconciliation import reason_words
from integrations.models import (
    AuditEvent,
    DifferenceReason,
    Period,
    ReconciliationLine,
    ReconciliationRun,
    RecordStatus,
    SyncRecord,
)
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


def with_target_only_rows(run: ReconciliationRun, count: int) -> ReconciliationRun:
    """``count`` more "in ServiceNow only" lines on a stored run, as a month with many rows made in
    ServiceNow by hand would leave (the engine stores a run's lines in one bulk insert too)."""
    ReconciliationLine.objects.bulk_create(
        ReconciliationLine(run=run, stream="invoices", reason=DifferenceReason.EXTRA, source_key=f"X{n:04d}",
                           business_key=f"X{n:04d}", target_id=f"sn{n:04d}", target_currency="EUR",
                           target_amount=n + 1)
        for n in range(count))
    ReconciliationRun.objects.filter(pk=run.pk).update(differences=run.lines.count())
    run.refresh_from_db()
    return run


def drawn(body: str) -> list[str]:
    """The difference lines a page draws, by the reason class of their row."""
    return [part.split('"', 1)[0] for part in body.split('<tr class="reason-')[1:]]


def test_a_big_run_shows_its_differences_a_hundred_at_a_time_and_counts_every_reason(w):
    run = reconciled(w)
    real = dict(run.lines.values_list("reason").annotate(n=Count("pk")))  # the run's own, a few of each
    run = with_target_only_rows(run, 150)
    total = run.differences
    assert 100 < total < 200
    url = f"/admin/integrations/reconciliationrun/{run.pk}/change/"
    client = w.client("viewer")
    first = client.get(url).content.decode()
    assert len(drawn(first)) == 100
    assert f"Differences ({total})" in first
    assert f"Showing 1–100 of {total} differences (page 1 of 2). The CSV export has all of them." in first
    assert '<a href="?page=2#differences" rel="next">Next ›</a>' in first and 'rel="prev"' not in first
    counts = {**real, DifferenceReason.EXTRA: real.get(DifferenceReason.EXTRA, 0) + 150}
    assert f'<span title="extra">In ServiceNow only: <strong>{counts["extra"]}</strong></span>' in first
    for reason, n in counts.items():  # every reason counted, not only those drawn on this page
        assert f'<span title="{reason}">{reason_words(reason, "ServiceNow")}: <strong>{n}</strong></span>' in first
    second = client.get(f"{url}?page=2").content.decode()
    assert len(drawn(second)) == total - 100
    assert f"Showing 101–{total} of {total} differences (page 2 of 2)" in second
    assert '<a href="?page=1#differences" rel="prev">‹ Previous</a>' in second and 'rel="next"' not in second
    # the same order as before, split in two: by reason, then invoice number
    assert drawn(first) + drawn(second) == list(run.lines.order_by("reason", "business_key", "pk")
                                                .values_list("reason", flat=True))
    assert len(drawn(client.get(f"{url}?page=99").content.decode())) == total - 100  # ...is the last one
    assert len(drawn(client.get(f"{url}?page=x").content.decode())) == 100  # ...and nonsense the first


def test_the_page_links_keep_the_other_query_parameters(w):
    run = with_target_only_rows(reconciled(w), 150)
    body = w.client("viewer").get(
        f"/admin/integrations/reconciliationrun/{run.pk}/change/?page=2&_changelist_filters=status%3Ddifferences"
    ).content.decode()
    assert '<a href="?page=1&amp;_changelist_filters=status%3Ddifferences#differences" rel="prev">' in body


def test_a_run_that_fits_on_one_page_says_nothing_about_pages(w):
    run = reconciled(w)
    body = w.client("viewer").get(f"/admin/integrations/reconciliationrun/{run.pk}/change/").content.decode()
    assert len(drawn(body)) == run.differences
    assert 'id="showing"' not in body and 'id="pages"' not in body


def test_the_replay_buttons_follow_the_lines_onto_their_page(w):
    run = with_target_only_rows(reconciled(w), 150)  # "extra" sorts before "held": the held line is on page 2
    held = run.lines.filter(reason=DifferenceReason.HELD).exclude(record=None).first()
    url = f"/admin/integrations/reconciliationrun/{run.pk}/change/"
    viewer_first = w.client("viewer").get(url).content.decode()
    assert 'id="replay-reason"' not in viewer_first and "<button" not in viewer_first.split('id="differences"')[1]
    viewer_second = w.client("viewer").get(f"{url}?page=2").content.decode()
    assert ('<button type="button" disabled aria-describedby="replay-reason" '
            'title="Operators and above may replay records">replay…</button>') in viewer_second
    assert '<p class="console-reason" id="replay-reason">Replay… is disabled: Operators and above may replay records.</p>' in viewer_second
    operator_second = w.client("operator").get(f"{url}?page=2").content.decode()
    assert f'<a href="/admin/integrations/syncrecord/{held.record_id}/replay/">replay…</a>' in operator_second
    assert 'id="replay-reason"' not in operator_second


def test_the_csv_keeps_every_line_of_a_big_run(w):
    run = with_target_only_rows(reconciled(w), 150)
    response = w.client("viewer").get(f"/admin/integrations/reconciliationrun/{run.pk}/csv/")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sum(r["section"] == "difference" for r in rows) == run.differences > 150
    assert sum(r["reason"] == "extra" for r in rows) == run.lines.filter(reason="extra").count()


def test_the_report_page_costs_the_same_queries_whatever_the_number_of_lines(w):
    run = reconciled(w)
    url = f"/admin/integrations/reconciliationrun/{run.pk}/change/"
    client = w.client("viewer")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    with_target_only_rows(run, 450)
    for page in (1, 2, 5):
        with CaptureQueriesContext(connection) as many:
            assert client.get(f"{url}?page={page}").status_code == 200
        assert len(many) <= len(few), (page, [q["sql"] for q in many])
