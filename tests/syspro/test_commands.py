"""The operator's commands work for the SYSPRO pair as for the others, and each logs off SYSPRO."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.models import AuditEvent, Connection, Mapping, MappingStatus, RecordStatus, RunStatus, SyncRecord

from .conftest import load

TENANT, NAME = "acme-syspro", "syspro-to-sn"


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def assert_logged_off(sim, logons: int) -> None:
    assert (sim.logons, sim.logoffs, sim.open_sessions) == (logons, logons, 0)


def test_run_sync_mappings_and_replay_work_for_the_pair_each_in_one_session(integration, sim, sn_sim):
    first = json.loads(_call("run_sync", "--tenant", TENANT, "--integration", NAME, "--json"))
    assert [row["stream"] for row in first] == [
        "sn_gl_accounts", "sn_cost_centers", "syspro_gl_accounts", "syspro_cost_centers", "gl_accounts",
        "suppliers", "purchase_orders", "invoices", "gl_postings"]
    assert all(row["status"] == RunStatus.SUCCEEDED for row in first)
    assert_logged_off(sim, 1)
    held = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD).count()
    assert held == 10, "invoices wait for their cost centres' approval"

    _call("mappings", "--tenant", TENANT, "--integration", NAME, "--approve-suggested")
    assert not Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).exists()
    assert_logged_off(sim, 2)  # the approval replays the invoices it releases: a session of its own
    still_held = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD)
    assert [r.source_key for r in still_held] == ["LOD001/INV-1010"]  # CC700: ServiceNow has no such cost center

    _call("replay", "--tenant", TENANT, "--integration", NAME, "--status", "held", "--reason", "try again")
    assert still_held.count() == 1
    assert_logged_off(sim, 3)
    assert sim.writes == []


def test_test_connection_logs_off_and_reports_every_table(integration, sim):
    out = _call("test_connection", "--tenant", TENANT, "--connection", "syspro", "--json")
    report = json.loads(out)
    assert report["ok"], report["failed"]
    assert {c["check"] for c in report["checks"]} >= {"logon", "table:ApInvoice", "table:ApInvoiceDistr",
                                                      "table:GenJournalDetail", "conditions"}
    assert_logged_off(sim, 1)
    assert [e for e in AuditEvent.objects.filter(connection=integration.source).values_list("action", flat=True)
            if e.startswith("connection.session_")] == ["connection.session_ended", "connection.session_opened"]


def test_a_refused_logon_fails_the_command_naming_the_operator_not_the_password(integration, sim):
    source = Connection.objects.get(pk=integration.source_id)
    source.secrets = {**source.secrets, "operator_password": "not-it & +#"}
    source.save()
    with pytest.raises(CommandError) as failure:
        _call("test_connection", "--tenant", TENANT, "--connection", "syspro")
    assert "operator ADMIN" in str(failure.value) and "not-it" not in str(failure.value)
    assert (sim.failed_logons, sim.open_sessions) == (1, 0)


def test_a_run_cut_by_the_budget_exits_0_and_has_logged_off(db, pair, sim, sn_sim, tenant_doc):
    tenant_doc["connections"][0]["settings"] = {"timeout": 120}
    integration = load(tenant_doc)
    Connection.objects.filter(pk=integration.source_id).update(
        settings={**integration.source.settings, "call_budget": 5})
    rows = json.loads(_call("run_sync", "--tenant", TENANT, "--integration", NAME, "--json"))  # no error
    assert rows[-1]["status"] == RunStatus.PARTIAL
    assert_logged_off(sim, 1)
