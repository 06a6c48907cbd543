"""Loading a tenant, its connections and integrations from one JSON document.

Everything is validated before anything is written; errors name the JSON path. Applying runs
in one transaction, so a bad document (or ``--dry-run``) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Membership, Tenant
from integrations.engine.audit import audit
from integrations.engine.runner import ensure_streams
from integrations.flows import flow_kinds, get_flow
from integrations.models import AuthMethod, Connection, Integration, Schedule, StreamState, System
from integrations.systems.redaction import redact
from integrations.systems.registry import connection_settings_errors
from integrations.systems.schema import AUTH_KEYS, SECRET_KEYS

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


def _text(obj: dict, key: str, path: str, errors: list[str], required: bool = True) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            errors.append(f"{path}.{key}: required")
        return ""
    if not isinstance(value, str):
        errors.append(f"{path}.{key}: must be a string")
        return ""
    return value


def validate(doc: Any) -> list[str]:
    errors: list[str] = []
    if not _require(doc, "$", errors):
        return errors
    unknown = set(doc) - {"tenant", "connections", "integrations", "members"}
    errors.extend(f"$.{key}: unknown key" for key in sorted(unknown))
    tenant = doc.get("tenant")
    if _require(tenant, "$.tenant", errors):
        slug = _text(tenant, "slug", "$.tenant", errors)
        if slug and not slug.replace("-", "").replace("_", "").isalnum():
            errors.append("$.tenant.slug: letters, digits, '-' and '_' only")
        _text(tenant, "name", "$.tenant", errors)
    names: dict[str, str] = {}
    connections = doc.get("connections", [])
    if _require(connections, "$.connections", errors, list):
        for i, conn in enumerate(connections):
            path = f"$.connections[{i}]"
            if not _require(conn, path, errors):
                continue
            errors.extend(f"{path}.{key}: unknown key" for key in sorted(set(conn) - CONNECTION_KEYS))
            name = _text(conn, "name", path, errors)
            if name in names:
                errors.append(f"{path}.name: duplicate connection name {name!r}")
            system = _text(conn, "system", path, errors)
            if system and system not in System.values:
                errors.append(f"{path}.system: {system!r} is not one of {', '.join(System.values)}")
            names[name] = system
            url = _text(conn, "url", path, errors)
            bad_url = url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc)
            if bad_url and not (system == "servicenow" and url.isidentifier()):
                errors.append(f"{path}.url: must be an http(s) URL (or a ServiceNow instance name)")
            port = conn.get("port")
            if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
                errors.append(f"{path}.port: must be an integer between 1 and 65535")
            if system == "sage_x3" and not (conn.get("folder") or conn.get("company")):
                errors.append(f"{path}.folder: required for Sage X3 (the X3 folder / endpoint name)")
            profile = conn.get("table_profile")
            if profile is not None and profile not in ("seed", "apo"):
                errors.append(f"{path}.table_profile: must be 'seed' or 'apo'")
            for key in ("tables", "settings"):
                if key in conn:
                    _require(conn[key], f"{path}.{key}", errors)
            auth = conn.get("auth")
            if _require(auth, f"{path}.auth", errors):
                method = _text(auth, "method", f"{path}.auth", errors)
                if method and method not in AUTH_KEYS:
                    errors.append(f"{path}.auth.method: {method!r} is not one of {', '.join(AUTH_KEYS)}")
                elif method:
                    required, optional = AUTH_KEYS[method]
                    for key in required:
                        _text(auth, key, f"{path}.auth", errors)
                    for key in sorted(set(auth) - set(required) - set(optional) - {"method"}):
                        errors.append(f"{path}.auth.{key}: unknown key for method {method}")
                    if method == "oauth2_refresh_token" and system == "sage_x3":
                        _text(auth, "token_url", f"{path}.auth", errors)
                if system == "sage_intacct":
                    errors.extend(_intacct_errors(conn, auth, method, path))
                if method in AUTH_KEYS and isinstance(conn.get("settings", {}), dict):
                    errors.extend(f"{path}.settings.{problem}" for problem in connection_settings_errors(
                        system, method, _connection_settings(conn, method, auth)))
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
            name = _text(integ, "name", path, errors)
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
                _text(member, "username", f"$.members[{i}]", errors)
                if member.get("role") not in ("viewer", "operator", "approver", "admin"):
                    errors.append(f"$.members[{i}].role: must be viewer, operator, approver or admin")
    return errors


def _intacct_errors(conn: dict, auth: dict, method: str, path: str) -> list[str]:
    """Intacct signs in per sender, company and user: the company id is required, once."""
    errors = []
    if method and method != "session":
        errors.append(f"{path}.auth.method: Sage Intacct signs in with 'session' (sender and user credentials)")
    company, auth_company = conn.get("company"), auth.get("company_id")
    if not (company or auth_company):
        errors.append(f"{path}.company: required for Sage Intacct (the company id; or auth.company_id)")
    elif company and auth_company and company != auth_company:
        errors.append(f"{path}.auth.company_id: {auth_company!r} differs from company {company!r}")
    entity, location = auth.get("entity_id"), auth.get("location_id")
    if entity and location and entity != location:
        errors.append(f"{path}.auth.location_id: {location!r} differs from entity_id {entity!r} (give one)")
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
            obj.system = conn["system"]
            obj.url = conn["url"] if "://" in conn["url"] else f"https://{conn['url']}.service-now.com"
            obj.port = conn.get("port")
            obj.company = conn.get("folder") or conn.get("company") or conn["auth"].get("company_id") or ""
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
