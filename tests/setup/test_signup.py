"""Sign-up: a tenant and its first admin, signed in, email confirmed by a link, rate-limited per address."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from accounts.models import Membership, Role, Tenant
from accounts.signup import email_verified
from integrations.models import AuditEvent

from .conftest import PASSWORD, sign_up, signup_data, verify_email

pytestmark = pytest.mark.django_db


def test_it_creates_the_tenant_and_its_admin_and_signs_them_in():
    client = Client()
    response = sign_up(client)
    assert response["Location"] == "/setup/"
    user = get_user_model().objects.get(username="alice")
    assert user.is_staff and not user.is_superuser and user.check_password(PASSWORD)
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.ADMIN and membership.tenant.name == "Acme Manufacturing"
    assert membership.tenant.slug == "acme-manufacturing"
    assert client.get("/setup/").status_code == 200  # signed in
    assert AuditEvent.objects.filter(action="tenant.signed_up", tenant=membership.tenant).exists()


def test_it_mails_a_link_that_confirms_the_address():
    client = Client()
    sign_up(client)
    user = get_user_model().objects.get(username="alice")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    assert not email_verified(user)
    verify_email(client)
    assert email_verified(user)


def test_a_tampered_link_confirms_nothing():
    client = Client()
    sign_up(client)
    link = next(word for word in mail.outbox[-1].body.split() if "/signup/verify/" in word)
    assert client.get(link.rstrip("/") + "x/").status_code == 400
    assert not email_verified(get_user_model().objects.get(username="alice"))


def test_a_weak_password_is_refused_with_djangos_validators():
    short = Client().post("/signup/", {**signup_data(), "password1": "s3cr", "password2": "s3cr"})
    assert short.status_code == 200 and "This password is too short." in short.content.decode()
    like_name = Client().post("/signup/", {**signup_data("alicewonder"), "password1": "alicewonder",
                                           "password2": "alicewonder"})
    assert "too similar to the" in like_name.content.decode()
    assert not Tenant.objects.exists()


def test_a_taken_user_name_or_email_is_refused():
    sign_up(Client())
    again = Client().post("/signup/", signup_data("alice", "Other Org"))
    assert "This user name is taken" in again.content.decode()
    other = Client().post("/signup/", {**signup_data("bob", "Other Org"), "email": "ALICE@example.com"})
    assert "already uses this email address" in other.content.decode()
    assert Tenant.objects.count() == 1


def test_two_organisations_with_one_name_get_two_tenants():
    sign_up(Client(), "alice", "Acme")
    sign_up(Client(), "bob", "Acme")
    assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["acme", "acme-2"]


def test_sign_ups_are_limited_per_address(settings):
    settings.SIGNUP_TENANTS_PER_ADDRESS = 2
    sign_up(Client(), "alice", "A")
    sign_up(Client(), "bob", "B")
    response = Client().post("/signup/", signup_data("carol", "C"))
    assert response.status_code == 429 and not Tenant.objects.filter(name="C").exists()
    # another address is not affected
    assert Client(REMOTE_ADDR="10.9.8.7").post("/signup/", signup_data("carol", "C")).status_code == 302


def test_attempts_are_limited_per_address_even_when_they_fail(settings):
    settings.SIGNUP_ATTEMPTS_PER_ADDRESS = 3
    for _ in range(3):
        assert Client().post("/signup/", {**signup_data(), "password2": "different"}).status_code == 200
    assert Client().post("/signup/", signup_data()).status_code == 429


def test_the_sign_up_form_needs_its_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/signup/", signup_data()).status_code == 403
    assert not Tenant.objects.exists()
    page = client.get("/signup/")
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
