"""Alert settings in the console: scoped by tenant and role, the secret write-only, "Send test alert"."""

from __future__ import annotations

import pytest
import responses
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Tenant
from integrations.models import AlertSettings, AuditEvent
from tests.alerts.conftest import HOOK_SECRET, HOOK_URL, make_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(integration):
    """Acme's admin, operator and viewer; Globex's operator and admin (who must not see Acme's settings)."""
    globex = Tenant.objects.create(slug="globex", name="Globex Foods")
    users = {}
    for name, tenant, role in [("owner", integration.tenant, "admin"), ("operator", integration.tenant, "operator"),
                               ("viewer", integration.tenant, "viewer"), ("outsider", globex, "operator"),
                               ("globex_admin", globex, "admin")]:
        users[name] = get_user_model().objects.create_user(name, is_staff=True)
        Membership.objects.create(user=users[name], tenant=tenant, role=role)
    return users


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def cfg(integration) -> AlertSettings:
    return make_settings(integration, webhook_url=HOOK_URL, webhook_secret=HOOK_SECRET)


def change_url(cfg: AlertSettings) -> str:
    return reverse("admin:integrations_alertsettings_change", args=[cfg.pk])


def button_url(cfg: AlertSettings) -> str:
    return reverse("admin:integrations_alertsettings_test", args=[cfg.pk])


def form_data(cfg: AlertSettings, **changes) -> dict:
    return {"enabled": "on", "email_recipients": cfg.email_recipients, "webhook_url": cfg.webhook_url,
            "held_hours": cfg.held_hours, "failed_threshold": cfg.failed_threshold,
            "token_warning_days": cfg.token_warning_days, **changes}


def test_the_page_never_shows_the_secret(people, cfg):
    for name in ("owner", "viewer"):
        page = client_for(people[name]).get(change_url(cfg))
        assert page.status_code == 200
        assert HOOK_SECRET not in page.content.decode()
        assert "••••• set" in page.content.decode()


def test_an_admin_changes_thresholds_and_keeps_the_secret_by_leaving_it_blank(people, cfg):
    response = client_for(people["owner"]).post(change_url(cfg), form_data(cfg, failed_threshold=3))
    assert response.status_code == 302
    cfg.refresh_from_db()
    assert cfg.failed_threshold == 3 and cfg.webhook_secret == HOOK_SECRET
    event = AuditEvent.objects.get(action="alert_settings.updated")
    assert event.detail["fields"] == ["failed_threshold"] and event.detail["webhook_key"] == "kept"


def test_an_admin_replaces_the_secret_and_it_is_not_in_the_audit_trail(people, cfg):
    new = "a-brand-new-secret-value-1234"
    client_for(people["owner"]).post(change_url(cfg), form_data(cfg, new_webhook_secret=new))
    cfg.refresh_from_db()
    assert cfg.webhook_secret == new
    assert all(new not in e.message + str(e.detail) for e in AuditEvent.objects.all())


def test_a_webhook_needs_a_secret_and_an_allowed_address(people, integration):
    owner = client_for(people["owner"])
    add = reverse("admin:integrations_alertsettings_add")
    data = {"tenant": integration.tenant.pk, "enabled": "on", "held_hours": 24, "failed_threshold": 10,
            "token_warning_days": 5}
    page = owner.post(add, {**data, "webhook_url": HOOK_URL})
    assert page.status_code == 200 and "needs a secret" in page.content.decode()
    page = owner.post(add, {**data, "webhook_url": "https://169.254.169.254/", "new_webhook_secret": "x" * 20})
    assert page.status_code == 200 and "metadata" in page.content.decode()
    assert owner.post(add, {**data, "webhook_url": HOOK_URL, "new_webhook_secret": "x" * 20}).status_code == 302
    assert AlertSettings.objects.get(tenant=integration.tenant).webhook_secret == "x" * 20


def test_a_viewer_sees_but_cannot_edit(people, cfg):
    viewer = client_for(people["viewer"])
    assert viewer.get(change_url(cfg)).status_code == 200
    assert viewer.post(change_url(cfg), form_data(cfg, failed_threshold=1)).status_code == 403
    cfg.refresh_from_db()
    assert cfg.failed_threshold != 1
    assert 'id="send-test-alert"' not in viewer.get(change_url(cfg)).content.decode()
    assert viewer.post(button_url(cfg)).status_code == 403
    assert mail.outbox == []


def test_an_operator_may_test_but_not_edit(people, cfg):
    operator = client_for(people["operator"])
    assert operator.post(change_url(cfg), form_data(cfg, failed_threshold=1)).status_code == 403
    assert 'id="send-test-alert"' in operator.get(change_url(cfg)).content.decode()


def test_another_tenants_people_cannot_see_edit_or_test_the_settings(people, cfg):
    for name in ("outsider", "globex_admin"):
        other = client_for(people[name])
        listing = other.get(reverse("admin:integrations_alertsettings_changelist"))
        assert listing.status_code == 200 and "Acme" not in listing.content.decode()
        assert other.get(change_url(cfg)).status_code in (302, 404)  # the admin's "does not exist"
        assert other.post(change_url(cfg), form_data(cfg, failed_threshold=1)).status_code in (302, 403, 404)
        assert other.post(button_url(cfg)).status_code == 404
    cfg.refresh_from_db()
    assert cfg.failed_threshold != 1
    assert mail.outbox == [] and not AuditEvent.objects.filter(action__startswith="alert.").exists()


def test_another_tenants_admin_cannot_create_settings_for_acme(people, integration):
    page = client_for(people["globex_admin"]).post(reverse("admin:integrations_alertsettings_add"), {
        "tenant": integration.tenant.pk, "enabled": "on", "held_hours": 24, "failed_threshold": 10,
        "token_warning_days": 5})
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
    assert not AlertSettings.objects.exists()


def test_the_send_test_alert_button_sends_on_every_channel(people, cfg, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=200)
    response = client_for(people["operator"]).post(button_url(cfg), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Test alert sent by email" in page and "Test alert sent by webhook" in page
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "[ml-connector] Test alert"
    assert len([c for c in sandbox.calls if c.request.url == HOOK_URL]) == 1
    requested = AuditEvent.objects.get(action="alert.test_requested")
    assert requested.actor_name == "operator"
    assert AuditEvent.objects.filter(action="alert.sent", request_id=requested.request_id).count() == 2


def test_the_button_reports_a_failed_delivery(people, cfg, sandbox):
    sandbox.add(responses.POST, HOOK_URL, status=404)
    page = client_for(people["owner"]).post(button_url(cfg), follow=True).content.decode()
    assert "not delivered by webhook" in page and HOOK_SECRET not in page


def test_the_button_needs_a_post(people, cfg):
    assert client_for(people["owner"]).get(button_url(cfg)).status_code == 405


def test_open_alerts_are_listed_only_for_their_tenant(people, integration):
    from integrations.engine.alerts import evaluate
    from integrations.models import Connection

    make_settings(integration)
    Connection.objects.filter(pk=integration.source_id).update(needs_reauth=True)
    evaluate(integration)
    states = reverse("admin:integrations_alertstate_changelist")
    assert "re-enter them" in client_for(people["viewer"]).get(states).content.decode()
    assert "re-enter them" not in client_for(people["outsider"]).get(states).content.decode()
