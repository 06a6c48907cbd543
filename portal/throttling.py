"""Sign-in throttling (django-axes) and the audit of failed sign-ins.

Both sign-in doors, the admin's login page and the API's token endpoint, authenticate through
Django's ``authenticate()``, where django-axes' backend refuses a locked-out client before the
password is checked and its handler counts every failure. Two limits, within the cool-off
(``LOGIN_COOLOFF_MINUTES``, 15 by default):

- ``LOGIN_FAILURE_LIMIT`` (5) failures for one username from one address lock that pair: the
  real user elsewhere can still sign in;
- ``LOGIN_ADDRESS_FAILURE_LIMIT`` (20) failures from one address, whatever the usernames, lock
  the address: guessing across many accounts is stopped too.

A failure during a lock starts the cool-off again. A successful sign-in clears that username's
failures from that address only, so an attacker's own valid account cannot wipe the count.

Every failure is audited into the append-only trail of each tenant the username is a member
of, with the lockout it caused. A username that is no tenant's member is only logged: a
superuser's or a stranger's by name, an unknown one without it (what is typed into the
username field is sometimes a password).
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import Membership
from integrations.engine.audit import audit_event, audit_many
from portal.middleware import request_id

log = logging.getLogger(__name__)

FAILED = "auth.sign_in_failed"
LOCKED = "auth.locked_out"
ANONYMOUS = "anonymous"  # the audit actor: whoever typed the password, not the account's owner


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against.

    ``REMOTE_ADDR``, unless ``PORTAL_BEHIND_PROXY`` says a reverse proxy is in front: then the
    last ``X-Forwarded-For`` entry, the one the proxy appended (entries before it are whatever
    the client sent and prove nothing).
    """
    address = request.META.get("REMOTE_ADDR", "")
    if getattr(settings, "BEHIND_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if forwarded:
            address = forwarded
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None  # no address (a sign-in outside a web request): failures count per username


def _channel(request: HttpRequest) -> str:
    return "api" if request.path.startswith("/api/") else "admin"


def _recent_failures(request: HttpRequest, **match: Any) -> int:
    attempts = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request), **match)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class PortalAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler with two limits and the audit of every failure."""

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """Failures of this username from this address; the limit itself once the address is over its own.

        django-axes compares this number with ``AXES_FAILURE_LIMIT``; one number has to say
        "this pair is locked" or "this whole address is locked".
        """
        username = get_client_username(request, credentials)
        address = request.axes_ip_address
        per_account = _recent_failures(request, username=username, ip_address=address)
        if _recent_failures(request, ip_address=address) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(per_account, get_failure_limit(request, credentials))
        return per_account

    def user_login_failed(self, sender: Any, credentials: dict, request: HttpRequest | None = None,
                          **kwargs: Any) -> None:
        if request is None:
            super().user_login_failed(sender, credentials, request, **kwargs)
            return
        # Attempts refused because of a lock are counted (they extend it) but not audited one by
        # one: a script hammering a locked account would otherwise flood the trail.
        already_locked = self.is_locked(request, credentials)
        super().user_login_failed(sender, credentials, request, **kwargs)
        if not already_locked:
            audit_failed_sign_in(request, get_client_username(request, credentials),
                                 locked=bool(request.axes_locked_out))


def audit_failed_sign_in(request: HttpRequest, username: str | None, *, locked: bool) -> None:
    """One event per tenant the username is a member of (and one more if this failure locked it)."""
    address = request.axes_ip_address
    channel = _channel(request)
    tenant_ids = list(Membership.objects.filter(user__username=username).values_list("tenant_id", flat=True)
                      .order_by("tenant_id")) if username else []
    if not tenant_ids:
        known = bool(username) and get_user_model()._default_manager.filter(username=username).exists()
        who = f"user {username!r} (a member of no tenant)" if known else "an unknown username"
        log.warning("Failed sign-in for %s from %s through the %s%s", who, address, channel,
                    "; further attempts are refused for now" if locked else "")
        return
    failures = _recent_failures(request, username=username, ip_address=address)
    address_failures = _recent_failures(request, ip_address=address)
    detail = {"username": username, "address": address, "via": channel, "failures": failures,
              "address_failures": address_failures}
    rid = request_id(request)
    events = [audit_event(tid, FAILED, f"Failed sign-in as {username} from {address} ({channel})",
                          actor=ANONYMOUS, detail=detail, request_id=rid) for tid in tenant_ids]
    if locked:
        cool_off = get_cool_off(request) or timedelta(0)
        whole_address = address_failures >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
        what = f"every sign-in from {address}" if whole_address else f"sign-in as {username} from {address}"
        message = f"Locked {what} for {_minutes(cool_off)} after {address_failures if whole_address else failures} failures"
        locked_detail = {**detail, "locked": "address" if whole_address else "username and address",
                         "cool_off_seconds": int(cool_off.total_seconds())}
        events += [audit_event(tid, LOCKED, message, actor=ANONYMOUS, detail=locked_detail, request_id=rid)
                   for tid in tenant_ids]
    audit_many(events)


def _minutes(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """429 with ``Retry-After``: JSON for the API, the console's page for the admin."""
    cool_off = get_cool_off(request) or timedelta(0)
    until = (getattr(request, "axes_attempt_time", None) or timezone.now()) + cool_off
    seconds = max(1, int((until - timezone.now()).total_seconds()))
    local_until = timezone.localtime(until)
    when = f"{local_until:%H:%M} {local_until.tzname()} (in {_minutes(timedelta(seconds=seconds))})"
    message = f"Too many failed sign-ins. Try again after {when}."
    if _channel(request) == "api":
        response: HttpResponse = JsonResponse(
            {"detail": message, "retry_after": seconds, "locked_until": until.astimezone(UTC).isoformat()},
            status=429)
    else:
        context = {**admin.site.each_context(request), "title": "Sign-in locked", "message": message,
                   "until": local_until}
        response = TemplateResponse(request, "admin/locked_out.html", context, status=429)
        response.render()
    response["Retry-After"] = str(seconds)
    return response
