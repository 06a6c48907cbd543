"""Create or update a tenant, its connections and integrations from one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from integrations.engine.schedules import sync_schedules
from integrations.tenants import DocumentError, load_document


class Command(BaseCommand):
    help = "Load a tenant document (see README, 'Tenant documents'). Nothing changes if it is invalid."

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON document, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="Validate and show what would change")

    def handle(self, *args, file: str, dry_run: bool, **options):
        try:
            text = self.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        try:
            plan = load_document(doc, dry_run=dry_run)
        except DocumentError as exc:
            raise CommandError("Invalid tenant document, nothing changed:\n  " + "\n  ".join(exc.errors)) from None
        for action in plan.actions:
            self.stdout.write(("would " if dry_run else "") + action)
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing changed."))
        else:
            result = sync_schedules()
            self.stdout.write(self.style.SUCCESS(
                f"Loaded. Schedules: {result.created} created, {result.updated} updated, {result.deleted} removed."))
