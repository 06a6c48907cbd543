"""Two tenants built through production functions, and a user of every kind.

Acme (the demo tenant of tests/conftest.py, synced once) has an owner (admin), an operator,
an approver and a viewer; Globex, a second tenant on the same sandbox, has the outsider as its
admin: a powerful user, in the wrong tenant. The superuser sees both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import django_q.conf
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from integrations.demo import x3_servicenow_document
from integrations.engine.runner import run_integration
from integrations.models import Integration, Mapping, MappingStatus, RecordStatus, SyncRecord
from integrations.tenants import load_document
from tests.conftest import SN_URL, X3_URL

PASSWORD = "correct-horse-battery-staple"
USERS = ("superuser", "owner", "operator", "approver", "viewer", "outsider")
ACME_MEMBERS = (("owner", "admin"), ("operator", "operator"), ("approver", "approver"), ("viewer", "viewer"))


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _tasks_run_inline(settings, monkeypatch):
    """django-q reads its config once at import: flip the class attribute so async_task runs now."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)


@dataclass
class World:
    """The two tenants, their users and one object of each kind per tenant."""

    acme: Integration
    globex: Integration
    user_ids: dict[str, int] = field(default_factory=dict)

    def user(self, name: str) -> Any:
        # a fresh instance each time: tenant roles are cached on the user object
        return get_user_model().objects.get(pk=self.user_ids[name])

    def client(self, name: str | None) -> APIClient:
        client = APIClient()
        if name is not None:
            client.force_authenticate(self.user(name))
        return client

    def call(self, name: str | None, method: str, url: str, data: Any = None) -> Any:
        return getattr(self.client(name), method)(url, data, format="json")

    def statuses(self, method: str, url: str, data: Any = None, users: tuple[str, ...] = USERS) -> dict[str, int]:
        """The status each user gets; ``data`` may be a function of the user's name."""
        return {name: self.call(name, method, url, data(name) if callable(data) else data).status_code
                for name in users}

    def held_record(self, integration: Integration) -> SyncRecord:
        return SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD).order_by("pk").first()

    def suggested_mapping(self, integration: Integration) -> Mapping:
        return Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).order_by("pk").first()


def _members(slug: str, name: str, members: list[dict[str, str]]) -> None:
    load_document({"tenant": {"slug": slug, "name": name}, "members": members})


@pytest.fixture
def world(integration, x3_sim) -> World:
    run_integration(integration)
    load_document(x3_servicenow_document(X3_URL, SN_URL, slug="globex", name="Globex",
                                         x3_refresh_token=x3_sim.issue_refresh_token("ml-connector")))
    globex = Integration.objects.select_related("source", "target", "tenant").get(tenant__slug="globex")
    # enough of a sync for Globex to own runs, records and mappings
    run_integration(globex, streams=["x3_gl_accounts", "sn_gl_accounts", "invoices"])
    _members("acme", integration.tenant.name, [{"username": u, "role": r} for u, r in ACME_MEMBERS])
    _members("globex", "Globex", [{"username": "outsider", "role": "admin"}])
    User = get_user_model()
    User.objects.create_superuser("superuser", "root@example.com", PASSWORD)
    for user in User.objects.exclude(username="superuser"):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    world = World(acme=integration, globex=globex)
    world.user_ids = dict(User.objects.filter(username__in=USERS).values_list("username", "pk"))
    return world
