"""Alerts: who a tenant tells when an integration needs a person, and what is open now.

``AlertSettings`` is one row per tenant (channels and thresholds); ``AlertState`` is one row per
integration and condition, so a condition that stays true sends one message, and one
"recovered" message once it clears (the engine moves a row between the two states with a
conditional update, so two evaluators never both send).
"""

from __future__ import annotations

import ipaddress
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from encrypted_fields.fields import EncryptedCharField

from accounts.models import Tenant
from integrations.models.integrations import Integration

# Hosts that answer with a cloud machine's own credentials: never a webhook target.
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal"})


class AlertCondition(models.TextChoices):
    """What is watched, per integration."""

    RUN_FAILED = "run_failed", "Run stopped on a systemic error"
    STALE = "stale", "No successful run within twice the schedule"
    CREDENTIALS_REFUSED = "credentials_refused", "Credentials refused"
    TOKEN_EXPIRING = "token_expiring", "Refresh token running out"
    HELD = "held", "Records held too long"
    FAILED_RECORDS = "failed_records", "Failed records above the threshold"
    RECONCILIATION = "reconciliation", "Reconciliation with differences"

    @classmethod
    def timed(cls) -> frozenset[str]:
        """Conditions that become true with the clock alone (the periodic evaluation's reason to exist)."""
        return frozenset({cls.STALE, cls.TOKEN_EXPIRING, cls.HELD})


class AlertStatus(models.TextChoices):
    OK = "ok", "OK"
    OPEN = "open", "Open"


class AlertEvent(models.TextChoices):
    """What a message says: the kind is in the webhook body and the email subject."""

    FIRED = "fired", "Alert"
    RECOVERED = "recovered", "Recovered"
    DIGEST = "digest", "Daily digest"
    TEST = "test", "Test alert"


def default_held_hours() -> int:
    return settings.ALERT_HELD_HOURS


def default_failed_threshold() -> int:
    return settings.ALERT_FAILED_THRESHOLD


def default_token_warning_days() -> int:
    return settings.REFRESH_TOKEN_WARNING_DAYS


def parse_recipients(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or new lines, without duplicates, in order."""
    seen: dict[str, None] = {}
    for part in (text or "").replace(";", ",").replace("\n", ",").split(","):
        address = part.strip()
        if address:
            seen.setdefault(address, None)
    return list(seen)


def webhook_url_problem(url: str, *, dev: bool | None = None) -> str | None:
    """Why ``url`` may not receive alerts, or ``None``. Checks the URL as written; the sender
    checks again what the host resolves to before each delivery."""
    dev = (settings.DEV_MODE or settings.DEBUG) if dev is None else dev
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("https", "http") or not host:
        return "The webhook URL must be an https:// address."
    if parts.scheme != "https" and not dev:
        return "The webhook URL must use https (plain http is allowed in development only)."
    if parts.username or parts.password:
        return "Put no credentials in the URL: the portal signs each request with the secret instead."
    if host in METADATA_HOSTS:
        return "A cloud metadata address cannot receive alerts."
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return address_problem(address, dev=dev)


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address, *, dev: bool) -> str | None:
    """Why a webhook may not be sent to ``address`` (link-local is where metadata services live)."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_link_local or address == ipaddress.ip_address("fd00:ec2::254"):
        return "A link-local or metadata address cannot receive alerts."
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "This address cannot receive alerts."
    if address.is_loopback and not dev:
        return "A loopback address can receive alerts in development only."
    return None


class AlertSettings(models.Model):
    """How one tenant is told: email recipients, an outgoing webhook, thresholds, the digest."""

    uuid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
    )
    tenant = models.OneToOneField(
        Tenant,
        on_delete=models.CASCADE,
        related_name="alert_settings",
    )
    enabled = models.BooleanField(
        default=True,
        help_text="Off: nothing is evaluated or sent for this tenant.",
    )
    email_recipients = models.TextField(
        blank=True,
        help_text="Addresses, separated by commas or new lines.",
    )
    webhook_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Receives each alert as signed JSON (POST). https only, outside development.",
    )
    # Signs the webhook body (HMAC-SHA256); encrypted at rest like connection secrets, never shown back.
    webhook_secret = EncryptedCharField(
        max_length=200,
        null=True,  # the field stores an empty value as NULL
        blank=True,
        editable=False,
    )
    digest = models.BooleanField(
        default=False,
        help_text="Also send one message a day listing what is still open.",
    )
    held_hours = models.PositiveIntegerField(
        default=default_held_hours,
        help_text="Alert when a record has been held for a mapping longer than this many hours.",
    )
    failed_threshold = models.PositiveIntegerField(
        default=default_failed_threshold,
        help_text="Alert when an integration has more failed records than this.",
    )
    token_warning_days = models.PositiveIntegerField(
        default=default_token_warning_days,
        help_text="Alert this many days before a refresh token runs out.",
    )
    updated_at = models.DateTimeField(
        auto_now=True,
    )

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"
        ordering = ["tenant"]

    def __str__(self) -> str:
        return f"Alerts of {self.tenant}"

    @property
    def recipients(self) -> list[str]:
        return parse_recipients(self.email_recipients)

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("email", bool(self.recipients)),
                                      ("webhook", bool(self.webhook_url and self.webhook_secret))) if on]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        bad = []
        for address in self.recipients:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if bad:
            errors["email_recipients"] = f"Not an email address: {', '.join(bad)}"
        if self.webhook_url:
            problem = webhook_url_problem(self.webhook_url)
            if problem:
                errors["webhook_url"] = problem
        if errors:
            raise ValidationError(errors)


class AlertState(models.Model):
    """One condition of one integration: open (told once) or ok (recovered, told once)."""

    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="alert_states",
    )
    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        related_name="alert_states",
    )
    condition = models.CharField(
        max_length=32,
        choices=AlertCondition.choices,
    )
    status = models.CharField(
        max_length=8,
        choices=AlertStatus.choices,
        default=AlertStatus.OK,
        editable=False,
    )
    message = models.TextField(
        blank=True,
        editable=False,
        help_text="What the last alert said.",
    )
    detail = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
    )
    opened_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )
    recovered_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )
    checked_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )

    class Meta:
        verbose_name = "alert"
        ordering = ["-opened_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "condition"],
                name="alertstate_unique_condition",
                violation_error_message="This integration already has a state for this condition.",
            ),
        ]
        indexes = [
            # the digest and the console: a tenant's open alerts
            models.Index(fields=["tenant", "status"], name="alert_tenant_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.integration}: {self.get_condition_display()} ({self.status})"
