"""Month-end reconciliation: what the source and the target hold for a period, and where they differ.

A run is stored once with its totals and its difference lines and never recomputed: running it
again makes a new run, so what a controller signed off stays as it was.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import models

from integrations.models.integrations import Integration
from integrations.models.records import SyncRecord

MAX_PERIOD_DAYS = 366


class PeriodError(ValueError):
    """A period that cannot be reconciled (malformed, reversed, longer than a year)."""


@dataclass(frozen=True)
class Period:
    """The days a reconciliation covers, both included: a calendar month by default."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError(f"The period ends ({self.last}) before it starts ({self.first}).")
        if (self.last - self.first).days >= MAX_PERIOD_DAYS:
            raise PeriodError(f"A period is at most {MAX_PERIOD_DAYS} days; reconcile a longer range in parts.")

    @classmethod
    def month(cls, text: str) -> Period:
        """``2026-11`` → 1 to 30 November 2026."""
        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", (text or "").strip())
        if not match or not 1 <= int(match[2]) <= 12:
            raise PeriodError(f"A month is written YYYY-MM, e.g. 2026-11; not {text!r}.")
        try:
            first = date(int(match[1]), int(match[2]), 1)
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        except ValueError:  # year 0 or past 9999
            raise PeriodError(f"{text!r} is outside the calendar.") from None
        return cls(first, following - timedelta(days=1))

    @classmethod
    def between(cls, start: str, end: str) -> Period:
        """Two ISO dates (``2026-11-03``), both included."""
        try:
            first, last = date.fromisoformat(str(start).strip()), date.fromisoformat(str(end).strip())
        except ValueError:
            raise PeriodError(f"Dates are written YYYY-MM-DD; not {start!r} and {end!r}.") from None
        return cls(first, last)

    @classmethod
    def chosen(cls, month: str | None, start: str | None, end: str | None, *,
               default: Period | None = None, names: tuple[str, str, str] = ("period", "start", "end")) -> Period:
        """The period asked for by a month, or by a first and a last day (``names``: what the caller
        calls the three, for its messages); ``default`` when none is given, else an error."""
        if start or end:
            if month:
                raise PeriodError(f"Give {names[0]} or {names[1]} and {names[2]}, not both.")
            if not (start and end):
                raise PeriodError(f"{names[1]} and {names[2]} go together.")
            return cls.between(start, end)
        if month:
            return cls.month(month)
        if default is None:
            raise PeriodError(f"Give {names[0]} (YYYY-MM) or {names[1]} and {names[2]} (YYYY-MM-DD).")
        return default

    @classmethod
    def month_before(cls, day: date) -> Period:
        """The calendar month before the one ``day`` is in (what a run after month end closes)."""
        last = day.replace(day=1) - timedelta(days=1)
        return cls(last.replace(day=1), last)

    @property
    def is_month(self) -> bool:
        same_month = (self.first.year, self.first.month) == (self.last.year, self.last.month)
        month_end = self.last == date.max or (self.last + timedelta(days=1)).day == 1
        return self.first.day == 1 and same_month and month_end

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}" if self.is_month else f"{self.first.isoformat()} – {self.last.isoformat()}"

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


class ReconciliationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    BALANCED = "balanced", "Balanced"
    DIFFERENCES = "differences", "Differences"
    ERROR = "error", "Could not finish"

    @classmethod
    def finished(cls) -> frozenset[str]:
        return frozenset({cls.BALANCED, cls.DIFFERENCES})


class ReconciliationTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule (after month end)"
    MANUAL = "manual", "On demand"


class DifferenceReason(models.TextChoices):
    """Why a document is on a difference line, worst first (a line has exactly one)."""

    MISSING = "missing", "Missing in the target"
    EXTRA = "extra", "Extra in the target"
    AMOUNT = "amount", "Amount differs"
    DATE = "date", "Date differs (another period)"
    HELD = "held", "Held for mapping"
    FAILED = "failed", "Failed"

    @classmethod
    def explained(cls) -> frozenset[str]:
        """Reasons the portal knows the cause of (a held or failed record), as opposed to drift."""
        return frozenset({cls.HELD, cls.FAILED})


class ReconciliationRun(models.Model):
    """One reconciliation of one integration over one period (dates inclusive).

    ``totals``: per money stream and currency, what each side holds::

        [{"stream": "invoices", "label": "...", "currency": "EUR",
          "source_count": 12, "source_amount": "1234.50",
          "target_count": 11, "target_amount": "1200.00"}]

    ``daily``: the same per day of the period, for the chart::

        {"invoices": {"EUR": {"2026-11-03": ["120.00", "120.00"], ...}}}
    """

    uuid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
    )
    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="reconciliations",
    )
    period_start = models.DateField()
    period_end = models.DateField(
        help_text="Last day of the period, included.",
    )
    status = models.CharField(
        max_length=16,
        choices=ReconciliationStatus.choices,
        default=ReconciliationStatus.RUNNING,
        editable=False,
    )
    trigger = models.CharField(
        max_length=16,
        choices=ReconciliationTrigger.choices,
        default=ReconciliationTrigger.MANUAL,
    )
    triggered_by = models.CharField(
        max_length=150,
        blank=True,
        help_text="Username or 'system'.",
    )
    differences = models.PositiveIntegerField(
        default=0,
        editable=False,
    )
    totals = models.JSONField(
        default=list,
        blank=True,
        editable=False,
    )
    daily = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
    )
    warnings = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="What may make the figures move, e.g. a sync that was running while they were read.",
    )
    api_calls = models.PositiveIntegerField(
        default=0,
        editable=False,
    )
    call_usage = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
    )
    error = models.TextField(
        blank=True,
        editable=False,
    )
    started_at = models.DateTimeField(
        auto_now_add=True,
        db_index=True,
    )
    finished_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )

    class Meta:
        verbose_name = "reconciliation"
        ordering = ["-started_at", "-id"]
        indexes = [
            # the reconciliation page and the dashboard: the latest run per integration
            models.Index(fields=["integration", "-started_at"], name="recon_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.integration} {self.period_label}: {self.get_status_display()}"

    @property
    def period(self) -> Period:
        return Period(self.period_start, self.period_end)

    @property
    def period_label(self) -> str:
        """``2026-11`` for a calendar month, else ``2026-11-03 – 2026-11-17``."""
        return self.period.label

    def off_by(self) -> dict[str, Decimal]:
        """Per currency: target total minus source total, for the currencies where they differ."""
        gaps: dict[str, Decimal] = {}
        for row in self.totals or []:
            gap = Decimal(row.get("target_amount") or "0") - Decimal(row.get("source_amount") or "0")
            if gap:
                gaps[row["currency"]] = gaps.get(row["currency"], Decimal("0")) + gap
        return {currency: gap for currency, gap in sorted(gaps.items()) if gap}

    @property
    def verdict(self) -> str:
        """What the controller reads first: "Balanced", or "3 differences, totals off by EUR 120.00"."""
        if self.status == ReconciliationStatus.BALANCED:
            return "Balanced"
        if self.status == ReconciliationStatus.RUNNING:
            return "Running"
        if self.status == ReconciliationStatus.ERROR:
            return f"Could not finish: {self.error[:200]}"
        noun = "difference" if self.differences == 1 else "differences"
        gaps = self.off_by()
        if not gaps:
            return f"{self.differences} {noun}, totals agree"
        return f"{self.differences} {noun}, totals off by " + ", ".join(
            f"{currency} {abs(gap):,.2f}" for currency, gap in gaps.items())


class ReconciliationLine(models.Model):
    """One document on which the two sides disagree, with the reason and both values."""

    run = models.ForeignKey(
        ReconciliationRun,
        on_delete=models.CASCADE,
        related_name="lines",
    )
    stream = models.CharField(
        max_length=64,
    )
    reason = models.CharField(
        max_length=16,
        choices=DifferenceReason.choices,
    )
    record = models.ForeignKey(
        SyncRecord,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The source record's lineage; empty for a target row of no record we know.",
    )
    source_key = models.CharField(
        max_length=200,
    )
    business_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="The invoice (bill...) number people know.",
    )
    supplier = models.CharField(
        max_length=200,
        blank=True,
    )
    currency = models.CharField(
        max_length=8,
        blank=True,
    )
    source_date = models.DateField(
        null=True,
        blank=True,
    )
    source_amount = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
    )
    target_id = models.CharField(
        max_length=200,
        blank=True,
    )
    target_currency = models.CharField(
        max_length=8,
        blank=True,
    )
    target_date = models.DateField(
        null=True,
        blank=True,
    )
    target_amount = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
    )
    missing = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Mapping keys a held record waits for, as the record has them.",
    )
    message = models.TextField(
        blank=True,
    )

    class Meta:
        verbose_name = "reconciliation difference"
        ordering = ["run", "reason", "business_key", "id"]
        indexes = [
            # the run's page: a page of its lines in this order (LIMIT/OFFSET without sorting the
            # whole run), and the count per reason read from the index alone
            models.Index(fields=["run", "reason", "business_key", "id"], name="recon_line_page_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.business_key or self.source_key}: {self.get_reason_display()}"

    @property
    def missing_keys(self) -> list[str]:
        return [key for key in self.missing.split("|") if key]

    @property
    def gap(self) -> Decimal:
        """Target minus source for this document (a side that has nothing counts zero)."""
        return (self.target_amount or Decimal("0")) - (self.source_amount or Decimal("0"))
