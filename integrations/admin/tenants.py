"""Tenants and memberships in the console.

Superusers create tenants and users; a tenant's admins manage who is a member and with which
role. Users are named by username, never picked from a list: a list of every user would tell
one tenant who works for the others.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count

from accounts.models import Membership, Role, Tenant
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
