"""After month end: one django-q schedule on RECONCILE_DAY reconciles last month for every integration."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from integrations.engine.reconcile_schedule import (
    SCHEDULE_NAME,
    SCHEDULE_TASK,
    install_schedule,
    reconcile_month_end,
)
from integrations.models import AuditEvent, Integration, Period, ReconciliationRun, ReconciliationTrigger
from integrations.tasks import reconcile_month_end_task
from tests.reconcile.conftest import MONTH


@pytest.mark.django_db
def test_sync_schedules_installs_the_month_end_schedule_once(settings, capsys):
    settings.RECONCILE_DAY = 5
    call_command("sync_schedules")
    call_command("sync_schedules")
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.cron) == (SCHEDULE_TASK, Schedule.CRON, "0 6 5 * *")
    assert timezone.localtime(schedule.next_run).day == 5 and schedule.next_run > timezone.now()
    assert "Month-end reconciliation on day 5: unchanged." in capsys.readouterr().out
    settings.RECONCILE_DAY = 3
    assert install_schedule() == "updated"
    assert Schedule.objects.get(name=SCHEDULE_NAME).cron == "0 6 3 * *"


def test_the_scheduled_run_reconciles_last_month_for_each_enabled_integration(synced, monkeypatch):
    runs = reconcile_month_end(today=date(2026, 3, 3))
    assert [(r.integration_id, r.period_label, r.trigger, r.triggered_by) for r in runs] == [
        (synced.pk, MONTH, ReconciliationTrigger.SCHEDULE, "system")]
    assert runs[0].status == "balanced"
    assert AuditEvent.objects.get(action="reconciliation.finished").actor_name == "system"
    Integration.objects.filter(pk=synced.pk).update(enabled=False)  # paused: no scheduled work
    assert reconcile_month_end(today=date(2026, 3, 3)) == []


def test_the_task_closes_the_month_before_today(synced, monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *a: date(2026, 3, 3))
    result = reconcile_month_end_task()
    run = ReconciliationRun.objects.get()
    assert result == [{"reconciliation": run.pk, "integration": synced.pk, "status": "balanced"}]
    assert run.period == Period.month(MONTH)
