"""Roles people can set up: an admin invites a viewer by email; the viewer sets a password, signs in,
sees their organisation and role in the header, and the buttons they may not use disabled with the reason."""

from __future__ import annotations

import re

from django.core import mail
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import assert_screenshot, login

NEW_PASSWORD = "viewer-browser-pass-73"


def test_an_invited_viewer_sets_a_password_and_sees_disabled_buttons_with_reasons(chromium, page, portal):
    integration = portal["integration"]
    login(page, portal)
    page.goto(f"{portal['url']}/admin/accounts/membership/")
    page.locator("#invite").click()
    page.fill("#id_email", "dana@example.com")
    page.select_option("#id_tenant", label="Acme Manufacturing")
    page.select_option("#id_role", value="viewer")
    assert_screenshot(page, "roles-invite")
    page.locator("#send-invite").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Invited dana@example.com to Acme Manufacturing as Viewer")
    expect(page.locator("#result_list")).to_contain_text("dana@example.com")

    [message] = mail.outbox
    link = re.search(r"http://\S+/invite/\S+/", message.body).group(0)

    viewer = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    viewer.set_default_timeout(15000)
    viewer.goto(link)
    expect(viewer).to_have_url(re.compile(r"/invite/[^/]+/set-password/$"))  # the token left the address bar
    viewer.fill("#id_new_password1", NEW_PASSWORD)
    viewer.fill("#id_new_password2", NEW_PASSWORD)
    viewer.locator("#set-password-submit").click()
    expect(viewer).to_have_url(re.compile(r"/admin/login/$"))
    expect(viewer.locator("ul.messagelist")).to_contain_text("Password set. Sign in as dana@example.com")
    viewer.goto(link)  # the link is spent
    expect(viewer.locator("#invite-invalid")).to_be_visible()

    viewer.goto(f"{portal['url']}/admin/login/")
    viewer.fill("#id_username", "dana@example.com")
    viewer.fill("#id_password", NEW_PASSWORD)
    viewer.click("input[type=submit]")
    expect(viewer.locator("#console-seat")).to_have_text("Acme Manufacturing · Viewer")

    viewer.goto(f"{portal['url']}/admin/integrations/mapping/")
    expect(viewer.locator("#approve-above-disabled")).to_be_disabled()
    expect(viewer.locator("#approve-above-reason")).to_have_text("Approvers and above may approve mappings")

    viewer.goto(f"{portal['url']}/admin/integrations/connection/{integration.source_id}/change/")
    button = viewer.locator("#test-connection-disabled")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", "Operators and above may test connections")
    expect(viewer.locator("#test-connection-reason")).to_be_visible()
    expect(viewer.locator("#test-connection")).to_have_count(0)
    assert_screenshot(viewer, "roles-viewer")

    # Run now, of the integration and of each sync: the working buttons' labels, disabled, with the reason
    viewer.goto(f"{portal['url']}/admin/integrations/integration/{integration.pk}/change/")
    run_now = viewer.locator("#run-now-disabled")
    expect(run_now).to_be_disabled()
    expect(run_now).to_have_text("Run now")
    expect(run_now).to_have_attribute("title", "Operators and above may run integrations")
    expect(viewer.locator("#run-now-reason")).to_be_visible()
    expect(viewer.locator("#run-now")).to_have_count(0)
    one_sync = viewer.get_by_role("button", name="Run Purchase orders (X3 → ServiceNow) now")
    expect(one_sync).to_be_disabled()
    expect(one_sync).to_have_attribute("title", "Operators and above may run integrations")
    assert_accessible(viewer, "integration as a viewer")

    # the server refuses it all the same, and says which role it takes and where
    viewer.goto(f"{portal['url']}/admin/integrations/mapping/approve-above/")
    expect(viewer.locator("#denied")).to_have_text(
        "You need the approver role in Acme Manufacturing to approve mappings. Ask an admin of Acme Manufacturing.")
    viewer.context.close()
