"""In Chromium: the month-end reconciliation of the demo tenant, whose six invoices on GL 61200 are
held: the verdict and the money first, then each difference with its way out (map, replay)."""

from __future__ import annotations

from playwright.sync_api import expect

from integrations.models import RecordStatus, SyncRecord

from .conftest import assert_screenshot, login


def test_the_reconciliation_page_explains_each_difference_of_a_month(page, portal):
    integration = portal["integration"]
    held = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD).order_by("pk")
    assert held.count() == 6
    month = held.first().source_snapshot["BPRDAT"][:7]

    login(page, portal)
    page.goto(f"{portal['url']}/admin/integrations/integration/{integration.pk}/reconciliation/")
    expect(page.locator("body")).to_contain_text("No reconciliation of x3-to-sn yet")
    page.fill("#id_period", month)
    page.click("#reconcile-now")
    page.wait_for_load_state("networkidle")

    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("differences, totals off by")
    expect(page.locator("#totals")).to_contain_text("in Sage X3")
    expect(page.locator("#totals")).to_contain_text("in ServiceNow")
    differences = page.locator("#differences")
    in_month = [r for r in held if r.source_snapshot["BPRDAT"][:7] == month]
    for record in in_month:
        expect(differences).to_contain_text(record.business_key)
    expect(differences.locator("a", has_text="map GL account 61200").first).to_be_visible()
    expect(page.locator("svg.recon-chart").first).to_be_visible()  # one chart per currency
    assert_screenshot(page, "reconciliation")

    differences.locator("a", has_text="map GL account 61200").first.click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).to_contain_text("61200")  # the mapping that holds them, one click away
