"""POST /webhooks/servicetitan/<tenant>/<connection>/: signed events are stored before the answer;
unsigned, forged, replayed and oversized requests are refused or acknowledged without processing."""

from __future__ import annotations

import json

import pytest

from integrations.models import AuditEvent, WebhookEvent
from integrations.sandbox.servicetitan import sign
from integrations.tenants import load_document

pytestmark = pytest.mark.django_db

KEY = "whk-" + "s" * 36
URL = "/webhooks/servicetitan/acme/st/"


def load(**settings) -> None:
    load_document({
        "tenant": {"slug": "acme", "name": "Acme"},
        "connections": [{
            "name": "st", "system": "servicetitan", "url": "https://api-integration.servicetitan.io", "company": "1234567",
            "auth": {"method": "oauth2_client_credentials", "client_id": "cid", "client_secret": "cs3cret",
                     "app_key": "ak1.appkey", "webhook_key": KEY},
            "settings": {"environment": "integration", **settings}}],
    })


def event(event_id: str = "evt-1", job: int = 4711) -> bytes:
    # not canonical JSON on purpose: the signature covers these exact bytes
    return json.dumps({"eventId": event_id, "eventType": "job.completed", "tenantId": 1234567,
                       "createdOn": "2026-12-03T06:00:00Z", "data": {"id": job}}, indent=1).encode()


def post(client, body: bytes, signature: str | None, header: str = "HTTP_X_SERVICETITAN_SIGNATURE", url: str = URL):
    extra = {header: signature} if signature is not None else {}
    return client.post(url, data=body, content_type="application/json", **extra)


def test_a_signed_event_is_stored_raw_before_the_answer_and_answered_at_once(client):
    load()
    body = event()
    response = post(client, body, sign(body, KEY))
    assert response.status_code == 202
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.event_type, stored.signature_ok, stored.status) == (
        "evt-1", "job.completed", True, WebhookEvent.Status.RECEIVED)
    assert stored.raw_body.encode() == body, "the bytes the signature covers, as received"
    assert stored.payload["data"] == {"id": 4711}
    assert AuditEvent.objects.filter(action="webhook.received").count() == 1


@pytest.mark.parametrize("signature", [None, "", "not base64!", sign(b"another body", KEY), sign(event(), "x" * 40)],
                         ids=["unsigned", "empty", "malformed", "other-body", "other-key"])
def test_an_unsigned_or_forged_event_is_refused_recorded_and_audited_never_processed(client, signature):
    load()
    response = post(client, event(), signature)
    assert response.status_code == 401
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.REJECTED and not stored.signature_ok
    assert stored.raw_body == "" and stored.payload["bytes"] == len(event())
    assert stored.event_id.startswith("rejected:"), "a forged event cannot take a real event's id"
    audit = AuditEvent.objects.get(action="webhook.rejected")
    assert KEY not in audit.message and KEY not in json.dumps(audit.detail)


def test_a_replayed_event_is_acknowledged_and_stored_once(client):
    load()
    body = event()
    assert post(client, body, sign(body, KEY)).status_code == 202
    again = post(client, body, sign(body, KEY))
    assert again.status_code == 200 and again.json()["detail"] == "Already received."
    assert WebhookEvent.objects.count() == 1


def test_an_oversized_body_is_refused_unread(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    load()
    body = json.dumps({"eventId": "big", "data": {"pad": "x" * 2000}}).encode()
    assert post(client, body, sign(body, KEY)).status_code == 413
    assert not WebhookEvent.objects.exists()


def test_the_header_and_encoding_are_the_connections(client):
    load(webhook_header="X-ST-Sig", webhook_encoding="hex")
    body = event()
    assert post(client, body, sign(body, KEY)).status_code == 401, "base64 where hex is configured"
    assert post(client, body, sign(body, KEY, "hex"), header="HTTP_X_ST_SIG").status_code == 202


def test_an_unknown_tenant_connection_or_system_gets_the_same_404(client):
    load()
    body = event()
    for url in ("/webhooks/servicetitan/globex/st/", "/webhooks/servicetitan/acme/nope/", "/webhooks/sage_x3/acme/st/"):
        assert post(client, body, sign(body, KEY), url=url).status_code == 404
    assert client.get(URL).status_code == 405
    assert not WebhookEvent.objects.exists()


def test_a_signed_body_that_is_not_json_is_acknowledged_and_failed(client):
    load()
    body = b"<xml>not json</xml>"
    assert post(client, body, sign(body, KEY)).status_code == 200
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.FAILED and "not JSON" in stored.reason
