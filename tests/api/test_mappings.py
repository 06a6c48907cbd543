"""Mappings through the API: approving releases the records held for them."""

from __future__ import annotations

import pytest

from integrations.models import AuditEvent, Mapping, MappingStatus, RecordStatus, SyncRecord


def held(world) -> int:
    return SyncRecord.objects.filter(integration=world.acme, status=RecordStatus.HELD).count()


def test_bulk_approve_releases_the_held_records_and_replays_them(world, sn_sim):
    ids = list(Mapping.objects.filter(integration=world.acme, status=MappingStatus.SUGGESTED)
               .values_list("pk", flat=True))
    unmapped = Mapping.objects.get(integration=world.acme, status=MappingStatus.UNMAPPED)
    response = world.call("approver", "post", "/api/mappings/approve/", {"ids": [*ids, unmapped.pk]})
    assert response.status_code == 200
    body = response.json()
    assert body["approved"] == len(ids) and body["released"] == 60 and body["task_id"]
    assert body["skipped"] == [unmapped.pk]
    # the replay ran (tasks run inline in tests): only the invoices on the unmapped account wait
    assert held(world) == 6
    assert len(sn_sim.rows("sn_apo_invoice")) == 54
    assert AuditEvent.objects.filter(action="mapping.approved", actor_name="approver").count() == len(ids)
    assert Mapping.objects.get(pk=ids[0]).decided_by.username == "approver"


def test_approving_with_a_target_code_maps_by_hand(world):
    unmapped = Mapping.objects.get(integration=world.acme, status=MappingStatus.UNMAPPED)
    target = Mapping.objects.filter(integration=world.acme, kind=unmapped.kind).exclude(target_code="").first()
    response = world.call("approver", "post", f"/api/mappings/{unmapped.pk}/approve/",
                          {"target_code": target.target_code})
    assert response.status_code == 200 and response.json()["approved"] == 1
    unmapped.refresh_from_db()
    assert (unmapped.status, unmapped.target_code, unmapped.reason) == ("approved", target.target_code, "manual")


@pytest.mark.parametrize(("body", "words"), [
    ({"target_code": "NOPE"}, "not a known"),
    ({}, "no suggested target"),
])
def test_approving_without_a_known_target_is_refused_and_changes_nothing(world, body, words):
    unmapped = Mapping.objects.get(integration=world.acme, status=MappingStatus.UNMAPPED)
    events = AuditEvent.objects.count()
    response = world.call("approver", "post", f"/api/mappings/{unmapped.pk}/approve/", body)
    assert response.status_code == 400 and words in response.json()["target_code"]
    unmapped.refresh_from_db()
    assert unmapped.status == MappingStatus.UNMAPPED and unmapped.target_code == ""
    assert AuditEvent.objects.count() == events


def test_rejecting_keeps_the_records_held(world):
    mapping = world.suggested_mapping(world.acme)
    before = held(world)
    response = world.call("approver", "post", f"/api/mappings/{mapping.pk}/reject/")
    assert response.status_code == 200 and response.json()["rejected"] == 1 and response.json()["task_id"] is None
    mapping.refresh_from_db()
    assert mapping.status == MappingStatus.REJECTED
    assert held(world) == before


def test_bulk_reject(world):
    ids = list(Mapping.objects.filter(integration=world.acme).values_list("pk", flat=True)[:3])
    response = world.call("approver", "post", "/api/mappings/reject/", {"ids": ids})
    assert response.json()["rejected"] == 3
    assert set(Mapping.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"rejected"}


def test_a_mapping_shows_how_many_records_wait_for_it(world):
    gl = Mapping.objects.get(integration=world.acme, status=MappingStatus.UNMAPPED)
    body = world.call("viewer", "get", f"/api/mappings/{gl.pk}/").json()
    assert body["held_records"] == 6


def test_mappings_filter_by_kind_and_status(world):
    client = world.client("viewer")
    rows = client.get(f"/api/mappings/?integration={world.acme.pk}&kind=cost_center&page_size=500").json()
    assert rows["count"] == 6 and {r["kind"] for r in rows["results"]} == {"cost_center"}
    rows = client.get("/api/mappings/?status=unmapped").json()["results"]
    assert [r["kind"] for r in rows] == ["gl_account"]
    assert client.get("/api/mappings/?kind=planet").status_code == 400


def test_mappings_list_has_no_n_plus_one(world, django_assert_max_num_queries):
    world.call("approver", "post", "/api/mappings/approve/", {"ids": list(
        Mapping.objects.filter(integration=world.acme).values_list("pk", flat=True))})
    client = world.client("superuser")
    with django_assert_max_num_queries(4):
        assert client.get("/api/mappings/?page_size=500").json()["count"] == 30
