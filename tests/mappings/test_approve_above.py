"""Approve every suggestion at or above N%: first what each releases, then approve on confirmation."""

from __future__ import annotations

import re
from decimal import Decimal

from integrations.engine.mappings import held_for
from integrations.engine.reconcile import money_streams
from integrations.models import AuditEvent, Mapping, MappingStatus, RecordStatus, SyncRecord

URL = "/admin/integrations/mapping/approve-above/"


def _sure(w, floor: int) -> list[Mapping]:
    return list(Mapping.objects.filter(integration__tenant__slug="acme", status=MappingStatus.SUGGESTED,
                                       confidence__gte=floor))


def test_the_page_shows_what_each_approval_releases_and_the_total_per_currency(w):
    chosen = _sure(w, 100)
    assert len(chosen) >= 5
    body = w.client("approver").get(URL, {"min": 100}).content.decode()
    released = set()
    for mapping in chosen:
        held = held_for(mapping.integration_id, mapping.kind, mapping.source_code)
        released |= set(held.values_list("pk", flat=True))
        row = re.search(rf'value="{mapping.pk}">\s*<strong>{mapping.source_code}</strong>.*?</tr>', body, re.S)
        assert row, mapping.source_code
        assert f"{held.count()} invoice" in row.group(0)
    streams = {s.name: s for s in money_streams(w.acme)}
    totals: dict[str, Decimal] = {}
    for record in SyncRecord.objects.filter(pk__in=released):
        money = streams[record.stream].money(record.source_snapshot, w.acme.source.settings)
        totals[money.currency] = totals.get(money.currency, Decimal("0")) + money.amount
    summary = re.search(r'<p id="approve-summary">(.*?)</p>', body, re.S).group(1)
    assert f"releases <strong>{len(released)}</strong> held records" in summary
    for currency, amount in totals.items():
        assert f"<strong>{currency} {amount:,.2f}</strong>" in summary
    assert f"Approve {len(chosen)} suggestions and release {len(released)} records" in body
    # nothing was approved by looking
    assert Mapping.objects.filter(pk__in=[m.pk for m in chosen], status=MappingStatus.SUGGESTED).count() == len(chosen)


def test_confirming_approves_exactly_what_was_shown_and_releases_the_invoices(w):
    chosen = _sure(w, 100)
    released = set()
    for mapping in chosen:
        released |= set(held_for(mapping.integration_id, mapping.kind, mapping.source_code).values_list("pk", flat=True))
    shown = [m.pk for m in chosen][:-1]  # one was not on the person's page: it is not approved
    other = Mapping.objects.filter(integration=w.globex, status=MappingStatus.SUGGESTED).first()
    response = w.client("approver").post(URL, {"min": 100, "confirm": "yes", "mapping": [*shown, other.pk]},
                                         follow=True)
    body = response.content.decode()
    assert f"Approved at or above 100%: {len(shown)} mapping(s);" in body
    assert Mapping.objects.filter(pk__in=shown, status=MappingStatus.APPROVED, decided_by=w.users["approver"]).count() \
        == len(shown)
    assert Mapping.objects.get(pk=chosen[-1].pk).status == MappingStatus.SUGGESTED
    assert Mapping.objects.get(pk=other.pk).status == MappingStatus.SUGGESTED, "another tenant's code is untouched"
    assert AuditEvent.objects.filter(action="mapping.approved", actor_name="approver").count() == len(shown)
    # released and replayed inline: some reached ServiceNow
    assert SyncRecord.objects.filter(pk__in=released, status=RecordStatus.SYNCED).exists()


def test_a_floor_nothing_reaches_says_so_and_a_wrong_floor_is_refused(w):
    for mapping in _sure(w, 0):
        Mapping.objects.filter(pk=mapping.pk).update(confidence=80)
    body = w.client("approver").get(URL, {"min": 95}).content.decode()
    assert "No suggestion at or above 95% is waiting for approval" in body
    body = w.client("approver").get(URL, {"min": 180}, follow=True).content.decode()
    assert "The confidence is a percentage, 0 to 100." in body
    response = w.client("approver").post(URL, {"min": 95, "confirm": "yes", "mapping": [1, 2]}, follow=True)
    assert "Nothing approved: no suggestion at or above 95% is still waiting" in response.content.decode()


def test_only_approvers_may_open_it(w):
    assert w.client("viewer").get(URL).status_code == 403
    assert w.client("operator").get(URL).status_code == 403
    assert w.client("stranger").get(URL).status_code == 403
    before = Mapping.objects.filter(status=MappingStatus.APPROVED).count()
    w.client("viewer").post(URL, {"min": 0, "confirm": "yes", "mapping": [m.pk for m in _sure(w, 0)]})
    assert Mapping.objects.filter(status=MappingStatus.APPROVED).count() == before


def test_from_an_integrations_list_the_queue_and_the_bulk_page_stay_on_that_integration(w):
    body = w.client("approver").get("/admin/integrations/mapping/", {"integration__id__exact": w.acme.pk}).content.decode()
    assert f'href="?queue=decide&amp;integration__id__exact={w.acme.pk}"' in body
    assert f'approve-above/?min=90&amp;integration={w.acme.pk}"' in body
    viewer = w.client("viewer").get("/admin/integrations/mapping/").content.decode()
    assert 'id="needs-decision"' in viewer and 'id="approve-above"' not in viewer and 'id="import-csv"' not in viewer


def test_approving_many_at_once_releases_what_each_would_alone_in_a_fixed_number_of_queries(w):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations.engine.mappings import approve

    chosen = [m for m in Mapping.objects.filter(integration__tenant__slug="acme", status=MappingStatus.SUGGESTED)
              .select_related("integration") if m.target_code]
    assert len(chosen) >= 5
    alone = {m.pk: sorted(held_for(m.integration_id, m.kind, m.source_code).values_list("pk", flat=True))
             for m in chosen}
    assert any(alone.values())

    with CaptureQueriesContext(connection) as queries:
        decision = approve(chosen, actor="test")

    assert decision.approved == len(chosen)
    assert decision.released_ids == sorted({pk for pks in alone.values() for pk in pks})
    for mapping in Mapping.objects.filter(pk__in=alone):
        assert mapping.status == MappingStatus.APPROVED
        assert mapping.released_records == alone[mapping.pk]
    assert len(queries) <= 8, [q["sql"][:80] for q in queries]
    assert AuditEvent.objects.filter(action="mapping.approved").count() >= len(chosen)
