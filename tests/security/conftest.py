"""The console tests' two tenants, with secrets and hostile markup planted where pages show data.

``tests/admin/conftest.py`` builds the world (Acme synced with every role, Globex beside it,
through the production functions); this adds what the security tests look for:

- markup that must never reach a page unescaped (``XSS``), in names, settings, messages,
  labels, snapshots, webhook payloads and test reports of both tenants;
- Globex-only strings (``GLOBEX_ONLY``) that no Acme member may ever be shown;
- every secret the connections hold (``secrets`` and the live ``token_cache``), plus one
  planted password per connection, collected in ``World.extra["secrets"]``.

Built once per module inside a transaction rolled back at the end (as the console tests do);
each test runs in a savepoint inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Tenant
from integrations.engine.audit import audit
from integrations.models import (
    AuditEvent,
    Connection,
    Integration,
    Mapping,
    RecordStatus,
    ReferenceRecord,
    StreamState,
    SyncRecord,
    SyncRun,
    WebhookEvent,
)
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator
from tests.admin.conftest import World, build_world, module_world

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
GLOBEX_ONLY = ("Globex Foods", "globex-sync", "globex-x3", "globex-sn", "globex-only-marker")
# role → the console user holding it in Acme (None: not signed in)
ROLE_USERS: dict[str, str | None] = {
    "superuser": "root", "admin": "owner", "approver": "approver", "operator": "operator", "viewer": "viewer",
    "anonymous": None,
}


def _plant(integration: Integration, tenant_marker: str) -> None:
    """Hostile markup wherever the pages show data of ``integration``'s tenant."""
    script, img = XSS
    tenant = integration.tenant
    Tenant.objects.filter(pk=tenant.pk).update(name=f"{tenant.name} {script}")
    Integration.objects.filter(pk=integration.pk).update(
        settings={**(integration.settings or {}), "note": f"{img} {tenant_marker}"})
    for conn in (integration.source, integration.target):
        Connection.objects.filter(pk=conn.pk).update(
            settings={**(conn.settings or {}), "note": script},
            last_error=f"{img} refused",
            last_test_report={"ok": False, "api_calls": 1, "failed": [script],
                              "checks": [{"check": script, "ok": False, "message": img}]},
        )
    # the newest row of each kind (and of each queue): the one the walk opens
    records = SyncRecord.objects.filter(integration=integration)
    for status in (None, RecordStatus.HELD, RecordStatus.FAILED):
        record = (records.filter(status=status) if status else records).order_by("-pk").first()
        if record is None:  # no failed record yet (Globex): the newest synced one fails
            record = records.exclude(status=RecordStatus.HELD).order_by("-pk").first()
        SyncRecord.objects.filter(pk=record.pk).update(
            status=status or record.status, error_message=f"{script} {img}",
            source_snapshot={**record.source_snapshot, "memo": img})
    Mapping.objects.filter(pk=Mapping.objects.filter(integration=integration).order_by("-pk").values("pk")[:1]
                           ).update(source_label=script, target_label=img)
    ReferenceRecord.objects.filter(pk=ReferenceRecord.objects.filter(integration=integration)
                                   .order_by("-pk").values("pk")[:1]).update(label=img, data={"x": script})
    SyncRun.objects.filter(pk=SyncRun.objects.filter(integration=integration).order_by("-pk").values("pk")[:1]
                           ).update(error=f"{script} {img}")
    StreamState.objects.filter(integration=integration, stream="invoices").update(cursor=img)
    audit(tenant.pk, "walk.planted", f"{script} {tenant_marker}", integration_id=integration.pk,
          record_id=record.pk, detail={"note": img, "marker": tenant_marker})  # the tenant's newest event
    WebhookEvent.objects.create(connection=integration.target, event_id=f"evt-{img}"[:200],
                                event_type=script, signature_ok=False, payload={"body": img, "note": tenant_marker})


def _secrets() -> list[str]:
    """Every secret value the connections hold, at rest and in their token caches."""
    found: set[str] = set()
    for conn in Connection.objects.all():
        found.update(str(v) for v in (conn.secrets or {}).values() if v)
        cache = conn.token_cache or {}
        found.update(str(cache[k]) for k in ("access_token", "refresh_token") if cache.get(k))
    return sorted(s for s in found if len(s) >= 8)


def build_security_world(x3: SageX3Simulator, sn: ServiceNowSimulator) -> World:
    world = build_world(x3, sn)
    acme, globex = world.acme, world.globex
    Integration.objects.filter(pk=globex.pk).update(name="globex-sync")
    for conn, name in ((globex.source, "globex-x3"), (globex.target, "globex-sn")):
        Connection.objects.filter(pk=conn.pk).update(name=name)
    for conn in Connection.objects.all():
        # a planted secret in every connection: never used, so only a leak could show it
        conn.secrets = {**(conn.secrets or {}), "password": f"planted-password-{uuid.uuid4().hex}"}
        conn.save(update_fields=["secrets"])
    _plant(acme, "acme-marker")
    _plant(globex, "globex-only-marker")
    world.acme = Integration.objects.select_related("tenant", "source", "target").get(pk=acme.pk)
    world.globex = Integration.objects.select_related("tenant", "source", "target").get(pk=globex.pk)
    world.extra["secrets"] = _secrets()
    world.extra["planted_audit"] = AuditEvent.objects.filter(action="walk.planted").count()
    return world


@pytest.fixture(scope="module")
def sworld(django_db_setup, django_db_blocker) -> Iterator[World]:
    with module_world(django_db_blocker, build_security_world) as built:
        yield built


@pytest.fixture
def sw(sworld: World, db) -> World:
    """The module's world, inside this test's savepoint."""
    return sworld


def body_of(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")
