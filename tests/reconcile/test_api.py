"""The reconciliation API: start one (operator), list and read them (any member), CSV; tenants apart."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from integrations.models import AuditEvent, ReconciliationRun
from tests.admin.conftest import World, build_world, module_world
from tests.reconcile.conftest import MONTH

URL = "/api/reconciliations/"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    with module_world(django_db_blocker, build_world) as built:
        yield built


@pytest.fixture
def w(world: World, db, settings, monkeypatch) -> World:
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)
    return world


def api(w: World, user: str | None) -> APIClient:
    client = APIClient()
    if user:
        client.force_authenticate(w.users[user])
    return client


def start(w: World, user: str = "operator", **body):
    return api(w, user).post(URL, {"integration": w.acme.pk, "period": MONTH, **body}, format="json")


def test_an_operator_starts_one_and_gets_its_verdict_and_where_to_read_it(w):
    response = start(w)
    assert response.status_code == 202
    data = response.json()
    run = ReconciliationRun.objects.get()
    assert response["Location"] == f"{URL}{run.pk}/"
    assert (data["id"], data["status"], data["verdict"]) == (run.pk, "differences", run.verdict)
    assert data["period"] == {"label": MONTH, "start": f"{MONTH}-01", "end": f"{MONTH}-28"}
    assert run.triggered_by == "operator"
    requested = AuditEvent.objects.get(action="reconciliation.requested")
    assert "through the API" in requested.message and requested.detail["reconciliation"] == run.pk


def test_a_date_range_works_too(w):
    response = start(w, period=None, start=f"{MONTH}-01", end=f"{MONTH}-10")
    assert response.status_code == 202 and response.json()["period"]["label"] == f"{MONTH}-01 – {MONTH}-10"


@pytest.mark.parametrize("body", [{"period": "2026-13"}, {"period": None}, {"period": None, "start": "2026-02-01"},
                                  {"start": "2026-02-01", "end": "2026-02-03"}, {"period": "x" * 5000}])
def test_a_bad_period_is_a_400_and_stores_nothing(w, body):
    response = start(w, **body)
    assert response.status_code == 400 and "period" in response.json()
    assert not ReconciliationRun.objects.exists()


def test_members_read_the_list_and_the_detail_with_every_difference(w):
    run_id = start(w).json()["id"]
    listing = api(w, "viewer").get(URL, {"integration": w.acme.pk}).json()
    assert [r["id"] for r in listing["results"]] == [run_id] and "lines" not in listing["results"][0]
    detail = api(w, "viewer").get(f"{URL}{run_id}/").json()
    assert len(detail["lines"]) == detail["differences"] > 0
    assert {line["reason"] for line in detail["lines"]} <= {"held", "failed", "missing"}
    assert api(w, "viewer").get(URL, {"status": "nope"}).status_code == 400


def test_csv_of_a_run(w):
    run_id = start(w).json()["id"]
    response = api(w, "viewer").get(f"{URL}{run_id}/csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["section"] for r in rows} == {"total", "difference"}
    assert api(w, "viewer").get(f"{URL}{run_id}/csv/", HTTP_ACCEPT="text/csv").status_code == 200
    assert AuditEvent.objects.filter(action="reconciliation.exported", actor_name="viewer").count() == 2


def test_only_an_operator_of_the_tenant_may_start_one(w):
    assert start(w, "viewer").status_code == 403
    assert start(w, "stranger").status_code == 403
    assert start(w, "outsider").status_code == 400  # Acme's integration does not exist for Globex's admin
    assert start(w, None).status_code in (401, 403)
    assert not ReconciliationRun.objects.exists()
    assert start(w, "outsider", integration=w.globex.pk).status_code == 202  # their own


def test_another_tenants_reconciliations_do_not_exist_for_you(w):
    run_id = start(w).json()["id"]
    outsider = api(w, "outsider")
    assert outsider.get(f"{URL}{run_id}/").status_code == 404
    assert outsider.get(f"{URL}{run_id}/csv/").status_code == 404
    assert outsider.get(URL).json()["results"] == []
    assert outsider.get(URL, {"integration": w.acme.pk}).json()["results"] == []
    assert api(w, None).get(URL).status_code in (401, 403)
