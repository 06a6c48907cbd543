"""Every console URL, walked by every kind of user: who may see it, who may not.

Owner (admin), operator, approver and viewer are Acme's team; the outsider is Globex's admin;
the stranger is staff with no tenant; root is a superuser. Queueing is recorded, not run:
this file is about who may, the other files about what happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import Membership
from integrations.models import (
    AuditEvent,
    Connection,
    Mapping,
    MappingStatus,
    RecordStatus,
    ReferenceRecord,
    SyncRecord,
    SyncRun,
    WebhookEvent,
)

from .conftest import USERS

ACME_TEAM = ("root", "owner", "operator", "approver", "viewer")
OPERATORS = ("root", "owner", "operator", "approver")
APPROVERS = ("root", "owner", "approver")
ADMINS = ("root", "owner")


TASK_NAMES = {"test_connection_task": "test", "run_integration_task": "run", "replay_task": "replay"}


@pytest.fixture
def queued(monkeypatch):
    """What the console queued, read back from the real django-q broker (nothing runs)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    monkeypatch.setattr(Conf, "SYNC", False)
    broker = get_broker()
    broker.purge_queue()

    def drain() -> list[tuple[str, Any]]:
        found = []
        while broker.queue_size():
            for ack_id, payload in broker.dequeue():
                task = SignedPackage.loads(payload)
                broker.acknowledge(ack_id)
                func = task["func"] if isinstance(task["func"], str) else task["func"].__name__
                name = TASK_NAMES[func.rsplit(".", 1)[-1]]
                first = task["args"][0]
                if name == "replay" and task["args"][3] == "mapping":
                    name = "release"
                found.append((name, sorted(first) if isinstance(first, list) else first))
        return found

    yield drain
    broker.purge_queue()


@dataclass
class Objects:
    """One Acme object of each kind, by admin URL name."""

    pks: dict[str, int]


@pytest.fixture
def acme(w) -> Objects:
    integration = w.acme
    return Objects({
        "accounts/tenant": integration.tenant_id,
        "accounts/membership": Membership.objects.get(tenant=integration.tenant, user__username="viewer").pk,
        "integrations/connection": integration.source_id,
        "integrations/integration": integration.pk,
        "integrations/mapping": Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)[0].pk,
        "integrations/referencerecord": ReferenceRecord.objects.filter(integration=integration)[0].pk,
        "integrations/syncrecord": SyncRecord.objects.filter(integration=integration, status=RecordStatus.FAILED)[0].pk,
        "integrations/failedrecord": SyncRecord.objects.filter(integration=integration, status=RecordStatus.FAILED)[0].pk,
        "integrations/heldrecord": SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD)[0].pk,
        "integrations/syncrun": SyncRun.objects.filter(integration=integration)[0].pk,
        "integrations/auditevent": AuditEvent.objects.filter(tenant=integration.tenant)[0].pk,
        "integrations/webhookevent": WebhookEvent.objects.get(connection__tenant=integration.tenant).pk,
    })


MODELS = ["accounts/tenant", "accounts/membership", "integrations/connection", "integrations/integration",
          "integrations/mapping", "integrations/referencerecord", "integrations/syncrecord",
          "integrations/failedrecord", "integrations/heldrecord", "integrations/syncrun", "integrations/auditevent",
          "integrations/webhookevent"]
# who may add and delete; everything else in these lists is view-only for the team
ADDERS = {"accounts/tenant": ("root",), "accounts/membership": ("root", "owner", "outsider"),
          "integrations/connection": ("root", "owner", "outsider"),
          "integrations/integration": ("root", "owner", "outsider")}
DELETERS = {"accounts/tenant": ("root",), "accounts/membership": ADMINS, "integrations/connection": ADMINS,
            "integrations/integration": ADMINS}


def expected_view(user: str) -> int:
    if user in ACME_TEAM:
        return 200
    return 302 if user == "outsider" else 403  # the outsider is told it does not exist


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("model", MODELS)
def test_changelist_shows_only_the_users_tenants(w, acme, model, user):
    response = w.client(user).get(f"/admin/{model}/")
    assert response.status_code == (403 if user == "stranger" else 200)
    if user in ACME_TEAM:
        assert "globex-sync" not in response.content.decode() or user == "root"
    if user == "outsider":
        assert f"/admin/{model}/{acme.pks[model]}/change/" not in response.content.decode()
        assert "Acme Manufacturing" not in response.content.decode()
        assert "x3-to-sn" not in response.content.decode()  # not in rows, filters or choices
    elif user != "stranger" and model not in ("integrations/syncrecord",):
        assert f"/{acme.pks[model]}/change/" in response.content.decode()


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("model", MODELS)
def test_change_page_is_for_the_team_only(w, acme, model, user):
    response = w.client(user).get(f"/admin/{model}/{acme.pks[model]}/change/")
    wanted = expected_view(user)
    if model in ("integrations/failedrecord", "integrations/heldrecord") and wanted == 200:
        # the queues open the one lineage page of the record
        assert response.status_code == 302
        assert response["Location"] == f"/admin/integrations/syncrecord/{acme.pks[model]}/change/"
        return
    assert response.status_code == wanted
    if wanted == 302:
        assert response["Location"] == "/admin/"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("model", MODELS)
def test_history_page_is_for_the_team_only(w, acme, model, user):
    response = w.client(user).get(f"/admin/{model}/{acme.pks[model]}/history/")
    # Django answers "does not exist" before asking about permissions here: same for both
    assert response.status_code == (200 if user in ACME_TEAM else 302)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("model", MODELS)
def test_add_page_needs_the_adding_role(w, model, user):
    response = w.client(user).get(f"/admin/{model}/add/")
    assert response.status_code == (200 if user in ADDERS.get(model, ()) else 403)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("model", MODELS)
def test_delete_page_needs_the_deleting_role(w, acme, model, user):
    response = w.client(user).get(f"/admin/{model}/{acme.pks[model]}/delete/")
    deleters = DELETERS.get(model, ())
    if user in deleters:
        assert response.status_code == 200
    elif user == "outsider" and "outsider" in ADDERS.get(model, ()):
        assert response.status_code == 302  # may delete in Globex; Acme's row does not exist for them
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("user", USERS)
def test_change_post_needs_the_changing_role(w, acme, user):
    pk = acme.pks["integrations/integration"]
    data = {"tenant": w.acme.tenant_id, "name": "renamed", "kind": w.acme.kind, "source": w.acme.source_id,
            "target": w.acme.target_id, "enabled": "on", "settings": "{}", "streams-TOTAL_FORMS": "0",
            "streams-INITIAL_FORMS": "0"}
    response = w.client(user).post(f"/admin/integrations/integration/{pk}/change/", data)
    if user in ADMINS:
        assert response.status_code in (200, 302)
    elif user == "outsider":
        assert response.status_code == 302 and response["Location"] == "/admin/"
    else:
        assert response.status_code == 403
    w.acme.refresh_from_db()
    assert (w.acme.name == "renamed") == (user in ADMINS and response.status_code == 302)


@pytest.mark.parametrize("user", USERS)
def test_index_and_app_pages(w, user):
    client = w.client(user)
    assert client.get("/admin/").status_code == 200
    for app in ("integrations", "accounts"):
        assert client.get(f"/admin/{app}/").status_code == (404 if user == "stranger" else 200)


def test_a_member_without_staff_status_is_sent_to_log_in(w):
    w.users["viewer"].is_staff = False
    w.users["viewer"].save(update_fields=["is_staff"])
    response = w.client("viewer").get("/admin/integrations/syncrecord/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- console URLs beyond the admin's own --------------------------------------------------------
def _status(user: str, allowed: tuple[str, ...], hidden: int = 404) -> int:
    if user in allowed:
        return 200
    return hidden if user == "outsider" else 403


@pytest.mark.parametrize("user", USERS)
def test_test_connection_button_needs_operator(w, acme, queued, user):
    pk = acme.pks["integrations/connection"]
    response = w.client(user).post(f"/admin/integrations/connection/{pk}/test/")
    wanted = _status(user, OPERATORS)
    assert response.status_code == (302 if wanted == 200 else wanted)
    assert queued() == ([("test", pk)] if wanted == 200 else [])
    assert w.client("owner").get(f"/admin/integrations/connection/{pk}/test/").status_code == 405


@pytest.mark.parametrize("user", USERS)
def test_run_now_button_needs_operator(w, acme, queued, user):
    pk = acme.pks["integrations/integration"]
    response = w.client(user).post(f"/admin/integrations/integration/{pk}/run/")
    wanted = _status(user, OPERATORS)
    assert response.status_code == (302 if wanted == 200 else wanted)
    assert queued() == ([("run", pk)] if wanted == 200 else [])


@pytest.mark.parametrize("user", USERS)
def test_mapping_target_autocomplete_needs_approver(w, acme, user):
    pk = acme.pks["integrations/mapping"]
    response = w.client(user).get(f"/admin/integrations/mapping/{pk}/targets/", {"term": ""})
    assert response.status_code == _status(user, APPROVERS)


@pytest.mark.parametrize("user", USERS)
def test_replay_page_needs_operator(w, acme, queued, user):
    pk = acme.pks["integrations/syncrecord"]
    client = w.client(user)
    assert client.get(f"/admin/integrations/syncrecord/{pk}/replay/").status_code == _status(user, OPERATORS)
    response = client.post(f"/admin/integrations/syncrecord/{pk}/replay/", {"reason": "supplier fixed in X3"})
    wanted = _status(user, OPERATORS)
    assert response.status_code == (302 if wanted == 200 else wanted)
    assert queued() == ([("replay", [pk])] if wanted == 200 else [])


@pytest.mark.parametrize("user", USERS)
def test_audit_export_shows_only_the_users_tenants(w, user):
    response = w.client(user).get("/admin/integrations/auditevent/export/")
    assert response.status_code == (403 if user == "stranger" else 200)
    if response.status_code == 200:
        body = b"".join(response.streaming_content).decode()
        assert ("acme" in body) == (user in ACME_TEAM)
        assert ("globex" in body) == (user in ("root", "outsider"))


@pytest.mark.parametrize("user", USERS)
def test_connection_autocomplete_offers_only_connections_the_user_may_point_at(w, user):
    response = w.client(user).get("/admin/autocomplete/", {"app_label": "integrations", "model_name": "integration",
                                                          "field_name": "source", "term": ""})
    if user == "stranger":
        assert response.status_code == 403
        return
    ids = {int(r["id"]) for r in response.json()["results"]}
    acme_ids = set(Connection.objects.filter(tenant=w.acme.tenant).values_list("pk", flat=True))
    globex_ids = set(Connection.objects.filter(tenant=w.globex.tenant).values_list("pk", flat=True))
    expected = {"root": acme_ids | globex_ids, "owner": acme_ids, "outsider": globex_ids}.get(user, set())
    assert ids == expected  # operators and viewers may not edit integrations: nothing to offer


# --- actions: only the role, only the user's tenants ---------------------------------------------
def _act(client, model: str, action: str, pks: list[int], **extra):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0", **extra}
    return client.post(f"/admin/{model}/", data)


@pytest.mark.parametrize("user", USERS)
def test_bulk_test_connection_needs_operator(w, queued, user):
    pks = list(Connection.objects.filter(tenant=w.acme.tenant).values_list("pk", flat=True))
    _act(w.client(user), "integrations/connection", "test_connections", pks)
    assert sorted(pk for _, pk in queued()) == (sorted(pks) if user in OPERATORS else [])


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("action", ["run_now", "pause", "resume"])
def test_integration_actions_need_operator(w, queued, user, action):
    if action == "resume":
        type(w.acme).objects.filter(pk=w.acme.pk).update(enabled=False)
    _act(w.client(user), "integrations/integration", action, [w.acme.pk])
    w.acme.refresh_from_db()
    allowed = user in OPERATORS
    if action == "run_now":
        assert queued() == ([("run", w.acme.pk)] if allowed else [])
    else:
        assert w.acme.enabled == ((action == "resume") == allowed)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("action", ["approve_selected", "reject_selected"])
def test_mapping_decisions_need_approver(w, user, action):
    suggested = Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED)
    pks = list(suggested.values_list("pk", flat=True))
    _act(w.client(user), "integrations/mapping", action, pks)
    decided = Mapping.objects.filter(pk__in=pks).exclude(status=MappingStatus.SUGGESTED).count()
    assert decided == (len(pks) if user in APPROVERS else 0)


@pytest.mark.parametrize("user", USERS)
def test_bulk_replay_needs_operator(w, queued, user):
    pks = list(SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).values_list("pk", flat=True))
    response = _act(w.client(user), "integrations/failedrecord", "replay_selected", pks)
    if user in OPERATORS:
        assert response.status_code == 200 and b"Reason" in response.content  # the confirmation page
    response = w.client(user).post("/admin/integrations/failedrecord/", {
        "action": "replay_selected", "_selected_action": [str(pk) for pk in pks], "confirm": "yes",
        "reason": "ServiceNow is back"})
    assert queued() == ([("replay", sorted(pks))] if user in OPERATORS else [])


@pytest.mark.parametrize("user", USERS)
def test_bulk_delete_needs_admin_and_never_touches_logs(w, user):
    membership = Membership.objects.get(tenant=w.acme.tenant, user__username="viewer")
    _act(w.client(user), "accounts/membership", "delete_selected", [membership.pk], post="yes")
    assert Membership.objects.filter(pk=membership.pk).exists() == (user not in ADMINS)
    events = list(AuditEvent.objects.filter(tenant=w.acme.tenant).values_list("pk", flat=True)[:3])
    response = _act(w.client(user), "integrations/auditevent", "delete_selected", events, post="yes")
    assert response.status_code == (403 if user == "stranger" else 200)  # no such action: the list again
    assert AuditEvent.objects.filter(pk__in=events).count() == len(events)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("page", ["auth/user", "auth/group", "django_q/schedule", "django_q/success",
                                  "django_q/failure", "django_q/ormq"])
def test_users_and_task_queue_pages_are_for_superusers(w, user, page):
    from django_q.conf import Conf

    if page == "django_q/ormq" and not Conf.ORM:
        pytest.skip("django-q shows its queue page only with the ORM broker (this run uses Redis)")
    # they are not tenant-scoped: members hold no Django model permissions, so never see them
    response = w.client(user).get(f"/admin/{page}/")
    assert response.status_code == (200 if user == "root" else 403)
