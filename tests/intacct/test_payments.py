"""Invoices paid in ServiceNow become Intacct AP payments (APPYMT) settling the bill, exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.engine.runner import run_stream
from integrations.models import ErrorClass, RecordStatus, SyncRecord
from integrations.sandbox.base import Faults
from integrations.sandbox.intacct_seed import BANK_ACCOUNT, COMPANY_ID

INVOICES, PAYMENTS = "sn_apo_invoice", "sn_apo_invoice_payment"


@pytest.fixture
def paying(staged):
    """The staged integration, with the bank account payments are made from."""
    staged.settings = {**staged.settings, "payment_bank_account": BANK_ACCOUNT}
    staged.save(update_fields=["settings"])
    return staged


def staged_bill(integration, *, paid: bool = False) -> SyncRecord:
    bills = SyncRecord.objects.filter(integration=integration, stream="bills", status=RecordStatus.SYNCED)
    return next(r for r in bills.order_by("source_key") if (r.source_snapshot["STATE"] == "Paid") == paid)


def bill_in_intacct(intacct_sim, record_no: str) -> dict:
    return next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == record_no)


def pay(sn_sim, bill_record: SyncRecord, amount: str, reference: str = "PAY-0001", **extra) -> dict:
    return sn_sim.insert(PAYMENTS, {"invoice": bill_record.target_id, "payment_amount": amount,
                                    "payment_date": "2025-12-20", "payment_method": "bank_transfer",
                                    "payment_reference_id": reference, "currency": "USD", **extra})


def payments(intacct_sim) -> list[dict]:
    return intacct_sim.records(COMPANY_ID, "APPYMT")


def writes(intacct_sim) -> list[tuple[str, str, str]]:
    return [entry for entry in intacct_sim.function_log if entry[0] in ("create", "update")]


def test_a_payment_in_servicenow_becomes_one_appymt_that_settles_the_bill(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    due = bill_in_intacct(intacct_sim, bill_record.source_key)["TOTALDUE"]
    payment = pay(sn_sim, bill_record, due)
    run = run_stream(paying, "payments")
    assert (run.status, run.created, run.failed) == ("succeeded", 1, 0)
    [made] = payments(intacct_sim)
    assert (made["FINANCIALENTITY"], made["PAYMENTMETHOD"], made["VENDORID"], made["WHENCREATED"],
            made["CURRENCY"], made["DOCNUMBER"]) == (BANK_ACCOUNT, "EFT", bill_record.source_snapshot["VENDORID"],
                                                     "12/20/2025", "USD", "PAY-0001")
    assert made["APPYMTDETAILS"] == [{"RECORDKEY": bill_record.source_key, "TRX_PAYMENTAMOUNT": due}]
    bill = bill_in_intacct(intacct_sim, bill_record.source_key)
    assert (bill["STATE"], bill["TOTALDUE"], bill["TOTALPAID"]) == ("Paid", "0.00", due)
    record = SyncRecord.objects.get(integration=paying, stream="payments", source_key=payment["sys_id"])
    assert (record.status, record.target_id, record.business_key) == ("synced", made["RECORDNO"], "PAY-0001")
    again = run_stream(paying, "payments")  # polled again, replayed by the schedule: never a second payment
    assert again.created + again.updated + again.failed == 0
    assert len(payments(intacct_sim)) == 1 and len(writes(intacct_sim)) == 1


def test_a_partial_payment_reduces_what_is_due(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    total = Decimal(bill_in_intacct(intacct_sim, bill_record.source_key)["TOTALDUE"])
    part = (total / 4).quantize(Decimal("0.01"))
    pay(sn_sim, bill_record, str(part))
    run = run_stream(paying, "payments")
    assert run.created == 1
    bill = bill_in_intacct(intacct_sim, bill_record.source_key)
    assert (bill["STATE"], Decimal(bill["TOTALDUE"])) == ("Partially Paid", total - part)
    pay(sn_sim, bill_record, str(total - part), reference="PAY-0002")  # the rest, later
    run_stream(paying, "payments")
    bill = bill_in_intacct(intacct_sim, bill_record.source_key)
    assert (bill["STATE"], bill["TOTALDUE"], len(payments(intacct_sim))) == ("Paid", "0.00", 2)


def test_a_lost_answer_after_intacct_committed_does_not_pay_twice(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    payment = pay(sn_sim, bill_record, "10.00")
    intacct_sim.set_faults(Faults(drop_rate=1.0))  # Intacct commits every write, then the connection dies
    run = run_stream(paying, "payments")
    intacct_sim.set_faults(Faults())
    assert (run.created, run.failed) == (1, 0)
    [made] = payments(intacct_sim)
    record = SyncRecord.objects.get(integration=paying, stream="payments", source_key=payment["sys_id"])
    assert record.target_id == made["RECORDNO"] and record.target_refs["duplicate_refused"] == "yes"
    assert Decimal(bill_in_intacct(intacct_sim, bill_record.source_key)["TOTALPAID"]) == Decimal("10.00")


def test_a_payment_whose_outcome_was_never_recorded_is_found_not_sent_again(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    payment = pay(sn_sim, bill_record, "10.00")
    run_stream(paying, "payments")
    # As if the run had died after Intacct booked the payment, before our books:
    SyncRecord.objects.filter(stream="payments", source_key=payment["sys_id"]).update(
        status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT, target_id="", target_refs={},
        next_retry_at="2000-01-01T00:00:00Z")
    creates_before = len(writes(intacct_sim))
    run_stream(paying, "payments")
    [made] = payments(intacct_sim)
    record = SyncRecord.objects.get(stream="payments", source_key=payment["sys_id"])
    assert (record.status, record.target_id) == (RecordStatus.SYNCED, made["RECORDNO"])
    assert record.target_refs["found_after_lost_answer"] == "yes"
    assert len(writes(intacct_sim)) == creates_before  # looked up, not sent again


def test_a_payment_to_a_bill_already_paid_in_intacct_is_failed_with_the_correction(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying, paid=True)
    payment = pay(sn_sim, bill_record, "10.00")
    run = run_stream(paying, "payments")
    assert (run.status, run.failed) == ("succeeded", 1)
    record = SyncRecord.objects.get(integration=paying, stream="payments", source_key=payment["sys_id"])
    assert (record.status, record.error_class, record.next_retry_at) == (RecordStatus.FAILED, ErrorClass.DATA, None)
    assert "is already paid" in record.error_message
    assert "Correction: Check the bill's payments in Intacct; reverse a payment" in record.error_message
    assert not payments(intacct_sim)
    # the Failed queue: what the console lists
    assert SyncRecord.objects.filter(integration=paying, status=RecordStatus.FAILED, stream="payments").count() == 1


def test_an_overpayment_is_refused_by_intacct_and_failed(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    due = Decimal(bill_in_intacct(intacct_sim, bill_record.source_key)["TOTALDUE"])
    payment = pay(sn_sim, bill_record, str(due + 1))
    run_stream(paying, "payments")
    record = SyncRecord.objects.get(integration=paying, stream="payments", source_key=payment["sys_id"])
    assert record.status == RecordStatus.FAILED and "exceeds the amount due" in record.error_message
    assert "Correction: Pay at most the amount due." in record.error_message
    assert bill_in_intacct(intacct_sim, bill_record.source_key)["TOTALDUE"] == format(due, "f")


def test_an_approval_sent_for_a_bill_paid_meanwhile_is_failed_with_the_correction(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    pay(sn_sim, bill_record, bill_in_intacct(intacct_sim, bill_record.source_key)["TOTALDUE"])
    run_stream(paying, "payments")
    sn_sim.approve(INVOICES, bill_record.target_id)
    run_stream(paying, "approved_invoices")
    record = SyncRecord.objects.get(integration=paying, stream="approved_invoices", source_key=bill_record.target_id)
    assert (record.status, record.error_class) == (RecordStatus.FAILED, ErrorClass.DATA)
    assert "is paid and can no longer be edited" in record.error_message
    assert "Correction: Reverse the payment first." in record.error_message


def test_nothing_paid_means_no_writes(paying, sn_sim, intacct_sim):
    before = len(writes(intacct_sim))
    run = run_stream(paying, "payments")
    assert (run.status, run.read, run.created) == ("succeeded", 0, 0)
    assert len(writes(intacct_sim)) == before and not payments(intacct_sim)


def test_without_a_bank_account_the_stream_reads_and_writes_nothing(staged, sn_sim, intacct_sim):
    bill_record = staged_bill(staged)
    pay(sn_sim, bill_record, "10.00")
    run = run_stream(staged, "payments")
    assert (run.status, run.read) == ("succeeded", 0)
    assert not payments(intacct_sim)


def test_a_payment_changed_after_it_was_posted_is_not_posted_again(paying, sn_sim, sn_clock, intacct_sim):
    bill_record = staged_bill(paying)
    payment = pay(sn_sim, bill_record, "10.00")
    run_stream(paying, "payments")
    sn_clock.advance(60)
    sn_sim.update(PAYMENTS, payment["sys_id"], {"payment_amount": "12.00"})
    run_stream(paying, "payments")
    record = SyncRecord.objects.get(integration=paying, stream="payments", source_key=payment["sys_id"])
    assert (record.status, record.error_class) == (RecordStatus.FAILED, ErrorClass.DATA)
    assert "cannot be changed" in record.error_message and "Correction: reverse payment" in record.error_message
    assert len(payments(intacct_sim)) == 1


def test_an_unknown_payment_method_is_a_data_error_naming_the_setting(paying, sn_sim, intacct_sim):
    bill_record = staged_bill(paying)
    payment = pay(sn_sim, bill_record, "10.00", payment_method="barter")
    run_stream(paying, "payments")
    record = SyncRecord.objects.get(integration=paying, stream="payments", source_key=payment["sys_id"])
    assert record.status == RecordStatus.FAILED and "payment_methods" in record.error_message
    assert not payments(intacct_sim)



def test_an_invoice_deleted_in_servicenow_before_its_link_back_is_not_recreated(paying, sn_sim, intacct_sim,
                                                                                  monkeypatch):
    from integrations.flows.intacct_approvals import ApprovedInvoices
    from integrations.models import AuditEvent
    from tests.intacct.test_approvals_to_intacct import native_invoice

    invoice = native_invoice(sn_sim, "APINV0099501")
    original = ApprovedInvoices._link

    def delete_then_link(self, ctx, links, results):
        # deleted by hand in ServiceNow after the poll read it, before the link-back
        sn_sim.store.delete(INVOICES, invoice["sys_id"])
        for line in [r for r in sn_sim.rows("sn_apo_invoice_line") if r["invoice"] == invoice["sys_id"]]:
            sn_sim.store.delete("sn_apo_invoice_line", line["sys_id"])
        return original(self, ctx, links, results)

    monkeypatch.setattr(ApprovedInvoices, "_link", delete_then_link)
    invoices, lines = len(sn_sim.rows(INVOICES)), len(sn_sim.rows("sn_apo_invoice_line"))
    run = run_stream(paying, "approved_invoices")
    record = SyncRecord.objects.get(integration=paying, stream="approved_invoices", source_key=invoice["sys_id"])
    bill = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "APINV0099501")
    assert (run.created, run.failed, record.status, record.target_id) == (1, 0, RecordStatus.SYNCED, bill["RECORDNO"])
    # nothing created in its place (an invoice holding only our link), and the deletion is audited
    assert (len(sn_sim.rows(INVOICES)), len(sn_sim.rows("sn_apo_invoice_line"))) == (invoices - 1, lines - 1)
    assert AuditEvent.objects.filter(action="record.link_skipped").count() == 2  # the header and its line


def test_the_connection_test_checks_the_payment_table_once_payments_are_on(staged):
    from integrations.engine.checks import table_needs
    from integrations.models import Integration

    integration = Integration.objects.get(pk=staged.pk)
    assert "payment" not in (table_needs(integration.target) or {})  # payments off: never asked for
    integration.settings = {**integration.settings, "payment_bank_account": BANK_ACCOUNT,
                            "field_names": {"payment": {"payment_amount": "u_amount"}}}
    integration.save()
    need = table_needs(integration.target)["payment"]
    assert not need.written  # read only: no source-id column is required
    assert {"invoice", "u_amount", "payment_date", "currency"} <= set(need.columns)
    assert "payment_amount" not in need.columns  # renamed
