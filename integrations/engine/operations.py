"""Operator actions shared by every face (admin, API, commands): one way to do each."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from integrations.engine.audit import audit_event, audit_many
from integrations.engine.schedules import sync_schedules
from integrations.models import Integration


def set_enabled(integrations: list[Integration], enabled: bool, actor: Any = None, request_id: str = "",
                via: str = "") -> int:
    """Pause or resume scheduled syncs, keep django-q's schedules in step, audit each change.

    Returns how many integrations changed. Manual runs still work on a paused integration.
    """
    verb = "resumed" if enabled else "paused"
    changed = []
    with transaction.atomic():
        for integration in integrations:
            if Integration.objects.filter(pk=integration.pk, enabled=not enabled).update(enabled=enabled):
                changed.append(integration)
            integration.enabled = enabled
        for integration in changed:
            sync_schedules(integration)  # a paused integration has no schedules
        audit_many([
            audit_event(i.tenant_id, f"integration.{verb}", f"{i.name} {verb}" + (f" {via}" if via else ""),
                        actor=actor, integration_id=i.pk, request_id=request_id)
            for i in changed
        ])
    return len(changed)
