"""Tenants and who may do what in them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    """A member's role in one tenant; each role includes the powers of the ones before it."""

    VIEWER = "viewer", "Viewer (read)"
    OPERATOR = "operator", "Operator (run, replay, test connections)"
    APPROVER = "approver", "Approver (approve mappings)"
    ADMIN = "admin", "Admin (connections and settings)"

    @classmethod
    def rank(cls, role: str) -> int:
        return [c.value for c in cls].index(role)


class Tenant(models.Model):
    """One customer organisation. Every connection, integration and record belongs to one."""

    uuid = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
    )
    slug = models.SlugField(
        max_length=64,
        unique=True,
    )
    name = models.CharField(
        max_length=200,
    )
    created_at = models.DateTimeField(
        auto_now_add=True,
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a tenant."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    role = models.CharField(
        max_length=16,
        choices=Role.choices,
        default=Role.VIEWER,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "tenant"],
                name="membership_unique_user_tenant",
                violation_error_message="This user is already a member of this tenant.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    def allows(self, role: str) -> bool:
        return Role.rank(self.role) >= Role.rank(role)
