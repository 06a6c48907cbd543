"""Invoices approved in ServiceNow are posted back to Intacct exactly once, linked in the lineage."""

from __future__ import annotations

from decimal import Decimal

from integrations.engine.replay import replay_records
from integrations.engine.runner import run_stream
from integrations.models import ErrorClass, RecordStatus, SyncRecord
from integrations.sandbox.base import Faults
from integrations.sandbox.intacct_seed import COMPANY_ID
from integrations.sandbox.snstore import stable_sys_id
from tests.support import skey

INVOICES, LINES = "sn_apo_invoice", "sn_apo_invoice_line"


def staged_invoice(integration, sn_sim, *, paid: bool = False) -> tuple[SyncRecord, dict]:
    """A bill synced to ServiceNow (and its invoice row), paid in Intacct or not."""
    bills = SyncRecord.objects.filter(integration=integration, stream="bills", status=RecordStatus.SYNCED)
    for record in bills.order_by("source_key"):
        if (record.source_snapshot["STATE"] == "Paid") == paid:
            return record, next(r for r in sn_sim.rows(INVOICES) if r["sys_id"] == record.target_id)
    raise AssertionError("no such bill")


def intacct_functions(intacct_sim, name: str) -> list[tuple[str, str, str]]:
    return [entry for entry in intacct_sim.function_log if entry[0] == name]


def lines_of(sn_sim, invoice_sys_id: str) -> list[dict]:
    return sorted((r for r in sn_sim.rows(LINES) if r["invoice"] == invoice_sys_id),
                  key=lambda r: int(r["line_number"]))


def test_an_approved_invoice_reaches_intacct_once_on_the_mapped_dimensions(staged, sn_sim, intacct_sim):
    bill_record, invoice = staged_invoice(staged, sn_sim)
    line = lines_of(sn_sim, invoice["sys_id"])[0]
    sn_sim.update(LINES, line["sys_id"], {"gl_account": stable_sys_id("itfm_gl_accounts", "60700"),
                                          "cost_center": stable_sys_id("cmn_cost_center", "CC600")})
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run = run_stream(staged, "approved_invoices")
    assert (run.status, run.updated, run.failed) == ("succeeded", 1, 0)
    bill = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == bill_record.source_key)
    first = bill["APBILLITEMS"][0]
    assert (first["ACCOUNTNO"], first["DEPARTMENTID"]) == ("60700", "600")  # recoded in ServiceNow
    assert Decimal(bill["TRX_TOTALENTERED"]) == Decimal(invoice["amount_invoiced"])
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert (record.status, record.target_id, record.business_key) == ("synced", bill["RECORDNO"], invoice["number"])
    assert len(intacct_functions(intacct_sim, "update")) == 1


def test_a_second_approval_poll_does_not_post_it_again(staged, sn_sim, sn_clock, intacct_sim):
    _, invoice = staged_invoice(staged, sn_sim)
    sn_clock.advance(60)
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run_stream(staged, "approved_invoices")
    run_stream(staged, "bills")  # the echo of our post comes back from Intacct...
    again = run_stream(staged, "approved_invoices")  # ...and the poll sees the invoice again
    assert again.created + again.updated == 0
    sn_clock.advance(60)
    sn_sim.update(INVOICES, invoice["sys_id"], {"approval": "requested"})
    sn_clock.advance(60)
    sn_sim.approve(INVOICES, invoice["sys_id"])  # approved a second time, nothing else changed
    run_stream(staged, "approved_invoices")
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    replay_records([record.pk], reason="operator pressed replay")
    assert len(intacct_functions(intacct_sim, "update")) == 1


def test_a_recoded_and_reapproved_invoice_is_posted_again_once(staged, sn_sim, sn_clock, intacct_sim):
    bill_record, invoice = staged_invoice(staged, sn_sim)
    sn_clock.advance(60)
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run_stream(staged, "approved_invoices")
    line = lines_of(sn_sim, invoice["sys_id"])[0]
    sn_clock.advance(60)
    sn_sim.update(LINES, line["sys_id"], {"gl_account": stable_sys_id("itfm_gl_accounts", "61000")})
    sn_sim.update(INVOICES, invoice["sys_id"], {"approval": "requested"})
    sn_clock.advance(60)
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run_stream(staged, "approved_invoices")
    run_stream(staged, "approved_invoices")
    assert len(intacct_functions(intacct_sim, "update")) == 2
    bill = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == bill_record.source_key)
    assert bill["APBILLITEMS"][0]["ACCOUNTNO"] == "61000"


def test_a_200_response_carrying_errormessage_fails_the_record_with_the_intacct_text(staged, sn_sim):
    _, invoice = staged_invoice(staged, sn_sim, paid=True)
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run = run_stream(staged, "approved_invoices")
    assert (run.status, run.failed) == ("succeeded", 1)
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.status == RecordStatus.FAILED and record.error_class == ErrorClass.DATA
    assert "BL01001973" in record.error_message
    assert "is paid and can no longer be edited" in record.error_message
    assert "Reverse the payment first." in record.error_message


def test_our_own_post_is_not_sent_back_to_servicenow(staged, sn_sim):
    _, invoice = staged_invoice(staged, sn_sim)
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run_stream(staged, "approved_invoices")
    before = next(r for r in sn_sim.rows(INVOICES) if r["sys_id"] == invoice["sys_id"])
    run = run_stream(staged, "bills")
    after = next(r for r in sn_sim.rows(INVOICES) if r["sys_id"] == invoice["sys_id"])
    assert run.read == 1 and run.updated == 0
    assert after["sys_mod_count"] == before["sys_mod_count"]


def native_invoice(sn_sim, number: str = "APINV0099001", amount: str = "480.25") -> dict:
    """An invoice keyed in ServiceNow itself, on a supplier that came from Intacct."""
    supplier = next(r for r in sn_sim.rows("proc_vendor") if r.get("supplier_number") == "V103")
    invoice = sn_sim.insert(INVOICES, {"number": number, "supplier": supplier["sys_id"],
                                       "supplier_invoice_number": "TS-77", "invoice_date": "2025-12-10",
                                       "due_date": "2026-01-09", "currency": "USD", "amount_invoiced": amount,
                                       "short_description": "Licences"})
    sn_sim.insert(LINES, {"invoice": invoice["sys_id"], "line_number": "1", "line_amount_invoiced": amount,
                          "line_description": "Licences", "gl_account": stable_sys_id("itfm_gl_accounts", "60700"),
                          "cost_center": stable_sys_id("cmn_cost_center", "CC600")})
    sn_sim.approve(INVOICES, invoice["sys_id"])
    return invoice


def test_an_invoice_started_in_servicenow_becomes_one_bill_linked_both_ways(staged, sn_sim, intacct_sim):
    invoice = native_invoice(sn_sim)
    run = run_stream(staged, "approved_invoices")
    assert run.created == 1
    bills = [b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099001"]
    assert len(bills) == 1
    bill = bills[0]
    assert (bill["VENDORID"], bill["TRX_TOTALENTERED"], bill["APBILLITEMS"][0]["ACCOUNTNO"],
            bill["APBILLITEMS"][0]["DEPARTMENTID"]) == ("V103", "480.25", "60700", "600")
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.target_id == bill["RECORDNO"]
    row = next(r for r in sn_sim.rows(INVOICES) if r["sys_id"] == invoice["sys_id"])
    assert (skey(row), row["u_source_system"]) == (bill["RECORDNO"], "sage_intacct")
    invoices_before = len(sn_sim.rows(INVOICES))
    run_stream(staged, "bills")  # the new bill comes back from Intacct: it is linked, not duplicated
    run_stream(staged, "approved_invoices")
    assert len(sn_sim.rows(INVOICES)) == invoices_before
    assert len(sn_sim.rows(LINES)) == len({skey(r) for r in sn_sim.rows(LINES)})
    assert len([b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099001"]) == 1


def test_a_post_whose_response_is_lost_is_retried_without_a_duplicate_bill(staged, sn_sim, intacct_sim):
    invoice = native_invoice(sn_sim, "APINV0099002")
    intacct_sim.set_faults(Faults(drop_rate=1.0))  # Intacct commits every write, then the connection dies
    run = run_stream(staged, "approved_invoices")
    intacct_sim.set_faults(Faults())
    assert run.created == 1 and run.failed == 0
    bills = [b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099002"]
    assert len(bills) == 1
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.target_id == bills[0]["RECORDNO"] and record.target_refs["duplicate_refused"] == "yes"


def test_an_invoice_coded_to_an_unmapped_servicenow_account_is_held(staged, sn_sim):
    _, invoice = staged_invoice(staged, sn_sim)
    line = lines_of(sn_sim, invoice["sys_id"])[0]
    sn_sim.update(LINES, line["sys_id"], {"gl_account": stable_sys_id("itfm_gl_accounts", "69900")})
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run = run_stream(staged, "approved_invoices")
    assert run.held == 1
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.missing_keys == ["gl_account:69900"]


def test_a_bill_changed_in_intacct_after_staging_is_held_as_a_conflict(staged, sn_sim, intacct_sim):
    bill_record, invoice = staged_invoice(staged, sn_sim)
    bill = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == bill_record.source_key)
    recoded = [{**line, "ACCOUNTNO": "60900"} for line in bill["APBILLITEMS"]]
    intacct_sim.touch(COMPANY_ID, "APBILL", bill_record.source_key, {"APBILLITEMS": recoded})
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run = run_stream(staged, "approved_invoices")
    assert run.held == 1 and not intacct_functions(intacct_sim, "update")
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.missing_keys == ["conflict:review"]
    replay_records([record.pk], reason="ServiceNow approval wins")  # a person decided: force
    record.refresh_from_db()
    assert record.status == RecordStatus.SYNCED and len(intacct_functions(intacct_sim, "update")) == 1


def test_an_intacct_edit_the_post_would_not_overwrite_is_no_conflict(staged, sn_sim, intacct_sim):
    bill_record, invoice = staged_invoice(staged, sn_sim)
    intacct_sim.touch(COMPANY_ID, "APBILL", bill_record.source_key, {"DESCRIPTION": "Memo added in Intacct"})
    sn_sim.approve(INVOICES, invoice["sys_id"])
    run = run_stream(staged, "approved_invoices")
    assert (run.held, run.updated) == (0, 1)


def test_invoices_from_another_system_are_left_alone(staged, sn_sim, intacct_sim):
    invoice = sn_sim.insert(INVOICES, {"number": "X3-1", "u_source_system": "sage_x3", "u_source_key": "PI-1",
                                       "approval": "approved"})
    run_stream(staged, "approved_invoices")
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.status == RecordStatus.SKIPPED
    assert not intacct_functions(intacct_sim, "update") and not intacct_functions(intacct_sim, "create")


def test_a_bill_whose_servicenow_link_failed_is_adopted_not_staged_twice(staged, sn_sim, intacct_sim):
    invoice = native_invoice(sn_sim, "APINV0099003")
    run_stream(staged, "approved_invoices")
    # As if linking the invoice in ServiceNow had failed after the bill was created in Intacct:
    sn_sim.update(INVOICES, invoice["sys_id"], {"u_source_key": ""})
    for line in lines_of(sn_sim, invoice["sys_id"]):
        sn_sim.update(LINES, line["sys_id"], {"u_source_key": ""})
    SyncRecord.objects.filter(stream="approved_invoices", source_key=invoice["sys_id"]).update(
        status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT, target_id="", target_refs={}, next_retry_at=None)
    invoices, lines = len(sn_sim.rows(INVOICES)), len(sn_sim.rows(LINES))
    run_stream(staged, "bills")
    assert (len(sn_sim.rows(INVOICES)), len(sn_sim.rows(LINES))) == (invoices, lines)
    bill = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099003")
    row = next(r for r in sn_sim.rows(INVOICES) if r["sys_id"] == invoice["sys_id"])
    assert skey(row) == bill["RECORDNO"]
    SyncRecord.objects.filter(stream="approved_invoices", source_key=invoice["sys_id"]).update(
        next_retry_at="2000-01-01T00:00:00Z")
    run_stream(staged, "approved_invoices")
    assert len([b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099003"]) == 1
    record = SyncRecord.objects.get(stream="approved_invoices", source_key=invoice["sys_id"])
    assert (record.status, record.target_id) == (RecordStatus.SYNCED, bill["RECORDNO"])


def test_linking_rows_back_mid_poll_does_not_skip_the_rows_after_them(staged, sn_sim, sn_clock, intacct_sim):
    staged.settings = {**staged.settings, "page_size": 2}
    staged.save(update_fields=["settings"])
    sn_clock.advance(60)
    invoices = [native_invoice(sn_sim, f"APINV00991{n:02d}", amount=f"{10 + n}.00") for n in range(7)]
    sn_clock.advance(1)  # the links written back during the poll land one second later
    run = run_stream(staged, "approved_invoices")
    assert run.created == 7
    numbers = {b["RECORDID"] for b in intacct_sim.records(COMPANY_ID, "APBILL")}
    assert {i["number"] for i in invoices} <= numbers


def test_a_create_whose_result_was_never_recorded_is_recognised_by_its_bill_number(staged, sn_sim, intacct_sim):
    invoice = native_invoice(sn_sim, "APINV0099004")
    run_stream(staged, "approved_invoices")
    # As if the run had died after Intacct created the bill and ServiceNow was linked, before our books:
    SyncRecord.objects.filter(stream="approved_invoices", source_key=invoice["sys_id"]).update(
        status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT, target_id="", target_refs={},
        next_retry_at="2000-01-01T00:00:00Z")
    run_stream(staged, "approved_invoices")
    bills = [b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099004"]
    record = SyncRecord.objects.get(stream="approved_invoices", source_key=invoice["sys_id"])
    assert len(bills) == 1
    assert (record.status, record.target_id) == (RecordStatus.SYNCED, bills[0]["RECORDNO"])


def test_an_invoice_linked_to_a_bill_this_integration_never_staged_is_left_alone(staged, sn_sim, intacct_sim):
    held = SyncRecord.objects.filter(integration=staged, stream="bills", status=RecordStatus.HELD).first()
    invoice = sn_sim.insert(INVOICES, {"number": "OTHER-1", "u_source_system": "sage_intacct",
                                       "u_source_key": held.source_key, "approval": "approved"})
    run_stream(staged, "approved_invoices")
    record = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert record.status == RecordStatus.SKIPPED and "did not sync" in record.error_message
    assert not intacct_functions(intacct_sim, "update")
