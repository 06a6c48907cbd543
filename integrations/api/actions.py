"""Small domain functions the API needs and the engine does not have (yet).

Each changes one thing and writes its audit event; views stay thin callers. They assume the
serializers validated their input, so they never half-apply a change.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from integrations.engine.audit import audit_event
from integrations.models import Connection, Integration
from integrations.systems.redaction import redact
from integrations.systems.registry import schema_for
from integrations.systems.schema import auth_setting_keys_for, secret_keys_for

# Fields that change where or how we log on: a cached token is worthless once they change.
ADDRESS_FIELDS = ("url", "port", "company", "auth_method")
CONNECTION_FIELDS = ("name", *ADDRESS_FIELDS, "settings")


def merged_secrets(current: dict[str, Any], allowed: tuple[str, ...], incoming: dict[str, str]) -> dict[str, str]:
    """Stored secrets updated with the non-blank incoming ones; keys the sign-in method has no use
    for (``allowed``: the schema's ``method_secrets``) are dropped (a switch from Basic to OAuth2
    must not keep an old password around)."""
    merged = {k: str(v) for k, v in (current or {}).items() if k in allowed and v not in (None, "")}
    merged.update({k: v for k, v in incoming.items() if v != ""})
    return merged


def save_connection(connection: Connection | None, data: dict[str, Any], *, actor: Any,
                    request_id: str = "") -> Connection:
    """Create or update a connection from validated data; write-only secrets merge, never echo."""
    created = connection is None
    if connection is None:
        connection = Connection(tenant=data["tenant"], system=data["system"])
    before = {name: getattr(connection, name) for name in CONNECTION_FIELDS}
    old_secrets = dict(connection.secrets or {}) if not created else {}
    for name in CONNECTION_FIELDS:
        if name in data:
            setattr(connection, name, data[name])
    schema = schema_for(connection.system)
    allowed = schema.method_secrets(connection.auth_method) if schema else secret_keys_for(connection.auth_method)
    secrets = merged_secrets(old_secrets, allowed, data.get("secrets") or {})
    secrets_changed = sorted(k for k in set(secrets) | set(old_secrets) if secrets.get(k) != old_secrets.get(k))
    changed = [name for name in CONNECTION_FIELDS if before[name] != getattr(connection, name)]
    auth_settings = auth_setting_keys_for(connection.auth_method)
    logon_changed = (
        secrets_changed
        or any(name in changed for name in ADDRESS_FIELDS)
        or any((before["settings"] or {}).get(k) != (connection.settings or {}).get(k) for k in auth_settings)
    )
    connection.secrets = secrets
    if logon_changed and not created:
        # credentials or address changed: log on afresh instead of reusing the old session
        connection.token_cache = {}
        connection.token_expires_at = None
        connection.refresh_token_expires_at = None
    event = None
    if created or changed or secrets_changed:
        # "rotated" names the secrets that got a new value (a key named *secret* would be
        # masked by the redaction of audit details); values never reach the audit trail. The
        # event is built (and redacted) before the transaction, so no lock is held meanwhile.
        what = ", ".join([*changed, *(["secrets (" + ", ".join(secrets_changed) + ")"] if secrets_changed else [])])
        event = audit_event(connection.tenant_id, "connection.created" if created else "connection.updated",
                            f"{connection.name} {'created' if created else 'updated'} through the API"
                            + (f": {what}" if what and not created else ""),
                            actor=actor, request_id=request_id,
                            detail={"system": connection.system, "changed": changed, "rotated": secrets_changed,
                                    "settings": redact(connection.settings or {}), "token_reset": bool(logon_changed)})
    with transaction.atomic():
        connection.save()
        if event is not None:
            event.connection_id = connection.pk
            event.save()
    return connection


def update_integration(integration: Integration, data: dict[str, Any], *, actor: Any,
                       request_id: str = "") -> Integration:
    before = {"name": integration.name, "settings": dict(integration.settings or {})}
    for name in ("name", "settings"):
        if name in data:
            setattr(integration, name, data[name])
    changed = [name for name in before if before[name] != getattr(integration, name)]
    if changed:
        event = audit_event(integration.tenant_id, "integration.updated",
                            f"{integration.name} updated through the API: {', '.join(changed)}",
                            actor=actor, integration_id=integration.pk, request_id=request_id,
                            detail={"changed": changed, "before": redact(before),
                                    "after": redact({name: getattr(integration, name) for name in before})})
        with transaction.atomic():
            integration.save(update_fields=changed)
            event.save()
    return integration
