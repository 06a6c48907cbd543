"""axe-core on the console's main pages: no serious or critical WCAG A/AA violation (see a11y.py)."""

from __future__ import annotations

import pytest

from integrations.engine.operations import set_enabled
from integrations.models import RecordStatus, SyncRecord
from tests.browser.a11y import assert_accessible
from tests.browser.conftest import login


def _held_record(portal) -> str:
    return f"/admin/integrations/syncrecord/{SyncRecord.objects.filter(status=RecordStatus.HELD).first().pk}/change/"


PAGES = {
    "dashboard": lambda portal: "/admin/",
    "integration": lambda portal: f"/admin/integrations/integration/{portal['integration'].pk}/change/",
    "integrations": lambda portal: "/admin/integrations/integration/",
    "records": lambda portal: "/admin/integrations/syncrecord/",
    "held records": lambda portal: "/admin/integrations/heldrecord/",
    "failed records": lambda portal: "/admin/integrations/failedrecord/",
    "a record": _held_record,
    "mappings": lambda portal: "/admin/integrations/mapping/",
    "reconciliation": lambda portal: f"/admin/integrations/integration/{portal['integration'].pk}/reconciliation/",
    "webhook inbox": lambda portal: "/admin/integrations/webhookevent/",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_has_no_serious_accessibility_violation(page, portal, name):
    login(page, portal)
    page.goto(portal["url"] + PAGES[name](portal))
    assert_accessible(page, name)


def test_the_paused_page_and_its_run_question_have_no_serious_accessibility_violation(page, portal):
    integration = portal["integration"]
    set_enabled([integration], False)
    login(page, portal)
    page.goto(f"{portal['url']}/admin/integrations/integration/{integration.pk}/change/")
    page.locator("#run-now").click()
    page.locator("#run-anyway").wait_for()
    assert_accessible(page, "run while paused")
