"""Mapping review: side by side, held counts that match the engine, approval that releases."""

from __future__ import annotations

from integrations.engine.mappings import held_for
from integrations.models import (
    AuditEvent,
    Mapping,
    MappingKind,
    MappingReason,
    MappingStatus,
    RecordStatus,
    ReferenceRecord,
    Side,
    SyncRecord,
)


def test_the_held_count_on_each_row_is_what_approval_would_release(w):
    body = w.client("approver").get("/admin/integrations/mapping/?all=").content.decode()  # refreshes stale figures
    checked = 0
    for mapping in Mapping.objects.filter(integration__tenant__slug="acme"):
        assert mapping.held_count == held_for(mapping.integration_id, mapping.kind, mapping.source_code).count()
        checked += mapping.held_count > 0
    assert checked >= 3  # several mappings do hold records back
    gl = Mapping.objects.filter(integration=w.acme, kind=MappingKind.GL_ACCOUNT, status=MappingStatus.SUGGESTED)[0]
    assert f"<strong>{gl.source_code}</strong> {gl.source_label}" in body
    assert f"<strong>{gl.target_code}</strong> {gl.target_label}" in body
    assert gl.get_reason_display() in body


def test_bulk_approve_releases_the_held_records_and_says_how_many(w):
    suggested = list(Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED))
    expected = set()
    for mapping in suggested:
        expected |= set(held_for(mapping.integration_id, mapping.kind, mapping.source_code).values_list("pk", flat=True))
    response = w.client("approver").post("/admin/integrations/mapping/", {
        "action": "approve_selected", "_selected_action": [m.pk for m in suggested], "index": 0}, follow=True)
    body = response.content.decode()
    assert f"Approved {len(suggested)} mapping(s); {len(expected)} held record(s) released for replay." in body
    assert Mapping.objects.filter(pk__in=[m.pk for m in suggested], status=MappingStatus.APPROVED,
                                  decided_by=w.users["approver"]).count() == len(suggested)
    # released and replayed (django-q runs inline here): fully mapped invoices reached ServiceNow
    released = SyncRecord.objects.filter(pk__in=expected)
    assert released.filter(status=RecordStatus.SYNCED).exists()
    assert not released.filter(status=RecordStatus.HELD, missing="").exists()
    assert AuditEvent.objects.filter(action="mapping.approved", actor_name="approver").count() == len(suggested)


def test_bulk_reject(w):
    suggested = list(Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED)[:2])
    response = w.client("approver").post("/admin/integrations/mapping/", {
        "action": "reject_selected", "_selected_action": [m.pk for m in suggested], "index": 0}, follow=True)
    assert "Rejected 2 mapping(s)." in response.content.decode()
    assert Mapping.objects.filter(pk__in=[m.pk for m in suggested], status=MappingStatus.REJECTED).count() == 2


def _unmapped(w) -> Mapping:
    return Mapping.objects.get(integration=w.acme, status=MappingStatus.UNMAPPED)


def test_manual_mapping_approves_and_reports_the_release(w):
    mapping = _unmapped(w)
    held = held_for(w.acme.pk, mapping.kind, mapping.source_code).count()
    assert held > 0
    target = ReferenceRecord.objects.filter(integration=w.acme, side=Side.TARGET, kind=mapping.kind)[0]
    response = w.client("approver").post(f"/admin/integrations/mapping/{mapping.pk}/change/",
                                         {"map_to": target.code}, follow=True)
    assert f"Mapped and approved 1 mapping(s); {held} held record(s) released for replay." in response.content.decode()
    mapping.refresh_from_db()
    assert (mapping.status, mapping.reason, mapping.target_code) == (MappingStatus.APPROVED, MappingReason.MANUAL,
                                                                     target.code)


def test_manual_mapping_refuses_a_code_the_target_does_not_have(w):
    mapping = _unmapped(w)
    source_side = ReferenceRecord.objects.filter(integration=w.acme, side=Side.SOURCE, kind=mapping.kind)[0]
    other_kind = ReferenceRecord.objects.filter(integration=w.acme, side=Side.TARGET,
                                                kind=MappingKind.COST_CENTER)[0]
    for code in ("NOPE", other_kind.code if other_kind.code != source_side.code else "NOPE2"):
        response = w.client("approver").post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"map_to": code})
        assert response.status_code == 200 and "is not a known GL account in the target" in response.content.decode()
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.UNMAPPED


def test_the_approve_button_on_one_suggestion(w):
    mapping = Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED)[0]
    page = w.client("approver").get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
    assert 'name="_approve"' in page and "admin-autocomplete" in page
    w.client("approver").post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"map_to": "", "_approve": "1"})
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.APPROVED and mapping.reason != MappingReason.MANUAL


def test_a_plain_save_decides_nothing(w):
    mapping = Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED)[0]
    response = w.client("approver").post(f"/admin/integrations/mapping/{mapping.pk}/change/", {"map_to": ""},
                                         follow=True)
    assert "Nothing decided" in response.content.decode()
    assert "changed successfully" not in response.content.decode()
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.SUGGESTED


def test_viewers_and_operators_see_the_review_read_only(w):
    mapping = Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED)[0]
    for user in ("viewer", "operator"):
        page = w.client(user).get(f"/admin/integrations/mapping/{mapping.pk}/change/").content.decode()
        assert 'name="map_to"' not in page and 'name="_approve"' not in page
        assert mapping.source_code in page


def test_target_autocomplete_pages_through_thousands_of_rows_of_the_right_kind(w, django_assert_max_num_queries):
    mapping = _unmapped(w)
    ReferenceRecord.objects.bulk_create([
        ReferenceRecord(integration=w.acme, side=Side.TARGET, kind=mapping.kind, code=f"9{i:05d}",
                        label=f"Overflow account {i}") for i in range(5000)
    ] + [ReferenceRecord(integration=w.acme, side=Side.SOURCE, kind=mapping.kind, code=f"8{i:05d}",
                         label="Source side only") for i in range(50)])
    client = w.client("approver")
    url = f"/admin/integrations/mapping/{mapping.pk}/targets/"
    client.get(url)
    with django_assert_max_num_queries(6):
        first = client.get(url, {"term": "9"}).json()
    assert len(first["results"]) == 20 and first["pagination"]["more"] is True
    assert all(r["id"].startswith("9") for r in first["results"])
    last = client.get(url, {"term": "Overflow account 4999"}).json()
    assert [r["id"] for r in last["results"]] == ["904999"] and last["pagination"]["more"] is False
    assert client.get(url, {"term": "Source side only"}).json()["results"] == []
    offered = {r["id"] for page in (1, 2, 3) for r in client.get(url, {"term": "", "page": page}).json()["results"]}
    allowed = set(ReferenceRecord.objects.filter(integration=w.acme, side=Side.TARGET, kind=mapping.kind)
                  .values_list("code", flat=True))
    assert len(offered) == 60 and offered <= allowed


def test_the_held_count_treats_like_wildcards_in_codes_literally(w):
    # codes with _ or % must not match other codes through SQL LIKE
    SyncRecord.objects.create(integration=w.acme, stream="invoices", source_key="WILD1", status=RecordStatus.HELD,
                              missing=SyncRecord.pack_missing(["gl_account:6x100"]))
    underscore = Mapping.objects.create(integration=w.acme, kind=MappingKind.GL_ACCOUNT, source_code="6_100")
    percent = Mapping.objects.create(integration=w.acme, kind=MappingKind.GL_ACCOUNT, source_code="6%")
    w.client("viewer").get("/admin/integrations/mapping/?all=")  # the held queue changed: figures refreshed
    rows = dict(Mapping.objects.filter(pk__in=[underscore.pk, percent.pk]).values_list("pk", "held_count"))
    assert rows[underscore.pk] == 0 and rows[percent.pk] == 0


def test_approving_codes_without_a_suggestion_says_why_nothing_happened_and_what_to_do(w):
    unmapped = list(Mapping.objects.filter(integration=w.acme, status=MappingStatus.UNMAPPED))
    assert unmapped, "the demo world has codes without a suggestion"
    response = w.client("approver").post("/admin/integrations/mapping/", {
        "action": "approve_selected", "_selected_action": [m.pk for m in unmapped], "index": 0}, follow=True)
    body = response.content.decode()
    assert "Approved 0 mapping(s)" in body
    assert f"{len(unmapped)} selected code(s) have no suggested target, so there was nothing to approve" in body
    assert "choose its target under &quot;Map to&quot;" in body and unmapped[0].source_code in body
