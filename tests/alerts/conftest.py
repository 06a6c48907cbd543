"""Alerts: a demo tenant with alert settings, django-q inline, mail in ``mail.outbox``, DNS offline."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.models import AlertSettings, Integration

HOOK_URL = "https://hooks.acme.test/ml-connector"
HOOK_SECRET = "whsec-0123456789abcdef-never-shown"


@pytest.fixture(autouse=True)
def _sync_tasks(settings, monkeypatch):
    """django-q runs queued tasks inline, so a test sees what was sent."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def _offline_dns(monkeypatch):
    """Webhook hosts resolve to a public documentation address, without asking a resolver."""
    monkeypatch.setattr("integrations.engine.alerts_send.resolve", lambda host, port: ["203.0.113.10"])


def make_settings(integration: Integration, **values: Any) -> AlertSettings:
    fields = {"email_recipients": "ap-lead@acme.test, controller@acme.test", **values}
    return AlertSettings.objects.create(tenant=integration.tenant, **fields)


@pytest.fixture
def alert_settings(integration: Integration) -> AlertSettings:
    return make_settings(integration)
