"""Vendors and AP bills (with lines) from Intacct into the ServiceNow staging tables."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

from integrations.engine import pipeline
from integrations.engine.runner import ensure_streams, run_integration, run_stream
from integrations.flows.intacct_servicenow import Bills
from integrations.models import Mapping, MappingStatus, RecordStatus, ReferenceRecord, RunStatus, SyncRecord
from integrations.sandbox.intacct_seed import COMPANY_ID
from tests.engine.test_pipeline import _batch_posts
from tests.intacct.conftest import approve_suggestions_and_release
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


def test_a_pages_write_is_not_held_up_while_the_next_page_is_planned(intacct_integration, sn_sim, settings,
                                                                     monkeypatch):
    """What a page's write needs from the database on the page's thread is either looked up by
    its own plan beforehand (which new bills the approvals stream may have created) or, a plain
    read (the stored token of a new cycle), answered between two bills of the next page's plan:
    the write goes out while that plan is still under way, not after it."""
    settings.SYNC_PIPELINE = True
    run_integration(intacct_integration, streams=["intacct_gl_accounts", "sn_gl_accounts", "intacct_departments",
                                                  "sn_cost_centers", "vendors"])
    approve_suggestions_and_release(intacct_integration)
    intacct_integration.settings = {**intacct_integration.settings, "page_size": 10}  # 36 bills: four pages
    intacct_integration.save(update_fields=["settings"])
    posts = _batch_posts(sn_sim)
    plans: list[tuple[float, float]] = []
    plan_page = pipeline.plan_page
    transform = Bills.transform

    def slow(self, ctx, record):  # a bill that takes a while to transform (sleeping, as a busy thread lets go)
        time.sleep(0.02)
        return transform(self, ctx, record)

    def timed(*args, **kwargs):  # a spy: the page is planned as before, and when is noted
        began = time.monotonic()
        try:
            return plan_page(*args, **kwargs)
        finally:
            plans.append((began, time.monotonic()))

    monkeypatch.setattr(Bills, "transform", slow)
    monkeypatch.setattr(pipeline, "plan_page", timed)

    run = run_stream(intacct_integration, "bills")

    assert run.status == RunStatus.SUCCEEDED and len(plans) == 4
    # the write of pages 1, 2 and 3 was sent before the plan of the page after it was done
    windows = [(plans[n - 1][1], plans[n][1]) for n in range(1, 4)]
    assert all(any(after < sent < before for _, sent, _ in posts) for after, before in windows), (
        "\n".join(map(str, plans + posts)))
    statuses = Counter(SyncRecord.objects.filter(integration=intacct_integration, stream="bills")
                       .values_list("status", flat=True))
    assert statuses == {RecordStatus.SYNCED: 28, RecordStatus.HELD: 8}  # the held ones on codes left unmapped
