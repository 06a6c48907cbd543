"""A code that never needs a mapping is ignored with a reason: audited, and its invoices say so."""

from __future__ import annotations

from integrations.engine.mappings import held_for, refresh_suggestions
from integrations.models import AuditEvent, Mapping, MappingStatus, RecordStatus


def _unmapped(w) -> Mapping:
    return Mapping.objects.get(integration=w.acme, source_code="61200")


def test_ignoring_a_code_asks_why_then_records_it_in_the_audit_trail(w):
    mapping = _unmapped(w)
    client = w.client("approver")
    form = {"action": "ignore_selected", "_selected_action": [mapping.pk], "index": 0}
    asked = client.post("/admin/integrations/mapping/", form).content.decode()
    assert "Why does this code never need a mapping?" in asked and "61200" in asked
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.UNMAPPED, "nothing changes before a reason is given"
    done = client.post("/admin/integrations/mapping/", {**form, "confirm": "yes", "reason": "control account, posted by X3"},
                       follow=True).content.decode()
    assert "Marked 1 code(s) as never needing a mapping" in done
    mapping.refresh_from_db()
    assert (mapping.status, mapping.ignore_reason, mapping.decided_by.username) == (
        MappingStatus.IGNORED, "control account, posted by X3", "approver")
    event = AuditEvent.objects.get(action="mapping.ignored")
    assert event.detail["reason"] == "control account, posted by X3" and event.actor_name == "approver"
    # its invoices are still held, and the code's page says why
    held = held_for(w.acme.pk, mapping.kind, mapping.source_code)
    assert held.count() == 6 and all(r.status == RecordStatus.HELD for r in held)
    page = client.get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert "Marked as never needing a mapping: <strong>control account, posted by X3</strong>" in page
    assert "6 invoices still wait for it and stay held" in page
    listing = client.get("/admin/integrations/mapping/?queue=ignored").content.decode()
    assert "code ignored: they stay held" in listing
    assert "61200" not in client.get("/admin/integrations/mapping/?queue=decide").content.decode()


def test_a_new_look_at_suggestions_leaves_an_ignored_code_alone(w):
    mapping = _unmapped(w)
    w.client("approver").post(f"/admin/integrations/mapping/{mapping.pk}/change/",
                              {"_ignore": "1", "ignore_reason": "clearing account", "map_to": ""})
    refresh_suggestions(w.acme, "gl_account")
    mapping.refresh_from_db()
    assert (mapping.status, mapping.ignore_reason) == (MappingStatus.IGNORED, "clearing account")


def test_ignoring_without_a_reason_or_an_approved_code_does_nothing_and_says_why(w):
    mapping = _unmapped(w)
    client = w.client("approver")
    body = client.post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"_ignore": "1", "ignore_reason": " ",
                                                                           "map_to": ""}, follow=True).content.decode()
    assert "Not ignored: Say why this code never needs a mapping" in body
    approved = Mapping.objects.filter(integration=w.acme, status=MappingStatus.APPROVED).first()
    body = client.post("/admin/integrations/mapping/", {
        "action": "ignore_selected", "_selected_action": [approved.pk], "index": 0, "confirm": "yes",
        "reason": "not needed"}, follow=True).content.decode()
    assert "Marked 0 code(s)" in body and "are approved (mapped), so they were not ignored" in body
    mapping.refresh_from_db()
    approved.refresh_from_db()
    assert mapping.status == MappingStatus.UNMAPPED and approved.status == MappingStatus.APPROVED
    assert not AuditEvent.objects.filter(action="mapping.ignored").exists()


def test_a_viewer_may_not_ignore_and_an_outsider_cannot_reach_the_code(w):
    mapping = _unmapped(w)
    form = {"action": "ignore_selected", "_selected_action": [mapping.pk], "index": 0, "confirm": "yes",
            "reason": "not needed"}
    w.client("viewer").post("/admin/integrations/mapping/", form)
    w.client("outsider").post("/admin/integrations/mapping/", form)
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.UNMAPPED


def test_mapping_an_ignored_code_later_undoes_it(w):
    mapping = _unmapped(w)
    client = w.client("approver")
    client.post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"_ignore": "1", "ignore_reason": "suspense",
                                                                    "map_to": ""})
    client.post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"map_to": "69900"})
    mapping.refresh_from_db()
    assert (mapping.status, mapping.target_code, mapping.ignore_reason) == (MappingStatus.APPROVED, "69900", "")
