"""Reference data read from each side, and the mappings between them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from integrations.models.integrations import Integration


class Side(models.TextChoices):
    SOURCE = "source", "Source"
    TARGET = "target", "Target"


class MappingKind(models.TextChoices):
    GL_ACCOUNT = "gl_account", "GL account"
    COST_CENTER = "cost_center", "Cost center"
    SUPPLIER = "supplier", "Supplier"
    JOB_TYPE = "job_type", "Job type"


class MappingStatus(models.TextChoices):
    UNMAPPED = "unmapped", "Unmapped (no suggestion)"
    SUGGESTED = "suggested", "Suggested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    # a code that never needs a target (a control account, a clearing supplier): its held records
    # stay held, and the review says so instead of asking again
    IGNORED = "ignored", "Ignored (never needs a mapping)"

    @classmethod
    def needs_decision(cls) -> frozenset[str]:
        """Codes a person still has to decide: no target yet, or a target not yet approved."""
        return frozenset({cls.UNMAPPED, cls.SUGGESTED})


class MappingReason(models.TextChoices):
    EXACT_CODE = "exact_code", "Same code on both sides"
    LEARNED = "learned", "Approved in another integration"
    NAME_MATCH = "name_match", "Same name on both sides"
    FUZZY = "fuzzy", "Similar names"
    MANUAL = "manual", "Mapped by hand"
    IMPORTED = "imported", "Imported from a spreadsheet (CSV)"
    # a row the integration itself wrote to the target is its own mapping (RecordStream.mapping_kind);
    # the console names the source system ("Pushed from SYSPRO")
    PUSHED = "pushed", "Pushed from the source system"
    NONE = "", "No suggestion"


class ReferenceRecord(models.Model):
    """A GL account, cost center or supplier as read from one side of an integration."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="reference_records",
    )
    side = models.CharField(
        max_length=8,
        choices=Side.choices,
    )
    kind = models.CharField(
        max_length=32,
        choices=MappingKind.choices,
    )
    code = models.CharField(
        max_length=128,
    )
    label = models.CharField(
        max_length=300,
        blank=True,
    )
    external_id = models.CharField(
        max_length=128,
        blank=True,
        help_text="The system's own id (e.g. a ServiceNow sys_id).",
    )
    data = models.JSONField(
        default=dict,
        blank=True,
    )
    updated_at = models.DateTimeField(
        auto_now=True,
    )

    class Meta:
        ordering = ["kind", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "side", "kind", "code"],
                name="reference_unique_code",
                violation_error_message="This code is already recorded for this side.",
            ),
        ]
        indexes = [
            # autocomplete of target codes in the mapping screen searches label too
            models.Index(fields=["integration", "side", "kind", "label"], name="reference_label_idx"),
            # a document's reference row by the system's own id (a bill's purchase order)
            models.Index(fields=["integration", "kind", "external_id"], name="reference_external_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.label}".strip()


class Mapping(models.Model):
    """Source code → target code for one kind. Only approved mappings are used by flows."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="mappings",
    )
    kind = models.CharField(
        max_length=32,
        choices=MappingKind.choices,
    )
    source_code = models.CharField(
        max_length=128,
    )
    source_label = models.CharField(
        max_length=300,
        blank=True,
    )
    target_code = models.CharField(
        max_length=128,
        blank=True,
    )
    target_label = models.CharField(
        max_length=300,
        blank=True,
    )
    target_external_id = models.CharField(
        max_length=128,
        blank=True,
    )
    status = models.CharField(
        max_length=16,
        choices=MappingStatus.choices,
        default=MappingStatus.UNMAPPED,
    )
    reason = models.CharField(
        max_length=16,
        choices=MappingReason.choices,
        blank=True,
    )
    confidence = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="How sure the suggestion is, 0-100 (100: the same code on both sides).",
    )
    candidates = models.JSONField(
        default=list,
        blank=True,
        help_text="The best target candidates with their score and reason, best first.",
    )
    rejected_targets = models.JSONField(
        default=list,
        blank=True,
        help_text="Target codes a person rejected for this code: never suggested again.",
    )
    ignore_reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why this code never needs a mapping (status ignored).",
    )
    # What waits for this code, kept by engine.mappings.refresh_held (the review orders by it):
    held_count = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Held records waiting for this code.",
    )
    held_documents = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Of the held records, the money documents (invoices, bills) counted in held_money.",
    )
    held_money = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Total of the held documents per currency, as decimal strings.",
    )
    held_amount = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        default=0,
        editable=False,
        help_text="The held totals added up across currencies: a sort key only, never shown as money.",
    )
    released_records = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Ids of the held records the last approval released (first 1000), to follow their replay.",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(
        null=True,
        blank=True,
    )
    updated_at = models.DateTimeField(
        auto_now=True,
    )

    class Meta:
        ordering = ["kind", "source_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind", "source_code"],
                name="mapping_unique_source",
                violation_error_message="This source code is already mapped.",
            ),
        ]
        indexes = [
            models.Index(fields=["integration", "status"], name="mapping_status_idx"),
            # the review ordered by money held, most first ("impact first")
            models.Index(fields=["-held_amount", "-held_count"], name="mapping_held_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.source_code} → {self.target_code or '?'}"


class HeldTally(models.Model):
    """How current the held figures on an integration's mappings are.

    The figures are recomputed from the held records when the held queue's signature (how many
    records are held, and the latest change among them) is no longer the one they were computed at.
    """

    integration = models.OneToOneField(
        Integration,
        on_delete=models.CASCADE,
        related_name="held_tally",
    )
    held = models.PositiveIntegerField(
        default=0,
    )
    last_change = models.DateTimeField(
        null=True,
        blank=True,
    )
    refreshed_at = models.DateTimeField(
        auto_now=True,
    )

    def __str__(self) -> str:
        return f"held figures of {self.integration_id}: {self.held} at {self.last_change}"
