"""``benchmark --admin`` at a tiny size, in the test database: the portal it builds looks like a real
multi-pair one, and every timed page answers, within a bounded number of queries.

No timing is asserted (CI machines differ).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.benchmark import admin_timing
from integrations.benchmark.pairs import PAIRS
from integrations.console.search import search_records
from integrations.flows import get_flow
from integrations.models import Integration, Mapping, ReconciliationLine, ReconciliationRun, SyncRecord

ROWS = 3000

pytestmark = pytest.mark.django_db


@pytest.fixture
def built() -> admin_timing.Built:
    return admin_timing.build(ROWS, run_days=2)


def test_it_builds_one_tenant_per_pair_with_records_in_every_record_stream(built):
    integrations = Integration.objects.select_related("tenant")
    assert sorted(i.kind for i in integrations) == sorted(pair.kind for pair in PAIRS.values())
    assert len({i.tenant_id for i in integrations}) == len(PAIRS)
    assert SyncRecord.objects.count() == ROWS
    for integration in integrations:
        streams = {cls.name for cls in get_flow(integration.kind).streams if not cls.is_reference}
        stored = set(SyncRecord.objects.filter(integration=integration).values_list("stream", flat=True))
        assert stored == streams
        statuses = set(SyncRecord.objects.filter(integration=integration).values_list("status", flat=True))
        assert statuses == {"synced", "failed", "held"}  # every tenant has both queues


def test_money_documents_carry_their_document_columns_as_a_sync_stores_them(built):
    for pairing_kind, stream in admin_timing.MONEY_SNAPSHOTS:
        documents = SyncRecord.objects.filter(integration__kind=pairing_kind, stream=stream)
        assert documents.exists()
        assert not documents.filter(doc_amount__isnull=True).exists()
        assert not documents.filter(doc_date__isnull=True).exists()
        assert not documents.filter(doc_supplier="").exists()
        assert not documents.filter(doc_number="").exists()
        # the supplier a document names is a supplier record of the same tenant
        document = documents.first()
        assert SyncRecord.objects.filter(integration_id=document.integration_id,
                                         doc_number=document.doc_supplier).exists()


def test_held_figures_and_reconciliations_are_there(built):
    assert Mapping.objects.filter(held_count__gt=0).exists()
    assert not Mapping.objects.filter(status="approved", held_count__gt=0).exists()
    money_pairs = len({kind for kind, _ in admin_timing.MONEY_SNAPSHOTS})
    assert ReconciliationRun.objects.count() == money_pairs * admin_timing.MONTHS
    lines = ReconciliationLine.objects.count()
    assert ROWS / 25 < lines < ROWS / 5  # about a tenth of the rows
    assert ReconciliationRun.objects.filter(status="differences").exists()
    run = ReconciliationRun.objects.get(pk=built.samples["run_pk"])
    assert run.totals and run.daily and run.differences == run.lines.count()


def test_what_the_clerk_searches_for_is_found(built):
    admin = built.users["superuser"]
    record = SyncRecord.objects.get(pk=built.samples["record_pk"])
    for term in ("invoice_number", "amount", "supplier_name"):
        results = search_records(admin, built.samples[term])
        found = {hit.pk for group in results.groups for hit in group.hits}
        assert found, term
        if term != "supplier_name":
            assert record.pk in found, term
    assert record.doc_amount == Decimal(built.samples["amount"].replace(",", ""))


def test_every_page_answers_for_the_superuser_and_the_operator_in_bounded_queries(built, settings):
    figures = admin_timing.time_pages(built, repeat=1)
    for page in admin_timing.PAGES:
        for prefix in (page, f"{page}.operator"):
            assert f"{prefix}.status" not in figures, (prefix, figures.get(f"{prefix}.status"))
            assert figures[f"{prefix}.server_ms"] > 0
            assert 0 < figures[f"{prefix}.queries"] <= 20, prefix
