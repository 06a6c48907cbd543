"""Setup pages and the fit check API: an admin of the integration's tenant only; others get a 404 (or 403)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Membership, Role
from integrations.models import Integration

from .conftest import KIND, sign_up, x3_servicenow_form


@pytest.fixture
def world(db, sandbox):
    alice, bob = Client(), Client()
    sign_up(alice, "alice", "Acme")
    sign_up(bob, "bob", "Globex")
    alice.post(f"/setup/new/{KIND}/", x3_servicenow_form())
    integration = Integration.objects.get(tenant__slug="acme")
    viewer = get_user_model().objects.create_user("victor", "victor@example.com", "x", is_staff=True)
    Membership.objects.create(user=viewer, tenant=integration.tenant, role=Role.VIEWER)
    operator = get_user_model().objects.create_user("olga", "olga@example.com", "x", is_staff=True)
    Membership.objects.create(user=operator, tenant=integration.tenant, role=Role.OPERATOR)
    viewer_client, operator_client = Client(), Client()
    viewer_client.force_login(viewer)
    operator_client.force_login(operator)
    return {"alice": alice, "bob": bob, "viewer": viewer_client, "operator": operator_client,
            "integration": integration, "users": {"bob": get_user_model().objects.get(username="bob"),
                                                  "alice": get_user_model().objects.get(username="alice"),
                                                  "viewer": viewer, "operator": operator}}


PAGES = [("get", "/setup/{pk}/"), ("get", "/setup/{pk}/edit/"), ("get", "/setup/{pk}/fit/"),
         ("get", "/setup/{pk}/fit.csv"), ("get", "/setup/{pk}/preview/"), ("post", "/setup/{pk}/ping/source/"),
         ("post", "/setup/{pk}/fit/"), ("post", "/setup/{pk}/approve/"), ("post", "/setup/{pk}/preview/"),
         ("post", "/setup/{pk}/start/"), ("post", "/setup/{pk}/edit/")]


@pytest.mark.parametrize(("method", "path"), PAGES)
@pytest.mark.parametrize("who", ["bob", "viewer", "operator"])
def test_only_the_tenants_admins_reach_an_integrations_setup(world, who, method, path):
    response = getattr(world[who], method)(path.format(pk=world["integration"].pk))
    assert response.status_code == 404
    world["integration"].refresh_from_db()
    assert not world["integration"].enabled


def test_the_start_page_lists_only_your_own_integrations(world):
    assert "X3 to ServiceNow" in world["alice"].get("/setup/").content.decode()
    assert "X3 to ServiceNow" not in world["bob"].get("/setup/").content.decode()


def test_a_foreign_tenant_id_sets_up_nothing_in_that_tenant(world):
    world["bob"].post(f"/setup/new/{KIND}/?tenant={world['integration'].tenant_id}",
                      {**x3_servicenow_form(), "pair-name": "sneaky"})
    assert Integration.objects.get(name="sneaky").tenant.slug == "globex"


def test_anonymous_visitors_are_sent_to_sign_in(db):
    response = Client().get("/setup/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("path", ["/setup/", "/setup/{pk}/ping/source/", "/setup/{pk}/fit/", "/setup/{pk}/start/",
                                  "/setup/{pk}/approve/"])
def test_setup_forms_need_their_csrf_token(world, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["users"]["alice"])
    response = client.post(path.format(pk=world["integration"].pk), {"kind": KIND})
    assert response.status_code == 403


def test_the_api_runs_the_fit_check_for_an_operator_only_in_their_tenant(world):
    pk = world["integration"].pk
    api = APIClient()
    api.force_authenticate(world["users"]["bob"])
    assert api.post("/api/fit-check/", {"integration": pk}, format="json").status_code == 404
    api.force_authenticate(world["users"]["viewer"])
    assert api.post("/api/fit-check/", {"integration": pk}, format="json").status_code == 403
    api.force_authenticate(world["users"]["operator"])
    response = api.post("/api/fit-check/", {"integration": pk, "since": "2020-01-01", "max_pages": 5}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["verdict"]["status"] in ("ready", "ready_after_mappings")
    assert response.json()["integration"]["id"] == pk
    assert APIClient().post("/api/fit-check/", {"integration": pk}, format="json").status_code in (401, 403)


def test_a_signed_up_admin_sees_only_their_tenant_in_the_console(world):
    world["bob"].post(f"/setup/new/{KIND}/", {**x3_servicenow_form(), "pair-name": "Globex pair"})
    alice_list = world["alice"].get("/admin/integrations/integration/").content.decode()
    bob_list = world["bob"].get("/admin/integrations/integration/").content.decode()
    assert "X3 to ServiceNow" in alice_list and "Globex pair" not in alice_list
    assert "Globex pair" in bob_list and "X3 to ServiceNow" not in bob_list
    assert "Acme" not in world["bob"].get("/admin/accounts/tenant/").content.decode()


def test_an_operator_made_admin_can_start_without_the_sign_up_email_step(world):
    owner = get_user_model().objects.create_user("olivia", "olivia@example.com", "x", is_staff=True)
    Membership.objects.create(user=owner, tenant=world["integration"].tenant, role=Role.ADMIN)
    client = Client()
    client.force_login(owner)
    client.post(f"/setup/{world['integration'].pk}/start/")
    world["integration"].refresh_from_db()
    assert world["integration"].enabled
