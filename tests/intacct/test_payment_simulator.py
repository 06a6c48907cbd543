"""The Intacct sandbox's APPYMT: a payment settles its bill, and refuses what Intacct refuses, with a correction."""

from __future__ import annotations

from decimal import Decimal

from integrations.sandbox.intacct_seed import BANK_ACCOUNT, COMPANY_ID
from integrations.systems.intacct import WriteOp, derived_controlid
from integrations.systems.intacct_envelope import IntacctErrors


def open_bill(sim, vendor: str | None = None) -> dict:
    return next(b for b in sim.records(COMPANY_ID, "APBILL")
                if b["STATE"] != "Paid" and (vendor is None or b["VENDORID"] == vendor))


def payment_op(bill: dict, amount: str, *, vendor: str | None = None, key: str = "p1") -> WriteOp:
    values = {"FINANCIALENTITY": BANK_ACCOUNT, "PAYMENTMETHOD": "EFT", "VENDORID": vendor or bill["VENDORID"],
              "DESCRIPTION": f"ServiceNow payment {key}", "PAYMENTDATE": "12/20/2025", "CURRENCY": "USD",
              "APPYMTDETAILS": {"APPYMTDETAIL": [{"RECORDKEY": bill["RECORDNO"], "TRX_PAYMENTAMOUNT": Decimal(amount)}]}}
    return WriteOp(key, "create", "APPYMT", values, derived_controlid("test", key, amount),
                   {"DESCRIPTION": values["DESCRIPTION"]})


def refused(outcome) -> tuple[str, str]:
    assert outcome.error is not None and outcome.error.kind == "data"
    assert isinstance(outcome.error, IntacctErrors)
    item = outcome.error.intacct_errors[0]
    return item.description2, item.correction


def test_a_full_payment_settles_the_bill_and_can_be_found_by_its_description(make_client, intacct_sim):
    client = make_client()
    bill = open_bill(intacct_sim)
    outcome = client.write([payment_op(bill, bill["TOTALDUE"])])["p1"]
    assert outcome.error is None and outcome.record_no
    settled = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == bill["RECORDNO"])
    assert (settled["STATE"], settled["TOTALDUE"]) == ("Paid", "0.00")
    assert settled["WHENMODIFIED"] >= bill["WHENMODIFIED"]
    found = client.find("APPYMT", [{"DESCRIPTION": "ServiceNow payment p1"}, {"DESCRIPTION": "ServiceNow payment p2"}])
    assert list(found) == [0] and found[0]["RECORDNO"] == outcome.record_no


def test_a_bill_already_paid_is_refused_with_a_correction(make_client, intacct_sim):
    client = make_client()
    paid = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["STATE"] == "Paid")
    description, correction = refused(client.write([payment_op(paid, "1.00")])["p1"])
    assert "is already paid" in description and correction


def test_an_overpayment_an_unknown_bill_and_another_vendors_bill_are_refused(make_client, intacct_sim):
    client = make_client()
    bill = open_bill(intacct_sim)
    over = payment_op(bill, str(Decimal(bill["TOTALDUE"]) + Decimal("0.01")), key="over")
    unknown = payment_op({**bill, "RECORDNO": "999999"}, "1.00", key="unknown")
    other_vendor = next(v["VENDORID"] for v in intacct_sim.records(COMPANY_ID, "VENDOR")
                        if v["VENDORID"] != bill["VENDORID"])
    mismatch = payment_op(bill, "1.00", vendor=other_vendor, key="mismatch")
    outcomes = client.write([over, unknown, mismatch])
    assert "exceeds the amount due" in refused(outcomes["over"])[0]
    assert "was not found" in refused(outcomes["unknown"])[0]
    assert f"belongs to vendor {bill['VENDORID']}" in refused(outcomes["mismatch"])[0]
    untouched = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == bill["RECORDNO"])
    assert untouched["TOTALDUE"] == bill["TOTALDUE"] and not intacct_sim.records(COMPANY_ID, "APPYMT")


def test_an_unknown_bank_account_is_refused(make_client, intacct_sim):
    client = make_client()
    op = payment_op(open_bill(intacct_sim), "1.00")
    op.values["FINANCIALENTITY"] = "NO-SUCH-BANK"
    description, correction = refused(client.write([op])["p1"])
    assert "NO-SUCH-BANK" in description and "bank account" in correction
