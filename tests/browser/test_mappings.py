"""Mapping review: GL 61200 has no ServiceNow match; mapping it by hand releases the six held invoices."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from integrations.models import AuditEvent, Mapping, MappingStatus, RecordStatus, SyncRecord
from tests.browser.conftest import assert_screenshot, login, messages
from tests.support import skey

HELD_INVOICES = ["PI00004", "PI00013", "PI00022", "PI00031", "PI00044", "PI00055"]


def test_mapping_gl_61200_by_hand_approves_it_and_releases_the_six_held_invoices(page, portal):
    sn = portal["sn"]
    assert len(sn.rows("sn_apo_invoice")) == 54
    login(page, portal)

    # the review screen: suggestions side by side, 61200 without a match, holding six invoices
    page.goto(f"{portal['url']}/admin/integrations/mapping/?kind__exact=gl_account")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(12)
    row = rows.filter(has_text="61200")
    expect(row).to_contain_text("no match: map by hand")
    expect(row.locator("td.field-status_badge")).to_have_text("unmapped")
    expect(row.locator("td.field-held_records")).to_have_text("6")
    approved = rows.filter(has_text="60100")
    expect(approved).to_contain_text("60100")
    expect(approved.locator("td.field-status_badge")).to_have_text("approved")
    page.locator("#toggle-nav-sidebar").click()  # room for every column in the screenshot
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    assert_screenshot(page, "mapping-review")

    # map it by hand: the autocomplete offers ServiceNow's accounts
    row.get_by_role("link", name=re.compile("61200")).click()
    expect(page.locator("h1")).to_contain_text("Change mapping")
    expect(page.locator(".field-held_records")).to_contain_text("6")
    page.locator(".field-map_to .select2-selection").click()
    search = page.locator(".select2-container--open .select2-search__field")
    search.fill("699")
    option = page.locator(".select2-results__option", has_text="69900 Suspense - unallocated spend")
    expect(option).to_have_count(1)
    option.click()
    expect(page.locator("#id_map_to")).to_have_value("69900")
    page.locator("input[name=_save]").click()

    # approving released the six held invoices, replayed inline (no qcluster in this test)
    expect(messages(page)).to_contain_text("Mapped and approved 1 mapping(s); 6 held record(s) released for replay.")
    mapping = Mapping.objects.get(kind="gl_account", source_code="61200")
    assert (mapping.status, mapping.target_code, mapping.decided_by.username) == (
        MappingStatus.APPROVED, "69900", "admin")
    event = AuditEvent.objects.get(action="mapping.approved", detail__source="61200")
    assert (event.actor_name, event.detail["target"], event.detail["released"]) == ("admin", "69900", 6)

    # the browser: the Held queue is empty, the invoices are synced, the dashboard says 0 held
    page.goto(f"{portal['url']}/admin/integrations/heldrecord/?integration__id__exact={portal['integration'].pk}")
    expect(page.locator("#result_list tbody tr")).to_have_count(0)
    page.goto(f"{portal['url']}/admin/integrations/syncrecord/?q=PI00004")
    found = page.locator("#result_list tbody tr")
    expect(found).to_have_count(1)
    expect(found.locator("td.field-status_badge")).to_have_text("Synced")
    page.goto(f"{portal['url']}/admin/")
    held = page.locator("#console-dashboard tbody tr").filter(has_text="x3-to-sn").locator("td").nth(5)
    expect(held).to_have_text("0")

    # ServiceNow: all sixty invoices, the six released ones each with a line on account 69900
    invoices = sn.rows("sn_apo_invoice")
    assert len(invoices) == 60
    suspense = next(a["sys_id"] for a in sn.rows("itfm_gl_accounts") if a["account_number"] == "69900")
    numbers = {row["sys_id"]: skey(row) for row in invoices}
    on_suspense = {numbers[line["invoice"]] for line in sn.rows("sn_apo_invoice_line") if line["gl_account"] == suspense}
    assert on_suspense == set(HELD_INVOICES)
    assert not SyncRecord.objects.filter(status=RecordStatus.HELD).exists()
    assert set(SyncRecord.objects.filter(source_key__in=HELD_INVOICES).values_list("status", flat=True)) == {
        RecordStatus.SYNCED}
