"""The base every API viewset stands on: tenant scoping, roles per action, declared filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated

from accounts.models import Role
from accounts.scoping import has_role, scope
from integrations.api.filters import DeclaredFilterBackend, Filter
from integrations.api.permissions import TenantRolePermission, role_label, tenant_id_of
from portal.middleware import request_id


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Rows of the user's tenants only; each action needs the role named in ``roles``.

    ``tenant_field`` is the path from the model to its tenant; ``base_queryset`` returns the
    unscoped queryset (with its select_related), which ``get_queryset`` narrows to the user.
    """

    permission_classes = [IsAuthenticated, TenantRolePermission]
    filter_backends = [DeclaredFilterBackend]
    lookup_value_regex = r"\d+"
    model: ClassVar[type[Model]]
    tenant_field: ClassVar[str] = "tenant"
    roles: ClassVar[dict[str, str]] = {}
    filters: ClassVar[tuple[Filter, ...]] = ()

    def required_role(self) -> str:
        if self.action is None:
            return Role.VIEWER  # no such action: let the method-not-allowed answer through
        if self.action in self.roles:
            return self.roles[self.action]
        # reads need a seat in the tenant; any write nobody declared needs the highest role
        return Role.VIEWER if self.request.method in SAFE_METHODS else Role.ADMIN

    def base_queryset(self) -> QuerySet:
        return self.model.objects.all()

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return self.model.objects.none()
        return scope(self.base_queryset(), self.request.user, self.tenant_field)

    @property
    def request_id(self) -> str:
        return request_id(self.request)

    def scoped_objects(self, ids: Iterable[int], role: str, queryset: QuerySet | None = None) -> list[Any]:
        """The objects ``ids`` name, in order, for a bulk action needing ``role`` on each.

        ``queryset`` (default: the view's) is always narrowed to the user's tenants first.

        Ids the user cannot see get the same answer as ids that do not exist; ids the user
        can see but lacks the role for are refused as a whole, so nothing is half done.
        """
        wanted = list(dict.fromkeys(ids))
        queryset = self.get_queryset() if queryset is None else scope(queryset, self.request.user, self.tenant_field)
        found = {obj.pk: obj for obj in queryset.filter(pk__in=wanted)}
        unknown = [pk for pk in wanted if pk not in found]
        if unknown:
            raise ValidationError({"ids": f"Unknown id(s): {', '.join(map(str, unknown))}."})
        denied = [pk for pk in wanted
                  if not has_role(self.request.user, tenant_id_of(found[pk], self.tenant_field), role)]
        if denied:
            raise PermissionDenied(f"You need the {role_label(role)} role in the tenant of id(s) "
                                   f"{', '.join(map(str, denied))}; nothing was done.")
        return [found[pk] for pk in wanted]
