"""The console as an AP clerk and a controller use it: the morning check, mapping a held GL
account from the inbox, a failure's next step and a run of one sync, in their words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from integrations.engine.operations import set_enabled
from integrations.models import AuditEvent, ErrorClass, Mapping, MappingStatus, RecordStatus, SyncRecord, SyncRun
from tests.browser.conftest import assert_screenshot, login, messages

PURCHASE_ORDERS = "Purchase orders (X3 → ServiceNow)"
BROKEN_INVOICE = "PI00009"


def test_the_morning_check_shows_the_held_invoices_and_what_needs_attention(page, portal):
    login(page, portal)

    inbox = page.locator("#inbox")
    expect(inbox).to_be_visible()
    held = inbox.locator("tr.inbox-decide").filter(has_text="61200")
    expect(held).to_have_count(1)
    expect(held).to_contain_text(re.compile(r"6 invoices · .+ wait for GL account 61200"))
    expect(held.get_by_role("link", name="Map now")).to_be_visible()
    totals = page.locator("#console-dashboard p.totals")
    expect(totals).to_contain_text("1 needs attention")
    expect(totals).to_contain_text("6 held")
    # one date format, with the zone; the technical name of the last run's sync only in its tooltip
    row = page.locator("#console-dashboard tbody tr").filter(has_text="x3-to-sn")
    last_run = row.locator("td").nth(2).locator("span.quiet")
    expect(last_run).to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$"))
    expect(last_run).to_have_attribute("title", re.compile(r"^technical name: \w+$"))
    assert_screenshot(page, "console-morning")

    # on a phone: the inbox and the figures that matter are still there, without sideways scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#inbox tr.inbox-decide").filter(has_text="61200")).to_be_visible()
    expect(page.locator("#inbox").get_by_role("link", name="Map now")).to_be_visible()
    assert_screenshot(page, "console-morning-390")


def test_a_held_gl_account_is_mapped_from_the_inbox_and_its_invoices_are_released(page, portal):
    login(page, portal)
    page.locator("#inbox tr.inbox-decide").filter(has_text="61200").get_by_role("link", name="Map now").click()

    expect(page.locator("h1")).to_contain_text("mapping")
    expect(page.locator(".field-held_records")).to_contain_text("6")
    page.locator(".field-map_to .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill("699")
    option = page.locator(".select2-results__option", has_text="69900 Suspense - unallocated spend")
    expect(option).to_have_count(1)
    option.click()
    page.locator("input[name=_save]").click()

    expect(messages(page)).to_contain_text("6 held record(s) released for replay.")
    assert_screenshot(page, "console-map-from-inbox")
    mapping = Mapping.objects.get(kind="gl_account", source_code="61200")
    assert (mapping.status, mapping.target_code) == (MappingStatus.APPROVED, "69900")
    assert not SyncRecord.objects.filter(status=RecordStatus.HELD).exists()

    # back on the dashboard nothing waits for 61200 and nothing is held
    page.goto(f"{portal['url']}/admin/")
    expect(page.locator("#inbox tr.inbox-decide").filter(has_text="61200")).to_have_count(0)
    expect(page.locator("#console-dashboard p.totals")).to_contain_text("0 held")


@pytest.fixture
def broken_gl(portal):
    """In X3 someone blanks the GL account of an invoice's first line: the next run fails it."""
    x3 = portal["x3"]
    invoice = x3.get("PINVOICE", BROKEN_INVOICE)
    invoice["PINVOICED"][0]["ACC"] = ""
    x3.upsert("PINVOICE", invoice)
    x3.touch("PINVOICE", BROKEN_INVOICE)


def test_a_failed_invoice_says_what_to_do(page, portal, broken_gl):
    login(page, portal)
    page.goto(f"{portal['url']}/admin/integrations/integration/{portal['integration'].pk}/change/")
    page.locator("#run-now").click()
    expect(messages(page)).to_contain_text("Run of x3-to-sn queued")
    record = SyncRecord.objects.get(stream="invoices", source_key=BROKEN_INVOICE)
    assert (record.status, record.error_class) == (RecordStatus.FAILED, ErrorClass.DATA)

    page.locator(".object-tools").get_by_role("link", name="Failed").click()
    row = page.locator("#result_list tbody tr").filter(has_text=BROKEN_INVOICE)
    expect(row.locator("td.field-next_step")).to_contain_text("Needs a data fix – will not retry")
    page.goto(f"{portal['url']}/admin/integrations/syncrecord/{record.pk}/change/")
    expect(page.locator("#content")).to_contain_text("Needs a data fix – will not retry: correct it in the source")
    expect(page.locator("#content")).to_contain_text("line 1000 has no GL account")
    assert_screenshot(page, "console-failure")


def test_one_sync_runs_on_its_own_from_the_integration_page(page, portal):
    integration = portal["integration"]
    before = SyncRun.objects.filter(integration=integration).count()
    login(page, portal)
    page.goto(f"{portal['url']}/admin/integrations/integration/{integration.pk}/change/")

    row = page.locator(".inline-group tr.form-row").filter(has_text=PURCHASE_ORDERS)
    expect(row.locator("td.field-what span")).to_have_attribute("title", "technical name: purchase_orders")
    row.get_by_role("button", name=f"Run {PURCHASE_ORDERS} now").click()

    expect(messages(page)).to_contain_text(f"Run of {PURCHASE_ORDERS} in x3-to-sn queued")
    runs = SyncRun.objects.filter(integration=integration)
    assert runs.count() == before + 1
    run = runs.order_by("-pk").first()
    assert (run.stream, run.trigger, run.triggered_by) == ("purchase_orders", "manual", "admin")
    latest = page.locator(".field-latest_runs tbody tr").filter(has_text=PURCHASE_ORDERS)
    expect(latest).to_contain_text("Manual")
    expect(latest.locator("td").nth(3)).to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$"))
    assert AuditEvent.objects.filter(action="integration.run_requested", detail__streams=["purchase_orders"]).exists()
    assert_screenshot(page, "console-stream-run")


def test_a_paused_integration_asks_before_a_run_and_resumes_from_its_banner(page, portal):
    integration = portal["integration"]
    set_enabled([integration], False)
    login(page, portal)
    page.goto(f"{portal['url']}/admin/integrations/integration/{integration.pk}/change/")
    expect(page.locator("#paused-banner")).to_contain_text("Paused – no scheduled runs")

    row = page.locator(".inline-group tr.form-row").filter(has_text=PURCHASE_ORDERS)
    row.get_by_role("button", name=f"Run {PURCHASE_ORDERS} now").click()
    expect(page.locator("#content-main")).to_contain_text(f"x3-to-sn is paused: run {PURCHASE_ORDERS} once anyway?")
    assert_screenshot(page, "console-paused-confirmation")
    page.locator("#run-anyway").click()
    expect(messages(page)).to_contain_text(f"Run of {PURCHASE_ORDERS} in x3-to-sn queued")
    expect(page.locator("#paused-banner")).to_be_visible()  # ran once, still paused

    page.locator("#resume").click()
    expect(messages(page)).to_contain_text("Resumed x3-to-sn: its scheduled runs start again.")
    expect(page.locator("#paused-banner")).to_have_count(0)
    integration.refresh_from_db()
    assert integration.enabled
