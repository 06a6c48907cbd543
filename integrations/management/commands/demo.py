"""The demo: sandbox systems over HTTP, a demo tenant, a first sync, the portal and workers."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from integrations.demo import (
    SN_USER,
    X3_CLIENT_ID,
    X3_CLIENT_SECRET,
    intacct_servicenow_document,
    sage300_servicenow_document,
    servicetitan_x3_document,
    syspro_servicenow_document,
    x3_servicenow_document,
)
from integrations.engine.alerts import install_schedules as install_alert_schedules
from integrations.engine.mappings import approve_all
from integrations.engine.reconcile import money_streams, reconcile
from integrations.engine.reconcile_schedule import install_schedule as install_reconcile_schedule
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.engine.schedules import sync_schedules
from integrations.engine.webhooks import process_pending
from integrations.engine.webhooks import receive as receive_webhook
from integrations.management.stopping import stopped_as_by_ctrl_c
from integrations.models import Integration, Mapping, MappingStatus, Period, RecordStatus, SyncRecord, Trigger
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.server import SimServer, serve
from integrations.sandbox.servicetitan import ServiceTitanSimulator, sign
from integrations.sandbox.servicetitan_seed import WEBHOOK_KEY
from integrations.tenants import load_document

# Each customer has its own ServiceNow instance: one simulator per tenant.
SN_DEMO_PASSWORD = "integration-pass"  # the sandbox ServiceNow's demo user, as an approver would sign in
SANDBOXES = {"x3": ("sage_x3", 8124), "sn": ("servicenow", 8125), "intacct": ("sage_intacct", 8126),
             "sn_intacct": ("servicenow", 8127), "s300": ("sage_300", 8128), "sn_s300": ("servicenow", 8129),
             # 8131 is ServiceTitan's default port (sandbox/server.py)
             "syspro": ("syspro", 8130), "sn_syspro": ("servicenow", 8132)}
# Served from this process (the demo changes a job there and sends its webhook): ServiceTitan and
# the contractor's own X3 (folder FIELD), after the sandboxes above when ports are offset.
IN_PROCESS = {"st": 8131, "x3_field": 8133}


class Command(BaseCommand):
    help = "Start the sandbox systems, seed the demo tenant, run a first sync, then serve the portal and workers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000, help="Portal port")
        parser.add_argument("--sandbox-base-port", type=int, default=0,
                            help="First sandbox port (default: X3 8124, ServiceNow 8125)")
        parser.add_argument("--x3-transport", choices=("rest", "graphql"), default=os.environ.get("X3_TRANSPORT") or "rest",
                            help="how the two X3 tenants speak to X3: api1 REST (default) or GraphQL (Xtrem)")
        parser.add_argument("--no-serve", action="store_true",
                            help="Stop after the first sync (sandbox processes are stopped too)")

    def handle(self, *args, host, port, sandbox_base_port, no_serve, x3_transport="rest", **options):
        self.x3_transport = x3_transport
        self.children: list[subprocess.Popen] = []
        self.servers: list[SimServer] = []
        # Stopped by SIGTERM or a closed terminal (SIGHUP) as by Ctrl-C: the sandbox servers would
        # otherwise keep their ports and the next demo would fail.
        with stopped_as_by_ctrl_c(self._stop_children):
            self._run(host, port, sandbox_base_port, no_serve)

    def _run(self, host: str, port: int, base_port: int, no_serve: bool) -> None:
        call_command("migrate", verbosity=0)
        urls = {}
        for offset, (name, (system, default_port)) in enumerate(SANDBOXES.items()):
            sim_port = base_port + offset if base_port else default_port
            urls[name] = f"http://127.0.0.1:{sim_port}"
            self._spawn([sys.executable, "-m", "integrations.sandbox.server", system, "--port", str(sim_port)])
        st_sim, x3_field = ServiceTitanSimulator().seed_demo(), SageX3Simulator(folders=())
        x3_field.seed_field_service()
        for offset, (name, default_port) in enumerate(IN_PROCESS.items(), start=len(SANDBOXES)):
            server = serve(st_sim if name == "st" else x3_field, "127.0.0.1", base_port + offset if base_port else
                           default_port)
            self.servers.append(server)
            urls[name] = server.url
        for name, url in urls.items():
            self._wait_for(url, name)
        self.stdout.write(f"Sandbox: Sage X3 {urls['x3']}, ServiceNow {urls['sn']}; "
                          f"Sage Intacct {urls['intacct']}, its ServiceNow {urls['sn_intacct']}; "
                          f"Sage 300 {urls['s300']}, its ServiceNow {urls['sn_s300']}; "
                          f"SYSPRO {urls['syspro']}, its ServiceNow {urls['sn_syspro']}; "
                          f"ServiceTitan {urls['st']}, the contractor's Sage X3 {urls['x3_field']}")

        refresh_token = self._pair_x3(urls["x3"])
        load_document(x3_servicenow_document(urls["x3"], urls["sn"], x3_refresh_token=refresh_token,
                                             x3_transport=self.x3_transport), actor="demo")
        x3 = self._first_sync("acme", "x3-to-sn", "Acme Manufacturing (Sage X3 → ServiceNow)")
        load_document(intacct_servicenow_document(urls["intacct"], urls["sn_intacct"]), actor="demo")
        intacct = self._first_sync("acme-intacct", "intacct-sn", "Acme Distribution (Sage Intacct ↔ ServiceNow)")
        approved = self._approve_in_servicenow(urls["sn_intacct"], count=3)
        posted = sum(r.created + r.updated for r in run_integration(
            intacct, streams=["approved_invoices"], trigger=Trigger.MANUAL, actor="demo"))
        self.stdout.write(f"  {approved} invoices approved in ServiceNow; {posted} posted back to Intacct.")
        load_document(sage300_servicenow_document(urls["s300"], urls["sn_s300"]), actor="demo")
        s300 = self._first_sync("acme-300", "s300-to-sn", "Acme Components (Sage 300 → ServiceNow)")
        load_document(syspro_servicenow_document(urls["syspro"], urls["sn_syspro"]), actor="demo")
        syspro = self._first_sync("acme-syspro", "syspro-to-sn", "Acme Machining (SYSPRO → ServiceNow)")
        load_document(servicetitan_x3_document(urls["st"], urls["x3_field"], x3_transport=self.x3_transport,
                                               x3_refresh_token=self._pair_x3(urls["x3_field"])), actor="demo")
        field = self._first_sync("acme-field", "st-to-x3", "Acme Electric (ServiceTitan → Sage X3)")
        for integration in (x3, intacct, s300, syspro, field):
            held = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD).count()
            if held:
                self.stdout.write(f"  {integration.name}: {held} record(s) held for an unmapped GL account or "
                                  "cost center: map it in Mappings and the approval releases them.")
        self._reconcile(x3)
        sync_schedules()
        install_reconcile_schedule()
        install_alert_schedules()

        user_model = get_user_model()
        password = secrets.token_urlsafe(12)
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        if no_serve:
            self._job_completed_live(st_sim, "")
            self.stdout.write(self.style.SUCCESS(f"Demo ready (not serving). Login: admin / {password}"))
            return
        self._spawn([sys.executable, "manage.py", "qcluster"])
        self._spawn([sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"])
        self._wait_for(f"http://{host}:{port}/admin/login/", "portal")
        self._job_completed_live(st_sim, f"http://{host}:{port}")
        self.stdout.write(self.style.SUCCESS(
            f"\nml-connector demo is running.\n  Admin:    http://{host}:{port}/admin/\n"
            f"  Login:    admin / {password}\n  API docs: http://{host}:{port}/api/docs/\n"
            "Press Ctrl-C to stop."))
        try:
            while all(child.poll() is None for child in self.children):
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("Stopping...")
            return
        raise CommandError("A demo process stopped unexpectedly; see its output above.")

    def _first_sync(self, tenant: str, name: str, label: str) -> Integration:
        """Run every stream, approve the suggested mappings, release what they held."""
        integration = Integration.objects.select_related("source", "target", "tenant").get(
            tenant__slug=tenant, name=name)
        self.stdout.write(f"First sync of {label} over HTTP...")
        run_integration(integration, trigger=Trigger.MANUAL, actor="demo")
        decision = approve_all(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED),
                               actor="demo")
        replay_records(decision.released_ids, actor="demo", reason="demo: suggested mappings approved",
                       trigger=Trigger.MAPPING)
        counts = {s: SyncRecord.objects.filter(integration=integration, status=s).count() for s in RecordStatus.values}
        self.stdout.write(f"  synced {counts['synced']}, held {counts['held']}, failed {counts['failed']}")
        return integration

    def _job_completed_live(self, st_sim: ServiceTitanSimulator, portal_url: str) -> None:
        """A technician completes job 1007 in ServiceTitan: its signed webhook goes to the portal,
        which posts the job's costs to X3 (the worker processes it; without a portal, this process)."""
        costs = st_sim.record("jpm", "jobs", 1001)["customFields"]
        st_sim.update("jpm", "jobs", 1007, jobStatus="Completed", customFields=costs,
                      completedOn=st_sim.record("jpm", "jobs", 1007)["modifiedOn"])
        event = st_sim.webhook_event("job.completed", {"id": 1007})
        path = "/webhooks/servicetitan/acme-field/st/"
        if portal_url:
            status = st_sim.deliver(portal_url + path, WEBHOOK_KEY, delays=(2.0, 5.0))[-1].status
        else:
            body = json.dumps(event).encode()
            answer = receive_webhook("servicetitan", "acme-field", "st", body,
                                     {"X-ServiceTitan-Signature": sign(body, WEBHOOK_KEY)})
            status = answer.status
            if answer.event is not None:
                process_pending(answer.event.connection_id)
        self.stdout.write(f"  ServiceTitan job 1007 completed: its webhook was answered HTTP {status}; the job's "
                          "costs go to X3 as a journal entry (Webhook inbox shows the entry it led to).")

    def _reconcile(self, integration: Integration) -> None:
        """One month-end reconciliation with differences to explain: the month of the first held invoice."""
        for stream in money_streams(integration):
            held = SyncRecord.objects.filter(integration=integration, stream=stream.name, status=RecordStatus.HELD)
            for record in held.order_by("pk"):
                money = stream.money(record.source_snapshot, integration.source.settings or {})
                if money is not None and money.day is not None:
                    run = reconcile(integration, Period.month(f"{money.day:%Y-%m}"), actor="demo")
                    self.stdout.write(f"  Month-end reconciliation of {integration.name} for {run.period_label}: "
                                      f"{run.verdict} (its Reconciliation page explains each one).")
                    return

    def _approve_in_servicenow(self, sn_url: str, count: int) -> int:
        """What an AP approver does in ServiceNow: approve a few staged invoices."""
        auth = (SN_USER, SN_DEMO_PASSWORD)
        rows = requests.get(f"{sn_url}/api/now/table/sn_apo_invoice", auth=auth, timeout=10, params={
            "sysparm_limit": count, "sysparm_fields": "sys_id", "sysparm_query": "ORDERBYsys_id"}).json()["result"]
        for row in rows:
            requests.patch(f"{sn_url}/api/now/table/sn_apo_invoice/{row['sys_id']}", auth=auth, timeout=10,
                           json={"approval": "approved"}).raise_for_status()
        return len(rows)

    def _pair_x3(self, x3_url: str) -> str:
        """The X3 cloud pairing flow: authorise, then exchange the code for a refresh token."""
        redirect = "http://127.0.0.1/callback"
        response = requests.get(f"{x3_url}/v1/token/authorise", allow_redirects=False, timeout=10, params={
            "client_id": X3_CLIENT_ID, "redirect_uri": redirect, "state": "demo", "scope": "api"})
        location = response.headers.get("Location", "")
        code = (parse_qs(urlsplit(location).query).get("authorizationCode") or [""])[0]
        if not code:
            raise CommandError(f"X3 sandbox pairing failed: HTTP {response.status_code}")
        token = requests.post(f"{x3_url}/token", timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": X3_CLIENT_ID, "client_secret": X3_CLIENT_SECRET}).json()
        return token["refresh_token"]

    def _spawn(self, command: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.children.append(subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True))

    def _wait_for(self, url: str, name: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise CommandError(f"{name} did not start at {url}")

    def _stop_children(self) -> None:
        for server in getattr(self, "servers", []):
            server.stop()
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
