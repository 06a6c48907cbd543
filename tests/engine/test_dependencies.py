"""A record waits for the records it refers to: an invoice is never posted without its PO link."""

from __future__ import annotations

import pytest

from integrations.engine.mappings import approve
from integrations.engine.runner import run_integration, run_stream
from integrations.models import ErrorClass, Mapping, MappingStatus, RecordStatus, SyncRecord
from integrations.sandbox.base import Faults
from tests.support import INVOICE, INVOICE_LINE, PO, PO_LINE, REFERENCE_STREAMS, make_failed_records_due, skey

pytestmark = pytest.mark.django_db


@pytest.fixture
def purchase_orders_failed(integration, sn_sim):
    """Suppliers and mappings are in place, but every purchase order failed to reach ServiceNow."""
    run_integration(integration, streams=[*REFERENCE_STREAMS, "suppliers"])
    approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED)))
    sn_sim.set_faults(Faults(item_error_rate=1.0))  # every item of every batch answered 503
    run_stream(integration, "purchase_orders")
    sn_sim.set_faults(Faults())
    assert SyncRecord.objects.filter(stream="purchase_orders", status=RecordStatus.FAILED).count() == 40
    return integration


def test_an_invoice_whose_purchase_order_is_not_in_servicenow_yet_waits_for_it(purchase_orders_failed, sn_sim):
    run = run_stream(purchase_orders_failed, "invoices")

    assert run.created == 0
    assert sn_sim.rows(INVOICE) == []
    waiting = SyncRecord.objects.filter(stream="invoices", status=RecordStatus.FAILED)
    assert waiting.count() == 54  # the six on GL account 61200 are held for their mapping first
    assert {r.error_class for r in waiting} == {ErrorClass.TRANSIENT}
    assert all("purchase_orders record PO" in r.error_message for r in waiting)
    assert all(r.next_retry_at is not None for r in waiting)


def test_once_the_purchase_orders_are_in_the_invoices_follow_with_their_po_links(purchase_orders_failed, sn_sim):
    run_stream(purchase_orders_failed, "invoices")
    make_failed_records_due(purchase_orders_failed)

    run_stream(purchase_orders_failed, "purchase_orders")
    run_stream(purchase_orders_failed, "invoices")

    po_id = {skey(r): r["sys_id"] for r in sn_sim.rows(PO)}
    po_line_id = {skey(r): r["sys_id"] for r in sn_sim.rows(PO_LINE)}
    assert SyncRecord.objects.filter(stream="invoices", status=RecordStatus.SYNCED).count() == 54
    lines = sn_sim.rows(INVOICE_LINE)
    assert lines and all(line["purchase_order"] in po_id.values() for line in lines)
    assert all(line["purchase_order_line"] in po_line_id.values() for line in lines)
    assert all(header["purchase_order"] in po_id.values() for header in sn_sim.rows(INVOICE))
