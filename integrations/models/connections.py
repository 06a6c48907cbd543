"""A tenant's access to one external system."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from encrypted_fields.fields import EncryptedJSONField

from accounts.models import Tenant
from integrations.systems.registry import SCHEMAS, connection_settings_errors


class System(models.TextChoices):
    SAGE_X3 = "sage_x3", "Sage X3"
    SAGE_300 = "sage_300", "Sage 300"
    SAGE_INTACCT = "sage_intacct", "Sage Intacct"
    SYSPRO = "syspro", "SYSPRO"
    SERVICENOW = "servicenow", "ServiceNow"
    SERVICETITAN = "servicetitan", "ServiceTitan"


def system_choices() -> list[tuple[str, str]]:
    """The systems the portal has a connector for: whatever ``systems/registry.py`` registers."""
    return [(schema.system, schema.label) for schema in SCHEMAS.values()]


class AuthMethod(models.TextChoices):
    BASIC = "basic", "Basic (username and password)"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"
    OAUTH2_REFRESH_TOKEN = "oauth2_refresh_token", "OAuth2 refresh token"
    SESSION = "session", "Session logon"
    ENET = "enet", "SYSPRO e.net operator logon"
    JWT_CONNECTED_APP = "jwt_connected_app", "Sage X3 connected application (signed JWT)"


class Connection(models.Model):
    """Address, credentials and token cache for one system of one tenant.

    Secrets (passwords, client secrets, refresh tokens) live in ``secrets`` and the live
    token/session in ``token_cache``, both encrypted at rest with Fernet keys derived from
    SECRET_KEY. Non-secret settings (usernames, client ids, table profile, field names) live in
    ``settings`` so they can be shown and edited.
    """

    uuid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
    )
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="connections",
    )
    name = models.CharField(
        max_length=100,
    )
    system = models.CharField(
        max_length=32,
        choices=system_choices,
    )
    url = models.URLField(
        max_length=500,
        help_text="Server or instance URL, e.g. https://acme.service-now.com or http://x3.acme.local:8124",
    )
    port = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Overrides the port in the URL when set (Sage X3 is typically 8124).",
    )
    company = models.CharField(
        max_length=100,
        blank=True,
        help_text="X3 folder, Sage 300 company, Intacct company id or SYSPRO company.",
    )
    auth_method = models.CharField(
        max_length=40,
        choices=AuthMethod.choices,
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="Non-secret settings: usernames, client ids, token URL, table profile, field names.",
    )
    secrets = EncryptedJSONField(
        default=dict,
        blank=True,
    )
    token_cache = EncryptedJSONField(
        default=dict,
        blank=True,
        editable=False,
    )
    token_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )
    refresh_token_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )
    needs_reauth = models.BooleanField(
        default=False,
        editable=False,
        help_text="Set when the system refused our credentials after a refresh.",
    )
    last_error = models.TextField(
        blank=True,
        editable=False,
    )
    # The licence seat of a system that allows one session at a time (SYSPRO): held by one cycle,
    # renewed with its stream lock's heartbeat, reclaimed like a stream lock once stale.
    seat_token = models.CharField(max_length=32, blank=True, editable=False)
    seat_heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
    )
    last_test_ok = models.BooleanField(
        null=True,
        editable=False,
    )
    last_test_report = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
    )
    created_at = models.DateTimeField(
        auto_now_add=True,
    )
    updated_at = models.DateTimeField(
        auto_now=True,
    )

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="connection_unique_name_per_tenant",
                violation_error_message="A connection with this name already exists in this tenant.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_system_display()})"

    def clean(self) -> None:
        super().clean()
        errors = connection_settings_errors(self.system, self.auth_method, self.settings)
        if errors:
            raise ValidationError({"settings": errors})

    @property
    def source_namespace(self) -> str:
        """What the records read through this connection are known by in a target, before their own
        key (``sage_300.1f3a9c2e:1200``): two ERPs writing into one ServiceNow never collide on a
        bare ``1200``. The system and the start of the connection's id: a rename changes nothing."""
        return f"{self.system}.{self.uuid.hex[:8]}"

    @property
    def address(self) -> str:
        """The base URL with the port applied."""
        from urllib.parse import urlsplit, urlunsplit

        if not self.port:
            return self.url.rstrip("/")
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return urlunsplit((parts.scheme, f"{host}:{self.port}", parts.path.rstrip("/"), "", ""))
