"""Install or refresh the django-q schedules of every stream (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.engine.schedules import sync_schedules


class Command(BaseCommand):
    help = "Create, update or remove django-q schedules so they match the streams' schedules."

    def handle(self, *args, **options):
        r = sync_schedules()
        self.stdout.write(f"Schedules: {r.created} created, {r.updated} updated, {r.deleted} removed, "
                          f"{r.unchanged} unchanged.")
