"""A GL account the SYSPRO flow pushes to ServiceNow is its own approved mapping, and says so."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.engine.runner import run_integration
from integrations.models import Mapping, MappingReason, MappingStatus

pytestmark = pytest.mark.django_db


def test_a_pushed_gl_accounts_mapping_carries_the_pushed_reason(integration):
    run_integration(integration)
    pushed = Mapping.objects.filter(integration=integration, kind="gl_account")
    assert pushed.count() == 13
    assert {(m.status, m.reason) for m in pushed} == {(MappingStatus.APPROVED, MappingReason.PUSHED)}
    # the cost centres are only suggested: no pushed reason there
    assert not Mapping.objects.filter(integration=integration, kind="cost_center",
                                      reason=MappingReason.PUSHED).exists()


def test_the_console_says_the_mapping_was_pushed_from_syspro(integration, client, django_user_model):
    run_integration(integration)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x-long-password"))
    listing = client.get(reverse("admin:integrations_mapping_changelist"), {"kind__exact": "gl_account"})
    assert listing.status_code == 200
    assert listing.content.decode().count("Pushed from SYSPRO") == 13
    mapping = Mapping.objects.get(integration=integration, kind="gl_account", source_code="60100")
    detail = client.get(reverse("admin:integrations_mapping_change", args=[mapping.pk]))
    assert detail.status_code == 200 and "Pushed from SYSPRO" in detail.content.decode()
