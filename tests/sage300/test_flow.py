"""Sage 300 → ServiceNow through the engine: increments, budgets, faults, adoption, the mapping gate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.engine.mappings import approve, map_manually
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.models import AuditEvent, Mapping, MappingStatus, RecordStatus, RunStatus, SyncRecord, Trigger
from integrations.sandbox.base import Faults
from tests.support import skey

from .conftest import load

pytestmark = pytest.mark.django_db


def sn_rows(sn_sim, table):
    return list(sn_sim.store.require(table).rows.values())


def approve_suggested(integration):
    decision = approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
    replay_records(decision.released_ids, actor="test", reason="approved", trigger=Trigger.MAPPING)


def test_first_sync_pushes_accounts_vendors_and_invoices_and_holds_the_unmapped_department(integration, sn_sim,
                                                                                         s300_sim):
    runs = run_integration(integration)
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 5
    # every pushed account is its own approved GL mapping
    gl = Mapping.objects.filter(integration=integration, kind="gl_account")
    assert gl.count() == 7 and all(m.status == MappingStatus.APPROVED for m in gl)
    cc = {m.source_code: (m.status, m.reason, m.target_code) for m in
          Mapping.objects.filter(integration=integration, kind="cost_center")}
    assert cc["6000CC100"] == (MappingStatus.SUGGESTED, "exact_code", "CC100")  # department segment = code
    assert cc["6600600"] == (MappingStatus.SUGGESTED, "name_match", "CC600")  # "Information technology"
    assert cc["6000CC700"][0] == MappingStatus.UNMAPPED
    # invoice details carry no cost center: every invoice waits for its accounts' approvals
    assert SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.HELD).count() == 12
    approve_suggested(integration)
    held = SyncRecord.objects.get(integration=integration, stream="invoices", status=RecordStatus.HELD)
    assert held.source_key == "4-3" and held.missing_keys == ["cost_center:6000CC700"]
    assert SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.SYNCED).count() == 11
    # mapping CC700 by hand releases the last one
    decision = map_manually(Mapping.objects.get(integration=integration, kind="cost_center", source_code="6000CC700"),
                            "CC400")
    replay_records(decision.released_ids, actor="test", reason="mapped", trigger=Trigger.MAPPING)
    assert SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.SYNCED).count() == 12
    invoices = sn_rows(sn_sim, "sn_apo_invoice")
    assert len(invoices) == 12
    one = next(r for r in invoices if r["supplier_invoice_number"] == "INV-00001-001")
    source = s300_sim.rows("APInvoiceBatches")[0]["Invoices"][0]
    assert Decimal(one["amount_invoiced"]) == source["DocumentTotalIncludingTax"]
    assert Decimal(one["subtotal"]) == source["DocumentTotalBeforeTaxes"]
    lines = [r for r in sn_rows(sn_sim, "sn_apo_invoice_line") if r["invoice"] == one["sys_id"]]
    assert sorted(Decimal(r["line_amount_invoiced"]) for r in lines) == sorted(
        d["DistributedAmount"] for d in source["InvoiceDetails"])
    gl_rows = {r["sys_id"]: r for r in sn_rows(sn_sim, "itfm_gl_accounts")}
    cc_rows = {r["sys_id"]: r for r in sn_rows(sn_sim, "cmn_cost_center")}
    # the first detail names the formatted account, the second the unformatted one: both match
    assert {gl_rows[r["gl_account"]]["account_number"] for r in lines} == {"6000-CC100", "6100-CC200"}
    assert {cc_rows[r["cost_center"]]["code"] for r in lines} == {"CC100", "CC200"}


def test_an_unchanged_resync_writes_nothing_and_never_anything_but_get_reaches_sage_300(integration, sn_sim,
                                                                                       s300_sim):
    run_integration(integration)
    approve_suggested(integration)
    writes_before = sum(1 for r in sn_sim.requests if r.method != "GET")
    runs = run_integration(integration)
    assert all(r.status == RunStatus.SUCCEEDED and r.created == r.updated == 0 for r in runs)
    assert sum(1 for r in sn_sim.requests if r.method != "GET") == writes_before
    assert s300_sim.writes == [] and {r.method for r in s300_sim.requests} == {"GET"}


def test_a_change_later_the_same_day_is_picked_up(integration, sn_sim, s300_sim):
    vendors = s300_sim.rows("APVendors")
    last_day = max(v["DateLastMaintained"] for v in vendors)
    vendor = vendors[1]
    vendor["DateLastMaintained"] = last_day  # edited today, before the sync
    run_integration(integration)
    vendor["VendorName"] = "Contoso Freight International"  # and again later today: the date stays
    runs = {r.stream: r for r in run_integration(integration)}
    assert runs["vendors"].updated == 1 and runs["vendors"].created == 0
    names = {r["supplier_number"]: r["name"] for r in sn_rows(sn_sim, "proc_vendor")}
    assert names[vendor["VendorNumber"]] == "Contoso Freight International"


def test_more_than_a_page_of_vendors_sharing_one_date_all_arrive(db, sandbox, s300_sim, sn_sim, tenant_doc):
    s300_sim.page_size = 2  # five vendors share 2026-01-05: three pages of one date
    integration = load(tenant_doc)
    runs = {r.stream: r for r in run_integration(integration, streams=["vendors"])}
    assert runs["vendors"].created == 12
    assert len({r["supplier_number"] for r in sn_rows(sn_sim, "proc_vendor")}) == 12


def test_a_budget_of_20_calls_completes_a_large_sync_over_several_runs(db, sandbox, s300_sim, sn_sim, tenant_doc):
    s300_sim.page_size = 5
    s300_sim.load(__import__("integrations.sandbox.sage300_seed", fromlist=["bulk_data"]).bulk_data(
        invoices=600, lines_per_invoice=1, vendors=60, per_batch=5, vendors_per_day=25))
    tenant_doc["integrations"][0]["settings"] = {"call_budget": 20, "continue_after_seconds": 0}
    integration = load(tenant_doc)
    cycles = 0
    while True:
        cycles += 1
        before = len(s300_sim.requests)
        runs = run_integration(integration)
        assert len(s300_sim.requests) - before <= 20  # ServiceNow calls are not counted against it
        if all(r.status == RunStatus.SUCCEEDED for r in runs) and len(runs) == 5:
            break
        assert runs[-1].status == RunStatus.PARTIAL and "budget" in runs[-1].error
        if cycles == 2:
            approve_suggested(integration)
        assert cycles < 40
    approve_suggested(integration)
    run_integration(integration)
    assert cycles > 3
    invoices = sn_rows(sn_sim, "sn_apo_invoice")
    keys = [skey(r) for r in invoices]
    assert len(keys) == len(set(keys)) == 600  # nothing lost, nothing twice
    assert len({skey(r) for r in sn_rows(sn_sim, "proc_vendor")}) == len(sn_rows(sn_sim, "proc_vendor")) == 60
    assert SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.SYNCED).count() == 600
    assert s300_sim.writes == []
    assert AuditEvent.objects.filter(action="run.continuation_scheduled").exists()


def test_the_pair_defaults_to_a_budget_of_1500_sage_300_calls(integration):
    from integrations.engine.context import call_budget

    integration.settings = {}
    assert call_budget(integration.source, integration) == 1500
    integration.source.settings = {**integration.source.settings, "call_budget": 40}
    assert call_budget(integration.source, integration) == 40


def test_iis_503_is_retried_and_a_slow_first_call_is_noted(db, sandbox, s300_sim, sn_sim, tenant_doc):
    tenant_doc["connections"][0]["settings"] = {"timeout": 120, "slow_call_seconds": 1}
    integration = load(tenant_doc)
    s300_sim.slow_start = 1.05
    s300_sim.set_faults(Faults(error_rate=0.5, seed=1))
    runs = run_integration(integration, streams=["gl_accounts", "vendors"])
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert AuditEvent.objects.filter(action="http.backoff", message__contains="app pool").exists()
    slow = AuditEvent.objects.filter(action="connection.slow_start")
    assert slow.count() == 1 and "app pool" in slow.get().message


def test_existing_rows_without_a_source_key_are_adopted_not_duplicated(db, sandbox, s300_sim, sn_sim, tenant_doc):
    sn_sim.insert("proc_vendor", {"name": "Northwind Metals", "city": "Old Town"})
    sn_sim.insert("itfm_gl_accounts", {"account_number": "6000-CC100", "name": "Raw materials (by hand)"})
    integration = load(tenant_doc)
    run_integration(integration, streams=["gl_accounts", "vendors"])
    vendors = [r for r in sn_rows(sn_sim, "proc_vendor") if r["name"] == "Northwind Metals"]
    assert len(vendors) == 1 and skey(vendors[0]) == "1100"
    accounts = [r for r in sn_rows(sn_sim, "itfm_gl_accounts") if r["account_number"] == "6000-CC100"]
    assert len(accounts) == 1 and skey(accounts[0]) == "6000CC100"
    adopted = AuditEvent.objects.filter(action="record.adopted")
    assert adopted.count() == 2 and any("Northwind Metals" in e.message for e in adopted)


def test_the_source_id_column_check_shares_a_call_with_the_first_adoption_look_up(integration, sn_sim):
    run_integration(integration)

    assert not [r for r in sn_sim.requests if r.path.endswith("/sys_dictionary")], "no call of its own"
    batches = [[item["url"].split("?")[0] for item in r.json()["rest_requests"]]
               for r in sn_sim.requests if r.path.endswith("/batch")]
    reads = [urls for urls in batches if any(url.endswith("/sys_dictionary") for url in urls)]
    assert reads == [["/api/now/table/itfm_gl_accounts", "/api/now/table/sys_dictionary"]]


def test_lost_servicenow_answers_never_stage_an_invoice_twice(integration, sn_sim, s300_sim):
    run_integration(integration)
    approve_suggested(integration)
    sn_sim.set_faults(Faults(item_drop_rate=0.3, seed=5))
    s300_sim.rows("APInvoiceBatches")[0]["Description"] = "edited"  # every invoice of batch 1 changes
    for _ in range(4):
        run_integration(integration)
    sn_sim.set_faults(Faults())
    run_integration(integration)
    keys = [skey(r) for r in sn_rows(sn_sim, "sn_apo_invoice")]
    assert len(keys) == len(set(keys)) == 11


def test_gl_accounts_are_read_once_a_cycle_for_both_of_their_streams_and_again_the_next_cycle(integration, s300_sim):
    def account_reads() -> int:
        return sum(1 for r in s300_sim.requests if r.path.endswith("/GL/GLAccounts"))

    runs = {r.stream: r for r in run_integration(integration)}
    assert runs["s300_gl_accounts"].read == runs["gl_accounts"].read > 0
    first_cycle = account_reads()
    assert first_cycle == 1, "the mapping suggestions and the ServiceNow accounts share one answer"

    account = s300_sim.rows("GLAccounts")[0]
    account["Description"] = "Renamed in Sage 300"
    account["DateLastMaintained"] = max(a["DateLastMaintained"] for a in s300_sim.rows("GLAccounts"))
    runs = {r.stream: r for r in run_integration(integration)}
    assert account_reads() == first_cycle + 1, "a new cycle asks Sage 300 again"
    assert runs["gl_accounts"].updated == 1
