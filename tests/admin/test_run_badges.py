"""A run that completed with failed records reads "Completed with N errors" in amber, never a green success."""

from __future__ import annotations

import pytest

from integrations.admin.display import BADGE_COLOURS, run_badge
from integrations.models import RunStatus, SyncRun

pytestmark = pytest.mark.django_db


def test_a_run_with_failed_records_is_amber_with_its_error_count(integration):
    with_errors = SyncRun.objects.create(integration=integration, stream="invoices", status=RunStatus.SUCCEEDED,
                                         failed=2)
    clean = SyncRun.objects.create(integration=integration, stream="invoices", status=RunStatus.SUCCEEDED)
    amber = str(run_badge(with_errors))
    assert "Completed with 2 errors" in amber and BADGE_COLOURS["warning"] in amber
    assert BADGE_COLOURS["succeeded"] not in amber
    assert "Succeeded" in str(run_badge(clean)) and BADGE_COLOURS["succeeded"] in str(run_badge(clean))


def test_the_runs_list_shows_it(admin_client, integration):
    SyncRun.objects.create(integration=integration, stream="invoices", status=RunStatus.SUCCEEDED, failed=1)
    page = admin_client.get("/admin/integrations/syncrun/").content.decode()
    assert "Completed with 1 error<" in page
