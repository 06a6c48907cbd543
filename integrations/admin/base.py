"""What every console page shares: tenant scoping, role-based permissions, cheap pagination.

Permissions come from Membership roles (accounts.scoping), not from Django's permission
tables: a member needs ``is_staff`` to log in and nothing else. Superusers see every tenant,
but log tables stay read-only even for them.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property

from accounts.models import Role, Tenant
from accounts.roles import denied_message, doing_for, tenant_names_for_message
from accounts.scoping import has_role, scope, tenant_ids_for, tenants_for
from integrations.models import Integration
from portal.middleware import request_id as portal_request_id

# How each model reaches its tenant, for scoping foreign-key choices and autocompletes.
TENANT_PATHS: dict[str, str] = {
    "accounts.tenant": "id",
    "accounts.membership": "tenant",
    "integrations.connection": "tenant",
    "integrations.integration": "tenant",
    "integrations.streamstate": "integration__tenant",
    "integrations.mapping": "integration__tenant",
    "integrations.referencerecord": "integration__tenant",
    "integrations.syncrun": "integration__tenant",
    "integrations.syncrecord": "integration__tenant",
    "integrations.syncattempt": "record__integration__tenant",
    "integrations.auditevent": "tenant",
    "integrations.webhookevent": "connection__tenant",
    "integrations.reconciliationrun": "integration__tenant",
    "integrations.reconciliationline": "run__integration__tenant",
}


def tenant_path(model: type[Model]) -> str | None:
    opts = (model._meta.proxy_for_model or model)._meta
    return TENANT_PATHS.get(opts.label_lower)


def tenant_id_of(obj: Model, path: str) -> int:
    """Follow ``path`` (e.g. ``integration__tenant``) from ``obj`` to its tenant id."""
    if path in ("id", "pk"):
        return obj.pk
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop)
    return getattr(obj, f"{last}_id")


def request_id(request: HttpRequest) -> str:
    """One id per request, so every audit event of one click can be grouped.

    The id is the one ``portal.middleware.RequestIDMiddleware`` validated (the caller's
    ``X-Request-ID`` when it is acceptable, else a fresh one), shared with the API.
    """
    return portal_request_id(request)


class CappedCountPaginator(Paginator):
    """Counts at most ``cap + 1`` rows, so a big table never gets a full ``COUNT(*)``.

    Pages past the cap are not offered; the pagination template says "more than N" and
    filters narrow the list.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by().values("pk")[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


# The query keys a field filter of list_filter reads (exact values, related ids, date bounds, empties).
FILTER_SUFFIXES = ("", "__exact", "__id__exact", "__isnull", "__gte", "__lt")


def _within_calendar(value: str) -> bool:
    """False for a date-time that exists only past year 9999 or before year 1 once in UTC."""
    try:
        moment = parse_datetime(value.strip())
    except ValueError:
        return True  # not a valid date-time: the admin's own checks answer it
    if moment is None:
        return True
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True


class GuardedChangeList(ChangeList):
    """Django's changelist; a filter value the database cannot hold is an invalid filter (``?e=1``).

    A date filter's bounds are easily crafted past year 9999 in UTC (``?created_at__gte=9999-12-31
    23:59:59-05:00``): Django checks them as dates, and the OverflowError only came when the page
    was counted, as a 500. PostgreSQL refuses NUL in any text it is given (a search, a filter).
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        if any("\x00" in text for key, values in request.GET.lists() for text in (key, *values)):
            raise IncorrectLookupParameters("a NUL character in the query string")
        # past the calendar in UTC: SQLite overflows, PostgreSQL would answer; refused on both alike
        if not all(_within_calendar(value) for _key, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("a date outside the calendar")
        return super().get_queryset(request, exclude_parameters)

    def get_results(self, request: HttpRequest) -> None:
        try:
            super().get_results(request)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class TenantScopedAdmin:
    """Mixin for a ModelAdmin: rows, choices and actions limited to the user's tenants and role.

    ``*_role`` is the least role that may do the thing; ``None`` means nobody (not even a
    superuser) may, which is how log tables stay read-only.
    """

    tenant_field = "tenant"
    # Rows of integrations in a table of millions (records): scoped by the user's integration ids,
    # a short list, instead of a join on the tenant, which steered SQLite to a tenant-wide index and
    # a sort of every record of the tenant (1.5 s at a million rows; 60 ms with the list).
    scope_by_integration_ids = False
    view_role: str | None = Role.VIEWER
    add_role: str | None = None
    change_role: str | None = None
    delete_role: str | None = None
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per choice on big tables

    # --- what a list may be filtered by -------------------------------------------------------
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return GuardedChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """Only the keys of the page's own filters (and Django's related-object popups): a 400 otherwise.

        Django also lets ``?<column>__<lookup>=`` through for every column, unchecked until the
        database sees it: ``?pk__in=99999999999999999999`` or ``?name__range=x`` were 500s, and
        nothing in the console links to such a list.
        """
        for fk_lookup in self.model._meta.related_fkey_lookups:
            fk_lookup = fk_lookup() if callable(fk_lookup) else fk_lookup
            if (lookup, value) in widgets.url_params_from_lookup_dict(fk_lookup).items():
                return True
        for item in self.get_list_filter(request) if request is not None else self.list_filter:
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                if lookup == item.parameter_name:
                    return True
                continue
            path = item[0] if isinstance(item, list | tuple) else item
            if any(lookup == f"{path}{suffix}" for suffix in FILTER_SUFFIXES):
                return True
        return False

    # --- scoping ------------------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        # (with a search term the key range is the selective part, and SQLite starts from it either way)
        if self.scope_by_integration_ids and not request.GET.get("q"):
            ids = tenant_ids_for(request.user)
            if ids is None:
                return queryset
            return queryset.filter(integration_id__in=list(
                Integration.objects.filter(tenant_id__in=ids).order_by().values_list("pk", flat=True)))
        return scope(queryset, request.user, self.tenant_field)

    def scoped(self, request: HttpRequest, queryset: QuerySet, role: str) -> QuerySet:
        """``queryset`` narrowed to the tenants where the user holds ``role`` (for actions)."""
        return scope(queryset, request.user, self.tenant_field, min_role=role)

    def url_name(self, action: str) -> str:
        """Name of an extra console URL of this admin, e.g. ``integrations_connection_test``."""
        return f"{self.opts.app_label}_{self.opts.model_name}_{action}"

    def tenant_of(self, obj: Model) -> int:
        return tenant_id_of(obj, self.tenant_field)

    # --- permissions by role ------------------------------------------------------------------
    def allows(self, request: HttpRequest, role: str | None, obj: Model | None = None) -> bool:
        if role is None:
            return False
        if obj is None:
            ids = tenant_ids_for(request.user, role)
            return ids is None or bool(ids)
        return has_role(request.user, self.tenant_of(obj), role)

    def require(self, request: HttpRequest, role: str, obj: Model | None = None) -> None:
        """Refuse with a 403 that names the role needed, the tenant and what the URL does."""
        if not self.allows(request, role, obj):
            match = getattr(request, "resolver_match", None)
            tenant_id = self.tenant_of(obj) if obj is not None else None
            raise PermissionDenied(denied_message(role, doing_for(match.url_name if match else ""),
                                                  tenant_names_for_message(request.user, tenant_id)))

    def object_for(self, request: HttpRequest, object_id: str, role: str) -> Model:
        """The object behind a console URL, if the user holds ``role`` for it.

        403 for a user without the role in any tenant; 404 for an object outside their tenants
        (another tenant's rows do not exist for them); 403 for one they see with a lesser role.
        """
        self.require(request, role)
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        self.require(request, role, obj)
        return obj

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.allows(request, self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.allows(request, self.view_role, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.allows(request, self.add_role)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.allows(request, self.change_role, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.allows(request, self.delete_role, obj)

    # used by actions: allowed_permissions = ("operate",) etc.
    def has_operate_permission(self, request: HttpRequest) -> bool:
        return self.allows(request, Role.OPERATOR)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return self.allows(request, Role.APPROVER)

    def has_administer_permission(self, request: HttpRequest) -> bool:
        return self.allows(request, Role.ADMIN)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        if self.delete_role is None:
            raise PermissionDenied
        super().delete_queryset(request, self.scoped(request, queryset, self.delete_role))

    # --- choices in forms and autocompletes ---------------------------------------------------
    @property
    def edit_role(self) -> str:
        return self.change_role or self.add_role or Role.ADMIN

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        path = tenant_path(db_field.related_model)
        if path is not None and "queryset" not in kwargs:
            related = db_field.related_model._default_manager.all()
            if db_field.related_model is Tenant:
                kwargs["queryset"] = tenants_for(request.user, self.edit_role)
            else:
                kwargs["queryset"] = scope(related, request.user, path, min_role=self.edit_role)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        source_admin = self._autocomplete_source_admin(request)
        if source_admin is not None:
            # An autocomplete offers what the *editing* form may point at: the source form's role.
            queryset = self.scoped(request, queryset, getattr(source_admin, "edit_role", Role.ADMIN))
        return queryset, distinct

    def _autocomplete_source_admin(self, request: HttpRequest):
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != "autocomplete":
            return None
        for model, model_admin in self.admin_site._registry.items():
            opts = model._meta
            if (opts.app_label, opts.model_name) == (request.GET.get("app_label"), request.GET.get("model_name")):
                return model_admin
        return None


class ReadOnlyAdmin(TenantScopedAdmin):
    """Log tables: visible by role, never added, changed or deleted through the console."""

    add_role = None
    change_role = None
    delete_role = None
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
