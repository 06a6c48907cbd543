"""Impact first: the review ordered by the money each code holds back, kept fresh by the held queue."""

from __future__ import annotations

import re
import time
from decimal import Decimal

from integrations.engine.mappings import held_for, refresh_held
from integrations.engine.reconcile import money_streams
from integrations.models import Mapping, MappingStatus, RecordStatus, SyncRecord
from integrations.models.mappings import HeldTally


def _money_of(mapping: Mapping) -> dict[str, Decimal]:
    """The held money of a code, the long way: every held record's snapshot through its stream."""
    streams = {s.name: s for s in money_streams(mapping.integration)}
    totals: dict[str, Decimal] = {}
    for record in held_for(mapping.integration_id, mapping.kind, mapping.source_code):
        money = streams[record.stream].money(record.source_snapshot, mapping.integration.source.settings)
        totals[money.currency] = totals.get(money.currency, Decimal("0")) + money.amount
    return totals


def test_the_figures_on_each_code_are_its_held_invoices_and_their_money_per_currency(w):
    refresh_held(w.acme)
    checked = 0
    for mapping in Mapping.objects.filter(integration=w.acme).select_related("integration__source"):
        assert mapping.held_count == held_for(w.acme.pk, mapping.kind, mapping.source_code).count()
        expected = _money_of(mapping)
        assert {c: Decimal(a) for c, a in mapping.held_money.items()} == expected, mapping.source_code
        assert mapping.held_amount == sum(expected.values(), Decimal("0")).quantize(Decimal("0.01"))
        checked += bool(expected)
    assert checked >= 5


def test_needs_decision_lists_unmapped_codes_holding_invoices_most_money_first(w):
    body = w.client("approver").get("/admin/integrations/mapping/?queue=decide").content.decode()
    codes = re.findall(r'<th class="field-source"><a [^>]*><strong>([^<]+)</strong>', body)
    expected = list(Mapping.objects.filter(integration__tenant__slug="acme", status__in=["unmapped", "suggested"],
                                           held_count__gt=0)
                    .order_by("-held_amount", "-held_count", "kind", "source_code").values_list("source_code", flat=True))
    assert codes == expected and "61200" in codes, "the unmapped code holding invoices is not hidden"
    assert all(m.status != MappingStatus.APPROVED for m in Mapping.objects.filter(source_code__in=codes))
    unmapped = Mapping.objects.get(integration=w.acme, source_code="61200")
    assert unmapped.status == MappingStatus.UNMAPPED
    assert "held: 6 invoices · EUR 96,177.28 · USD 2,582.41" in body
    # another tenant's codes never show, even in the queue
    assert "globex-sync" not in body


def test_the_figures_follow_the_held_queue_without_anyone_refreshing_them(w):
    client = w.client("approver")
    client.get("/admin/integrations/mapping/")
    mapping = Mapping.objects.get(integration=w.acme, source_code="60200")
    before = mapping.held_count
    # a new bill arrives on the code and is held (what a run does), the queue's signature changes
    record = held_for(w.acme.pk, "gl_account", "60200").first()
    SyncRecord.objects.create(integration=w.acme, stream=record.stream, source_key="NEW-1", business_key="NEW-1",
                              status=RecordStatus.HELD, missing=record.missing, source_snapshot=record.source_snapshot)
    client.get("/admin/integrations/mapping/?queue=decide")
    mapping.refresh_from_db()
    assert mapping.held_count == before + 1
    tally = HeldTally.objects.get(integration=w.acme)
    assert tally.held == SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.HELD).count()


def test_the_ordered_queue_costs_the_same_queries_as_the_plain_list(w, django_assert_max_num_queries):
    client = w.client("owner")
    client.get("/admin/integrations/mapping/?queue=decide")  # figures current
    with django_assert_max_num_queries(8):
        assert client.get("/admin/integrations/mapping/?queue=decide").status_code == 200


def test_with_a_big_held_queue_the_figures_are_computed_once_then_read(w):
    """20 000 held invoices: one pass when the queue changed, then the page reads the figures."""
    template = held_for(w.acme.pk, "gl_account", "61200").first()
    SyncRecord.objects.bulk_create([
        SyncRecord(integration=w.acme, stream=template.stream, source_key=f"BULK{i:06d}", business_key=f"BULK{i:06d}",
                   status=RecordStatus.HELD if i % 5 == 0 else RecordStatus.SYNCED, missing=template.missing,
                   source_snapshot=template.source_snapshot)
        for i in range(100_000)], batch_size=5000)
    client = w.client("owner")
    started = time.monotonic()
    assert client.get("/admin/integrations/mapping/?queue=decide").status_code == 200
    first = time.monotonic() - started
    started = time.monotonic()
    assert client.get("/admin/integrations/mapping/?queue=decide").status_code == 200
    second = time.monotonic() - started
    assert Mapping.objects.get(integration=w.acme, source_code="61200").held_count == 6 + 20_000
    print(f"held figures: first page {first:.2f}s, then {second:.2f}s")
    assert first < 30 and second < 1.5, (first, second)
