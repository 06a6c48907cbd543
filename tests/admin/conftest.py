"""A world for console tests: two tenants synced through the sandbox, and one user per role.

The world is built once per test module (inside a transaction rolled back when the module
ends; each test runs in a savepoint inside it), through the functions production uses:
``load_document``, ``run_integration``, ``approve`` and ``replay_records``. The sandbox stays
mounted for the whole module, so actions that reach the systems work too.

Users: ``root`` (superuser), in Acme ``owner`` (admin), ``operator``, ``approver``, ``viewer``;
in Globex ``outsider`` (admin of Globex, nothing in Acme); ``stranger`` belongs to no tenant.
All are staff: the admin's login needs it; every other power comes from the membership role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, override_settings

from integrations.demo import x3_servicenow_document
from integrations.engine.mappings import approve
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.engine.schedules import sync_schedules
from integrations.models import Integration, Mapping, MappingStatus, RecordStatus, SyncRecord, WebhookEvent
from integrations.sandbox.base import Faults
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator
from integrations.tenants import load_document
from tests.conftest import SN_URL, X3_URL

ROLES = {"owner": "admin", "operator": "operator", "approver": "approver", "viewer": "viewer"}
USERS = ("root", *ROLES, "outsider", "stranger")


@dataclass
class World:
    acme: Integration
    globex: Integration
    users: dict[str, Any]
    x3: SageX3Simulator
    sn: ServiceNowSimulator
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> Client:
        client = Client()
        client.force_login(self.users[name])
        return client


def build_world(x3: SageX3Simulator, sn: ServiceNowSimulator) -> World:
    acme_doc = x3_servicenow_document(X3_URL, SN_URL, x3_refresh_token=x3.issue_refresh_token("ml-connector"))
    acme_doc["members"] = [{"username": name, "role": role} for name, role in ROLES.items()]
    load_document(acme_doc)
    globex_doc = x3_servicenow_document(X3_URL, SN_URL, slug="globex", name="Globex Foods",
                                        x3_refresh_token=x3.issue_refresh_token("ml-connector"))
    globex_doc["members"] = [{"username": "outsider", "role": "admin"}]
    globex_doc["integrations"][0]["name"] = "globex-sync"  # names that tell the tenants apart on a page
    load_document(globex_doc)
    User = get_user_model()
    User.objects.create_user("stranger")
    User.objects.filter(username__in=USERS).update(is_staff=True)
    User.objects.create_superuser("root", "root@example.com", "pw")
    acme = Integration.objects.select_related("tenant", "source", "target").get(tenant__slug="acme")
    globex = Integration.objects.select_related("tenant", "source", "target").get(tenant__slug="globex")
    run_integration(acme)
    run_integration(globex)
    # Acme: approve every cost-center suggestion and one GL account, then replay what that
    # released while ServiceNow is down: those invoices fail (transient), the rest stay held.
    suggested = Mapping.objects.filter(integration=acme, status=MappingStatus.SUGGESTED).select_related("integration")
    chosen = [m for m in suggested if m.kind == "cost_center"] + [m for m in suggested if m.kind == "gl_account"][:1]
    decision = approve(chosen)
    sn.set_faults(Faults(error_rate=1.0))
    replay_records(decision.released_ids[:8], reason="world: ServiceNow down")
    sn.set_faults(Faults())
    sync_schedules(acme)
    # the webhook inbox has no production writer in this flow yet: one pushed event by hand
    WebhookEvent.objects.create(connection=acme.target, event_id="evt-1", event_type="invoice.updated",
                                signature_ok=True, payload={"id": 1, "secret": "hush"})
    users = {u.username: u for u in User.objects.filter(username__in=USERS)}
    return World(acme=acme, globex=globex, users=users, x3=x3, sn=sn)


@contextmanager
def module_world(django_db_blocker: Any, build: Callable[[SageX3Simulator, ServiceNowSimulator], World]
                 ) -> Iterator[World]:
    """A world built once for a module over the mounted sandbox, rolled back when the module ends."""
    with django_db_blocker.unblock(), override_settings(HTTP_BACKOFF_BASE_SECONDS=0.001,
                                                         HTTP_BACKOFF_MAX_SECONDS=0.002):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                x3 = SageX3Simulator()
                x3.seed_demo()
                sn = ServiceNowSimulator(clock=ManualClock()).seed_demo()
                mount(x3, X3_URL, rsps)
                mount(sn, SN_URL, rsps)
                yield build(x3, sn)
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    with module_world(django_db_blocker, build_world) as built:
        yield built


@pytest.fixture(autouse=True)
def _sync_tasks(settings, monkeypatch):
    """django-q runs queued tasks inline, so a test sees what an action queued."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def w(world: World, db) -> World:
    """The module's world, inside this test's savepoint."""
    return world


def failed_records(integration: Integration):
    return SyncRecord.objects.filter(integration=integration, status=RecordStatus.FAILED)


def held_records(integration: Integration):
    return SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD)
