"""The review through the API: the needs-decision queue by money held, and ignoring a code."""

from __future__ import annotations

from rest_framework.test import APIClient

from integrations.models import AuditEvent, Mapping, MappingStatus


def _api(w, user: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(w.users[user])
    return client


def test_the_queue_of_codes_holding_invoices_comes_most_money_first(w):
    rows = _api(w, "viewer").get("/api/mappings/", {"status": "unmapped", "held": 1, "order": "impact"}).json()
    assert [(r["source_code"], r["held_count"]) for r in rows["results"]] == [("61200", 6)]
    assert set(rows["results"][0]["held_money"]) == {"EUR", "USD"}
    rows = _api(w, "viewer").get("/api/mappings/", {"held": 1, "order": "impact"}).json()["results"]
    amounts = [sum(float(v) for v in r["held_money"].values()) for r in rows]
    assert amounts == sorted(amounts, reverse=True)
    assert all(r["integration"] == w.acme.pk for r in rows), "another tenant's codes never show"


def test_ignoring_through_the_api_needs_a_reason_and_the_approver_role(w):
    mapping = Mapping.objects.get(integration=w.acme, source_code="61200")
    url = f"/api/mappings/{mapping.pk}/ignore/"
    assert _api(w, "viewer").post(url, {"reason": "control account"}, format="json").status_code == 403
    assert _api(w, "outsider").post(url, {"reason": "control account"}, format="json").status_code == 404
    assert _api(w, "approver").post(url, {"reason": ""}, format="json").status_code == 400
    assert _api(w, "approver").post(url, {"reason": "control account"}, format="json").status_code == 200
    mapping.refresh_from_db()
    assert (mapping.status, mapping.ignore_reason) == (MappingStatus.IGNORED, "control account")
    assert AuditEvent.objects.filter(action="mapping.ignored", actor_name="approver").count() == 1
    detail = _api(w, "viewer").get(f"/api/mappings/{mapping.pk}/").json()
    assert (detail["status"], detail["ignore_reason"], detail["held_records"]) == ("ignored", "control account", 6)
    approved = Mapping.objects.filter(integration=w.acme, status=MappingStatus.APPROVED).first()
    refused = _api(w, "approver").post(f"/api/mappings/{approved.pk}/ignore/", {"reason": "not needed"}, format="json")
    assert refused.status_code == 400 and "reject it first" in refused.json()["status"]
