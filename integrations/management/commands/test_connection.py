"""Test a connection: credentials, tables, roles. Exits non-zero naming what failed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations.engine.checks import test_connection
from integrations.management.commands._common import dump, get_connection


class Command(BaseCommand):
    help = "Check a connection's credentials and, for ServiceNow, the profile's tables and roles."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--connection", required=True)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, tenant, connection, json, **options):
        conn = get_connection(tenant, connection)
        report = test_connection(conn, actor="cli")
        if json:
            self.stdout.write(dump(report))
        else:
            for line in report["checks"]:
                mark = self.style.SUCCESS("ok  ") if line["ok"] else self.style.ERROR("FAIL")
                self.stdout.write(f"{mark} {line['message']}")
        if not report["ok"]:
            raise CommandError(f"{conn.name}: " + "; ".join(report["failed"]))
