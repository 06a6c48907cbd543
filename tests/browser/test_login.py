"""Signing in to the console: the admin's login, a refused password, then the dashboard."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import assert_screenshot, login


def test_an_operator_logs_in_and_sees_the_console(page, portal):
    # the console is not public: /admin/ sends a stranger to the login page
    page.goto(f"{portal['url']}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.fill("#id_username", "admin")
    page.fill("#id_password", "not-the-password")
    page.click("input[type=submit]")
    expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")

    login(page, portal)
    expect(page).to_have_url(f"{portal['url']}/admin/")
    expect(page).not_to_have_title(re.compile("Log in"))
    expect(page.locator("#user-tools")).to_contain_text("admin")
    expect(page.locator("#console-dashboard").get_by_role("link", name="x3-to-sn")).to_be_visible()
    assert_screenshot(page, "after-login")
