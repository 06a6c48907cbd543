"""Documents reconciliation does not count (purchase orders, job cost journal entries, inventory
bills, GL journals) are still found by supplier and amount, read from what each pair's simulator
sent (``RecordStream.document``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import responses
from django.contrib.auth import get_user_model

from integrations.console.search import search_records
from integrations.demo import syspro_servicenow_document
from integrations.engine.reconcile import money_streams
from integrations.engine.runner import run_integration
from integrations.models import Integration, SyncRecord
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.servicenow import ServiceNowSimulator
from integrations.sandbox.syspro import SysproSimulator
from integrations.tenants import load_document
from tests.servicetitan.test_flow import ST_AUTH, ST_URL, X3_URL, Pair
from tests.syspro.conftest import SN_URL as SYSPRO_SN_URL
from tests.syspro.conftest import URL as SYSPRO_URL

pytestmark = pytest.mark.django_db


def _found(q: str) -> dict[int, tuple[str, object]]:
    """pk → (group label, hit) of what a superuser's search finds."""
    root = get_user_model().objects.filter(is_superuser=True).first() or get_user_model().objects.create_superuser(
        "root", "root@example.com", "pw")
    return {hit.pk: (group.label, hit) for group in search_records(root, q).groups for hit in group.hits}


# --- ServiceTitan → Sage X3 ----------------------------------------------------------------------
@pytest.fixture
def st_pair() -> Iterator[Pair]:
    pair = Pair()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(pair.st, ST_URL, rsps)
        mount(pair.st, ST_AUTH, rsps)
        mount(pair.x3, X3_URL, rsps)
        pair.load()
        pair.run()
        yield pair


def test_a_job_cost_journal_entry_is_found_by_its_amount(st_pair: Pair) -> None:
    record = (SyncRecord.objects.filter(integration=st_pair.integration, stream="job_costs")
              .exclude(doc_amount=None).order_by("pk").first())
    job = st_pair.st.record("jpm", "jobs", int(record.source_key))
    costs = {f["name"]: Decimal(f["value"]) for f in job["customFields"]}
    total = costs["laborCost"] + costs["materialCost"]
    assert (record.doc_amount, record.doc_date.isoformat(), record.doc_number) == (
        total, job["completedOn"][:10], record.business_key)
    assert record.doc_supplier == ""  # the job's customer is not a supplier

    label, hit = _found(f"{total:,}")[record.pk]
    assert label == "Job costs (ServiceTitan → X3 journal entries)"
    assert (hit.matched, hit.number, hit.supplier, hit.supplier_invoice) == ("amount", record.business_key, "", "")


def test_an_inventory_bill_is_found_by_its_vendors_name_and_its_amount(st_pair: Pair) -> None:
    record = (SyncRecord.objects.filter(integration=st_pair.integration, stream="inventory_bills")
              .exclude(doc_amount=None).order_by("pk").first())
    bill = st_pair.st.record("accounting", "inventory-bills", int(record.source_key))
    assert (record.doc_number, record.doc_supplier, record.doc_amount) == (
        bill["referenceNumber"], bill["vendor"]["name"], Decimal(bill["billAmount"]))
    for q, matched in ((bill["vendor"]["name"], "supplier"), (bill["billAmount"], "amount")):
        label, hit = _found(q)[record.pk]
        assert (label, hit.matched) == ("Inventory bills (ServiceTitan → X3 supplier invoices)", matched), q


def test_servicetitan_documents_are_not_counted_by_reconciliation(st_pair: Pair) -> None:
    assert money_streams(st_pair.integration) == []


# --- SYSPRO → ServiceNow ---------------------------------------------------------------------------
@pytest.fixture
def syspro() -> Iterator[tuple[Integration, SysproSimulator]]:
    sim = SysproSimulator().seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, SYSPRO_URL, rsps)
        mount(ServiceNowSimulator(clock=ManualClock()).seed_demo(), SYSPRO_SN_URL, rsps)
        document = syspro_servicenow_document(SYSPRO_URL, SYSPRO_SN_URL)
        load_document(document)
        integration = Integration.objects.select_related("source", "target", "tenant").get(
            tenant__slug=document["tenant"]["slug"])
        run_integration(integration)
        yield integration, sim


def test_a_syspro_purchase_order_is_its_lines_quantity_times_price(syspro) -> None:
    integration, sim = syspro
    header = sim.table("PorMasterHdr").as_dicts()[0]
    lines = [line for line in sim.table("PorMasterDetail").as_dicts() if line["PurchaseOrder"] == header["PurchaseOrder"]]
    total = sum((Decimal(line["MOrderQty"]) * Decimal(line["MPrice"]) for line in lines), Decimal("0"))
    record = SyncRecord.objects.get(integration=integration, stream="purchase_orders",
                                    source_key=header["PurchaseOrder"].strip())
    assert (record.doc_supplier, record.doc_amount, record.doc_currency, record.doc_date.isoformat()) == (
        header["Supplier"], total.quantize(Decimal("0.01")), header["Currency"], header["OrderEntryDate"][:10])
    label, hit = _found(f"{header['Currency']} {total:,.2f}")[record.pk]
    assert (label, hit.matched) == ("Purchase orders (SYSPRO → ServiceNow)", "amount")


def test_a_gl_journal_is_found_by_its_total_debits(syspro) -> None:
    integration, sim = syspro
    entries = sim.table("GenJournalDetail").as_dicts()
    journal = entries[0]["Journal"]
    debits = sum((Decimal(e["EntryValue"]) for e in entries if e["Journal"] == journal and e["EntryType"] == "D"),
                 Decimal("0"))
    record = SyncRecord.objects.get(integration=integration, stream="gl_postings", source_key=journal.strip())
    assert (record.doc_number, record.doc_supplier, record.doc_amount) == (record.business_key, "", debits)
    label, hit = _found(f"{debits}")[record.pk]
    assert (label, hit.matched) == ("GL postings (SYSPRO → ServiceNow staging)", "amount")
    assert [stream.name for stream in money_streams(integration)] == ["invoices"]

