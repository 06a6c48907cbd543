"""The console and the API docs work under the Content-Security-Policy (issue 13, defect 6).

The policy (portal/settings.py, "security") runs no inline script without the request's nonce.
Every page a member uses is opened in Chromium and any violation the browser reports, in the
console or as a ``securitypolicyviolation`` event, fails the test.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import login


def test_the_admin_and_the_api_docs_render_without_a_policy_violation(portal, page):
    violations: list[str] = []
    page.add_init_script("""document.addEventListener('securitypolicyviolation',
        e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));""")
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text or m.text.startswith("CSP violation") else None)
    login(page, portal)
    record = portal["integration"].records.filter(status="held").order_by("pk").first()
    for path in ("/admin/", "/admin/integrations/syncrecord/?status__exact=held",
                 f"/admin/integrations/syncrecord/{record.pk}/change/", "/admin/integrations/mapping/",
                 "/admin/integrations/auditevent/"):
        page.goto(f"{portal['url']}{path}")
        page.wait_for_load_state("networkidle")
        expect(page.locator("#content")).to_be_visible()
    # the replay confirmation's Cancel goes back through the admin's script, not a javascript: URL
    page.goto(f"{portal['url']}/admin/integrations/syncrecord/?status__exact=held")
    page.locator("input.action-select").first.check()
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")
    expect(page).to_have_title(re.compile(r"^Replay records"))
    page.click("a.cancel-link")
    expect(page).to_have_title(re.compile(r"^Select sync record"))  # back on the list
    assert violations == []
    page.goto(f"{portal['url']}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ml-connector API")
    page.locator(".opblock-summary").first.click()  # an operation opens: Swagger UI's scripts run
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert violations == []
