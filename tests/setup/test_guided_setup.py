"""The guided setup, page by page: choose the pair, enter both sides, ping, fit check, approve, preview, start."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.models import AuditEvent, Connection, Integration, Mapping, MappingStatus, RecordStatus, SyncRecord
from tests.support import writes

from .conftest import KIND, sign_up, verify_email, x3_servicenow_form


@pytest.fixture
def alice(db):
    client = Client()
    sign_up(client)
    return client


def _set_up(client: Client, form: dict[str, str] | None = None) -> Integration:
    response = client.post("/setup/", {"kind": KIND})
    assert response.status_code == 302 and f"/setup/new/{KIND}/" in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    response = client.post(response["Location"], form or x3_servicenow_form())
    assert response.status_code == 302, response.content.decode()[:4000]
    return Integration.objects.get(name="X3 to ServiceNow")


def test_the_form_shows_each_systems_fields_with_their_help(alice):
    response = alice.post("/setup/", {"kind": KIND})
    page = alice.get(response["Location"]).content.decode()
    for text in ("Port", "X3 folder (endpoint) name", "ServiceNow tables", "Integration user",
                 "The X3 web server, e.g. http://x3.acme.local:8124"):
        assert text in page, text


def test_servicetitan_shows_the_webhook_address_to_paste(alice):
    response = alice.post("/setup/", {"kind": "servicetitan__sage_x3"})
    page = alice.get(response["Location"]).content.decode()
    assert "App key" in page and "Webhook key" in page and "/webhooks/servicetitan/acme-manufacturing/" in page


def test_sage_300_says_the_user_is_sent_upper_case(alice):
    response = alice.post("/setup/", {"kind": "sage_300__servicenow"})
    assert "sent upper-case" in alice.get(response["Location"]).content.decode()


def test_a_bad_address_is_shown_at_its_field_and_nothing_is_saved(alice):
    alice.post("/setup/", {"kind": KIND})
    form = {**x3_servicenow_form(), "source-url": "not a url"}
    response = alice.post(f"/setup/new/{KIND}/", form)
    assert response.status_code == 200 and "must be an http(s) URL" in response.content.decode()
    assert not Integration.objects.exists() and not Connection.objects.exists()


def test_it_saves_both_connections_and_a_disabled_integration(alice, sandbox):
    integration = _set_up(alice)
    assert not integration.enabled
    assert integration.source.system == "sage_x3" and integration.source.company == "SEED"
    assert integration.source.secrets["password"] == "x3-demo-pass"
    assert integration.target.settings["table_profile"] == "seed"


def test_editing_keeps_a_secret_left_blank(alice, sandbox):
    integration = _set_up(alice)
    form = {**x3_servicenow_form(), "source-password": "", "target-client_secret": ""}
    response = alice.post(f"/setup/{integration.pk}/edit/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    integration.refresh_from_db()
    assert integration.source.secrets["password"] == "x3-demo-pass"
    assert integration.target.secrets["client_secret"] == "sn-demo-secret"


def test_ping_reports_in_plain_words_who_can_fix_a_missing_role(alice, sandbox, sn_sim):
    integration = _set_up(alice)
    sn_sim.revoke_role("integration.user", "sn_apay.apo_user")
    assert alice.post(f"/setup/{integration.pk}/ping/source/").status_code == 302
    alice.post(f"/setup/{integration.pk}/ping/target/")
    page = alice.get(f"/setup/{integration.pk}/").content.decode()
    assert "Signed in to ServiceNow." in page and "Can read PINVOICE." in page
    assert "Ask your ServiceNow admin to grant sn_apay.apo_user to integration.user." in page


def test_the_fit_check_is_blocked_by_a_missing_role_and_says_so(alice, sandbox, sn_sim):
    integration = _set_up(alice)
    sn_sim.revoke_role("integration.user", "sn_apay.apo_user")
    alice.post(f"/setup/{integration.pk}/fit/")
    page = alice.get(f"/setup/{integration.pk}/fit/").content.decode()
    assert "Blocked by: Ask your ServiceNow admin to grant sn_apay.apo_user to integration.user." in page
    assert writes(sn_sim.requests) == []


def test_the_whole_way_to_the_first_synced_records(alice, sandbox, sn_sim, x3_sim, mailoutbox):
    integration = _set_up(alice)
    alice.post(f"/setup/{integration.pk}/ping/source/")
    alice.post(f"/setup/{integration.pk}/ping/target/")
    assert alice.post(f"/setup/{integration.pk}/fit/", {"since": ""}).status_code == 302
    assert writes(sn_sim.requests) == [], "the fit check wrote to ServiceNow"
    page = alice.get(f"/setup/{integration.pk}/fit/").content.decode()
    assert "Ready after these" in page and "Supplier invoices" in page
    assert alice.get(f"/setup/{integration.pk}/fit.csv").content.startswith(b"section,item,value,note")

    alice.post(f"/setup/{integration.pk}/approve/", {"next": "fit"})
    assert not Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).exists()
    preview = alice.post(f"/setup/{integration.pk}/preview/").content.decode()
    assert "would be written as" in preview and "supplier_number" in preview
    assert writes(sn_sim.requests) == [], "the preview wrote to ServiceNow"

    alice.post(f"/setup/{integration.pk}/start/")
    integration.refresh_from_db()
    assert not integration.enabled, "nothing starts before the email address is confirmed"
    verify_email(alice)
    alice.post(f"/setup/{integration.pk}/start/")
    integration.refresh_from_db()
    assert integration.enabled
    assert SyncRecord.objects.filter(integration=integration, status=RecordStatus.SYNCED).exists()
    assert writes(sn_sim.requests), "the first sync wrote to ServiceNow"
    from django_q.models import Schedule

    assert Schedule.objects.filter(name__startswith=f"sync:{integration.uuid}:").exists()
    page = alice.get(f"/setup/{integration.pk}/").content.decode()
    assert "synced" in page
    actions = set(AuditEvent.objects.filter(integration=integration).values_list("action", flat=True))
    assert {"integration.fit_checked", "integration.previewed", "integration.resumed"} <= actions
