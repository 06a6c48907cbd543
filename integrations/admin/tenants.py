"""Tenants and memberships in the console.

Superusers create tenants and users; a tenant's admins manage who is a member and with which
role. Users are named by username, never picked from a list: a list of every user would tell
one tenant who works for the others.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.invites import InviteError, InviteForm, TooManyInvitations, invite_member, link_days, send_invitation
from accounts.models import Membership, Role, Tenant
from accounts.roles import reason_unless, role_name
from accounts.scoping import tenants_for
from integrations.admin.base import TenantScopedAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin, admin.ModelAdmin):
    tenant_field = "id"
    change_role = Role.ADMIN
    list_display = ("name", "slug", "member_count", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("uuid", "created_at")

    def get_queryset(self, request):
        # one aggregate for the page instead of a count per tenant
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Tenant) -> int:
        return obj.member_count

    def get_readonly_fields(self, request, obj=None):
        # the slug names the tenant in load documents and commands: only superusers rename it
        if obj is not None and not request.user.is_superuser:
            return (*self.readonly_fields, "slug")
        return self.readonly_fields

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class MembershipForm(forms.ModelForm):
    username = forms.CharField(
        max_length=150,
        help_text="An existing user (a superuser creates users). Members need 'staff status' to log in.",
    )

    class Meta:
        model = Membership
        fields = ("username", "tenant", "role")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.get_username()

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise forms.ValidationError("No user with this username.")
        self.instance.user = user
        return username

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant")
        if tenant and self.instance.user_id:
            taken = Membership.objects.filter(user_id=self.instance.user_id, tenant=tenant)
            if taken.exclude(pk=self.instance.pk).exists():
                raise forms.ValidationError("This user is already a member of this tenant.")
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = MembershipForm
    add_role = change_role = delete_role = Role.ADMIN
    list_display = ("user", "tenant", "role")
    list_select_related = ("user", "tenant")
    list_filter = ("role", ("tenant", ScopedRelatedFilter))
    search_fields = ("user__username",)

    def get_urls(self):
        return [path("invite/", self.admin_site.admin_view(self.invite_view), name=self.url_name("invite")),
                *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        may = self.allows(request, Role.ADMIN)
        return super().changelist_view(request, {
            "can_invite": may, "invite_reason": reason_unless(may, Role.ADMIN, "invite members"),
            **(extra_context or {})})

    def invite_view(self, request: HttpRequest):
        """Invite a person by email and role into a tenant the user is an admin of."""
        self.require(request, Role.ADMIN)
        tenants = tenants_for(request.user, Role.ADMIN)
        form = InviteForm(request.POST or None, tenants=tenants)
        status = 200
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                invitation = invite_member(data["tenant"], data["email"], data["role"], request.user,
                                           request_id(request))
            except TooManyInvitations as exc:
                form.add_error(None, str(exc))
                status = 429
            except InviteError as exc:
                form.add_error("email", str(exc))
            else:
                send_invitation(request, invitation, request.user)
                self.message_user(request, f"Invited {data['email']} to {data['tenant']} as "
                                           f"{role_name(data['role'])}: they got an email.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_membership_changelist"))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
                   "title": "Invite a member", "days": link_days()}
        return TemplateResponse(request, "admin/accounts/membership/invite.html", context, status=status)

    @admin.display(description="username")
    def username(self, obj: Membership) -> str:
        # shown on the read-only page; the form's own field when editing
        return obj.user.get_username()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit(obj.tenant_id, "membership.updated" if change else "membership.created",
              f"{obj.user.get_username()} is {obj.role} in {obj.tenant}", actor=request.user,
              request_id=request_id(request), detail={"user": obj.user.get_username(), "role": obj.role})

    def delete_model(self, request, obj):
        self._audit_removed(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        queryset = self.scoped(request, queryset, self.delete_role)
        for obj in queryset.select_related("user", "tenant"):
            self._audit_removed(request, obj)
        super().delete_queryset(request, queryset)

    def _audit_removed(self, request, obj: Membership) -> None:
        audit(obj.tenant_id, "membership.deleted", f"{obj.user.get_username()} removed from {obj.tenant}",
              actor=request.user, request_id=request_id(request), detail={"user": obj.user.get_username()})
