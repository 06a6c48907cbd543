"""Who may do what through the API: tenant scoping plus the role each action needs.

Two layers, in this order:

1. Every queryset is scoped to the tenants the user belongs to (:func:`accounts.scoping.scope`),
   so an object of another tenant is simply not found: 404, never 403, to avoid leaking that
   it exists.
2. The action's role (viewer, operator, approver, admin) is checked against the user's role
   *in the object's tenant*. A teammate with too small a role gets 403 with the role named.

Actions that act on no single object (create, bulk replay, bulk approve) need the role in at
least one tenant up front; the view then checks it for every object the request names.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import Role
from accounts.scoping import has_role, tenant_ids_for


def tenant_id_of(obj: Model, tenant_field: str) -> int:
    """Follow ``tenant_field`` (``"tenant"`` or ``"integration__tenant"``) to the tenant id."""
    *path, last = tenant_field.split("__")
    for name in path:
        obj = getattr(obj, name)
    return getattr(obj, f"{last}_id")


def role_label(role: str) -> str:
    return Role(role).value


class TenantRolePermission(BasePermission):
    """The role a view's action needs, held in the tenant of the object it touches.

    Views declare ``roles = {"action": Role.X}``; reads default to viewer and any other
    unsafe action to admin, so a forgotten declaration fails closed.
    """

    message = "You do not have the role this action needs."

    def has_permission(self, request: Any, view: Any) -> bool:
        role = view.required_role()
        if request.method in SAFE_METHODS and role == Role.VIEWER:
            return True  # lists are scoped; a user of no tenant sees an empty list
        if getattr(view, "detail", False):
            return True  # decided per object, after the 404 of other tenants
        ids = tenant_ids_for(request.user, role)
        if ids is None or ids:
            return True
        self.message = f"You need the {role_label(role)} role in a tenant to do this."
        return False

    def has_object_permission(self, request: Any, view: Any, obj: Model) -> bool:
        role = view.required_role()
        if has_role(request.user, tenant_id_of(obj, view.tenant_field), role):
            return True
        self.message = f"You need the {role_label(role)} role in this tenant to do this."
        return False
