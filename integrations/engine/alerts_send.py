"""Delivering one alert message: email through Django's mail settings, and a signed webhook.

Runs in a django-q task (``integrations.tasks.deliver_alert_task``), never in a sync run. Each
channel's outcome, sent or failed, is one audit event. The webhook secret signs the body and is
never written anywhere: errors are redacted with it before they are stored or logged.

The webhook is a POST of the message as compact JSON with::

    X-ML-Connector-Timestamp: <unix seconds>
    X-ML-Connector-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the secret>
    X-ML-Connector-Delivery: <message id, the same on every retry: dedupe by it>
    X-ML-Connector-Event: fired | recovered | digest | test
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage

from integrations.engine.audit import audit
from integrations.models import AlertEvent, AlertSettings
from integrations.models.alerts import address_problem, webhook_url_problem
from integrations.systems.errors import SyncError
from integrations.systems.http import CallCounter, HttpClient, HttpPolicy, default_classifier, new_session
from integrations.systems.redaction import redact_text

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ML-Connector-Signature"
TIMESTAMP_HEADER = "X-ML-Connector-Timestamp"
DELIVERY_HEADER = "X-ML-Connector-Delivery"
EVENT_HEADER = "X-ML-Connector-Event"
SUBJECT_PREFIX = "[ml-connector]"


class DeliveryRefused(Exception):
    """The webhook's address may not be called (it resolves to a link-local or metadata address...)."""


@dataclass
class Delivery:
    """What became of one message on one channel."""

    channel: str
    ok: bool
    error: str = ""
    waits: list[float] = field(default_factory=list)


# --- the webhook ----------------------------------------------------------------------------------
def body_of(message: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), default=str).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``<timestamp>.<body>``: a receiver recomputes it and compares in constant time."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (a seam the tests replace: they run offline)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def check_destination(url: str) -> None:
    """Refuse a URL that is not allowed, or whose host resolves to an address that is not.

    The URL was checked when it was saved; the host's addresses can change since, so they are
    checked again before each delivery.
    """
    problem = webhook_url_problem(url)
    if problem:
        raise DeliveryRefused(problem)
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host)
        return  # an address written in the URL was checked above
    except ValueError:
        pass
    try:
        addresses = resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise DeliveryRefused(f"{host} cannot be resolved ({type(exc).__name__})") from None
    dev = settings.DEV_MODE or settings.DEBUG
    for text in addresses:
        problem = address_problem(ipaddress.ip_address(text.split("%")[0]), dev=dev)
        if problem:
            raise DeliveryRefused(f"{host} resolves to {text}: {problem}")


def post_webhook(url: str, secret: str, message: dict[str, Any]) -> Delivery:
    """POST the signed message, retrying timeouts and 5xx with backoff (the shared HTTP policy)."""
    body = body_of(message)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "ml-connector-alerts/1",
               TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body),
               DELIVERY_HEADER: str(message.get("id", "")), EVENT_HEADER: str(message.get("event", ""))}
    counter = CallCounter()
    policy = HttpPolicy(timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS, max_retries=settings.ALERT_WEBHOOK_MAX_RETRIES,
                        backoff_base=settings.HTTP_BACKOFF_BASE_SECONDS, backoff_max=settings.HTTP_BACKOFF_MAX_SECONDS)
    session = new_session()
    session.max_redirects = 0  # a redirect could lead anywhere the URL check did not see: refused
    client = HttpClient(url, policy=policy, counter=counter, session=session, secrets=(secret,),
                        error_classifier=_masking(secret))
    try:
        check_destination(url)
        # idempotent: the receiver dedupes by the delivery id, so a lost answer may be resent
        client.request("POST", url, data=body, headers=headers, idempotent=True)
    except (SyncError, DeliveryRefused) as exc:
        return Delivery("webhook", False, _safe(f"{exc}", secret), list(counter.sleeps))
    finally:
        client.close()
    return Delivery("webhook", True, waits=list(counter.sleeps))


def _masking(secret: str):
    """The shared classification, with the receiver's answer masked of our secret (one may echo it)."""

    def classify(response: requests.Response) -> SyncError:
        error = default_classifier(response)
        error.detail = _safe(error.detail, secret)[:500]
        return error

    return classify


# --- email --------------------------------------------------------------------------------------
def subject_of(message: dict[str, Any]) -> str:
    return f"{SUBJECT_PREFIX} {message.get('title', 'Alert')}"[:200]


def text_of(message: dict[str, Any]) -> str:
    """The plain-text body: the summary, then each alert grouped under its integration."""
    lines = [message.get("summary", ""), ""]
    for group in message.get("groups", []):
        lines.append(f"{group['integration']}:")
        for alert in group["alerts"]:
            since = f" (since {alert['since']})" if alert.get("since") else ""
            lines.append(f"  - {alert['condition_label']}: {alert['message']}{since}")
        lines.append("")
    lines.append(f"Tenant: {message.get('tenant_name', '')} · sent {message.get('sent_at', '')} · "
                 f"id {message.get('id', '')}")
    return "\n".join(lines)


def send_email(recipients: list[str], message: dict[str, Any]) -> Delivery:
    try:
        EmailMessage(subject_of(message), text_of(message), settings.DEFAULT_FROM_EMAIL, to=recipients).send()
    except Exception as exc:  # SMTP, socket or backend errors: one failed delivery, not a failed task
        return Delivery("email", False, _safe(f"{type(exc).__name__}: {exc}", ""))
    return Delivery("email", True)


# --- both -----------------------------------------------------------------------------------------
def deliver(alert_settings: AlertSettings, message: dict[str, Any]) -> list[Delivery]:
    """Send ``message`` on each channel the tenant set up; audit each outcome; never raises."""
    deliveries = []
    if alert_settings.recipients:
        deliveries.append(send_email(alert_settings.recipients, message))
    if alert_settings.webhook_url and alert_settings.webhook_secret:
        deliveries.append(post_webhook(alert_settings.webhook_url, alert_settings.webhook_secret, message))
    for delivery in deliveries:
        _audit(alert_settings, message, delivery)
    return deliveries


def _audit(alert_settings: AlertSettings, message: dict[str, Any], delivery: Delivery) -> None:
    alerts = [alert for group in message.get("groups", []) for alert in group["alerts"]]
    one = alerts[0] if len(alerts) == 1 else None
    event = message.get("event", "")
    label = dict(AlertEvent.choices).get(event, event)
    where = (f"{len(alert_settings.recipients)} recipient(s)" if delivery.channel == "email"
             else urlsplit(alert_settings.webhook_url).hostname or "")
    detail = {"delivery": message.get("id"), "event": event, "channel": delivery.channel, "to": where,
              "conditions": sorted({alert["condition"] for alert in alerts}),
              "integrations": sorted({alert["integration"] for alert in alerts})}
    if delivery.waits:
        detail["retries"] = len(delivery.waits)
        detail["waits_seconds"] = [round(wait, 3) for wait in delivery.waits]
    if delivery.ok:
        audit(alert_settings.tenant_id, "alert.sent", f"{label} sent by {delivery.channel} to {where}: "
              f"{message.get('title', '')}", integration_id=one and one.get("integration_pk"),
              request_id=message.get("request_id", ""), detail=detail)
        return
    logger.warning("alert %s by %s failed: %s", message.get("id"), delivery.channel, delivery.error)
    audit(alert_settings.tenant_id, "alert.delivery_failed", f"{label} not delivered by {delivery.channel} to "
          f"{where}: {delivery.error}", integration_id=one and one.get("integration_pk"),
          request_id=message.get("request_id", ""), detail={**detail, "error": delivery.error})


def _safe(text: str, secret: str) -> str:
    return redact_text(text, (secret,) if secret else ())[:1000]
