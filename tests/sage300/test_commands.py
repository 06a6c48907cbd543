"""The operator's commands work for the Sage 300 pair as for the others; a partial run exits 0."""

from __future__ import annotations

import json
from io import StringIO

from django.core.management import call_command
from django_q.models import Schedule

from integrations.models import Mapping, MappingStatus, RecordStatus, RunStatus, SyncRecord, SyncRun
from integrations.sandbox.sage300_seed import bulk_data
from tests.sage300.conftest import load


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_run_sync_mappings_and_replay_work_for_the_pair(integration, s300_sim, sn_sim):
    first = json.loads(_call("run_sync", "--tenant", "acme-300", "--integration", "s300-to-sn", "--json"))
    assert {row["stream"] for row in first} == {"sn_cost_centers", "s300_gl_accounts", "gl_accounts", "vendors",
                                                "invoices"}
    held = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD).count()
    assert held > 0, "invoices wait for their GL account's cost center"

    suggested = Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).count()
    _call("mappings", "--tenant", "acme-300", "--integration", "s300-to-sn", "--approve-suggested")
    assert Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).count() == 0 < suggested

    _call("replay", "--tenant", "acme-300", "--integration", "s300-to-sn", "--status", "held",
          "--reason", "department mappings approved")
    still_held = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD).count()
    assert still_held < held  # released; what stays held names a department ServiceNow lacks


def test_a_run_cut_by_the_budget_exits_0_and_says_when_it_continues(db, sandbox, s300_sim, sn_sim, tenant_doc):
    s300_sim.page_size = 5
    s300_sim.load(bulk_data(invoices=100, lines_per_invoice=1, vendors=30, per_batch=5, vendors_per_day=10))
    # the IIS budget on the Sage 300 connection (GL accounts are read once for both of their streams)
    tenant_doc["connections"][0]["settings"] = {**tenant_doc["connections"][0].get("settings", {}), "call_budget": 6}
    tenant_doc["integrations"][0]["settings"] = {"continue_after_seconds": 600}
    integration = load(tenant_doc)

    rows = json.loads(_call("run_sync", "--tenant", "acme-300", "--integration", "s300-to-sn", "--json"))  # no error

    assert rows[-1]["status"] == RunStatus.PARTIAL
    run = SyncRun.objects.filter(integration=integration).latest("pk")
    s300 = integration.source.name
    assert run.call_usage[s300]["budget"] == 6 and run.call_usage[s300]["cycle_calls"] == 6
    assert run.continues_at is not None
    continuation = Schedule.objects.get(name__startswith=f"continue:{integration.uuid}:")
    assert continuation.next_run == run.continues_at


def test_the_console_shows_the_budget_used_and_when_the_run_continues(db, sandbox, s300_sim, sn_sim, tenant_doc,
                                                                      client, django_user_model):
    s300_sim.page_size = 5
    s300_sim.load(bulk_data(invoices=100, lines_per_invoice=1, vendors=30, per_batch=5, vendors_per_day=10))
    # the IIS budget on the Sage 300 connection (GL accounts are read once for both of their streams)
    tenant_doc["connections"][0]["settings"] = {**tenant_doc["connections"][0].get("settings", {}), "call_budget": 6}
    tenant_doc["integrations"][0]["settings"] = {"continue_after_seconds": 600}
    integration = load(tenant_doc)
    _call("run_sync", "--tenant", "acme-300", "--integration", "s300-to-sn")
    run = SyncRun.objects.filter(integration=integration, status=RunStatus.PARTIAL).latest("pk")
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x-long-password"))

    listing = client.get("/admin/integrations/syncrun/").content.decode()
    page = client.get(f"/admin/integrations/syncrun/{run.pk}/change/").content.decode()

    assert f"{integration.source.name}: 6 of 6 this cycle" in listing
    assert "by itself (call budget reached)" in page
