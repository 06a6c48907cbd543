"""The webhook inbox: what systems pushed to us, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Role
from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit
from integrations.models import WebhookEvent
from integrations.tasks import queue_webhooks


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    tenant_field = "connection__tenant"
    # what the event led to before when it was processed: the event id (search it) is on its page
    list_display = ("received", "event_type", "connection", "signature_ok", "status", "led_to", "processed")
    list_select_related = ("connection", "record")
    list_filter = ("status", "signature_ok", ("connection", ScopedRelatedFilter))
    search_fields = ("=event_id",)
    fields = ("connection", "event_id", "event_type", "signature_ok", "status", "reason", "received", "processed",
              "led_to", "payload_pretty")
    readonly_fields = fields
    actions = ("process_again",)

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
        """The record the event was about, and what the target holds for it (e.g. the X3 entry)."""
        if not obj.record_id:
            return "—"
        record = obj.record
        written = f" → {record.target_id}" if record.target_id else ""
        return format_html('<a href="{}" title="The record this event named, read again from the source">{}{}</a>',
                           reverse("admin:integrations_syncrecord_change", args=[obj.record_id]),
                           record.business_key or record.source_key, written)

    @admin.action(description="Process the selected events again", permissions=("operate",))
    def process_again(self, request: HttpRequest, queryset: QuerySet):
        """Signed events go back to the queue: each names its record, read again from the source and
        written only if it changed (an event is a hint; a refused signature is never processed)."""
        events = self.scoped(request, queryset, Role.OPERATOR).filter(signature_ok=True).exclude(
            status=WebhookEvent.Status.RECEIVED)
        chosen = list(events.select_related("connection"))
        refused = queryset.count() - len(chosen)
        WebhookEvent.objects.filter(pk__in=[e.pk for e in chosen]).update(
            status=WebhookEvent.Status.RECEIVED, processed_at=None, reason=f"Queued again by {request.user}")
        for connection in {e.connection for e in chosen}:
            mine = [e for e in chosen if e.connection_id == connection.pk]
            audit(connection.tenant_id, "webhook.replayed",
                  f"{len(mine)} webhook event(s) of {connection.name} queued again by {request.user}",
                  connection_id=connection.pk, actor=request.user,
                  detail={"events": [e.event_id for e in mine][:200]})
            queue_webhooks(connection.pk)
        note = f"; {refused} left alone (unsigned, or still waiting)" if refused else ""
        self.message_user(request, f"Queued {len(chosen)} event(s) to be processed again at "
                                   f"{display.local(timezone.now())}{note}.")
