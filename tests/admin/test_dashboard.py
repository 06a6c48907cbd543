"""The dashboard on the admin index: health per integration, counts, and 30 days of bars."""

from __future__ import annotations

import re
from datetime import date, timedelta

from django.utils import timezone
from django_q.models import Schedule as QSchedule

from integrations.admin.dashboard import Day
from integrations.engine.runner import run_stream
from integrations.models import Connection, StreamState, SyncRun
from integrations.sandbox.base import Faults
from integrations.templatetags.console import bar_chart


def _row(body: str) -> str:
    start = body.index('<tr class="health-')
    return body[start:body.index("</tr>", start)]


def test_it_shows_each_integration_with_counts_last_run_and_next_due(w):
    body = w.client("viewer").get("/admin/").content.decode()
    row = _row(body)
    assert "health-ok" in row and ">OK<" in row
    assert f'?integration__id__exact={w.acme.pk}">2<' in row
    assert f'?integration__id__exact={w.acme.pk}">58<' in row
    latest = SyncRun.objects.filter(integration=w.acme).order_by("-started_at", "-pk").first()
    assert f"/admin/integrations/syncrun/{latest.pk}/change/" in row
    due = QSchedule.objects.filter(name__contains=str(w.acme.uuid)).order_by("next_run").first().next_run
    assert timezone.localtime(due).strftime("%Y-%m-%d %H:%M") in row
    assert "Globex" not in body  # the viewer's tenant only


def test_it_shows_a_30_day_chart_of_synced_and_failed_records(w):
    row = _row(w.client("viewer").get("/admin/").content.decode())
    assert row.count("<g><title>") == 30
    runs = SyncRun.objects.filter(integration=w.acme)
    synced = sum(r.created + r.updated for r in runs)
    failed = sum(r.failed for r in runs)
    assert f'aria-label="{synced} synced and {failed} failed over 30 days"' in row
    assert f"{timezone.localdate():%Y-%m-%d}: {synced} synced, {failed} failed" in row
    assert "http://" not in row.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from outside


def test_an_outage_shows_the_integration_interrupted_and_retrying_not_failing(w):
    w.sn.set_faults(Faults(error_rate=1.0))
    try:
        run = run_stream(w.acme, "sn_gl_accounts")
    finally:
        w.sn.set_faults(Faults())
    assert run.status == "interrupted"
    row = _row(w.client("viewer").get("/admin/").content.decode())
    assert "health-interrupted" in row and "Interrupted, retrying" in row
    assert '<li title="technical name: sn_gl_accounts">GL accounts (ServiceNow): a temporary error' in row


def test_a_failed_run_makes_it_failing(w):
    from integrations.models import RunStatus, SyncRun

    SyncRun.objects.create(integration=w.acme, stream="sn_gl_accounts", status=RunStatus.FAILED,
                           error="Invalid table sn_x")  # a systemic error: a person must act
    row = _row(w.client("viewer").get("/admin/").content.decode())
    # the sync in words; its technical name only in the tooltip
    assert "health-failing" in row and "GL accounts (ServiceNow): Invalid table" in row
    assert "sn_gl_accounts:" not in row and 'title="technical name: sn_gl_accounts"' in row


def test_refused_credentials_make_it_need_re_authentication(w):
    Connection.objects.filter(pk=w.acme.source_id).update(needs_reauth=True)
    row = _row(w.client("viewer").get("/admin/").content.decode())
    assert "health-reauth" in row and "Needs re-authentication" in row and "re-authorise" in row


def test_a_stream_behind_its_schedule_makes_it_stale(w):
    StreamState.objects.filter(integration=w.acme, stream="invoices").update(
        last_success_at=timezone.now() - timedelta(days=3))
    row = _row(w.client("viewer").get("/admin/").content.decode())
    assert "health-stale" in row and "Supplier invoices (X3 → ServiceNow AP): last success" in row
    assert "(daily schedule)" in row and ">invoices:" not in row


def test_an_overdue_schedule_makes_it_stale_whatever_the_last_success(w):
    QSchedule.objects.filter(name__contains=f"{w.acme.uuid}:invoices").update(
        next_run=timezone.now() - timedelta(hours=5))
    row = _row(w.client("viewer").get("/admin/").content.decode())
    assert "health-stale" in row and "scheduled run overdue" in row


def test_the_outsider_sees_only_their_own_tenant(w):
    body = w.client("outsider").get("/admin/").content.decode()
    assert "Globex Foods" in body and "Acme Manufacturing" not in body
    assert f"/admin/integrations/integration/{w.acme.pk}/change/" not in body
    assert "No integrations in your tenants yet." in w.client("stranger").get("/admin/").content.decode()


def test_bar_chart_scales_bars_to_the_busiest_day():
    days = [Day(date(2026, 1, 1), 0, 0), Day(date(2026, 1, 2), 10, 0), Day(date(2026, 1, 3), 5, 5)]
    svg = str(bar_chart(days, height=20))
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="#', svg)]
    assert heights == [20.0, 10.0, 10.0]  # 10 synced fills it; 5 + 5 stack to the same height
    assert "2026-01-03: 5 synced, 5 failed" in svg and svg.startswith("<svg")
    assert str(bar_chart([])).startswith("<svg")
