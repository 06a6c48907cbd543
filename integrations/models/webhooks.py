"""The inbox for events pushed to us (ServiceTitan webhooks)."""

from __future__ import annotations

from django.db import models

from integrations.models.connections import Connection


class WebhookEvent(models.Model):
    """One pushed event, stored before it is acknowledged, processed later by a task."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        REJECTED = "rejected", "Rejected (bad signature)"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(
        Connection,
        on_delete=models.CASCADE,
        related_name="webhook_events",
    )
    event_id = models.CharField(
        max_length=200,
    )
    event_type = models.CharField(
        max_length=100,
        blank=True,
    )
    signature_ok = models.BooleanField(
        default=False,
    )
    payload = models.JSONField(
        default=dict,
        blank=True,
    )
    raw_body = models.TextField(
        blank=True,
        help_text="The body exactly as received (what the signature covers); empty for a rejected request.",
    )
    reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why it was rejected or failed, or what it led to.",
    )
    record = models.ForeignKey(
        "integrations.SyncRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_events",
        help_text="The record this event led to.",
    )
    status = models.CharField(
        max_length=16,
        choices=Status.choices,
        default=Status.RECEIVED,
    )
    received_at = models.DateTimeField(
        auto_now_add=True,
    )
    processed_at = models.DateTimeField(
        null=True,
        blank=True,
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "event_id"],
                name="webhook_unique_event",
                violation_error_message="This event was already received.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
