"""Tenants and memberships: a tenant's admins manage its members, by username, in their tenant."""

from __future__ import annotations

from accounts.models import Membership, Role, Tenant
from integrations.models import AuditEvent


def test_a_tenant_admin_adds_a_member_by_username(w):
    response = w.client("owner").post("/admin/accounts/membership/add/", {
        "username": "stranger", "tenant": w.acme.tenant_id, "role": Role.OPERATOR})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.filter(user__username="stranger", tenant=w.acme.tenant, role=Role.OPERATOR).exists()
    event = AuditEvent.objects.get(action="membership.created")
    assert event.actor_name == "owner" and event.detail == {"user": "stranger", "role": "operator"}
    # the new member now sees Acme
    assert w.client("stranger").get("/admin/integrations/integration/").status_code == 200


def test_the_member_form_never_lists_users_and_refuses_unknown_or_duplicate_ones(w):
    client = w.client("owner")
    form = client.get("/admin/accounts/membership/add/").content.decode()
    assert "outsider" not in form and 'name="username"' in form
    unknown = client.post("/admin/accounts/membership/add/", {"username": "nobody", "tenant": w.acme.tenant_id,
                                                              "role": Role.VIEWER})
    assert "No user with this username." in unknown.content.decode()
    duplicate = client.post("/admin/accounts/membership/add/", {"username": "viewer", "tenant": w.acme.tenant_id,
                                                                "role": Role.ADMIN})
    assert "already a member of this tenant" in duplicate.content.decode()


def test_a_tenant_admin_cannot_grant_roles_in_another_tenant(w):
    response = w.client("owner").post("/admin/accounts/membership/add/", {
        "username": "owner", "tenant": w.globex.tenant_id, "role": Role.ADMIN})
    assert "Select a valid choice" in response.content.decode()
    assert not Membership.objects.filter(user__username="owner", tenant=w.globex.tenant).exists()


def test_a_tenant_admin_renames_the_tenant_but_only_a_superuser_changes_its_slug(w):
    tenant = w.acme.tenant
    w.client("owner").post(f"/admin/accounts/tenant/{tenant.pk}/change/", {"name": "Acme Ltd", "slug": "evil"})
    tenant.refresh_from_db()
    assert (tenant.name, tenant.slug) == ("Acme Ltd", "acme")
    w.client("root").post(f"/admin/accounts/tenant/{tenant.pk}/change/", {"name": "Acme Ltd", "slug": "acme-ltd"})
    tenant.refresh_from_db()
    assert tenant.slug == "acme-ltd"
    assert w.client("owner").get("/admin/accounts/tenant/add/").status_code == 403
    assert Tenant.objects.count() == 2


def test_removing_a_member_is_audited(w):
    membership = Membership.objects.get(user__username="viewer", tenant=w.acme.tenant)
    w.client("owner").post(f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action="membership.deleted", actor_name="owner", detail__user="viewer").exists()
