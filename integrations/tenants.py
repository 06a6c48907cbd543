"""Loading a tenant, its connections and integrations from one JSON document.

Everything is validated before anything is written; errors name the JSON path. Applying runs
in one transaction, so a bad document (or ``--dry-run``) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Membership, Tenant
from integrations.engine.audit import audit
from integrations.engine.runner import ensure_streams
from integrations.flows import flow_kinds, get_flow
from integrations.models import AuthMethod, Connection, Integration, Schedule, StreamState, System
from integrations.systems.redaction import redact
from integrations.systems.registry import SCHEMAS, schema_for
from integrations.systems.schema import AUTH_KEYS, SECRET_KEYS, ConnectionFields, ConnectionSchema

CONNECTION_KEYS = frozenset({
    "name", "system", "url", "port", "folder", "company", "auth", "table_profile", "tables", "settings",
})
SCHEDULES = {s.value for s in Schedule}


class DocumentError(ValueError):
    """The document is invalid; ``errors`` lists "path: message" lines."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass
class LoadPlan:
    actions: list[str] = field(default_factory=list)


def _require(obj: Any, path: str, errors: list[str], kind: type = dict) -> bool:
    if not isinstance(obj, kind):
        errors.append(f"{path}: must be {'an object' if kind is dict else 'a list' if kind is list else kind.__name__}")
        return False
    return True


def _text(obj: dict, key: str, path: str, errors: list[str], required: bool = True,
          max_length: int | None = None) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            errors.append(f"{path}.{key}: required")
        return ""
    if not isinstance(value, str):
        errors.append(f"{path}.{key}: must be a string")
        return ""
    if max_length is not None and len(value) > max_length:  # SQLite would store it; PostgreSQL refuses it
        errors.append(f"{path}.{key}: at most {max_length} characters")
    return value


def _longest(model: type, field: str) -> int:
    return model._meta.get_field(field).max_length


def validate(doc: Any) -> list[str]:
    errors: list[str] = []
    if not _require(doc, "$", errors):
        return errors
    unknown = set(doc) - {"tenant", "connections", "integrations", "members"}
    errors.extend(f"$.{key}: unknown key" for key in sorted(unknown))
    tenant = doc.get("tenant")
    if _require(tenant, "$.tenant", errors):
        slug = _text(tenant, "slug", "$.tenant", errors, max_length=_longest(Tenant, "slug"))
        if slug and not slug.replace("-", "").replace("_", "").isalnum():
            errors.append("$.tenant.slug: letters, digits, '-' and '_' only")
        _text(tenant, "name", "$.tenant", errors, max_length=_longest(Tenant, "name"))
    names: dict[str, str] = {}
    connections = doc.get("connections", [])
    if _require(connections, "$.connections", errors, list):
        for i, conn in enumerate(connections):
            path = f"$.connections[{i}]"
            if not _require(conn, path, errors):
                continue
            errors.extend(f"{path}.{key}: unknown key" for key in sorted(set(conn) - CONNECTION_KEYS))
            name = _text(conn, "name", path, errors, max_length=_longest(Connection, "name"))
            if name in names:
                errors.append(f"{path}.name: duplicate connection name {name!r}")
            system = _text(conn, "system", path, errors)
            schema = schema_for(system) if system else None
            if system and schema is None:
                errors.append(f"{path}.system: no connector for {system} yet" if system in System.values else
                              f"{path}.system: {system!r} is not one of {', '.join(SCHEMAS)}")
            names[name] = system
            url = _text(conn, "url", path, errors)
            for key in ("tables", "settings"):
                if key in conn:
                    _require(conn[key], f"{path}.{key}", errors)
            auth = conn.get("auth")
            if not _require(auth, f"{path}.auth", errors) or schema is None:
                continue
            method = _text(auth, "method", f"{path}.auth", errors)
            if method in AUTH_KEYS:
                required, optional = AUTH_KEYS[method]
                extra = set(schema.extra_secrets)
                for key in sorted(set(auth) - set(required) - set(optional) - extra - {"method"}):
                    errors.append(f"{path}.auth.{key}: unknown key for method {method}")
            if url and isinstance(auth.get("method", ""), str) and all(
                    isinstance(conn.get(key, {}), dict) for key in ("tables", "settings")):
                errors.extend(_connection_problems(schema, conn, path))
    kinds = dict(flow_kinds())
    integrations = doc.get("integrations", [])
    if _require(integrations, "$.integrations", errors, list):
        seen: set[str] = set()
        for i, integ in enumerate(integrations):
            path = f"$.integrations[{i}]"
            if not _require(integ, path, errors):
                continue
            errors.extend(f"{path}.{key}: unknown key" for key in sorted(
                set(integ) - {"name", "kind", "source", "target", "enabled", "settings", "schedules"}))
            name = _text(integ, "name", path, errors, max_length=_longest(Integration, "name"))
            if name in seen:
                errors.append(f"{path}.name: duplicate integration name {name!r}")
            seen.add(name)
            kind = _text(integ, "kind", path, errors)
            if kind and kind not in kinds:
                errors.append(f"{path}.kind: {kind!r} is not one of {', '.join(kinds)}")
                continue
            flow = get_flow(kind) if kind else None
            for side in ("source", "target"):
                ref = _text(integ, side, path, errors)
                if ref and ref not in names:
                    errors.append(f"{path}.{side}: no connection named {ref!r} in this document")
                elif ref and flow:
                    wanted = flow.source_system if side == "source" else flow.target_system
                    if names[ref] != wanted:
                        errors.append(f"{path}.{side}: {kind} needs a {wanted} connection, {ref!r} is {names[ref]}")
            if "enabled" in integ and not isinstance(integ["enabled"], bool):
                errors.append(f"{path}.enabled: must be true or false")
            if "settings" in integ and _require(integ["settings"], f"{path}.settings", errors) and flow:
                errors.extend(f"{path}.settings.{problem}" for problem in flow.settings_errors(integ["settings"]))
            schedules = integ.get("schedules", {})
            if _require(schedules, f"{path}.schedules", errors) and flow:
                for stream, value in schedules.items():
                    spath = f"{path}.schedules.{stream}"
                    if stream not in flow.stream_names():
                        errors.append(f"{spath}: {kind} has no stream {stream!r} ({', '.join(flow.stream_names())})")
                    elif not isinstance(value, str) or not (
                            value in SCHEDULES or (value.startswith("cron:") and len(value.split()) == 5)):
                        errors.append(f"{spath}: must be one of {', '.join(sorted(SCHEDULES))} or 'cron:<m h dom mon dow>'")
    members = doc.get("members", [])
    if _require(members, "$.members", errors, list):
        for i, member in enumerate(members):
            if _require(member, f"$.members[{i}]", errors):
                _text(member, "username", f"$.members[{i}]", errors,
                      max_length=_longest(get_user_model(), "username"))
                if member.get("role") not in ("viewer", "operator", "approver", "admin"):
                    errors.append(f"$.members[{i}].role: must be viewer, operator, approver or admin")
    return errors


def _connection_fields(schema: ConnectionSchema, conn: dict) -> ConnectionFields:
    """A document's connection as the schema checks it: auth keys split into settings and secrets."""
    auth = conn["auth"]
    return ConnectionFields(
        url=schema.normalise_url(conn["url"]), port=conn.get("port"),
        company=conn.get(schema.company_key) or conn.get("company") or "",
        auth_method=auth.get("method", ""), settings=_connection_settings(conn, auth.get("method", ""), auth),
        secrets={k: v for k, v in auth.items() if k in SECRET_KEYS})


def _connection_problems(schema: ConnectionSchema, conn: dict, path: str) -> list[str]:
    """The schema's problems, each at its place in the document (auth keys sit under ``auth``)."""
    auth_keys = set(conn["auth"]) | set(AUTH_KEYS.get(conn["auth"].get("method", ""), ((), ()))[0])
    places = {"url": "url", "port": "port", "company": schema.company_key, "auth_method": "auth.method"}
    errors = []
    for name, messages in schema.problems(_connection_fields(schema, conn)).items():
        for message in messages:
            key = message.split(":", 1)[0]
            if name in places:
                errors.append(f"{path}.{places[name]}: {message}")
            elif key in auth_keys and ":" in message:
                errors.append(f"{path}.auth.{message}")
            else:
                errors.append(f"{path}.settings.{message}" if ":" in message else f"{path}.settings: {message}")
    return errors


def _connection_settings(conn: dict, method: str, auth: dict) -> dict:
    """The connection's settings document: its settings, the auth method's non-secret keys, the tables."""
    settings = {**conn.get("settings", {}), **{k: v for k, v in auth.items() if k != "method" and k not in SECRET_KEYS}}
    for key in ("table_profile", "tables"):
        if conn.get(key):
            settings[key] = conn[key]
    return settings


def _credential_fingerprint(conn: Connection) -> tuple:
    """What a cached token was obtained with: if any of it changes, the token must go."""
    return (conn.system, conn.url, conn.port, conn.company, str(conn.auth_method), conn.settings or {},
            conn.secrets or {})


def load_document(doc: Any, *, dry_run: bool = False, actor: Any = None) -> LoadPlan:
    """Validate, then create or update everything in one transaction (rolled back on dry run)."""
    errors = validate(doc)
    if errors:
        raise DocumentError(errors)
    plan = LoadPlan()
    with transaction.atomic():
        tdoc = doc["tenant"]
        tenant, created = Tenant.objects.get_or_create(slug=tdoc["slug"], defaults={"name": tdoc["name"]})
        if not created and tenant.name != tdoc["name"]:
            tenant.name = tdoc["name"]
            tenant.save(update_fields=["name"])
        plan.actions.append(f"{'create' if created else 'update'} tenant {tenant.slug}")
        connections: dict[str, Connection] = {}
        for conn in doc.get("connections", []):
            method = conn["auth"]["method"]
            settings = _connection_settings(conn, method, conn["auth"])
            secrets = {k: v for k, v in conn["auth"].items() if k in SECRET_KEYS}
            obj = Connection.objects.filter(tenant=tenant, name=conn["name"]).first()
            verb = "update" if obj else "create"
            obj = obj or Connection(tenant=tenant, name=conn["name"])
            before = _credential_fingerprint(obj)
            fields = _connection_fields(schema_for(conn["system"]), conn)
            obj.system = conn["system"]
            obj.url = fields.url
            obj.port = fields.port
            obj.company = fields.company or conn["auth"].get("company_id") or ""
            obj.auth_method = AuthMethod(method) if method in AuthMethod.values else method
            obj.settings = settings
            obj.secrets = {**(obj.secrets or {}), **secrets}
            if verb == "update" and _credential_fingerprint(obj) != before:
                # New credentials: start from a fresh token. Unchanged ones keep the cached token,
                # whose refresh token may have rotated away from the one in the document (X3).
                obj.token_cache = {}
            obj.save()
            connections[obj.name] = obj
            plan.actions.append(f"{verb} connection {obj.name} ({obj.system}, {method})")
            audit(tenant.pk, f"connection.{verb}d", f"{obj.name} loaded from a tenant document", actor=actor,
                  connection_id=obj.pk, detail={"settings": redact(settings), "changed": sorted(secrets)})
        for integ in doc.get("integrations", []):
            obj = Integration.objects.filter(tenant=tenant, name=integ["name"]).first()
            verb = "update" if obj else "create"
            obj = obj or Integration(tenant=tenant, name=integ["name"])
            obj.kind = integ["kind"]
            obj.source = connections.get(integ["source"]) or Connection.objects.get(tenant=tenant, name=integ["source"])
            obj.target = connections.get(integ["target"]) or Connection.objects.get(tenant=tenant, name=integ["target"])
            obj.enabled = integ.get("enabled", True)
            obj.settings = integ.get("settings", {})
            obj.save()
            ensure_streams(obj)
            for stream, value in integ.get("schedules", {}).items():
                schedule, cron = (Schedule.CRON, value[5:]) if value.startswith("cron:") else (value, "")
                StreamState.objects.filter(integration=obj, stream=stream).update(schedule=schedule, cron=cron)
            plan.actions.append(f"{verb} integration {obj.name} ({obj.kind})")
            audit(tenant.pk, f"integration.{verb}d", f"{obj.name} loaded from a tenant document", actor=actor,
                  integration_id=obj.pk, detail={"kind": obj.kind, "settings": obj.settings,
                                                 "schedules": integ.get("schedules", {})})
        for member in doc.get("members", []):
            user, _ = get_user_model().objects.get_or_create(username=member["username"])
            Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": member["role"]})
            plan.actions.append(f"member {user.username} as {member['role']}")
        if dry_run:
            transaction.set_rollback(True)
    return plan
