"""Integrations (a pair of connections) and their streams' watermarks."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import Tenant
from integrations.flows import flow_kinds, get_flow
from integrations.models.connections import Connection


class Schedule(models.TextChoices):
    MANUAL = "manual", "Manual only"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    CRON = "cron", "Cron expression"


class Integration(models.Model):
    """A pair of connections moving data for one of the five products (its ``kind``)."""

    uuid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
    )
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="integrations",
    )
    name = models.CharField(
        max_length=100,
    )
    kind = models.CharField(
        max_length=64,
        help_text="Which pair this is, e.g. sage_x3__servicenow.",
    )
    source = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        related_name="integrations_as_source",
    )
    target = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        related_name="integrations_as_target",
    )
    enabled = models.BooleanField(
        default=True,
        help_text="Paused integrations run no scheduled syncs.",
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="page_size, batch_size, call_budget, supplier_writeback...",
    )
    created_at = models.DateTimeField(
        auto_now_add=True,
    )

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="integration_unique_name_per_tenant",
                violation_error_message="An integration with this name already exists in this tenant.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.kind in dict(flow_kinds()):
            errors = get_flow(self.kind).settings_errors(self.settings)
            if errors:
                raise ValidationError({"settings": errors})


class StreamState(models.Model):
    """The watermark and lock of one stream of one integration.

    ``checkpoint`` is where the stream resumes (:class:`integrations.flows.base.Checkpoint`:
    the last record fully processed, or a vendor's continuation token); the engine stores it and
    only the stream reads it. ``cursor`` repeats its update time for people ("synced up to").
    ``lock_token`` and ``lock_heartbeat_at`` keep two runs of the stream apart.
    """

    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="streams",
    )
    stream = models.CharField(
        max_length=64,
    )
    enabled = models.BooleanField(
        default=True,
    )
    schedule = models.CharField(
        max_length=16,
        choices=Schedule.choices,
        default=Schedule.DAILY,
    )
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text="Cron expression when the schedule is 'cron'.",
    )
    cursor = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="The source's update time of the last record processed.",
    )
    checkpoint = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Where the next run resumes, as the stream understands it.",
    )
    resume = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Where a run cut short by its call budget stopped.",
    )
    last_success_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )
    lock_token = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
    )
    lock_heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )

    class Meta:
        ordering = ["integration", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "stream"],
                name="streamstate_unique_stream",
                violation_error_message="This stream already has a state row.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.integration.name}.{self.stream}"
