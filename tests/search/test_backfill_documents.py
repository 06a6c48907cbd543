"""``manage.py backfill_documents`` fills the searchable fields of records stored before they existed."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from integrations.engine.documents import SEARCH_FIELDS
from integrations.models import SyncRecord


def _doc_fields(integration) -> dict[int, tuple]:
    return {row[0]: row[1:] for row in SyncRecord.objects.filter(integration=integration)
            .values_list("pk", *SEARCH_FIELDS)}


def test_it_fills_what_the_sync_would_have_stored_without_touching_the_records_time(w):
    stored = _doc_fields(w.acme)
    assert any(amount is not None for _, _, amount, _, _ in stored.values())
    updated = dict(SyncRecord.objects.filter(integration=w.acme).values_list("pk", "updated_at"))
    SyncRecord.objects.update(doc_number="", doc_supplier="", doc_amount=None, doc_currency="", doc_date=None)

    out = StringIO()
    call_command("backfill_documents", "--batch-size", "7", stdout=out)

    assert _doc_fields(w.acme) == stored
    assert dict(SyncRecord.objects.filter(integration=w.acme).values_list("pk", "updated_at")) == updated
    assert "filled" in out.getvalue()


def test_it_can_be_limited_to_one_integration_and_resumed(w):
    SyncRecord.objects.update(doc_number="", doc_supplier="", doc_amount=None, doc_currency="", doc_date=None)
    first = SyncRecord.objects.filter(integration=w.acme).order_by("pk").values_list("pk", flat=True)[5]
    call_command("backfill_documents", "--tenant", "acme", "--integration", w.acme.name, "--after-pk", str(first),
                 stdout=StringIO())
    filled = SyncRecord.objects.exclude(doc_number="")
    assert filled.exists()
    assert not filled.filter(integration=w.globex).exists()
    assert not filled.filter(pk__lte=first).exists()


def test_it_fills_purchase_orders_which_are_documents_without_a_ledger(w):
    orders = SyncRecord.objects.filter(integration=w.acme, stream="purchase_orders")
    stored = {row[0]: row[1:] for row in orders.values_list("pk", *SEARCH_FIELDS)}
    assert stored and all(amount is not None and supplier for _, supplier, amount, _, _ in stored.values())
    # as rows stored before purchase orders were read as documents have them
    orders.update(doc_number="", doc_supplier="", doc_amount=None, doc_currency="", doc_date=None)

    call_command("backfill_documents", "--tenant", "acme", "--integration", w.acme.name, stdout=StringIO())

    assert {row[0]: row[1:] for row in orders.values_list("pk", *SEARCH_FIELDS)} == stored
