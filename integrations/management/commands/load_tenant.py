"""Create or update a tenant, its connections and integrations from one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.engine.schedules import sync_schedules
from integrations.models import Integration
from integrations.setup.fitcheck import fit_check
from integrations.setup.report import report_text
from integrations.tenants import DocumentError, load_document


class Command(BaseCommand):
    help = "Load a tenant document (see README, 'Tenant documents'). Nothing changes if it is invalid."

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON document, or - for standard input")
        parser.add_argument("--dry-run", action="store_true",
                            help="Validate, show what would change, and print the fit check of each integration "
                                 "(reads both systems, writes neither); nothing is kept")
        parser.add_argument("--no-fit-check", action="store_true",
                            help="With --dry-run: only validate, without reaching the systems")

    def handle(self, *args, file: str, dry_run: bool, no_fit_check: bool = False, **options):
        try:
            text = self.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        try:
            if dry_run and not no_fit_check:
                plan, reports = self._dry_run_with_fit_check(doc)
            else:
                plan, reports = load_document(doc, dry_run=dry_run), []
        except DocumentError as exc:
            raise CommandError("Invalid tenant document, nothing changed:\n  " + "\n  ".join(exc.errors)) from None
        for action in plan.actions:
            self.stdout.write(("would " if dry_run else "") + action)
        for report in reports:
            self.stdout.write("")
            self.stdout.write(report_text(report))
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing changed."))
        else:
            result = sync_schedules()
            self.stdout.write(self.style.SUCCESS(
                f"Loaded. Schedules: {result.created} created, {result.updated} updated, {result.deleted} removed."))

    def _dry_run_with_fit_check(self, doc):
        """Load the document, fit-check each of its integrations, then roll everything back."""
        reports = []
        with transaction.atomic():
            plan = load_document(doc)
            for integ in doc.get("integrations", []):
                integration = Integration.objects.select_related("source", "target", "tenant").get(
                    tenant__slug=doc["tenant"]["slug"], name=integ["name"])
                reports.append(fit_check(integration, actor="load_tenant --dry-run"))
            transaction.set_rollback(True)
        return plan, reports
