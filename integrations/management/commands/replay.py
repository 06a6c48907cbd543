"""Replay failed or held records of an integration now."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.engine.replay import replay_records
from integrations.management.commands._common import dump, get_integration
from integrations.models import RecordStatus, SyncRecord


class Command(BaseCommand):
    help = "Replay an integration's failed (default) or held records with current mappings and fresh data."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--integration", required=True)
        parser.add_argument("--status", choices=[RecordStatus.FAILED, RecordStatus.HELD], default=RecordStatus.FAILED)
        parser.add_argument("--stream")
        parser.add_argument("--reason", default="replayed from the command line")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, tenant, integration, status, stream, reason, json, **options):
        integ = get_integration(tenant, integration)
        qs = SyncRecord.objects.filter(integration=integ, status=status)
        if stream:
            qs = qs.filter(stream=stream)
        ids = list(qs.values_list("pk", flat=True))
        result = replay_records(ids, actor="cli", reason=reason)
        data = {"selected": len(ids), **result.__dict__}
        if json:
            self.stdout.write(dump(data))
        else:
            self.stdout.write(f"Replayed {result.replayed} of {len(ids)} {status} record(s): {result.synced} synced, "
                              f"{result.held} held, {result.failed} failed, {result.busy} skipped (stream busy).")
