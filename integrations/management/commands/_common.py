"""Shared bits of the management commands: finding objects by name, printing JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError

from accounts.models import Tenant
from integrations.models import Connection, Integration


def get_tenant(slug_or_name: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug_or_name).first() or Tenant.objects.filter(name=slug_or_name).first()
    if tenant is None:
        known = ", ".join(Tenant.objects.values_list("slug", flat=True)[:20]) or "none"
        raise CommandError(f"No tenant {slug_or_name!r} (known: {known})")
    return tenant


def get_integration(tenant: str, name: str) -> Integration:
    t = get_tenant(tenant)
    integration = Integration.objects.select_related("source", "target", "tenant").filter(tenant=t, name=name).first()
    if integration is None:
        known = ", ".join(Integration.objects.filter(tenant=t).values_list("name", flat=True)) or "none"
        raise CommandError(f"No integration {name!r} in tenant {t.slug} (known: {known})")
    return integration


def get_connection(tenant: str, name: str) -> Connection:
    t = get_tenant(tenant)
    connection = Connection.objects.filter(tenant=t, name=name).first()
    if connection is None:
        known = ", ".join(Connection.objects.filter(tenant=t).values_list("name", flat=True)) or "none"
        raise CommandError(f"No connection {name!r} in tenant {t.slug} (known: {known})")
    return connection


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
