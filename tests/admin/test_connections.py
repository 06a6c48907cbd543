"""Connections: secrets write-only, token expiry in view, "Test connection" with its report."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from integrations.demo import SN_CLIENT_SECRET, X3_CLIENT_SECRET
from integrations.models import AuditEvent, Connection


def _form(connection: Connection, **changes) -> dict:
    data = {"tenant": connection.tenant_id, "name": connection.name, "system": connection.system,
            "url": connection.url, "port": connection.port or "", "company": connection.company,
            "auth_method": connection.auth_method, "settings": __import__("json").dumps(connection.settings)}
    data.update({f"secret_{key}": "" for key in ("client_secret", "password", "refresh_token", "sender_password",
                                                 "user_password")})
    data.update(changes)
    return data


def _secret_values(w) -> list[str]:
    values = []
    for connection in Connection.objects.filter(tenant=w.acme.tenant):
        values += [str(v) for v in connection.secrets.values()]
        values += [str(v) for k, v in connection.token_cache.items() if k.endswith("token") and v]
    return values


def test_it_never_renders_a_secret_or_a_token(w):
    secrets = _secret_values(w)
    assert X3_CLIENT_SECRET in secrets and SN_CLIENT_SECRET in secrets and len(secrets) >= 4
    client = w.client("owner")
    pages = ["/admin/integrations/connection/", f"/admin/integrations/connection/{w.acme.source_id}/change/",
             f"/admin/integrations/connection/{w.acme.target_id}/change/", "/admin/integrations/auditevent/", "/admin/"]
    pages += [f"/admin/integrations/auditevent/{pk}/change/"
              for pk in AuditEvent.objects.filter(connection_id=w.acme.source_id).values_list("pk", flat=True)[:5]]
    for url in pages:
        body = client.get(url).content.decode()
        for secret in secrets:
            assert secret not in body, url
    change = client.get(f"/admin/integrations/connection/{w.acme.source_id}/change/").content.decode()
    assert "••••• set; leave blank to keep it." in change
    assert 'type="password"' in change


def test_blank_secret_keeps_the_stored_value_and_a_new_one_replaces_it(w):
    x3 = w.acme.source
    client = w.client("owner")
    url = f"/admin/integrations/connection/{x3.pk}/change/"
    response = client.post(url, _form(x3, company="SEED"))
    assert response.status_code == 302, response.content.decode()[:3000]
    x3.refresh_from_db()
    assert x3.secrets["client_secret"] == X3_CLIENT_SECRET
    assert x3.token_cache  # untouched credentials keep the token
    client.post(url, _form(x3, secret_client_secret="rotated-secret-123"))
    x3.refresh_from_db()
    assert x3.secrets["client_secret"] == "rotated-secret-123"
    assert x3.secrets["refresh_token"]
    assert x3.token_cache == {}  # new credentials: log on afresh
    event = AuditEvent.objects.filter(connection_id=x3.pk, action="connection.updated").first()
    assert event.actor_name == "owner" and event.detail["replaced"] == ["client_secret"]
    assert "rotated-secret-123" not in str(event.detail) + event.message


def test_forgetting_a_secret_removes_it(w):
    x3 = Connection.objects.get(pk=w.acme.source_id)  # not the module's shared object: it is refreshed below
    # after switching from the refresh-token pairing to client credentials, the refresh token goes
    w.client("owner").post(f"/admin/integrations/connection/{x3.pk}/change/",
                           _form(x3, auth_method="oauth2_client_credentials", forget=["refresh_token"]))
    x3.refresh_from_db()
    assert "refresh_token" not in x3.secrets and x3.secrets["client_secret"] == X3_CLIENT_SECRET


def test_forgetting_a_secret_the_sign_in_needs_is_refused(w):
    x3 = Connection.objects.get(pk=w.acme.source_id)
    response = w.client("owner").post(f"/admin/integrations/connection/{x3.pk}/change/",
                                      _form(x3, forget=["refresh_token"]))
    assert response.status_code == 200
    assert "refresh_token: required for oauth2_refresh_token" in response.content.decode()
    x3.refresh_from_db()
    assert x3.secrets.get("refresh_token")


def test_a_connection_shows_only_its_own_systems_secrets(w):
    client = w.client("owner")
    x3_page = client.get(f"/admin/integrations/connection/{w.acme.source_id}/change/").content.decode()
    sn_page = client.get(f"/admin/integrations/connection/{w.acme.target_id}/change/").content.decode()
    assert 'name="secret_refresh_token"' in x3_page and 'name="secret_sender_password"' not in x3_page
    assert 'name="secret_client_secret"' in sn_page and 'name="secret_user_password"' not in sn_page
    assert "the X3 folder (endpoint) name" in x3_page


def test_an_operator_may_test_but_not_edit_a_connection(w):
    x3 = w.acme.source
    response = w.client("operator").post(f"/admin/integrations/connection/{x3.pk}/change/",
                                         _form(x3, secret_client_secret="nope-nope"))
    assert response.status_code == 403
    page = w.client("operator").get(f"/admin/integrations/connection/{x3.pk}/change/").content.decode()
    assert 'id="test-connection"' in page and 'name="secret_client_secret"' not in page
    viewer_page = w.client("viewer").get(f"/admin/integrations/connection/{x3.pk}/change/").content.decode()
    assert 'id="test-connection"' not in viewer_page


def test_test_connection_button_shows_the_readable_report(w):
    sn = w.acme.target
    response = w.client("operator").post(f"/admin/integrations/connection/{sn.pk}/test/", follow=True)
    sn.refresh_from_db()
    assert sn.last_test_ok is True and sn.last_test_report["checks"]
    body = response.content.decode()
    assert "All checks passed for sn." in body
    assert "all checks passed" in body and "Signed in to ServiceNow" in body
    for line in sn.last_test_report["checks"]:
        assert line["check"] in body
    event = AuditEvent.objects.filter(connection_id=sn.pk, action="connection.tested").first()
    assert event.actor_name == "operator"


def test_a_failed_test_says_which_check_failed(w):
    sn = w.acme.target
    w.sn.set_faults(type(w.sn.faults)(error_rate=1.0))
    try:
        response = w.client("operator").post(f"/admin/integrations/connection/{sn.pk}/test/", follow=True)
    finally:
        w.sn.set_faults(type(w.sn.faults)())
    sn.refresh_from_db()
    assert sn.last_test_ok is False
    body = response.content.decode()
    assert "Test of sn failed: Sign-in failed" in body and "check(s) failed" in body


def test_bulk_test_connection_tests_each_and_counts(w):
    pks = [w.acme.source_id, w.acme.target_id]
    response = w.client("operator").post("/admin/integrations/connection/", {
        "action": "test_connections", "_selected_action": pks, "index": 0}, follow=True)
    assert "Queued 2 connection test(s)" in response.content.decode()
    assert Connection.objects.filter(pk__in=pks, last_test_at__isnull=False).count() == 2


def test_it_warns_before_the_x3_refresh_token_runs_out(w, settings):
    settings.REFRESH_TOKEN_WARNING_DAYS = 5
    x3 = w.acme.source
    Connection.objects.filter(pk=x3.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=3))
    page = w.client("viewer").get(f"/admin/integrations/connection/{x3.pk}/change/").content.decode()
    assert "runs out in 2" in page or "runs out in 3" in page
    assert "refresh token running out" in page
    assert "refresh token runs out" in w.client("viewer").get("/admin/").content.decode()
    Connection.objects.filter(pk=x3.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=20))
    page = w.client("viewer").get(f"/admin/integrations/connection/{x3.pk}/change/").content.decode()
    assert "re-authorise before" not in page and "refresh token running out" not in page


def test_the_outsider_can_only_add_connections_to_their_own_tenant(w):
    client = w.client("outsider")
    form = client.get("/admin/integrations/connection/add/").content.decode()
    assert "Globex Foods" in form and "Acme Manufacturing" not in form
    data = _form(w.acme.source, name="sneaky", secret_client_secret="x")
    response = client.post("/admin/integrations/connection/add/", data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Connection.objects.filter(name="sneaky").exists()
