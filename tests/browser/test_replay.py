"""A failed record, fixed at the source, replayed from the Failed queue with a reason on record."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from integrations.models import AuditEvent, ErrorClass, RecordStatus, SyncAttempt, SyncRecord
from tests.browser.conftest import assert_screenshot, login, messages
from tests.support import skey

INVOICE = "PI00009"
REASON = "GL account restored on line 1000 in X3 (ticket AP-1432)"


@pytest.fixture
def broken_gl(portal):
    """In X3 someone blanks the GL account of PI00009's first line (the invoice is already in
    ServiceNow); returns a function that puts it back."""
    x3 = portal["x3"]
    invoice = x3.get("PINVOICE", INVOICE)
    original = invoice["PINVOICED"][0]["ACC"]
    invoice["PINVOICED"][0]["ACC"] = ""
    x3.upsert("PINVOICE", invoice)
    x3.touch("PINVOICE", INVOICE)

    def fix() -> None:
        fixed = x3.get("PINVOICE", INVOICE)
        fixed["PINVOICED"][0]["ACC"] = original
        x3.upsert("PINVOICE", fixed)
        x3.touch("PINVOICE", INVOICE)

    return fix


def test_an_invoice_that_failed_is_replayed_from_the_failed_queue_with_a_reason(page, portal, broken_gl):
    base = portal["url"]
    integration = portal["integration"]
    login(page, portal)

    # the operator runs the integration now: the edited invoice fails as a data error
    page.locator("#console-dashboard").get_by_role("link", name="x3-to-sn").click()
    page.locator("#run-now").click()
    expect(messages(page)).to_contain_text("Run of x3-to-sn queued")
    record = SyncRecord.objects.get(stream="invoices", source_key=INVOICE)
    assert (record.status, record.error_class) == (RecordStatus.FAILED, ErrorClass.DATA)

    # the Failed queue names it and why
    page.locator(".object-tools").get_by_role("link", name="Failed").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(INVOICE)
    expect(rows.first.locator("td.field-error_class")).to_have_text("Data")
    expect(rows.first.locator("td.field-error")).to_contain_text("line 1000 has no GL account")

    # fixed in X3; then replay it from the queue, through the confirmation page
    broken_gl()
    rows.first.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("replay_selected")
    page.locator("button[name=index]").click()
    expect(page.locator("h1")).to_have_text("Replay records")
    expect(page.locator("#content-main")).to_contain_text("Replay 1 failed or held record")
    expect(page.locator("#content-main table")).to_contain_text(INVOICE)
    page.locator("#id_reason").fill(REASON)
    page.get_by_role("button", name="Replay").click()
    expect(messages(page)).to_contain_text("Queued 1 record(s) for replay.")
    expect(page.locator("#result_list tbody tr")).to_have_count(0)

    # synced again, and the reason is on record
    record.refresh_from_db()
    assert (record.status, record.error_class, record.error_message) == (RecordStatus.SYNCED, "", "")
    # held by the first run (no mapping approved yet), synced by the release, failed, replayed
    assert list(SyncAttempt.objects.filter(record=record).order_by("number").values_list("outcome", flat=True)) == [
        RecordStatus.HELD, RecordStatus.SYNCED, RecordStatus.FAILED, RecordStatus.SYNCED]
    event = AuditEvent.objects.filter(action="record.replayed", record=record).latest("pk")
    assert (event.actor_name, event.detail["reason"], event.detail["previous_status"]) == (
        "admin", REASON, RecordStatus.FAILED)
    assert REASON in event.message
    assert AuditEvent.objects.filter(action="records.replay_requested", detail__reason=REASON,
                                     integration=integration).exists()
    # found in ServiceNow and updated there, never posted twice
    in_sn = [row for row in portal["sn"].rows("sn_apo_invoice") if skey(row) == INVOICE]
    assert [row["sys_id"] for row in in_sn] == [record.target_id]

    # the lineage page tells the story: synced, failed on the blank GL account, replayed
    page.goto(f"{base}/admin/integrations/syncrecord/?q={INVOICE}")
    page.locator("#result_list").get_by_role("link", name=INVOICE).click()
    expect(page.locator("h1")).to_contain_text("History of")
    expect(page.locator("#content-main table").first).to_contain_text("Synced")
    attempts = page.locator("#attempts h3.attempt")
    expect(attempts).to_have_count(4)
    expect(attempts.nth(2)).to_contain_text("Failed")
    expect(page.locator("#attempts")).to_contain_text("line 1000 has no GL account")
    expect(attempts.nth(3)).to_contain_text("Synced")
    expect(attempts.nth(3)).to_contain_text("Replay")
    expect(page.locator("#replay")).to_have_count(0)  # nothing left to replay
    trail = page.locator(".module", has=page.get_by_role("heading", name="Audit trail of this record"))
    expect(trail.locator("tr", has_text="record.replayed").first).to_contain_text(REASON)
    assert_screenshot(page, "lineage")

    # and the audit trail page shows it to anyone reviewing the month
    page.goto(f"{base}/admin/integrations/auditevent/?action=record")
    replayed = page.locator("#result_list tbody tr", has_text=REASON)
    expect(replayed).to_have_count(2)  # the request for the selection, then the record's replay
    expect(replayed.filter(has_text="record.replayed")).to_contain_text("admin")
    expect(replayed.filter(has_text="records.replay_requested")).to_contain_text("admin")
