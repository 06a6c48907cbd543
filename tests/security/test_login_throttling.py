"""Sign-in throttling on both doors, /admin/login/ and /api/auth/token/, and its audit.

Issue 13, defect 3: 30 wrong passwords in 11 s on either door, then the right one worked at
once. Now 5 failures for one username from one address lock that pair for the cool-off
(15 minutes), 20 from one address lock the address; a locked client gets 429 saying when to
come back, and every failure lands in the audit trail of the username's tenants.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import AuditEvent
from integrations.tenants import load_document
from portal.throttling import client_ip

PASSWORD = "jane-has-a-long-passphrase"
ROOT_PASSWORD = "root-has-another-passphrase"
WRONG = "not-the-password"
HERE, ELSEWHERE = "192.0.2.10", "198.51.100.7"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db):
    """jane: staff, operator in Acme and viewer in Globex; root: a superuser of no tenant."""
    load_document({"tenant": {"slug": "acme", "name": "Acme"}, "members": [{"username": "jane", "role": "operator"}]})
    load_document({"tenant": {"slug": "globex", "name": "Globex"}, "members": [{"username": "jane", "role": "viewer"}]})
    User = get_user_model()
    jane = User.objects.get(username="jane")
    jane.is_staff = True
    jane.set_password(PASSWORD)
    jane.save()
    User.objects.create_superuser("root", "root@example.com", ROOT_PASSWORD)
    return jane


def admin_login(username: str, password: str, address: str = HERE, **headers):
    client = Client(REMOTE_ADDR=address, **headers)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return client, response


def token(username: str, password: str, address: str = HERE):
    return APIClient(REMOTE_ADDR=address).post("/api/auth/token/", {"username": username, "password": password},
                                               format="json")


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


# --- the admin's login page ---------------------------------------------------------------------

def test_thirty_wrong_passwords_then_the_right_one_is_refused_on_the_admin_login(people):
    statuses = [admin_login("jane", WRONG)[1].status_code for _ in range(30)]
    client, response = admin_login("jane", PASSWORD)
    assert statuses[:4] == [200] * 4  # the login page again, with its error
    assert set(statuses[4:]) == {429}
    assert response.status_code == 429
    assert not signed_in(client)


def test_the_lock_page_says_when_to_try_again(people):
    for _ in range(5):
        _, response = admin_login("jane", WRONG)
    assert response.status_code == 429
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    page = response.content.decode()
    assert "Too many failed sign-ins. Try again after" in page and "(in 15 minutes)" in page
    assert 'id="locked-out"' in page


def test_the_lock_holds_one_username_from_one_address_not_the_account_everywhere(people):
    for _ in range(5):
        admin_login("jane", WRONG)
    assert admin_login("jane", PASSWORD)[1].status_code == 429
    client, response = admin_login("jane", PASSWORD, address=ELSEWHERE)
    assert response.status_code == 302 and signed_in(client)
    # and another user at the locked address is not held by jane's lock (the address is under its limit)
    client, response = admin_login("root", ROOT_PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_twenty_failures_across_usernames_lock_the_address(people):
    for name in ("alice", "bob", "carol", "dave", "jane"):
        for _ in range(4):  # each one under the per-username limit
            admin_login(name, WRONG)
    client, response = admin_login("root", ROOT_PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    assert admin_login("root", ROOT_PASSWORD, address=ELSEWHERE)[1].status_code == 302


def test_the_lock_ends_after_the_cool_off(people):
    for _ in range(5):
        admin_login("jane", WRONG)
    assert admin_login("jane", PASSWORD)[1].status_code == 429
    # sixteen minutes pass since the last failure
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    client, response = admin_login("jane", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_an_attempt_during_the_lock_starts_the_cool_off_again(people):
    for _ in range(5):
        admin_login("jane", WRONG)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    assert admin_login("jane", WRONG)[1].status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=2))
    assert admin_login("jane", PASSWORD)[1].status_code == 429


def test_a_successful_sign_in_clears_only_that_usernames_failures_from_that_address(people):
    for _ in range(4):
        admin_login("jane", WRONG)
    assert admin_login("root", ROOT_PASSWORD)[1].status_code == 302  # someone else's success clears nothing of jane's
    assert admin_login("jane", WRONG)[1].status_code == 429
    AccessAttempt.objects.all().delete()
    for _ in range(4):
        admin_login("jane", WRONG)
    assert admin_login("jane", PASSWORD)[1].status_code == 302  # her own success clears her count
    for _ in range(4):
        assert admin_login("jane", WRONG)[1].status_code == 200


def test_a_forged_forwarded_for_header_does_not_escape_the_lock(people):
    for i in range(5):
        admin_login("jane", WRONG, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert admin_login("jane", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")[1].status_code == 429


def test_behind_a_proxy_the_address_is_the_one_the_proxy_appended(settings, rf):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.33")
    assert client_ip(request) == "10.0.0.1"
    settings.BEHIND_PROXY = True
    assert client_ip(request) == "192.0.2.33"


# --- the API's token endpoint -------------------------------------------------------------------

def test_thirty_wrong_passwords_then_the_right_one_gets_no_token(people):
    statuses = [token("jane", WRONG).status_code for _ in range(30)]
    response = token("jane", PASSWORD)
    assert statuses[:4] == [400] * 4
    assert set(statuses[4:]) == {429}
    assert response.status_code == 429 and "token" not in response.json()
    assert token("jane", PASSWORD, address=ELSEWHERE).status_code == 200


def test_a_locked_api_client_is_told_in_json_when_to_come_back(people):
    for _ in range(5):
        response = token("jane", WRONG)
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"].startswith("Too many failed sign-ins. Try again after")
    assert 14 * 60 < body["retry_after"] <= 15 * 60 and response["Retry-After"] == str(body["retry_after"])
    assert body["locked_until"].endswith("+00:00")


def test_failures_on_both_doors_count_together(people):
    for _ in range(3):
        admin_login("jane", WRONG)
    token("jane", WRONG)
    assert token("jane", WRONG).status_code == 429
    assert admin_login("jane", PASSWORD)[1].status_code == 429


# --- the audit ----------------------------------------------------------------------------------

def test_a_failed_sign_in_is_audited_in_each_of_the_users_tenants(people):
    admin_login("jane", WRONG, HTTP_X_REQUEST_ID="click-1")
    events = AuditEvent.objects.filter(action="auth.sign_in_failed").select_related("tenant").order_by("tenant__slug")
    assert [e.tenant.slug for e in events] == ["acme", "globex"]
    for event in events:
        assert event.actor_name == "anonymous" and event.actor is None
        assert event.detail == {"username": "jane", "address": HERE, "via": "admin", "failures": 1,
                                "address_failures": 1}
        assert event.request_id == "click-1"
        assert WRONG not in event.message and WRONG not in str(event.detail)
    token("jane", WRONG)
    assert set(AuditEvent.objects.filter(action="auth.sign_in_failed", detail__via="api")
               .values_list("tenant__slug", flat=True)) == {"acme", "globex"}


def test_the_lockout_is_audited_once_and_refused_attempts_are_not_audited_one_by_one(people):
    for _ in range(12):
        admin_login("jane", WRONG)
    failed = AuditEvent.objects.filter(action="auth.sign_in_failed")
    locked = AuditEvent.objects.filter(action="auth.locked_out")
    assert failed.count() == 5 * 2  # up to the lock, in both tenants
    assert locked.count() == 2
    event = locked.get(tenant__slug="acme")
    assert event.message == f"Locked sign-in as jane from {HERE} for 15 minutes after 5 failures"
    assert event.detail["locked"] == "username and address" and event.detail["cool_off_seconds"] == 900


def test_failures_of_unknown_usernames_are_logged_without_the_name(people, caplog):
    caplog.set_level(logging.WARNING, logger="portal.throttling")
    typed = "Summer2024!maybe-a-password"
    admin_login(typed, WRONG)
    admin_login("root", WRONG)
    assert not AuditEvent.objects.filter(action__startswith="auth.").exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "portal.throttling"]
    assert messages == [f"Failed sign-in for an unknown username from {HERE} through the admin",
                        f"Failed sign-in for user 'root' (a member of no tenant) from {HERE} through the admin"]
    assert typed not in caplog.text and WRONG not in caplog.text
