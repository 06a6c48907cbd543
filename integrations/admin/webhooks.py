"""The webhook inbox: what systems pushed to us, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin
from integrations.admin.filters import ScopedRelatedFilter
from integrations.models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    tenant_field = "connection__tenant"
    list_display = ("received", "event_type", "event_id", "connection", "signature_ok", "status", "processed",
                    "led_to")
    list_select_related = ("connection", "record")
    list_filter = ("status", "signature_ok", ("connection", ScopedRelatedFilter))
    search_fields = ("=event_id",)
    fields = ("connection", "event_id", "event_type", "signature_ok", "status", "reason", "received", "processed",
              "led_to", "payload_pretty")
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

    @admin.display(description="led to")
    def led_to(self, obj: WebhookEvent):
        if not obj.record_id:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:integrations_syncrecord_change", args=[obj.record_id]),
                           obj.record.business_key or obj.record.source_key)
