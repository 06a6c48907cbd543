"""Creates and updates carry uniqueid=true and a derived controlid: a retried post is never a second bill."""

from __future__ import annotations

from decimal import Decimal

from integrations.sandbox.base import Faults
from integrations.systems.intacct import WriteOp, derived_controlid
from integrations.systems.intacct_envelope import Function
from integrations.systems.intacct_xml import element

COMPANY = "acme-demo"


def bill_values(number: str = "SN-0001", amount: str = "125.40") -> dict:
    return {"RECORDID": number, "VENDORID": "V100", "WHENCREATED": "12/15/2025", "DESCRIPTION": "From ServiceNow",
            "APBILLITEMS": {"APBILLITEM": [{"ACCOUNTNO": "60100", "TRX_AMOUNT": Decimal(amount),
                                            "ENTRYDESCRIPTION": "Steel", "DEPARTMENTID": "100"}]}}


def create_op(number: str = "SN-0001", amount: str = "125.40") -> WriteOp:
    values = bill_values(number, amount)
    return WriteOp(number, "create", "APBILL", values, derived_controlid("test", number, repr(values)),
                   identity={"RECORDID": number, "VENDORID": "V100"})


def bills_numbered(sim, number: str) -> list[dict]:
    return [b for b in sim.records(COMPANY, "APBILL") if b["RECORDID"] == number]


def test_a_create_whose_response_is_lost_is_retried_without_a_second_bill(make_client, intacct_sim):
    client = make_client()
    client.tokens.token()
    intacct_sim.set_faults(Faults(drop_rate=1.0))  # every write is committed, then the connection dies
    outcome = client.write([create_op()])["SN-0001"]
    bills = bills_numbered(intacct_sim, "SN-0001")
    assert len(bills) == 1
    assert outcome.error is None and outcome.duplicate and outcome.record_no == bills[0]["RECORDNO"]
    creates = [status for name, _, status in intacct_sim.function_log if name == "create"]
    assert creates == ["success", "failure"]  # committed, then refused as already recorded
    assert bills[0]["TRX_TOTALENTERED"] == "125.40"


def test_without_uniqueid_the_same_retry_would_have_made_two_bills(make_client, intacct_sim):
    client = make_client()
    op = create_op("SN-0002")
    function = Function("create", element("create", element("APBILL", op.values)), op.controlid)
    client.execute([function], unique=False)
    client.execute([function], unique=False)
    assert len(bills_numbered(intacct_sim, "SN-0002")) == 2  # what uniqueid protects against


def test_a_refused_duplicate_is_recognised_and_resolved_to_the_existing_bill(make_client, intacct_sim):
    client = make_client()
    first = client.write([create_op("SN-0003")])["SN-0003"]
    again = client.write([create_op("SN-0003")])["SN-0003"]
    assert not first.duplicate and again.duplicate
    assert again.record_no == first.record_no and again.error is None
    assert len(bills_numbered(intacct_sim, "SN-0003")) == 1


def test_the_refusal_carries_the_documented_text(make_client, intacct_sim):
    client = make_client()
    op = create_op("SN-0004")
    client.write([op])
    results = client.execute([Function("create", element("create", element("APBILL", op.values)), op.controlid)],
                             unique=True)
    assert results[0].duplicate
    assert (f"A successful transaction has already been recorded with the control id {op.controlid}"
            in results[0].errors[0].description2)


def test_an_updates_duplicate_resolves_to_its_own_record(make_client, intacct_sim):
    client = make_client()
    values = {"RECORDNO": "101", "APBILLITEMS": {"APBILLITEM": [
        {"ACCOUNTNO": "60200", "TRX_AMOUNT": Decimal("1288.47"), "DEPARTMENTID": "200", "LOCATIONID": "E100"}]}}
    op = WriteOp("inv-1", "update", "APBILL", values, derived_controlid("test", "inv-1", "v2"))
    assert client.write([op])["inv-1"].record_no == "101"
    again = client.write([op])["inv-1"]
    assert again.duplicate and again.record_no == "101"


def test_the_controlid_is_derived_from_the_record_and_its_content():
    assert derived_controlid("approved_invoices", "abc", "3", "digest-1") == derived_controlid(
        "approved_invoices", "abc", "3", "digest-1")
    assert derived_controlid("approved_invoices", "abc", "3", "digest-1") != derived_controlid(
        "approved_invoices", "abc", "3", "digest-2")
    assert derived_controlid("approved_invoices", "abc", "3", "d") != derived_controlid(
        "approved_invoices", "abd", "3", "d")


def test_a_failed_function_leaves_its_controlid_free_for_a_corrected_retry(make_client, intacct_sim):
    client = make_client()
    bad = create_op("SN-0005")
    bad.values["VENDORID"] = "V999"
    outcome = client.write([bad])["SN-0005"]
    assert "Vendor 'V999' does not exist." in str(outcome.error)
    bad.values["VENDORID"] = "V100"
    assert client.write([bad])["SN-0005"].error is None
    assert len(bills_numbered(intacct_sim, "SN-0005")) == 1
