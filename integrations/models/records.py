"""Runs of streams, the records they moved, and every attempt at each record."""

from __future__ import annotations

import uuid

from django.db import models

from integrations.models.integrations import Integration


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial (budget reached, will resume)"
    INTERRUPTED = "interrupted", "Interrupted (temporary error, retried next run)"
    FAILED = "failed", "Failed (systemic error)"
    SKIPPED = "skipped", "Skipped (already running)"


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    REPLAY = "replay", "Replay"
    WEBHOOK = "webhook", "Webhook"
    MAPPING = "mapping", "Mapping approved"


class RecordStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    HELD = "held", "Held for mapping"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (unchanged)"

    @classmethod
    def terminal(cls) -> frozenset[str]:
        return frozenset({cls.SYNCED, cls.HELD, cls.FAILED, cls.SKIPPED})

    @classmethod
    def replayable(cls) -> frozenset[str]:
        return frozenset({cls.FAILED, cls.HELD})


class ErrorClass(models.TextChoices):
    TRANSIENT = "transient", "Transient"
    DATA = "data", "Data"
    SYSTEMIC = "systemic", "Systemic"


class SyncRun(models.Model):
    """One execution of one stream."""

    uuid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
    )
    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="runs",
    )
    stream = models.CharField(
        max_length=64,
    )
    trigger = models.CharField(
        max_length=16,
        choices=Trigger.choices,
        default=Trigger.MANUAL,
    )
    status = models.CharField(
        max_length=16,
        choices=RunStatus.choices,
        default=RunStatus.RUNNING,
    )
    read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    call_usage = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per connection: calls this run made, the calls its cycle made and the cycle's budget.",
    )
    continues_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a run stopped by a call budget continues by itself.",
    )
    started_at = models.DateTimeField(
        auto_now_add=True,
        db_index=True,
    )
    finished_at = models.DateTimeField(
        null=True,
        blank=True,
    )
    error = models.TextField(
        blank=True,
    )
    triggered_by = models.CharField(
        max_length=150,
        blank=True,
        help_text="Username or 'system'.",
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # dashboard: last run per integration and stream
            models.Index(fields=["integration", "stream", "-started_at"], name="run_latest_idx"),
            # console: runs filtered by status (failed, partial), newest first
            models.Index(fields=["status", "-started_at"], name="run_status_idx"),
            # dashboard chart (daily_series): the last 30 days of runs of the user's integrations, a
            # range per integration; without it the integration's whole run history is read
            models.Index(fields=["integration", "started_at"], name="run_integration_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stream} run {self.pk} ({self.status})"

    COUNTERS = ("read", "created", "updated", "unchanged", "held", "failed", "api_calls")

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTERS}

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None


class SyncRecord(models.Model):
    """One source record in one stream: its lineage from the ERP row to the target id."""

    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="records",
    )
    stream = models.CharField(
        max_length=64,
    )
    source_key = models.CharField(
        max_length=200,
    )
    business_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="What people search for: invoice number, supplier code...",
    )
    status = models.CharField(
        max_length=16,
        choices=RecordStatus.choices,
        default=RecordStatus.PENDING,
    )
    source_cursor = models.CharField(
        max_length=64,
        blank=True,
    )
    source_hash = models.CharField(
        max_length=64,
        blank=True,
    )
    source_snapshot = models.JSONField(
        default=dict,
        blank=True,
    )
    target_id = models.CharField(
        max_length=200,
        blank=True,
    )
    target_url = models.URLField(
        max_length=500,
        blank=True,
    )
    error_class = models.CharField(
        max_length=16,
        choices=ErrorClass.choices,
        blank=True,
    )
    error_message = models.TextField(
        blank=True,
    )
    missing = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Mapping keys this record waits for, delimited: |gl_account:61200|cost_center:CC9|",
    )
    target_refs = models.JSONField(
        default=dict,
        blank=True,
        help_text="Target ids of child rows (e.g. invoice lines), by source line key.",
    )
    attempts = models.PositiveIntegerField(
        default=0,
    )
    next_retry_at = models.DateTimeField(
        null=True,
        blank=True,
    )
    last_run = models.ForeignKey(
        SyncRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(
        auto_now_add=True,
    )
    updated_at = models.DateTimeField(
        auto_now=True,
        db_index=True,
    )
    synced_at = models.DateTimeField(
        null=True,
        blank=True,
    )
    # The document as people search for it, copied from the snapshot when it is stored (see
    # integrations.engine.documents.search_fields): the header search reads these through
    # indexes instead of opening a million JSON snapshots.
    doc_number = models.CharField(
        max_length=100,
        blank=True,
        editable=False,
        help_text="The document's own number: the supplier's invoice number, a supplier's code...",
    )
    doc_supplier = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text="The supplier: its code on a document, its name on a supplier record.",
    )
    doc_amount = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        editable=False,
    )
    doc_currency = models.CharField(
        max_length=3,
        blank=True,
        editable=False,
    )
    doc_date = models.DateField(
        null=True,
        blank=True,
        editable=False,
    )

    class Meta:
        # Newest first where a person reads them. A look-up by key says ``.order_by()``: sorted,
        # SQLite reads the integration's every row off record_integration_time_idx (to skip the
        # sort) instead of finding each key in the unique index, a page's look-up growing with the
        # integration (tests/engine/test_key_lookups.py).
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "stream", "source_key"],
                name="record_unique_source_key",
                violation_error_message="This source record is already tracked.",
            ),
        ]
        indexes = [
            # failed / held queues filtered by integration and status, newest first
            models.Index(fields=["integration", "status", "-updated_at"], name="record_queue_idx"),
            models.Index(fields=["status", "-updated_at"], name="record_status_idx"),
            # the retry pass: failed transient records due for another attempt
            models.Index(fields=["integration", "stream", "status", "next_retry_at"], name="record_retry_idx"),
            models.Index(fields=["business_key"], name="record_business_key_idx"),
            # a tenant's records list, newest first: ordered straight off the index, no sort
            models.Index(fields=["integration", "updated_at"], name="record_integration_time_idx"),
            # a tenant's search by business key prefix (a range on this index)
            models.Index(fields=["integration", "business_key"], name="record_integration_key_idx"),
            # console: the failed queue filtered by error class, newest first
            models.Index(fields=["status", "error_class", "-updated_at"], name="record_error_class_idx"),
            # header search, each within the user's integrations: supplier invoice number
            # (exact or starting with), amount (exact), supplier code or name (starting with)
            # and the target's number (ServiceNow sys_id, X3 document number)
            models.Index(fields=["integration", "doc_number"], name="record_doc_number_idx"),
            models.Index(fields=["integration", "doc_amount"], name="record_doc_amount_idx"),
            models.Index(fields=["integration", "doc_supplier"], name="record_doc_supplier_idx"),
            models.Index(fields=["integration", "target_id"], name="record_target_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stream} {self.business_key or self.source_key}"

    @staticmethod
    def pack_missing(keys: list[str] | tuple[str, ...]) -> str:
        """Store missing keys delimited so one ``contains`` finds the records a mapping releases."""
        return f"|{'|'.join(sorted(set(keys)))}|" if keys else ""

    @property
    def missing_keys(self) -> list[str]:
        return [k for k in self.missing.split("|") if k]


class SyncAttempt(models.Model):
    """One try at transforming and writing a record: what was sent and what came of it."""

    record = models.ForeignKey(
        SyncRecord,
        on_delete=models.CASCADE,
        related_name="attempt_log",
    )
    run = models.ForeignKey(
        SyncRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attempts",
    )
    number = models.PositiveIntegerField()
    outcome = models.CharField(
        max_length=16,
        choices=RecordStatus.choices,
    )
    action = models.CharField(
        max_length=16,
        blank=True,
        help_text="created, updated, unchanged...",
    )
    payload = models.JSONField(
        default=dict,
        blank=True,
    )
    target_id = models.CharField(
        max_length=200,
        blank=True,
    )
    error_class = models.CharField(
        max_length=16,
        choices=ErrorClass.choices,
        blank=True,
    )
    error_message = models.TextField(
        blank=True,
    )
    at = models.DateTimeField(
        auto_now_add=True,
    )

    class Meta:
        ordering = ["record", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.record_id}: {self.outcome}"
