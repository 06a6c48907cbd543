"""Records through the API: filters, lineage, cursor pages, replay with a reason."""

from __future__ import annotations

import pytest

from integrations.models import AuditEvent, RecordStatus, SyncRecord, SyncRun, Trigger


def test_records_filter_by_integration_stream_status_and_business_key(world):
    client = world.client("viewer")
    held = client.get(f"/api/records/?integration={world.acme.pk}&stream=invoices&status=held&page_size=500")
    rows = held.json()["results"]
    assert len(rows) == 60 and {r["status"] for r in rows} == {"held"}
    assert all(r["missing"] for r in rows)
    some = rows[0]["business_key"]
    found = client.get(f"/api/records/?search={some[:-1]}&page_size=500").json()["results"]
    assert some in {r["business_key"] for r in found}
    assert all(r["business_key"].startswith(some[:-1]) for r in found)
    assert client.get("/api/records/?error_class=data").json()["results"] == []


@pytest.mark.parametrize(("query", "field"), [
    ("status=lost", "status"), ("error_class=bad", "error_class"), ("integration=first", "integration"),
])
def test_records_refuse_bad_filter_values_clearly(world, query, field):
    response = world.call("viewer", "get", f"/api/records/?{query}")
    assert response.status_code == 400 and field in response.json()


def test_a_record_shows_its_lineage_and_attempts(world):
    record = world.held_record(world.acme)
    body = world.call("viewer", "get", f"/api/records/{record.pk}/").json()
    assert body["source_snapshot"] and body["status"] == "held"
    assert body["attempt_log"][0]["outcome"] == "held"
    assert body["missing"] == record.missing_keys


def test_records_list_pages_with_a_cursor_in_few_queries_and_never_counts(world, django_assert_max_num_queries):
    client = world.client("superuser")
    with django_assert_max_num_queries(3) as captured:
        page = client.get("/api/records/?page_size=50").json()
    assert len(page["results"]) == 50 and page["next"] and "count" not in page
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    seen, url = set(), "/api/records/?page_size=50"
    while url:
        page = client.get(url).json()
        seen |= {r["id"] for r in page["results"]}
        url = page["next"]
    assert len(seen) == SyncRecord.objects.count()


def test_replay_queues_the_record_with_the_reason_on_the_audit_trail(world):
    record = world.held_record(world.acme)
    response = world.call("operator", "post", f"/api/records/{record.pk}/replay/", {"reason": "mapping fixed in X3"})
    assert response.status_code == 202
    assert response.json()["records"] == 1 and response.json()["task_id"]
    event = AuditEvent.objects.get(action="record.replayed", record_id=record.pk)
    assert event.actor_name == "operator" and event.detail["reason"] == "mapping fixed in X3"
    assert SyncRun.objects.filter(trigger=Trigger.REPLAY, triggered_by="operator").exists()


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_replay_without_a_reason_is_refused_and_queues_nothing(world, body):
    record = world.held_record(world.acme)
    runs = SyncRun.objects.count()
    response = world.call("operator", "post", f"/api/records/{record.pk}/replay/", body)
    assert response.status_code == 400 and "reason" in response.json()
    assert SyncRun.objects.count() == runs


def test_only_failed_or_held_records_can_be_replayed(world):
    synced = SyncRecord.objects.filter(integration=world.acme, status=RecordStatus.SYNCED).first()
    runs = SyncRun.objects.count()
    response = world.call("operator", "post", f"/api/records/{synced.pk}/replay/", {"reason": "again"})
    assert response.status_code == 400 and "synced" in response.json()["ids"]
    assert SyncRun.objects.count() == runs


def test_bulk_replay_queues_every_record_named(world):
    ids = list(SyncRecord.objects.filter(integration=world.acme, status=RecordStatus.HELD)
               .values_list("pk", flat=True)[:5])
    response = world.call("operator", "post", "/api/records/replay/", {"ids": ids, "reason": "retry after fix"})
    assert response.status_code == 202 and response.json()["records"] == 5
    assert set(AuditEvent.objects.filter(action="record.replayed").values_list("record_id", flat=True)) == set(ids)


@pytest.mark.parametrize("body", [
    {"ids": [], "reason": "x"}, {"ids": "1,2", "reason": "x"}, {"ids": [1]}, {"ids": [0], "reason": "x"},
    {"ids": list(range(1, 1002)), "reason": "x"},
])
def test_bulk_replay_refuses_bad_input_and_queues_nothing(world, body):
    runs = SyncRun.objects.count()
    response = world.call("operator", "post", "/api/records/replay/", body)
    assert response.status_code == 400
    assert SyncRun.objects.count() == runs
