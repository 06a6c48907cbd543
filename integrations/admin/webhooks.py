"""The webhook inbox: what systems pushed to us, read-only."""

from __future__ import annotations

from django.contrib import admin

from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin
from integrations.admin.filters import ScopedRelatedFilter
from integrations.models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    tenant_field = "connection__tenant"
    list_display = ("received", "event_type", "event_id", "connection", "signature_ok", "status", "processed")
    list_select_related = ("connection",)
    list_filter = ("status", "signature_ok", ("connection", ScopedRelatedFilter))
    search_fields = ("=event_id",)
    fields = ("connection", "event_id", "event_type", "signature_ok", "status", "received", "processed",
              "payload_pretty")
    readonly_fields = fields

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: WebhookEvent) -> str:
        return display.local(obj.received_at)

    @admin.display(description="processed", ordering="processed_at")
    def processed(self, obj: WebhookEvent) -> str:
        return display.local(obj.processed_at)

    @admin.display(description="payload")
    def payload_pretty(self, obj: WebhookEvent):
        return display.pretty_json(obj.payload)
