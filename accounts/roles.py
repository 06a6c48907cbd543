"""Roles in words: who a user is in the header, why a button is disabled, what a 403 asks for.

One place writes these sentences, so the disabled button ("Operators and above may replay
records") and the refusal behind it ("You need the operator role in Acme Manufacturing to
replay records") always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Role, Tenant
from accounts.scoping import tenant_ids_for

# How many tenants the header lists by name before it says "N organisations".
HEADER_LISTED = 2
NAME_KEY = "tenant-name:"
NAME_SECONDS = 300

PLURAL = {
    Role.VIEWER: "Viewers",
    Role.OPERATOR: "Operators",
    Role.APPROVER: "Approvers",
    Role.ADMIN: "Admins",
}

# What a console URL does, in words, keyed by its URL name without the app
# (``integrations_syncrecord_replay`` -> ``syncrecord_replay``, then ``replay``): for its 403.
DOING = {
    "replay": "replay records",
    "integration_run": "run integrations",
    "resume": "resume integrations",
    "connection_test": "test connections",
    "alertsettings_test": "send test alerts",
    "reconcile": "reconcile",
    "reconciliation": "see reconciliations",
    "csv": "download this report",
    "approve_above": "approve mappings",
    "import": "import mappings",
    "targets": "map codes",
    "membership_invite": "invite members",
    "add": "add this",
    "change": "change this",
    "delete": "delete this",
}


def doing_for(url_name: str | None) -> str:
    """What the console URL named ``url_name`` does, in words ("" when unknown)."""
    _app, _, action = (url_name or "").partition("_")
    _model, _, verb = action.partition("_")
    return DOING.get(action) or DOING.get(verb, "")


def role_name(role: str) -> str:
    """``operator`` -> ``Operator`` (the short name, without the powers in brackets)."""
    return str(role).capitalize()


def disabled_reason(role: str, doing: str) -> str:
    """Why a button is disabled: "Operators and above may replay records"."""
    if role == Role.ADMIN:
        return f"Only admins may {doing}"
    return f"{PLURAL[Role(role)]} and above may {doing}"


def denied_message(role: str | None, doing: str, tenant_names: list[str]) -> str:
    """The 403's sentence: the role needed, where, and whom to ask."""
    doing = doing or "do this"
    if role is None:
        return f"Nobody may {doing} in the console: it is kept as it was written."
    if len(tenant_names) == 1:
        where = tenant_names[0]
        return f"You need the {role} role in {where} to {doing}. Ask an admin of {where}."
    return f"You need the {role} role to {doing}. Ask an admin of your organisation."


@dataclass(frozen=True)
class Seat:
    """One tenant the user belongs to, with their role there."""

    tenant: str
    role: str

    def __str__(self) -> str:
        return f"{self.tenant} · {role_name(self.role)}"


def tenant_names(tenant_ids: list[int]) -> dict[int, str]:
    """Tenant names by id, from the cache when it has them: the header is on every page, and its
    query budget is counted (tests/admin/test_queries.py)."""
    keys = {tid: f"{NAME_KEY}{tid}" for tid in tenant_ids}
    found = cache.get_many(list(keys.values()))
    names = {tid: found[key] for tid, key in keys.items() if key in found}
    missing = [tid for tid in tenant_ids if tid not in names]
    if missing:
        fetched = dict(Tenant.objects.filter(pk__in=missing).values_list("pk", "name"))
        cache.set_many({keys[tid]: name for tid, name in fetched.items()}, NAME_SECONDS)
        names.update(fetched)
    return names


@receiver(post_save, sender=Tenant)
def _forget_tenant_name(sender: type[Tenant], instance: Tenant, **kwargs: Any) -> None:
    cache.delete(f"{NAME_KEY}{instance.pk}")


def seats_of(user: Any) -> list[Seat]:
    """The user's tenants and roles, by tenant name.

    The roles come from the memberships the page loaded already to scope its rows
    (``accounts.scoping``), the names from the cache: usually no query at all.
    """
    if not getattr(user, "is_authenticated", False):
        return []
    tenant_ids_for(user)  # loads (once per request) the user's roles by tenant
    roles: dict[int, str] = getattr(user, "_tenant_roles_cache", None) or {}
    names = tenant_names(sorted(roles))
    return sorted((Seat(names[tid], role) for tid, role in roles.items() if tid in names),
                  key=lambda seat: seat.tenant.lower())


def header_label(user: Any) -> tuple[str, str]:
    """What the header says about the user, and a tooltip listing every tenant when it is shortened."""
    if getattr(user, "is_superuser", False):
        return "All organisations · Superuser", ""
    seats = seats_of(user)
    if not seats:
        return "No organisation yet", ""
    if len(seats) <= HEADER_LISTED:
        return ", ".join(str(seat) for seat in seats), ""
    return f"{len(seats)} organisations", "; ".join(str(seat) for seat in seats)


def tenant_names_for_message(user: Any, tenant_id: int | None) -> list[str]:
    """The tenant a refusal is about: the object's, else the user's only one (else none named)."""
    if tenant_id is not None:
        return list(tenant_names([tenant_id]).values())
    return [seat.tenant for seat in seats_of(user)]


def reason_unless(allowed: bool, role: str, doing: str) -> str:
    """The disabled button's reason when the user may not, "" when they may."""
    return "" if allowed else disabled_reason(role, doing)
