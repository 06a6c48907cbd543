"""Alerts from the command line: send a test alert, evaluate the conditions now, send the digest,
install the periodic schedules.

    manage.py alerts --tenant acme --test        # sends now, in the foreground, and says how it went
    manage.py alerts [--tenant acme] --evaluate  # opens/recovers alerts; their messages are queued
    manage.py alerts [--tenant acme] --digest    # queues the daily digest now
    manage.py alerts --install-schedules         # the periodic evaluation and the daily digest
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations.engine.alerts import evaluate_all, send_digests, test_message
from integrations.engine.alerts import install_schedules as install_alert_schedules
from integrations.engine.alerts_send import deliver
from integrations.engine.audit import audit
from integrations.management.commands._common import get_tenant
from integrations.models import AlertSettings


class Command(BaseCommand):
    help = "Send a test alert (--test), evaluate alert conditions now (--evaluate), send digests, install schedules."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Tenant slug or name (required with --test)")
        parser.add_argument("--test", action="store_true", help="Send a test alert on the tenant's channels now")
        parser.add_argument("--evaluate", action="store_true", help="Evaluate every condition now")
        parser.add_argument("--digest", action="store_true", help="Queue the daily digest now")
        parser.add_argument("--install-schedules", action="store_true",
                            help="Install or refresh the periodic evaluation and digest schedules (idempotent)")

    def handle(self, *args, tenant: str | None, test: bool, evaluate: bool, digest: bool, install_schedules: bool,
               **options):
        if not (test or evaluate or digest or install_schedules):
            raise CommandError("Say what to do: --test, --evaluate, --digest or --install-schedules")
        tenant_obj = get_tenant(tenant) if tenant else None
        if install_schedules:
            for name, outcome in install_alert_schedules().items():
                self.stdout.write(f"{name}: {outcome}")
        if test:
            if tenant_obj is None:
                raise CommandError("--test needs --tenant")
            self._test(tenant_obj)
        if evaluate:
            changes = evaluate_all(tenant_id=tenant_obj.pk if tenant_obj else None)
            for change in changes:
                self.stdout.write(f"{change.event}: {change.state.integration.name}: "
                                  f"{change.state.get_condition_display()}")
            self.stdout.write(f"{len(changes)} alert(s) opened or recovered; their messages are queued.")
        if digest:
            self.stdout.write(f"{send_digests(tenant_obj.pk if tenant_obj else None)} digest(s) queued.")

    def _test(self, tenant) -> None:
        cfg = AlertSettings.objects.select_related("tenant").filter(tenant=tenant).first()
        if cfg is None or not cfg.channels:
            raise CommandError(f"{tenant.slug} has no alert channel: add recipients or a webhook in the console")
        message = test_message(cfg, "cli")
        audit(cfg.tenant_id, "alert.test_requested", f"Test alert requested ({', '.join(cfg.channels)})",
              actor="cli", detail={"delivery": message["id"], "channels": cfg.channels})
        failed = []
        for delivery in deliver(cfg, message):
            if delivery.ok:
                self.stdout.write(self.style.SUCCESS(f"{delivery.channel}: sent"))
            else:
                failed.append(delivery.channel)
                self.stdout.write(self.style.ERROR(f"{delivery.channel}: failed: {delivery.error}"))
        if failed:
            raise CommandError(f"Test alert not delivered by {', '.join(failed)}")

