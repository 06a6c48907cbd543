"""Install or refresh the django-q schedules of every stream, of month-end reconciliation and of the
alerts' evaluation and digest (idempotent)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from integrations.engine.alerts import install_schedules as install_alert_schedules
from integrations.engine.reconcile_schedule import install_schedule
from integrations.engine.schedules import sync_schedules


class Command(BaseCommand):
    help = ("Create, update or remove django-q schedules so they match the streams' schedules; install the "
            "month-end reconciliation (day RECONCILE_DAY of each month).")

    def handle(self, *args, **options):
        self.stdout.write(f"Month-end reconciliation on day {settings.RECONCILE_DAY}: {install_schedule()}.")
        alerts = install_alert_schedules()
        self.stdout.write("Alerts: " + ", ".join(f"{name} {outcome}" for name, outcome in alerts.items()) + ".")
        r = sync_schedules()
        self.stdout.write(f"Schedules: {r.created} created, {r.updated} updated, {r.deleted} removed, "
                          f"{r.unchanged} unchanged.")
