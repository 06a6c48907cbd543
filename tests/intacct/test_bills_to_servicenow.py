"""Vendors and AP bills (with lines) from Intacct into the ServiceNow staging tables."""

from __future__ import annotations

from decimal import Decimal

from integrations.engine.runner import ensure_streams, run_integration, run_stream
from integrations.models import Mapping, MappingStatus, RecordStatus, ReferenceRecord, SyncRecord
from integrations.sandbox.intacct_seed import COMPANY_ID
from tests.support import skey


def mapped(integration, kind: str) -> dict[str, str]:
    return dict(Mapping.objects.filter(integration=integration, kind=kind, status=MappingStatus.APPROVED)
                .values_list("source_code", "target_external_id"))


def test_reference_data_is_read_hourly_from_both_sides_with_suggestions(intacct_integration):
    states = {s.stream: s.schedule for s in ensure_streams(intacct_integration)}
    assert {states[s] for s in ("intacct_gl_accounts", "sn_gl_accounts", "intacct_departments",
                                "sn_cost_centers")} == {"hourly"}
    run_integration(intacct_integration, streams=["intacct_gl_accounts", "sn_gl_accounts", "intacct_departments",
                                                  "sn_cost_centers"])
    refs = ReferenceRecord.objects.filter(integration=intacct_integration)
    assert refs.filter(side="source", kind="gl_account").count() == 13
    assert refs.filter(side="target", kind="cost_center").count() == 6
    suggestions = {(m.kind, m.source_code): (m.status, m.reason, m.target_code)
                   for m in Mapping.objects.filter(integration=intacct_integration)}
    assert suggestions[("gl_account", "60100")] == ("suggested", "exact_code", "60100")
    assert suggestions[("cost_center", "100")] == ("suggested", "name_match", "CC100")  # "Production"
    assert suggestions[("gl_account", "61200")][0] == "unmapped"
    assert suggestions[("cost_center", "700")][0] == "unmapped"


def test_vendors_are_staged_as_suppliers(intacct_integration, sn_sim):
    run_integration(intacct_integration, streams=["vendors"])
    suppliers = {row["supplier_number"]: row for row in sn_sim.rows("proc_vendor") if row.get("supplier_number")}
    assert len(suppliers) == 8
    northwind = suppliers["V100"]
    assert (northwind["name"], northwind["city"], northwind["payment_terms"], skey(northwind)) == (
        "Northwind Metals", "Chicago", "Net 30", "V100")


def test_the_source_id_column_check_shares_a_call_with_the_new_vendors_look_up(intacct_integration, sn_sim):
    run_integration(intacct_integration, streams=["vendors"])

    assert not [r for r in sn_sim.requests if r.path.endswith("/sys_dictionary")], "no call of its own"
    [first, *writes] = [[(item["method"], item["url"].split("?")[0]) for item in r.json()["rest_requests"]]
                        for r in sn_sim.requests if r.path.endswith("/batch")]
    assert first == [("GET", "/api/now/table/proc_vendor"), ("GET", "/api/now/table/sys_dictionary")]
    assert writes and all(method == "POST" for items in writes for method, _ in items)


def test_bills_wait_for_approved_mappings_and_name_the_missing_keys(intacct_integration, sn_sim):
    run_integration(intacct_integration)
    held = SyncRecord.objects.filter(integration=intacct_integration, stream="bills", status=RecordStatus.HELD)
    assert held.count() == 36
    assert not sn_sim.rows("sn_apo_invoice")
    first = held.get(source_key="101")
    assert first.missing_keys == ["cost_center:200", "gl_account:60200"]


def test_approved_mappings_release_the_bills_onto_mapped_lines_with_exact_amounts(staged, sn_sim, intacct_sim):
    bills = {b["RECORDNO"]: b for b in intacct_sim.records(COMPANY_ID, "APBILL")}
    records = SyncRecord.objects.filter(integration=staged, stream="bills")
    held = records.filter(status=RecordStatus.HELD)
    assert {tuple(r.missing_keys) for r in held} <= {("gl_account:61200",), ("cost_center:700",),
                                                     ("cost_center:700", "gl_account:61200")}
    synced = records.filter(status=RecordStatus.SYNCED)
    assert synced.count() + held.count() == 36 and synced.count() > 20
    invoices = {skey(row): row for row in sn_sim.rows("sn_apo_invoice")}
    lines = sn_sim.rows("sn_apo_invoice_line")
    gl, cc = mapped(staged, "gl_account"), mapped(staged, "cost_center")
    for record in synced:
        bill, invoice = bills[record.source_key], invoices[record.source_key]
        assert record.target_id == invoice["sys_id"]
        assert Decimal(invoice["amount_invoiced"]) == Decimal(bill["TRX_TOTALENTERED"])
        mine = sorted((line for line in lines if line["invoice"] == invoice["sys_id"]),
                      key=lambda line: int(line["line_number"]))
        assert len(mine) == len(bill["APBILLITEMS"])
        for line, item in zip(mine, bill["APBILLITEMS"], strict=True):
            assert line["gl_account"] == gl[item["ACCOUNTNO"]]
            assert line["cost_center"] == cc[item["DEPARTMENTID"]]
            assert Decimal(line["line_amount_invoiced"]) == Decimal(item["TRX_AMOUNT"])
        assert sum(Decimal(line["line_amount_invoiced"]) for line in mine) == Decimal(invoice["amount_invoiced"])


def test_a_bill_changed_in_intacct_updates_its_staged_invoice_instead_of_adding_one(staged, sn_sim, intacct_sim):
    before = len(sn_sim.rows("sn_apo_invoice"))
    record = SyncRecord.objects.filter(integration=staged, stream="bills", status=RecordStatus.SYNCED).first()
    intacct_sim.touch(COMPANY_ID, "APBILL", record.source_key, {"DESCRIPTION": "Corrected in Intacct"})
    run = run_stream(staged, "bills")
    assert (run.updated, run.created) == (1, 0)
    assert len(sn_sim.rows("sn_apo_invoice")) == before
    invoice = next(r for r in sn_sim.rows("sn_apo_invoice") if r["sys_id"] == record.target_id)
    assert invoice["short_description"] == "Corrected in Intacct"


def test_nothing_is_written_when_nothing_changed(staged, sn_sim):
    writes_before = sum(1 for r in sn_sim.requests if r.method in ("POST", "PATCH"))
    runs = run_integration(staged)
    assert all(r.status == "succeeded" for r in runs)
    assert sum(r.created + r.updated for r in runs) == 0
    assert sum(1 for r in sn_sim.requests if r.method in ("POST", "PATCH")) == writes_before
