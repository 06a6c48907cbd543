"""After month end: one django-q schedule reconciles the month before for every integration.

Named ``reconcile:month-end``, outside the streams' ``sync:`` prefix (which ``sync_schedules``
prunes), installed and kept in step with ``RECONCILE_DAY`` by ``manage.py sync_schedules``.
"""

from __future__ import annotations

from datetime import date, datetime

from croniter import croniter
from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule as QSchedule

from integrations.engine.reconcile import reconcile, reconciles
from integrations.models import Integration, Period, ReconciliationRun, ReconciliationTrigger

SCHEDULE_NAME = "reconcile:month-end"
SCHEDULE_TASK = "integrations.tasks.reconcile_month_end_task"


def reconcile_month_end(today: date | None = None) -> list[ReconciliationRun]:
    """The scheduled run: last month, for every enabled integration with a money stream.

    One integration's error is stored on its run and does not stop the others.
    """
    period = Period.month_before(today or timezone.localdate())
    runs = []
    for integration in Integration.objects.filter(enabled=True).select_related("source", "target", "tenant"):
        if reconciles(integration):
            runs.append(reconcile(integration, period, trigger=ReconciliationTrigger.SCHEDULE))
    return runs


def install_schedule() -> str:
    """Keep the month-end django-q schedule in step with ``RECONCILE_DAY``; returns what was done."""
    day = settings.RECONCILE_DAY
    cron = f"0 6 {day} * *"  # 06:00 on that day of each month, in the portal's time zone
    fields = {"func": SCHEDULE_TASK, "schedule_type": QSchedule.CRON, "cron": cron, "repeats": -1}
    current = QSchedule.objects.filter(name=SCHEDULE_NAME).first()
    if current is None:
        # the next slot, not now: a fresh install must not reconcile at once
        first = croniter(cron, timezone.localtime()).get_next(datetime)
        QSchedule.objects.create(name=SCHEDULE_NAME, next_run=first, **fields)
        return "created"
    if any(getattr(current, key) != value for key, value in fields.items()):
        for key, value in fields.items():
            setattr(current, key, value)
        current.save()
        return "updated"
    return "unchanged"
