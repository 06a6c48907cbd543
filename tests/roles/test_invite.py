"""Inviting a member: only a tenant's admins, only into their tenant, by email; the link sets a password once."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from accounts.models import Membership, Role
from integrations.models import AuditEvent

INVITE = "/admin/accounts/membership/invite/"


def invite(client, tenant_id: int, email: str = "Dana@Example.com", role: str = Role.VIEWER):
    return client.post(INVITE, {"email": email, "tenant": tenant_id, "role": role})


def link_in(message) -> str:
    return re.search(r"https?://\S+/invite/\S+/", message.body).group(0).split("testserver", 1)[1]


def test_a_tenant_admin_invites_a_new_person_who_gets_a_link_and_a_membership(w):
    response = invite(w.client("owner"), w.acme.tenant_id)
    assert response.status_code == 302, response.content.decode()[:3000]
    user = get_user_model().objects.get(email="dana@example.com")
    assert user.username == "dana@example.com" and user.is_staff and not user.has_usable_password()
    assert Membership.objects.get(user=user).tenant_id == w.acme.tenant_id
    event = AuditEvent.objects.get(action="member.invited")
    assert event.actor_name == "owner" and event.tenant_id == w.acme.tenant_id
    assert event.detail == {"email": "dana@example.com", "user": "dana@example.com", "role": "viewer", "new_user": True}
    [message] = mail.outbox
    assert message.to == ["dana@example.com"] and "Acme Manufacturing" in message.subject
    assert "valid for 3 days" in message.body and "/invite/" in message.body


def test_the_link_sets_a_password_once_and_the_person_signs_in(w, client):
    invite(w.client("owner"), w.acme.tenant_id)
    link = link_in(mail.outbox[0])
    landing = client.get(link)
    assert landing.status_code == 302 and landing.url.endswith("/set-password/")  # the token leaves the address
    page = client.get(landing.url).content.decode()
    assert "Set my password" in page and "dana@example.com" in page
    done = client.post(landing.url, {"new_password1": "a-long-fresh-pass-42", "new_password2": "a-long-fresh-pass-42"})
    assert done.status_code == 302 and done.url == "/admin/login/"
    assert AuditEvent.objects.filter(action="member.joined", actor_name="dana@example.com").exists()
    again = client.get(link, follow=True).content.decode()
    assert 'id="invite-invalid"' in again and "Set my password" not in again
    fresh = type(client)()
    signed_in = fresh.post("/admin/login/", {"username": "dana@example.com", "password": "a-long-fresh-pass-42"})
    assert signed_in.status_code == 302
    assert "Acme Manufacturing · Viewer" in fresh.get("/admin/").content.decode()


def test_a_tampered_or_expired_link_sets_nothing(w, client, settings):
    invite(w.client("owner"), w.acme.tenant_id)
    link = link_in(mail.outbox[0])
    assert 'id="invite-invalid"' in client.get(link[:-3] + "xx/", follow=True).content.decode()
    settings.PASSWORD_RESET_TIMEOUT = -1  # every token is past its time
    assert 'id="invite-invalid"' in client.get(link, follow=True).content.decode()


def test_an_existing_account_is_reused_by_email_and_told_to_sign_in(w):
    invite(w.client("outsider"), w.globex.tenant_id, email="root@example.com", role=Role.OPERATOR)
    root = get_user_model().objects.get(username="root")
    assert Membership.objects.get(user=root, tenant=w.globex.tenant).role == Role.OPERATOR
    assert get_user_model().objects.filter(email__iexact="root@example.com").count() == 1
    [message] = mail.outbox
    assert "/invite/" not in message.body and "Sign in as before" in message.body


def test_an_existing_member_cannot_be_invited_twice(w):
    client = w.client("owner")
    assert invite(client, w.acme.tenant_id).status_code == 302
    again = invite(client, w.acme.tenant_id, role=Role.ADMIN)
    assert again.status_code == 200 and "already a member of Acme Manufacturing" in again.content.decode()
    assert Membership.objects.get(user__email="dana@example.com").role == Role.VIEWER


def test_an_admin_cannot_invite_into_another_tenant(w):
    response = invite(w.client("owner"), w.globex.tenant_id)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not get_user_model().objects.filter(email="dana@example.com").exists()
    assert mail.outbox == [] and not AuditEvent.objects.filter(action="member.invited").exists()


@pytest.mark.parametrize("user", ["operator", "approver", "viewer", "stranger"])
def test_only_admins_may_invite(w, user):
    client = w.client(user)
    assert client.get(INVITE).status_code == 403
    assert invite(client, w.acme.tenant_id).status_code == 403
    assert not get_user_model().objects.filter(email="dana@example.com").exists() and mail.outbox == []


def test_the_refusal_names_the_role_and_the_tenant(w):
    page = w.client("viewer").get(INVITE).content.decode()
    assert ("You need the admin role in Acme Manufacturing to invite members. "
            "Ask an admin of Acme Manufacturing.") in page


def test_the_member_list_offers_invite_to_admins_and_says_why_not_to_others(w):
    assert 'id="invite"' in w.client("owner").get("/admin/accounts/membership/").content.decode()
    page = w.client("viewer").get("/admin/accounts/membership/").content.decode()
    assert 'id="invite"' not in page and 'id="invite-disabled"' in page and "Only admins may invite members" in page


def test_an_admin_past_the_hourly_invitation_limit_is_told_when_to_try_again_and_nothing_is_sent(w, settings):
    settings.INVITES_PER_HOUR = 2
    client = w.client("owner")
    for email in ("one@example.com", "two@example.com"):
        assert invite(client, w.acme.tenant_id, email=email).status_code == 302
    refused = invite(client, w.acme.tenant_id, email="three@example.com")
    page = refused.content.decode()
    assert refused.status_code == 429
    assert "You sent 2 invitations in the last hour, the most one person may. Invite again after" in page
    assert not get_user_model().objects.filter(email="three@example.com").exists()
    assert len(mail.outbox) == 2
    assert AuditEvent.objects.filter(action="member.invited").count() == 2
    # the limit is the inviter's: another admin still invites
    assert invite(w.client("root"), w.acme.tenant_id, email="four@example.com").status_code == 302


def test_invitations_older_than_an_hour_no_longer_count(w, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    settings.INVITES_PER_HOUR = 1
    client = w.client("owner")
    assert invite(client, w.acme.tenant_id, email="one@example.com").status_code == 302
    assert invite(client, w.acme.tenant_id, email="two@example.com").status_code == 429
    later = timezone.now() + timedelta(minutes=61)  # the audit trail is append-only: time moves instead
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert invite(client, w.acme.tenant_id, email="two@example.com").status_code == 302
