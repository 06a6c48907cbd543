"""In Chromium: a job completed in ServiceTitan pushes a signed webhook over HTTP; the inbox shows it
verified and processed, leading to the job's record and the X3 journal entry it was posted as."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.server import serve
from integrations.sandbox.servicetitan import ServiceTitanSimulator
from integrations.sandbox.servicetitan_seed import WEBHOOK_KEY

from .conftest import PASSWORD, assert_screenshot, login, messages


@pytest.fixture
def field(transactional_db, live_server, django_user_model) -> Iterator[dict]:
    """The contractor: ServiceTitan and its X3 folder over HTTP, a first sync with mappings approved."""
    from integrations.demo import servicetitan_x3_document
    from integrations.engine.mappings import approve
    from integrations.engine.replay import replay_records
    from integrations.engine.runner import run_integration
    from integrations.models import Integration, Mapping, MappingStatus
    from integrations.tenants import load_document

    st = ServiceTitanSimulator().seed_demo()
    x3 = SageX3Simulator(folders=())
    x3.seed_field_service()
    with serve(st) as st_server, serve(x3) as x3_server:
        load_document(servicetitan_x3_document(st_server.url, x3_server.url))
        integration = Integration.objects.select_related("source", "target", "tenant").get(name="st-to-x3")
        run_integration(integration)
        replay_records(approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED))).released_ids)
        django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
        yield {"url": live_server.url, "st": st, "x3": x3, "integration": integration}


def test_a_delivered_webhook_shows_in_the_inbox_leading_to_its_x3_entry(page, field):
    st, x3 = field["st"], field["x3"]
    costs = st.record("jpm", "jobs", 1001)["customFields"]
    st.update("jpm", "jobs", 1007, jobStatus="Completed", customFields=costs, completedOn="2026-01-03T15:00:00Z")
    st.webhook_event("job.completed", {"id": 1007})
    attempts = st.deliver(f"{field['url']}/webhooks/servicetitan/acme-field/st/", WEBHOOK_KEY, delays=())
    assert [a.status for a in attempts] == [202]
    entry = next(e for e in x3.records("GACCENTRY", "FIELD") if e["REF"] == "ST-JOB-1007")

    login(page, field)
    page.goto(f"{field['url']}/admin/integrations/webhookevent/")
    row = page.locator("#result_list tbody tr", has_text="job.completed")
    expect(row).to_contain_text("job.completed")
    expect(row).to_contain_text("Processed")
    expect(row.locator("td.field-signature_ok img[alt=True]")).to_be_visible()  # the signature verdict
    led_to = row.locator("td.field-led_to a")
    expect(led_to).to_have_text(f"Job 1007 → {entry['NUM']}")
    assert_screenshot(page, "webhook-inbox")

    led_to.click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).to_contain_text(entry["NUM"])  # the X3 journal entry the job was posted as
    expect(page.locator("body")).to_contain_text("Job 1007")
    assert_screenshot(page, "webhook-record")

    # processed again from the inbox: the job is read again, unchanged, and nothing is posted twice
    page.goto(f"{field['url']}/admin/integrations/webhookevent/")
    page.locator("#result_list tbody tr", has_text="job.completed").locator("input.action-select").check()
    page.select_option("select[name=action]", "process_again")
    page.click("button[name=index]")
    page.wait_for_load_state("networkidle")
    expect(messages(page)).to_contain_text("Queued 1 event(s) to be processed again")
    assert [e["REF"] for e in x3.records("GACCENTRY", "FIELD") if e["REF"].startswith("ST-JOB-1007")] == ["ST-JOB-1007"]
