"""Getting started in a real browser: sign up, set up Sage X3 → ServiceNow against the sandbox over HTTP,
ping both sides, read the fit check, approve the suggestions, preview, start, see the first records synced."""

from __future__ import annotations

import pytest
from django.core import mail
from playwright.sync_api import expect

from integrations.models import Integration, RecordStatus, SyncRecord
from tests.browser.conftest import assert_screenshot, messages
from tests.support import writes

PASSWORD = "a-long-Passphrase-42"


@pytest.fixture
def site(transactional_db, live_server, http_sandbox):
    return {"url": live_server.url, **http_sandbox}


def test_a_new_customer_goes_from_sign_up_to_the_first_synced_records(page, site):
    url = site["url"]
    # 1. sign up
    page.goto(f"{url}/signup/")
    page.fill("#id_organisation", "Acme Manufacturing")
    page.fill("#id_username", "alice")
    page.fill("#id_email", "alice@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    assert_screenshot(page, "setup-1-signup")
    page.get_by_role("button", name="Create my account").click()
    expect(messages(page)).to_contain_text("We sent a link to alice@example.com")

    # 2. choose the pair, then both sides' addresses and sign-in
    page.get_by_label("Sage X3 → ServiceNow").check()
    assert_screenshot(page, "setup-2-pair")
    page.get_by_role("button", name="Next: addresses and sign-in").click()
    expect(page.locator("#source")).to_contain_text("The X3 web server")
    page.fill("#id_source-url", site["x3_url"])
    page.fill("#id_source-company", "SEED")
    page.fill("#id_source-username", "admin")
    page.fill("#id_source-password", "x3-demo-pass")
    page.fill("#id_target-url", site["sn_url"])
    page.fill("#id_target-client_id", "ml-connector")
    page.fill("#id_target-client_secret", "sn-demo-secret")
    page.fill("#id_target-service_account", "integration.user")
    page.select_option("#id_target-table_profile", "seed")
    assert_screenshot(page, "setup-3-details")
    page.get_by_role("button", name="Save, then ping both sides").click()
    expect(messages(page)).to_contain_text("Now ping both sides")
    integration = Integration.objects.get()
    assert not integration.enabled

    # 3. ping both sides
    page.get_by_role("button", name="Ping Sage X3").click()
    expect(messages(page)).to_contain_text("Sage X3: every check passed.")
    page.get_by_role("button", name="Ping ServiceNow").click()
    expect(messages(page)).to_contain_text("ServiceNow: every check passed.")
    expect(page.locator("#target .ping-report")).to_contain_text("The integration user holds the role sn_apay.apo_user.")
    assert_screenshot(page, "setup-4-ping")

    # 4. the fit check: reads both, writes neither
    page.get_by_role("link", name="Run the fit check").click()
    page.get_by_role("button", name="Run the fit check").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("Ready after these")
    expect(page.locator("table.streams")).to_contain_text("Supplier invoices")
    assert writes(site["sn"].requests) == [], "the fit check wrote to ServiceNow"
    assert_screenshot(page, "setup-5-fit-check")
    page.emulate_media(media="print")
    expect(page.locator(".breadcrumbs")).to_be_hidden()
    assert_screenshot(page, "setup-5-fit-check-print")
    page.emulate_media(media="screen")

    # 5. approve the suggestions
    page.get_by_role("button", name="Approve the").click()
    expect(messages(page)).to_contain_text("suggested mapping(s)")
    assert_screenshot(page, "setup-6-approved")

    # 6. preview the first records exactly as they would be written
    page.get_by_role("link", name="Next: preview the first records").click()
    page.get_by_role("button", name="Show the first records").click()
    expect(page.locator(".preview-stream").first).to_contain_text("would be written as")
    expect(page.locator("pre.payload").first).to_contain_text("supplier_number")
    assert writes(site["sn"].requests) == [], "the preview wrote to ServiceNow"
    assert_screenshot(page, "setup-7-preview")

    # 7. confirm the email address (the link in the mail), then start
    link = next(word for word in mail.outbox[-1].body.split() if "/signup/verify/" in word)
    page.goto(link)
    expect(page.locator("#content")).to_contain_text("your email address is confirmed")
    page.goto(f"{url}/setup/{integration.pk}/preview/")
    page.get_by_role("button", name="Show the first records").click()
    page.get_by_role("button", name="Start").click()
    expect(messages(page)).to_contain_text("is on: its first sync has started")
    expect(page.locator("table.runs")).to_contain_text("Supplier invoices")
    expect(page.locator("#content")).to_contain_text("synced")
    assert_screenshot(page, "setup-8-started")

    integration.refresh_from_db()
    assert integration.enabled
    assert SyncRecord.objects.filter(integration=integration, status=RecordStatus.SYNCED, stream="invoices").exists()
    assert writes(site["sn"].requests), "the first sync wrote to ServiceNow"
