"""The review screen a controller works from: the codes holding the most money first, each with its
score and what approving it releases; approving one follows the released invoices to "N of N synced"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from integrations.models import Mapping, MappingStatus, SyncRun, Trigger
from tests.browser.conftest import PASSWORD, assert_screenshot, login, messages


@pytest.fixture
def review_portal(transactional_db, live_server, http_sandbox, django_user_model):
    """The demo tenant synced over HTTP; cost centers approved, GL accounts still to review."""
    from integrations.demo import x3_servicenow_document
    from integrations.engine.mappings import approve
    from integrations.engine.replay import replay_records
    from integrations.engine.runner import run_integration
    from integrations.models import Integration
    from integrations.tenants import load_document

    token = http_sandbox["x3"].issue_refresh_token("ml-connector")
    load_document(x3_servicenow_document(http_sandbox["x3_url"], http_sandbox["sn_url"], x3_refresh_token=token))
    integration = Integration.objects.select_related("source", "target", "tenant").get(name="x3-to-sn")
    run_integration(integration)
    decision = approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED, kind="cost_center")))
    replay_records(decision.released_ids)
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    return {"url": live_server.url, "integration": integration, **http_sandbox}


def _amount(text: str) -> float:
    found = re.findall(r"[A-Z]{3} ([\d,]+\.\d\d)", text)
    return sum(float(value.replace(",", "")) for value in found)


def test_the_review_puts_the_most_money_first_and_approval_follows_the_released_invoices(page, review_portal):
    login(page, review_portal)
    page.goto(f"{review_portal['url']}/admin/integrations/mapping/")
    page.locator("#needs-decision").click()
    expect(page).to_have_url(re.compile(r"queue=decide"))
    rows = page.locator("#result_list tbody tr")
    expect(rows.first).to_be_visible()
    waiting = [text for text in rows.locator("td.field-waiting").all_inner_texts()]
    assert len(waiting) >= 5 and all(text.startswith("held: ") for text in waiting)
    amounts = [_amount(text) for text in waiting]
    assert amounts == sorted(amounts, reverse=True), "most money held first"
    unmapped = rows.filter(has_text="61200")
    expect(unmapped.locator("td.field-waiting")).to_contain_text(re.compile(r"held: 6 invoices · EUR [\d,]+\.\d\d"))
    expect(unmapped).to_contain_text("no match: map by hand")
    expect(rows.filter(has_text="60200").locator("td.field-why")).to_contain_text("100% · same code on both sides")
    page.set_viewport_size({"width": 1700, "height": 1000})
    page.locator("#toggle-nav-sidebar").click()  # room for every column in the screenshot
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    assert_screenshot(page, "mapping-review-impact")

    # bulk approval shows what each choice releases before anything is approved
    page.locator("#approve-above").click()
    expect(page.locator("#approve-summary")).to_contain_text(re.compile(r"releases \d+ held records"))
    expect(page.locator("#approve-list tbody tr").first).to_contain_text("invoice")
    assert_screenshot(page, "mapping-approve-above")
    assert Mapping.objects.filter(kind="gl_account", status=MappingStatus.APPROVED).count() == 0

    # one code from its own page: the button says what it releases, then the page follows them
    page.goto(f"{review_portal['url']}/admin/integrations/mapping/?queue=decide")
    page.locator("#result_list tbody tr").filter(has_text="60200").get_by_role("link", name=re.compile("60200")).click()
    button = page.locator("#approve-release")
    expect(button).to_have_value(re.compile(r"^Approve 60200 → 60200 and release \d+ invoices$"))
    count = int(re.search(r"release (\d+)", button.get_attribute("value")).group(1))
    expect(page.locator("#held-list tbody tr")).to_have_count(min(count, 20))
    button.click()
    expect(messages(page)).to_contain_text(f"Approved 1 mapping(s); {count} held record(s) released for replay.")
    progress = page.locator("#release-progress")
    expect(progress).to_contain_text(re.compile(rf"\d+ of {count} synced"))
    run = SyncRun.objects.filter(trigger=Trigger.MAPPING).latest("pk")
    progress.get_by_role("link", name=f"#{run.pk}").click()
    expect(page.locator("h1")).to_contain_text("run")
