"""Runs: read-only history with counts, duration, API calls, and a link to their records."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin
from integrations.admin.filters import ScopedRelatedFilter, StreamFilter
from integrations.models import SyncRun


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    tenant_field = "integration__tenant"
    list_display = ("run", "integration", "syncs", "status_badge", "trigger", "started", "took", "counts",
                    "calls", "records", "triggered_by")
    list_display_links = ("run",)
    list_select_related = ("integration",)
    list_filter = ("status", "trigger", ("integration", ScopedRelatedFilter), StreamFilter, "started_at")
    search_fields = ("=stream", "=triggered_by")
    fields = ("integration", "syncs", "status_badge", "trigger", "triggered_by", "started", "finished", "took",
              "read", "created", "updated", "unchanged", "held", "failed", "calls", "continues", "error", "records",
              "uuid")
    readonly_fields = fields

    @admin.display(description="run", ordering="pk")
    def run(self, obj: SyncRun) -> str:
        return f"#{obj.pk}"

    @admin.display(description="what it synced", ordering="stream")
    def syncs(self, obj: SyncRun):
        return display.stream_name(obj.integration.kind, obj.stream)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: SyncRun):
        return display.run_badge(obj)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: SyncRun) -> str:
        return display.local(obj.started_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj: SyncRun) -> str:
        return display.local(obj.finished_at)

    @admin.display(description="took")
    def took(self, obj: SyncRun) -> str:
        return display.duration(obj.duration)

    @admin.display(description="read · created · updated · unchanged · held · failed")
    def counts(self, obj: SyncRun) -> str:
        return " · ".join(str(getattr(obj, name)) for name in ("read", "created", "updated", "unchanged", "held",
                                                                 "failed"))

    @admin.display(description="API calls (budget)", ordering="api_calls")
    def calls(self, obj: SyncRun) -> str:
        """This run's calls, and where a connection has a budget per cycle, how much of it is used."""
        budgeted = [f"{label}: {use.get('cycle_calls', 0):,} of {use['budget']:,} this cycle"
                    for label, use in sorted((obj.call_usage or {}).items()) if use.get("budget")]
        return f"{obj.api_calls:,}" + (f" ({'; '.join(budgeted)})" if budgeted else "")

    @admin.display(description="continues")
    def continues(self, obj: SyncRun) -> str:
        if obj.continues_at is None:
            return display.EMPTY
        return f"{display.local(obj.continues_at)}, by itself (call budget reached)"

    @admin.display(description="records")
    def records(self, obj: SyncRun):
        url = reverse("admin:integrations_syncrecord_changelist")
        return format_html('<a href="{}?run={}">records</a>', url, obj.pk)
