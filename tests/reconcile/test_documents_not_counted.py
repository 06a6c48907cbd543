"""Purchase orders show a supplier, date and amount in the console (``RecordStream.document``) but
declare no ledger: month-end reconciliation counts and totals the invoices alone."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from integrations.engine.reconcile import money_streams, reconcile
from integrations.models import Period, ReconciliationStatus, SyncRecord
from tests.reconcile.conftest import CLEAN_MONTH, invoices_of


def test_purchase_orders_with_amounts_are_not_counted_by_reconciliation(synced, x3_sim):
    period = Period.month(CLEAN_MONTH)
    orders = SyncRecord.objects.filter(integration=synced, stream="purchase_orders", doc_date__gte=period.first,
                                       doc_date__lte=period.last).exclude(doc_amount=None)
    assert orders.exists()  # dated in the month, with an amount: what a ledger would make it count
    assert [stream.name for stream in money_streams(synced)] == ["invoices"]

    run = reconcile(synced, period, actor="test")

    assert run.status == ReconciliationStatus.BALANCED and not run.lines.exists()
    assert {row["stream"] for row in run.totals} == {"invoices"}
    invoices = invoices_of(x3_sim, CLEAN_MONTH)
    assert {row["currency"]: row["source_count"] for row in run.totals} == dict(Counter(i["CUR"] for i in invoices))
    for row in run.totals:
        assert Decimal(row["source_amount"]) == sum(i["AMTATI"] for i in invoices if i["CUR"] == row["currency"])
