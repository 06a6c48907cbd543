"""Fill the searchable document fields (``SyncRecord.doc_*``) of records stored before they existed."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.engine.documents import Backfill, backfill_search_fields
from integrations.management.commands._common import get_integration
from integrations.models import SyncRecord


class Command(BaseCommand):
    help = ("Fill what the header search finds records by (document number, supplier, amount, currency, date) "
            "from the stored snapshots, in batches each committed on its own; resumable with --after-pk.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant's integration (with --integration).")
        parser.add_argument("--integration", help="Only this integration (name, with --tenant).")
        parser.add_argument("--after-pk", type=int, default=0, help="Resume after this record id.")
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, tenant, integration, after_pk, batch_size, **options):
        ids = None
        if tenant or integration:
            ids = [get_integration(tenant or "", integration or "").pk]

        def progress(done: Backfill) -> None:
            if options.get("verbosity", 1) > 1:
                self.stdout.write(f"{done.read:,} read, {done.changed:,} changed, up to record {done.last_pk}")

        done = backfill_search_fields(SyncRecord, integration_ids=ids, after_pk=after_pk,
                                      batch_size=max(1, batch_size), progress=progress)
        self.stdout.write(f"{done.read:,} record(s) read, {done.changed:,} filled; last record {done.last_pk}.")
