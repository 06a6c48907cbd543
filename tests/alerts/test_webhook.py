"""The outgoing webhook: signed so a receiver can verify it, retried with backoff, the secret never shown."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
import requests
import responses
from django.core.exceptions import ValidationError

from integrations.engine.alerts import request_test
from integrations.engine.alerts_send import post_webhook
from integrations.models import AlertSettings, AuditEvent
from integrations.models.alerts import webhook_url_problem
from tests.alerts.conftest import HOOK_SECRET, HOOK_URL, make_settings

pytestmark = pytest.mark.django_db


def verifies(request, secret: str) -> bool:
    """What a receiver does, written from the documented scheme, not from the portal's code."""
    timestamp = request.headers["X-ML-Connector-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers["X-ML-Connector-Signature"], f"sha256={expected}")


@pytest.fixture
def hooked(integration, sandbox) -> AlertSettings:
    return make_settings(integration, email_recipients="", webhook_url=HOOK_URL, webhook_secret=HOOK_SECRET)


def test_its_signature_verifies_with_the_shared_secret(hooked, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=204)
    message = request_test(hooked, "tester")
    (call,) = [c for c in sandbox.calls if c.request.url == HOOK_URL]
    assert verifies(call.request, HOOK_SECRET)
    assert not verifies(call.request, HOOK_SECRET + "x")
    body = json.loads(call.request.body)
    assert body["event"] == "test" and body["id"] == message["id"] == call.request.headers["X-ML-Connector-Delivery"]
    assert call.request.headers["Content-Type"] == "application/json"
    assert AuditEvent.objects.filter(action="alert.sent", detail__channel="webhook").count() == 1


def test_a_changed_body_no_longer_verifies(hooked, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=200)
    request_test(hooked, "tester")
    request = sandbox.calls[-1].request
    request.body = request.body.replace(b"test", b"tset")
    assert not verifies(request, HOOK_SECRET)


def test_it_retries_a_5xx_with_growing_waits_then_delivers(hooked, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=503)
    sandbox.add(responses.POST, HOOK_URL, status=500)
    sandbox.add(responses.POST, HOOK_URL, status=502)
    sandbox.add(responses.POST, HOOK_URL, status=200)
    request_test(hooked, "tester")
    calls = [c for c in sandbox.calls if c.request.url == HOOK_URL]
    assert len(calls) == 4
    assert len({c.request.headers["X-ML-Connector-Delivery"] for c in calls}) == 1  # one delivery, resent
    assert all(verifies(c.request, HOOK_SECRET) for c in calls)
    sent = AuditEvent.objects.get(action="alert.sent")
    waits = sent.detail["waits_seconds"]
    assert sent.detail["retries"] == 3 and waits == sorted(waits) and waits[0] < waits[-1]


def test_a_webhook_that_keeps_failing_is_a_failed_delivery_in_the_audit_trail(hooked, sandbox, settings, caplog):
    settings.ALERT_WEBHOOK_MAX_RETRIES = 2
    # a receiver that echoes what it got, secret included, in its error page
    sandbox.add(responses.POST, HOOK_URL, status=500, body=f"boom: secret={HOOK_SECRET} {HOOK_SECRET}")
    with caplog.at_level(logging.DEBUG):
        request_test(hooked, "tester")
    assert len([c for c in sandbox.calls if c.request.url == HOOK_URL]) == 3
    failed = AuditEvent.objects.get(action="alert.delivery_failed")
    assert failed.detail["retries"] == 2
    texts = [failed.message, json.dumps(failed.detail), caplog.text,
             *(e.message + json.dumps(e.detail) for e in AuditEvent.objects.all())]
    assert all(HOOK_SECRET not in text for text in texts)
    assert "500" in failed.message


def test_a_4xx_is_not_retried(hooked, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=400)
    request_test(hooked, "tester")
    assert len([c for c in sandbox.calls if c.request.url == HOOK_URL]) == 1
    assert AuditEvent.objects.filter(action="alert.delivery_failed").count() == 1


def test_a_redirect_is_not_followed(hooked, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=307, headers={"Location": "http://169.254.169.254/latest"})
    request_test(hooked, "tester")
    assert [c.request.url for c in sandbox.calls] == [HOOK_URL]
    assert AuditEvent.objects.filter(action="alert.delivery_failed").count() == 1


def test_a_host_resolving_to_a_metadata_address_is_never_called(hooked, sandbox, monkeypatch):
    monkeypatch.setattr("integrations.engine.alerts_send.resolve", lambda host, port: ["169.254.169.254"])
    request_test(hooked, "tester")
    assert [c.request.url for c in sandbox.calls] == []
    assert "link-local" in AuditEvent.objects.get(action="alert.delivery_failed").message


@pytest.mark.parametrize(("url", "dev", "allowed"), [
    ("https://hooks.example.com/x", False, True),
    ("http://hooks.example.com/x", False, False),
    ("http://hooks.example.com/x", True, True),
    ("https://169.254.169.254/latest/meta-data", True, False),
    ("https://[fe80::1]/x", True, False),
    ("https://[::ffff:169.254.169.254]/x", True, False),
    ("https://metadata.google.internal/x", True, False),
    ("https://127.0.0.1/x", False, False),
    ("http://127.0.0.1:9000/x", True, True),
    ("https://user:pw@hooks.example.com/x", False, False),
    ("ftp://hooks.example.com/x", True, False),
])
def test_which_webhook_urls_are_allowed(url, dev, allowed):
    assert (webhook_url_problem(url, dev=dev) is None) is allowed


def test_the_model_refuses_a_metadata_url(integration):
    cfg = AlertSettings(tenant=integration.tenant, webhook_url="https://169.254.169.254/")
    with pytest.raises(ValidationError) as error:
        cfg.full_clean()
    assert "webhook_url" in error.value.message_dict


def test_the_secret_is_encrypted_at_rest(hooked):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM integrations_alertsettings WHERE id = %s", [hooked.pk])
        stored = cursor.fetchone()[0]
    assert HOOK_SECRET not in stored
    assert AlertSettings.objects.get(pk=hooked.pk).webhook_secret == HOOK_SECRET


def test_post_webhook_reports_a_refused_connection_without_the_secret():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, HOOK_URL, body=requests.ConnectionError(f"refused, key {HOOK_SECRET}"))
        delivery = post_webhook(HOOK_URL, HOOK_SECRET, {"id": "1", "event": "test"})
    assert not delivery.ok and HOOK_SECRET not in delivery.error
