"""The dashboard on /admin/: each integration's health, its queues and a chart of the last days."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import assert_screenshot, login


def test_the_dashboard_shows_the_integration_its_health_its_held_invoices_and_a_chart(page, portal):
    login(page, portal)

    dashboard = page.locator("#console-dashboard")
    expect(dashboard).to_be_visible()
    row = dashboard.locator("tbody tr").filter(has_text="x3-to-sn")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Acme Manufacturing")
    # every run succeeded: healthy, nothing failed; the six invoices on GL 61200 wait for a mapping
    expect(row).to_have_class("health-ok")
    expect(row.locator(".console-badge")).to_have_text("OK")
    cells = row.locator("td")
    expect(cells.nth(4)).to_have_text("0")
    expect(cells.nth(5)).to_have_text("6")
    expect(dashboard.locator("p.totals")).to_contain_text("6 held")
    # the chart: one bar per day; today's counts what the sync wrote (101 reference rows,
    # suppliers and POs by the first run, then the 54 invoices the approved mappings released)
    chart = row.locator("svg.console-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("g")).to_have_count(30)
    expect(chart).to_have_attribute("aria-label", "155 synced and 0 failed over 30 days")
    expect(chart.locator("g").last.locator("title")).to_have_text(re.compile(r": 155 synced, 0 failed$"))
    expect(chart.locator('rect[fill="#2e7d32"]')).to_have_count(1)
    assert chart.bounding_box()["width"] > 100

    assert_screenshot(page, "dashboard")

    # the held count leads to the Held queue of this integration
    row.locator("td").nth(5).get_by_role("link").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(6)
    expect(page.locator("#result_list")).to_contain_text("gl_account:61200")
