"""Tenant scoping: which tenants a user may see, and with which role.

One place answers "may this user do X in this tenant"; the admin, the API and the management
commands all ask it.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Membership, Role, Tenant


def tenant_ids_for(user, min_role: str = Role.VIEWER) -> set[int] | None:
    """Tenant ids where ``user`` holds at least ``min_role``; ``None`` means all (superuser)."""
    if not user or not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return None
    cache = getattr(user, "_tenant_roles_cache", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=user).values_list("tenant_id", "role"))
        user._tenant_roles_cache = cache
    wanted = Role.rank(min_role)
    return {tid for tid, role in cache.items() if Role.rank(role) >= wanted}


def scope(queryset: QuerySet, user, tenant_field: str = "tenant", min_role: str = Role.VIEWER) -> QuerySet:
    """Filter ``queryset`` to rows in tenants where ``user`` holds ``min_role``."""
    ids = tenant_ids_for(user, min_role)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{tenant_field}__in": ids})


def has_role(user, tenant_id: int, role: str) -> bool:
    ids = tenant_ids_for(user, role)
    return ids is None or tenant_id in ids


def tenants_for(user, min_role: str = Role.VIEWER) -> QuerySet:
    return scope(Tenant.objects.all(), user, tenant_field="id", min_role=min_role)
