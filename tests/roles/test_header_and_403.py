"""The header says where and as what the user works; a 403 says which role is needed, where, and whom to ask."""

from __future__ import annotations

from accounts.models import Membership, Role, Tenant
from accounts.roles import header_label


def test_the_header_names_the_tenant_and_role(w):
    html = w.client("approver").get("/admin/").content.decode()
    assert '<span id="console-seat">Acme Manufacturing · Approver</span>' in html


def test_two_tenants_are_listed_and_more_are_counted_with_a_tooltip(w):
    viewer = w.users["viewer"]
    Membership.objects.create(user=viewer, tenant=w.globex.tenant, role=Role.OPERATOR)
    html = w.client("viewer").get("/admin/").content.decode()
    assert "Acme Manufacturing · Viewer, Globex Foods · Operator" in html
    third = Tenant.objects.create(slug="initech", name="Initech")
    Membership.objects.create(user=viewer, tenant=third, role=Role.ADMIN)
    html = w.client("viewer").get("/admin/").content.decode()
    assert ('<span id="console-seat" title="Acme Manufacturing · Viewer; Globex Foods · Operator; Initech · Admin">'
            "3 organisations</span>") in html


def test_a_superuser_and_a_stranger_are_told_so(w):
    assert header_label(w.users["root"])[0] == "All organisations · Superuser"
    assert header_label(w.users["stranger"])[0] == "No organisation yet"


def test_a_renamed_tenant_shows_its_new_name(w):
    client = w.client("approver")
    client.get("/admin/")
    tenant = w.acme.tenant
    tenant.name = "Acme Ltd"
    tenant.save()
    assert "Acme Ltd · Approver" in client.get("/admin/").content.decode()


def test_the_header_renders_without_the_search_box_template(w, settings):
    html = w.client("viewer").get("/admin/").content.decode()
    assert 'id="console-seat"' in html  # whether console/header_search.html exists yet or not


def test_a_viewer_refused_a_replay_is_told_the_role_and_the_tenant(w):
    from integrations.models import RecordStatus, SyncRecord

    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).first()
    response = w.client("viewer").get(f"/admin/integrations/syncrecord/{record.pk}/replay/")
    assert response.status_code == 403
    html = response.content.decode()
    assert ("You need the operator role in Acme Manufacturing to replay records. "
            "Ask an admin of Acme Manufacturing.") in html
    assert "Acme Manufacturing · Viewer" in html  # who they are, on the refusal too


def test_a_refusal_for_a_run_names_what_it_was(w):
    html = w.client("viewer").post(f"/admin/integrations/integration/{w.acme.pk}/run/").content.decode()
    assert "You need the operator role in Acme Manufacturing to run integrations." in html


def test_a_stranger_is_told_to_ask_their_organisation(w):
    response = w.client("stranger").post(f"/admin/integrations/integration/{w.acme.pk}/run/")
    assert response.status_code == 403
    assert "You need the operator role to run integrations. Ask an admin of your organisation." \
        in response.content.decode()


def test_django_s_own_refusals_get_the_general_sentence(w):
    response = w.client("viewer").get("/admin/accounts/tenant/add/")
    assert response.status_code == 403
    assert "Your role does not allow this page" in response.content.decode()
