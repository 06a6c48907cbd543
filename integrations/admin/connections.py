"""Connections: address, write-only secrets, token expiry, and "Test connection"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Role
from integrations.admin import display
from integrations.admin.base import TenantScopedAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit, audit_event
from integrations.models import Connection
from integrations.systems.redaction import redact, redact_text
from integrations.systems.schema import SECRET_KEYS
from integrations.tasks import queue_test

SET = "••••• set"


def _secret_input(key: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=False,
        label=key.replace("_", " ").capitalize(),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


SECRET_FIELDS = {f"secret_{key}": key for key in sorted(SECRET_KEYS)}


class _ConnectionForm(forms.ModelForm):
    """The model's fields minus ``secrets``, plus one write-only input per secret."""

    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text=Connection._meta.get_field("url").help_text,
    )
    forget = forms.MultipleChoiceField(
        required=False,
        choices=[(key, key.replace("_", " ")) for key in sorted(SECRET_KEYS)],
        widget=forms.CheckboxSelectMultiple,
        label="Forget stored secrets",
        help_text="Removes the ticked secrets, e.g. after switching the auth method.",
    )

    class Meta:
        model = Connection
        fields = ("tenant", "name", "system", "url", "port", "company", "auth_method", "settings")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.secrets or {}
        for name, key in SECRET_FIELDS.items():
            self.fields[name].help_text = f"{SET}; leave blank to keep it." if stored.get(key) else "Not set."

    def secret_changes(self) -> dict[str, str]:
        return {key: self.cleaned_data[name] for name, key in SECRET_FIELDS.items() if self.cleaned_data.get(name)}


# the secret inputs are declared fields, so the admin's fieldsets may name them
ConnectionForm = type("ConnectionForm", (_ConnectionForm,),
                      {name: _secret_input(key) for name, key in SECRET_FIELDS.items()})


@admin.register(Connection)
class ConnectionAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = ConnectionForm
    add_role = change_role = delete_role = Role.ADMIN
    change_form_template = "admin/integrations/connection/change_form.html"
    list_display = ("name", "tenant", "system", "address", "auth_method", "last_test_ok", "last_test_at",
                    "token_expiry", "refresh_token_expiry", "needs_reauth")
    list_select_related = ("tenant",)
    list_filter = ("system", "needs_reauth", "last_test_ok", ("tenant", ScopedRelatedFilter))
    search_fields = ("name", "url", "company")
    readonly_fields = ("status", "token_expiry", "refresh_token_expiry", "last_test_at", "test_report", "uuid",
                       "secrets_state")
    actions = ("test_connections",)

    def get_fieldsets(self, request, obj=None):
        # a read-only page cannot show inputs: it says which secrets are stored, never what
        editable = obj is None or self.has_change_permission(request, obj)
        return [
            (None, {"fields": ("tenant", "name", "system", "url", "port", "company")}),
            ("Authentication", {"fields": ("auth_method", "settings")}),
            ("Secrets (write-only: never shown back)",
             {"fields": (*SECRET_FIELDS, "forget") if editable else ("secrets_state",)}),
            ("Status", {"fields": ("status", "token_expiry", "refresh_token_expiry", "last_test_at", "test_report",
                                   "uuid")}),
        ]

    @admin.display(description="secrets")
    def secrets_state(self, obj: Connection) -> str:
        stored = obj.secrets or {}
        return "; ".join(f"{key.replace('_', ' ')}: {SET if stored.get(key) else 'not set'}"
                         for key in sorted(SECRET_KEYS))

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="refresh token runs out", ordering="refresh_token_expires_at")
    def refresh_token_expiry(self, obj: Connection):
        return display.expiry(obj.refresh_token_expires_at, warn_days=display.refresh_warning_days())

    @admin.display(description="access token runs out", ordering="token_expires_at")
    def token_expiry(self, obj: Connection):
        return display.expiry(obj.token_expires_at)

    @admin.display(description="status")
    def status(self, obj: Connection):
        if obj.pk is None:
            return display.EMPTY
        if obj.needs_reauth:
            head = display.badge("reauth", "needs re-authentication")
        elif display.refresh_expiring(obj.refresh_token_expires_at):
            head = display.badge("warning", "refresh token running out")
        elif obj.last_test_ok is False:
            head = display.badge("failed", "last test failed")
        else:
            head = display.badge("ok", "ok")
        if obj.last_error:
            return format_html('{}<br><span class="quiet">{}</span>', head, redact_text(obj.last_error))
        return head

    @admin.display(description="last connection test")
    def test_report(self, obj: Connection):
        return display.test_report(obj.last_test_report)

    # --- saving: secrets merge, tokens reset, audit -------------------------------------------
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django runs the whole form view in one transaction; on SQLite (BEGIN IMMEDIATE) that
        # holds the database's write lock while the form validates, redaction runs and the page
        # renders. Only the save and its audit event need a transaction (save_model).
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Connection, form: ConnectionForm, change: bool) -> None:
        new = form.secret_changes()
        forget = set(form.cleaned_data.get("forget") or []) - set(new)
        if new or forget:
            obj.secrets = {k: v for k, v in {**(obj.secrets or {}), **new}.items() if k not in forget}
            obj.token_cache = {}  # credentials changed: the next call logs on afresh
        changed = [name for name in form.changed_data if not name.startswith("secret_") and name != "forget"]
        # built (and redacted) before the transaction, so no lock is held while it runs
        event = audit_event(obj.tenant_id, "connection.updated" if change else "connection.created",
                            f"{obj.name} {'changed' if change else 'added'} in the console", actor=request.user,
                            request_id=request_id(request),
                            # key names that match the redaction pattern ("secret...") would be masked whole
                            detail={"fields": changed, "settings": redact(obj.settings or {}),
                                    "replaced": sorted(new), "removed": sorted(forget)})
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            event.connection_id = obj.pk
            event.save()

    def delete_model(self, request: HttpRequest, obj: Connection) -> None:
        audit(obj.tenant_id, "connection.deleted", f"{obj.name} deleted in the console", actor=request.user,
              connection_id=obj.pk, request_id=request_id(request))
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in self.scoped(request, queryset, Role.ADMIN):
            self.delete_model(request, obj)

    # --- test connection: button and bulk action ---------------------------------------------
    @admin.action(description="Test connection", permissions=("operate",))
    def test_connections(self, request: HttpRequest, queryset) -> None:
        connections = list(self.scoped(request, queryset, Role.OPERATOR))
        for connection in connections:
            queue_test(connection, request.user)
        self.message_user(request, f"Queued {len(connections)} connection test(s); each report shows on its connection.")

    def get_urls(self):
        return [
            path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name=self.url_name("test")),
            *super().get_urls(),
        ]

    def test_view(self, request: HttpRequest, object_id: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = self.object_for(request, object_id, Role.OPERATOR)
        before = connection.last_test_at
        queue_test(connection, request.user)
        connection.refresh_from_db()
        if connection.last_test_at == before:
            self.message_user(request, f"Test of {connection.name} queued; the report appears below when done.")
        elif connection.last_test_ok:
            self.message_user(request, f"All checks passed for {connection.name}.", messages.SUCCESS)
        else:
            failed = "; ".join(connection.last_test_report.get("failed", []))
            self.message_user(request, f"Test of {connection.name} failed: {redact_text(failed)}", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[connection.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_test"] = obj is not None and self.allows(request, Role.OPERATOR, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)
