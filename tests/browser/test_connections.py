""""Test connection" on the ServiceNow connection: a readable report, and a missing role named."""

from __future__ import annotations

from playwright.sync_api import expect

from integrations.models import AuditEvent, Connection
from tests.browser.conftest import assert_screenshot, login, messages

SEED_TABLES = ["cmn_cost_center", "itfm_gl_accounts", "proc_po", "proc_po_item", "proc_vendor",
               "sn_apo_invoice", "sn_apo_invoice_line"]


def test_a_connection_test_reports_every_check_then_names_the_role_the_service_account_lost(page, portal):
    login(page, portal)
    page.goto(f"{portal['url']}/admin/integrations/connection/")
    page.locator("#result_list").get_by_role("link", name="sn", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Change connection")
    expect(page.locator(".field-test_report")).to_contain_text("Not tested yet.")

    page.locator("#test-connection").click()
    expect(messages(page)).to_contain_text("All checks passed for sn.")
    report = page.locator(".field-test_report .console-report")
    expect(report.locator(".console-badge")).to_have_text("all checks passed")
    checks = report.locator("tbody tr")

    def check(name: str):
        return checks.filter(has=page.get_by_role("cell", name=name, exact=True))

    # credentials, each table and its columns, the user the connection acts as, each role
    expect(checks).to_have_count(1 + 2 * len(SEED_TABLES) + 1 + 2)
    for row in checks.all():
        expect(row.locator("td").first).to_have_text("✔")
    expect(check("credentials")).to_contain_text("Signed in to ServiceNow")
    for table in SEED_TABLES:
        expect(check(f"table:{table}")).to_contain_text(f"Table {table} (")
    expect(check("role:procurement_user")).to_contain_text("integration.user holds procurement_user")
    expect(page.locator(".field-status")).to_contain_text("ok")
    assert_screenshot(page, "connection-test")

    # someone in ServiceNow takes a role away from the service account: the next test says which
    portal["sn"].revoke_role("integration.user", "procurement_user")
    page.locator("#test-connection").click()
    expect(messages(page)).to_contain_text("Test of sn failed: integration.user lacks the role procurement_user")
    expect(report.locator(".console-badge")).to_have_text("1 check(s) failed")
    failing = check("role:procurement_user")
    expect(failing.locator("td").first).to_have_text("✘")
    expect(failing).to_contain_text("integration.user lacks the role procurement_user")
    expect(check("role:sn_apay.apo_user").locator("td").first).to_have_text("✔")
    expect(page.locator(".field-status")).to_contain_text("last test failed")

    connection = Connection.objects.get(name="sn")
    assert connection.last_test_ok is False
    assert connection.last_test_report["failed"] == ["integration.user lacks the role procurement_user"]
    tested = AuditEvent.objects.filter(action="connection.tested", connection_id=connection.pk).order_by("pk")
    assert [(e.actor_name, e.detail["ok"]) for e in tested] == [("admin", True), ("admin", False)]
