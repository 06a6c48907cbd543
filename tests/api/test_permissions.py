"""Every endpoint, every kind of user: the owner, teammates of each role, the outsider.

Acme objects: members see them (each action needs its role, else 403); the outsider, admin of
Globex, gets 404 as if they did not exist. Globex objects: the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integrations.models import AuditEvent, SyncRun
from tests.api.conftest import USERS, World

RANK = {"viewer": 0, "operator": 1, "approver": 2, "admin": 3}
ROLE_OF = {"superuser": "admin", "owner": "admin", "operator": "operator", "approver": "approver",
           "viewer": "viewer"}


def matrix(min_role: str, ok: int = 200, outsider: int = 404) -> dict[str, int]:
    """What each user should get on an Acme object for an action needing ``min_role``."""
    expected = {name: ok if RANK[role] >= RANK[min_role] else 403 for name, role in ROLE_OF.items()}
    return {**expected, "outsider": outsider}


def all_results(world: World, user: str, path: str) -> list[dict[str, Any]]:
    client, url, rows = world.client(user), f"{path}?page_size=500", []
    while url:
        page = client.get(url).json()
        rows.extend(page["results"])
        url = page["next"]
    return rows


# --- reads -----------------------------------------------------------------------------------
def objects(world: World, integration) -> dict[str, int]:
    """One object of each kind in the tenant of ``integration``."""
    return {
        "connections": integration.source_id,
        "integrations": integration.pk,
        "runs": SyncRun.objects.filter(integration=integration).latest("started_at").pk,
        "records": world.held_record(integration).pk,
        "mappings": world.suggested_mapping(integration).pk,
        "audit": AuditEvent.objects.filter(tenant_id=integration.tenant_id).first().pk,
    }


KINDS = ("connections", "integrations", "runs", "records", "mappings", "audit")


@pytest.mark.parametrize("kind", KINDS)
def test_anonymous_users_are_refused_with_401(world, kind):
    assert world.call(None, "get", f"/api/{kind}/").status_code == 401
    assert world.call(None, "get", f"/api/{kind}/{objects(world, world.acme)[kind]}/").status_code == 401


@pytest.mark.parametrize("kind", KINDS)
def test_each_list_shows_a_user_only_the_tenants_they_belong_to(world, kind):
    tenant_of_integration = {world.acme.pk: "acme", world.globex.pk: "globex"}
    seen = {}
    for user in USERS:
        rows = all_results(world, user, f"/api/{kind}/")
        seen[user] = {row["tenant"] if "tenant" in row else tenant_of_integration[row["integration"]]
                      for row in rows}
    assert seen == {"superuser": {"acme", "globex"}, "owner": {"acme"}, "operator": {"acme"},
                    "approver": {"acme"}, "viewer": {"acme"}, "outsider": {"globex"}}


@pytest.mark.parametrize("kind", KINDS)
def test_an_acme_object_is_readable_by_its_members_and_404_for_the_outsider(world, kind):
    pk = objects(world, world.acme)[kind]
    assert world.statuses("get", f"/api/{kind}/{pk}/") == matrix("viewer")


@pytest.mark.parametrize("kind", KINDS)
def test_a_globex_object_is_404_for_every_acme_member(world, kind):
    pk = objects(world, world.globex)[kind]
    assert world.statuses("get", f"/api/{kind}/{pk}/") == {
        "superuser": 200, "owner": 404, "operator": 404, "approver": 404, "viewer": 404, "outsider": 200}


def test_a_user_with_no_tenant_sees_empty_lists(world, django_user_model):
    loner = django_user_model.objects.create_user("loner")
    world.user_ids["loner"] = loner.pk
    for kind in KINDS:
        response = world.call("loner", "get", f"/api/{kind}/")
        assert response.status_code == 200 and response.json()["results"] == [], kind


# --- writes ----------------------------------------------------------------------------------
def _new_connection(name: str) -> dict[str, Any]:
    return {"tenant": "acme", "name": f"sn-{name}", "system": "servicenow", "url": "https://acme2.service-now.com",
            "auth_method": "oauth2_client_credentials", "settings": {"client_id": "portal"},
            "secrets": {"client_secret": "brand-new-secret"}}


def _ids(kind: str) -> Callable[[World, Any], dict[str, Any]]:
    def body(world: World, integration) -> dict[str, Any]:
        pk = objects(world, integration)[kind]
        return {"ids": [pk], "reason": "permission test"} if kind == "records" else {"ids": [pk]}
    return body


# (name, method, path under /api/ for an object pk, body, role needed, success status)
WRITES: list[tuple[str, str, str, Any, str, int]] = [
    ("connection update", "patch", "connections/{pk}/", {"port": 8124}, "admin", 200),
    ("connection test", "post", "connections/{pk}/test/", None, "operator", 200),
    ("integration update", "patch", "integrations/{pk}/", {"settings": {"page_size": 40}}, "admin", 200),
    ("integration run", "post", "integrations/{pk}/run/", {"streams": ["x3_gl_accounts"]}, "operator", 202),
    ("integration pause", "post", "integrations/{pk}/pause/", None, "operator", 200),
    ("integration resume", "post", "integrations/{pk}/resume/", None, "operator", 200),
    ("record replay", "post", "records/{pk}/replay/", {"reason": "permission test"}, "operator", 202),
    ("mapping approve", "post", "mappings/{pk}/approve/", {}, "approver", 200),
    ("mapping reject", "post", "mappings/{pk}/reject/", None, "approver", 200),
]


@pytest.mark.parametrize(("label", "method", "path", "body", "role", "ok"), WRITES, ids=[w[0] for w in WRITES])
def test_each_action_on_an_acme_object_needs_its_role_and_is_404_for_the_outsider(
        world, label, method, path, body, role, ok):
    kind = path.split("/")[0]
    url = "/api/" + path.format(pk=objects(world, world.acme)[kind])
    assert world.statuses(method, url, body) == matrix(role, ok)


@pytest.mark.parametrize(("label", "method", "path", "body", "role", "ok"), WRITES, ids=[w[0] for w in WRITES])
def test_each_action_on_a_globex_object_is_404_for_the_acme_owner_and_allowed_to_its_admin(
        world, label, method, path, body, role, ok):
    kind = path.split("/")[0]
    url = "/api/" + path.format(pk=objects(world, world.globex)[kind])
    assert world.statuses(method, url, body, users=("owner", "viewer", "outsider")) == {
        "owner": 404, "viewer": 404, "outsider": ok}


def test_creating_a_connection_needs_the_admin_role_in_that_tenant(world):
    statuses = world.statuses("post", "/api/connections/", _new_connection)
    # the outsider administers Globex, so may create connections, just not in Acme: the answer
    # is the one a tenant that does not exist gets
    assert statuses == {"superuser": 201, "owner": 201, "operator": 403, "approver": 403, "viewer": 403,
                        "outsider": 400}
    outsider = world.call("outsider", "post", "/api/connections/", _new_connection("x")).json()
    missing = world.call("outsider", "post", "/api/connections/", {**_new_connection("x"), "tenant": "nope"}).json()
    assert outsider["tenant"] == [m.replace("nope", "acme") for m in missing["tenant"]]
    assert world.call("outsider", "post", "/api/connections/",
                      {**_new_connection("x"), "tenant": "globex"}).status_code == 201


BULK = [
    ("bulk replay", "records/replay/", "records", "operator", 202),
    ("bulk approve", "mappings/approve/", "mappings", "approver", 200),
    ("bulk reject", "mappings/reject/", "mappings", "approver", 200),
]


@pytest.mark.parametrize(("label", "path", "kind", "role", "ok"), BULK, ids=[b[0] for b in BULK])
def test_each_bulk_action_needs_its_role_and_treats_other_tenants_ids_as_unknown(world, label, path, kind, role, ok):
    url = f"/api/{path}"
    assert world.statuses("post", url, _ids(kind)(world, world.acme)) == matrix(role, ok, outsider=400)
    # the outsider's answer for an Acme id is the answer for an id that does not exist
    foreign = world.call("outsider", "post", url, _ids(kind)(world, world.acme)).json()
    missing = world.call("outsider", "post", url, {**_ids(kind)(world, world.acme), "ids": [999999]}).json()
    assert set(foreign) == set(missing) == {"ids"}
    assert world.call("outsider", "post", url, _ids(kind)(world, world.globex)).status_code == ok


def test_a_bulk_action_mixing_tenants_is_refused_whole(world):
    acme_record, globex_record = world.held_record(world.acme), world.held_record(world.globex)
    runs = SyncRun.objects.count()
    response = world.call("superuser", "post", "/api/records/replay/",
                          {"ids": [acme_record.pk, 999999], "reason": "mixed"})
    assert response.status_code == 400 and "999999" in response.json()["ids"]
    response = world.call("owner", "post", "/api/records/replay/",
                          {"ids": [acme_record.pk, globex_record.pk], "reason": "mixed"})
    assert response.status_code == 400 and str(globex_record.pk) in response.json()["ids"]
    assert SyncRun.objects.count() == runs


READ_ONLY = [
    ("/api/audit/", ("post",)),
    ("/api/audit/{audit}/", ("put", "patch", "delete")),
    ("/api/runs/", ("post",)),
    ("/api/runs/{runs}/", ("put", "patch", "delete")),
    ("/api/records/", ("post",)),
    ("/api/records/{records}/", ("put", "patch", "delete")),
    ("/api/mappings/", ("post",)),
    ("/api/mappings/{mappings}/", ("put", "patch", "delete")),
    ("/api/integrations/", ("post",)),
    ("/api/integrations/{integrations}/", ("delete",)),
    ("/api/connections/{connections}/", ("delete",)),
]


@pytest.mark.parametrize(("path", "methods"), READ_ONLY, ids=[r[0] for r in READ_ONLY])
def test_routes_without_a_write_refuse_it_for_everyone_and_change_nothing(world, path, methods):
    url = path.format(**objects(world, world.acme))
    before = AuditEvent.objects.count()
    for method in methods:
        assert set(world.statuses(method, url, {}).values()) == {405}, method
    assert AuditEvent.objects.count() == before


def test_me_tells_each_user_their_tenants_and_roles(world):
    tenants = {user: [(t["tenant"], t["role"]) for t in world.call(user, "get", "/api/me/").json()["tenants"]]
               for user in USERS}
    assert tenants == {"superuser": [("acme", "admin"), ("globex", "admin")], "owner": [("acme", "admin")],
                       "operator": [("acme", "operator")], "approver": [("acme", "approver")],
                       "viewer": [("acme", "viewer")], "outsider": [("globex", "admin")]}
    assert world.call(None, "get", "/api/me/").status_code == 401
