"""A button a role may not use is shown disabled with the reason; the server still refuses it."""

from __future__ import annotations

import re

import pytest

from accounts.models import Role
from integrations.models import AlertSettings, Mapping, MappingStatus, RecordStatus, SyncRecord


def page(w, user: str, url: str) -> str:
    response = w.client(user).get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def urls(w) -> dict[str, str]:
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).first()
    mapping = Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED).exclude(target_code="").first()
    cfg, _ = AlertSettings.objects.get_or_create(tenant=w.acme.tenant)
    return {
        "run-now": f"/admin/integrations/integration/{w.acme.pk}/change/",
        "test-connection": f"/admin/integrations/connection/{w.acme.source_id}/change/",
        "send-test-alert": f"/admin/integrations/alertsettings/{cfg.pk}/change/",
        "replay": f"/admin/integrations/syncrecord/{record.pk}/change/",
        "approve-above": "/admin/integrations/mapping/",
        "approve-release": f"/admin/integrations/mapping/{mapping.pk}/change/",
        "reconcile-now": f"/admin/integrations/integration/{w.acme.pk}/reconciliation/",
    }


REASONS = {
    "run-now": "Operators and above may run integrations",
    "test-connection": "Operators and above may test connections",
    "send-test-alert": "Operators and above may send test alerts",
    "replay": "Operators and above may replay records",
    "approve-above": "Approvers and above may approve mappings",
    "approve-release": "Approvers and above may approve or reject mappings",
    "reconcile-now": "Operators and above may reconcile",
}


@pytest.mark.parametrize("button", REASONS)
def test_a_viewer_sees_the_button_disabled_with_the_reason(w, button):
    html = page(w, "viewer", urls(w)[button])
    assert f'id="{button}-disabled"' in html and "disabled" in html
    assert REASONS[button] in html
    assert f'id="{button}"' not in html


def test_a_viewer_sees_run_now_disabled_with_the_same_label_and_the_reason(w):
    # the page's Run now and each sync's share the label of the working buttons and one reason
    html = page(w, "viewer", urls(w)["run-now"])
    assert re.search(r'<button type="button" id="run-now-disabled" disabled aria-describedby="run-now-reason"\s+'
                     r'title="Operators and above may run integrations">Run now</button>', html)
    assert html.count('aria-describedby="run-now-reason"') > 1  # the per-sync buttons too


@pytest.mark.parametrize("button", ["run-now", "test-connection", "send-test-alert", "replay", "reconcile-now"])
def test_an_operator_gets_the_working_button_and_no_reason(w, button):
    html = page(w, "operator", urls(w)[button])
    assert f'id="{button}"' in html and f'id="{button}-disabled"' not in html
    assert REASONS[button] not in html


def test_an_approver_gets_the_mapping_decisions(w):
    html = page(w, "approver", urls(w)["approve-release"])
    assert 'id="approve-release"' in html and 'id="approve-release-disabled"' not in html


def test_a_record_with_nothing_to_replay_shows_no_replay_button_at_all(w):
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.SYNCED).first()
    for user in ("viewer", "operator"):
        html = page(w, user, f"/admin/integrations/syncrecord/{record.pk}/change/")
        assert 'id="replay"' not in html and 'id="replay-disabled"' not in html


def test_the_server_still_refuses_what_the_disabled_buttons_would_do(w):
    viewer = w.client("viewer")
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).first()
    refused = [
        viewer.post(f"/admin/integrations/integration/{w.acme.pk}/run/"),
        viewer.post(f"/admin/integrations/connection/{w.acme.source_id}/test/"),
        viewer.get(f"/admin/integrations/syncrecord/{record.pk}/replay/"),
        viewer.post(f"/admin/integrations/integration/{w.acme.pk}/reconcile/", {"period": "2026-01"}),
        viewer.get("/admin/integrations/mapping/approve-above/"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert Role.VIEWER == "viewer"
