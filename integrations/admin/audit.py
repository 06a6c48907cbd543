"""The audit trail: read-only and undeletable for everyone, filterable, exportable as CSV.

Filters offered are each answered by an index: actor (audit_actor_idx), action (its own
index), date (created_at), tenant (audit_tenant_time_idx), integration (its foreign key).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Membership
from accounts.scoping import tenant_ids_for, tenants_for
from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import SYSTEM, audit_event, audit_many
from integrations.models import AuditEvent
from integrations.systems.redaction import redact, redact_text

CSV_COLUMNS = ("time", "tenant", "actor", "action", "integration", "connection_id", "record_id", "run_id",
               "message", "detail", "request_id")
ACTION_GROUPS = {
    "connection.": "Connections",
    "integration.": "Integrations",
    "run.": "Runs",
    "record": "Records",
    "mapping.": "Mappings",
    "membership.": "Members",
    "audit.": "Audit exports",
    "auth.": "Sign-ins",  # failed sign-ins and lockouts (portal/throttling.py)
}


class ActorFilter(admin.SimpleListFilter):
    """Members of the user's tenants, and the system; choices from memberships, not the log."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        members = Membership.objects.all()
        ids = tenant_ids_for(request.user)
        if ids is not None:
            members = members.filter(tenant_id__in=ids)
        names = members.order_by("user__username").values_list("user__username", flat=True).distinct()
        return [(SYSTEM, SYSTEM), *((name, name) for name in names)]

    def queryset(self, request, queryset):
        return queryset.filter(actor_name=self.value()) if self.value() else queryset


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return list(ACTION_GROUPS.items())

    def queryset(self, request, queryset):
        prefix = self.value()
        if prefix not in ACTION_GROUPS:
            return queryset
        # a range rather than LIKE 'prefix%': the action index answers it on every database
        return queryset.filter(action__gte=prefix, action__lt=prefix[:-1] + chr(ord(prefix[-1]) + 1))


class MonthFilter(admin.SimpleListFilter):
    """Calendar months in local time: month-end evidence is "everything in October"."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        today = timezone.localdate()
        months = []
        year, month = today.year, today.month
        for _ in range(13):
            months.append((f"{year:04d}-{month:02d}", f"{datetime(year, month, 1):%B %Y}"))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return months

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            start = timezone.make_aware(datetime(year, month, 1))
            end = timezone.make_aware(datetime(year + month // 12, month % 12 + 1, 1))
            for bound in (start, end):
                bound.astimezone(UTC)  # the database is given UTC: still in range near year 1 or 9999?
        except (ValueError, OverflowError):  # a year past what a datetime holds is an OverflowError (was a 500)
            raise IncorrectLookupParameters(f"month must be YYYY-MM, not {self.value()!r}")
        return queryset.filter(created_at__gte=start, created_at__lt=end)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a cell starting like a formula is text, not a formula, when the evidence is opened in Excel
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(queryset) -> Iterator[str]:
    """The events as CSV lines, streamed in chunks; details and messages redacted again."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = queryset.values_list("created_at", "tenant__slug", "actor_name", "action", "integration__name",
                                "connection_id", "record_id", "run_id", "message", "detail", "request_id")
    for created_at, tenant, actor, action, integration, conn, record, run, message, detail, req in rows.iterator(
            chunk_size=2000):
        yield writer.writerow([_cell(v) for v in (
            timezone.localtime(created_at).isoformat(), tenant, actor, action, integration, conn, record, run,
            redact_text(message), json.dumps(redact(detail), sort_keys=True, ensure_ascii=False), req)])


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    change_list_template = "admin/integrations/auditevent/change_list.html"
    list_display = ("when", "actor_name", "action", "short_message", "tenant", "integration", "record_link")
    list_display_links = ("when",)
    list_select_related = ("tenant", "integration")
    list_filter = (ActorFilter, ActionFilter, MonthFilter, "created_at", ("tenant", ScopedRelatedFilter),
                   ("integration", ScopedRelatedFilter))
    search_fields = ("=action", "=actor_name", "=request_id")
    search_help_text = "Exact action (e.g. record.replayed), username or request id."
    fields = ("when", "actor_name", "action", "message", "tenant", "integration", "connection", "record_link",
              "run", "request_id", "detail_pretty")
    readonly_fields = fields

    @admin.display(description="when", ordering="created_at")
    def when(self, obj: AuditEvent) -> str:
        return display.local(obj.created_at)

    @admin.display(description="message")
    def short_message(self, obj: AuditEvent) -> str:
        return redact_text(obj.message[:200])

    @admin.display(description="record")
    def record_link(self, obj: AuditEvent):
        if not obj.record_id:
            return display.EMPTY
        url = reverse("admin:integrations_syncrecord_change", args=[obj.record_id])
        return format_html('<a href="{}">#{}</a>', url, obj.record_id)

    @admin.display(description="detail")
    def detail_pretty(self, obj: AuditEvent):
        return display.pretty_json(obj.detail)

    def get_urls(self):
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name=self.url_name("export")),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest):
        """The changelist's rows (same filters and search) as a streamed CSV file."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            queryset = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter.")
        filters = {k: v for k, v in request.GET.items() if k not in ("o", "p")}
        audit_many([audit_event(tenant.pk, "audit.exported", "Audit trail exported as CSV", actor=request.user,
                                request_id=request_id(request), detail={"filters": filters})
                    for tenant in tenants_for(request.user)])
        response = StreamingHttpResponse(csv_rows(queryset), content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
        return response
