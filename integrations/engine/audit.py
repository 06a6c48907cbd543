"""The one audit writer. Every detail passes through redaction before it is stored."""

from __future__ import annotations

from typing import Any

from integrations.engine.bulk import insert_many, new_instance
from integrations.models import AuditEvent
from integrations.systems.redaction import redact

SYSTEM = "system"


def _actor_fields(actor: Any) -> tuple[Any, str]:
    if actor is None or isinstance(actor, str):
        return None, actor or SYSTEM
    if getattr(actor, "is_authenticated", False):
        return actor, actor.get_username()
    return None, SYSTEM


def audit_event(
    tenant_id: int,
    action: str,
    message: str = "",
    *,
    actor: Any = None,
    integration_id: int | None = None,
    connection_id: int | None = None,
    record_id: int | None = None,
    run_id: int | None = None,
    detail: dict[str, Any] | None = None,
    request_id: str = "",
) -> AuditEvent:
    """Build (unsaved) one audit event; use :func:`audit` or :func:`audit_many` to store."""
    user, name = _actor_fields(actor)
    # without Model.__init__'s walk over every field: approving 10,000 mappings builds 10,000
    return new_instance(
        AuditEvent,
        tenant_id=tenant_id,
        integration_id=integration_id,
        connection_id=connection_id,
        record_id=record_id,
        run_id=run_id,
        actor_id=user.pk if user is not None else None,
        actor_name=name,
        action=action,
        message=message[:2000],
        detail=redact(detail or {}),
        request_id=request_id,
    )


def audit(tenant_id: int, action: str, message: str = "", **kwargs: Any) -> AuditEvent:
    event = audit_event(tenant_id, action, message, **kwargs)
    event.save()
    return event


def audit_many(events: list[AuditEvent]) -> None:
    """Store many events at once (plain multi-row INSERTs: approving thousands of mappings writes
    one event each). Their pks are not read back; events are never read back by their writer."""
    insert_many(AuditEvent, events)
