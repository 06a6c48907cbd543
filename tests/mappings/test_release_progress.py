"""Approval says what it releases, then how the released invoices are doing, with the run."""

from __future__ import annotations

import re

from integrations.engine.mappings import held_for
from integrations.models import Mapping, MappingStatus, RecordStatus, SyncRecord, SyncRun, Trigger


def test_the_button_names_the_pair_and_the_invoices_it_releases_then_the_page_follows_them(w):
    mapping = Mapping.objects.get(integration=w.acme, source_code="60200")
    held = list(held_for(w.acme.pk, mapping.kind, mapping.source_code))
    assert mapping.status == MappingStatus.SUGGESTED and len(held) == 6
    client = w.client("approver")
    page = client.get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert 'value="Approve 60200 → 60200 and release 6 invoices"' in page
    for record in held:  # listed, each with its amount
        assert f">{record.business_key}</a>" in page
    after = client.post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"_approve": "1", "map_to": ""},
                        follow=True).content.decode()
    assert "Approved 1 mapping(s); 6 held record(s) released for replay." in after
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.APPROVED and sorted(mapping.released_records) == sorted(r.pk for r in held)
    synced = SyncRecord.objects.filter(pk__in=mapping.released_records, status=RecordStatus.SYNCED).count()
    progress = re.search(r'<p id="release-progress"[^>]*>(.*?)</p>', after, re.S).group(1)
    assert f"<strong>{synced} of 6 synced</strong>" in progress
    runs = SyncRun.objects.filter(trigger=Trigger.MAPPING, integration=w.acme)
    assert runs.exists()
    for run in runs:
        assert f"/admin/integrations/syncrun/{run.pk}/change/" in progress
    assert 'name="_approve"' not in after


def test_a_code_without_a_target_offers_no_approval_and_says_what_waits(w):
    mapping = Mapping.objects.get(integration=w.acme, source_code="61200")
    page = w.client("approver").get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert 'name="_approve"' not in page
    assert "6 invoices wait for this code (6 invoices · EUR 96,177.28 · USD 2,582.41)" in page
    assert 'name="_ignore"' in page
    viewer = w.client("viewer").get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert 'name="_ignore"' not in viewer and 'name="_approve"' not in viewer
