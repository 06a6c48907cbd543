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
from accounts.roles import reason_unless
from integrations.admin import display
from integrations.admin.base import TenantScopedAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit, audit_event
from integrations.models import Connection
from integrations.systems.redaction import redact, redact_text
from integrations.systems.registry import schema_for
from integrations.systems.schema import SECRET_KEYS, ConnectionFields, auth_setting_keys_for
from integrations.tasks import queue_test

SET = "••••• set"


def _secret_input(key: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=False,
        label=key.replace("_", " ").capitalize(),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class _ConnectionForm(forms.ModelForm):
    """The model's fields minus ``secrets``, plus one write-only input per secret of the system.

    Which secrets, and what the address, company and settings mean, come from the system's
    connection schema (``systems/``); see :func:`connection_form`.
    """

    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text=Connection._meta.get_field("url").help_text,
    )
    secret_keys: tuple[str, ...] = ()

    class Meta:
        model = Connection
        fields = ("tenant", "name", "system", "url", "port", "company", "auth_method", "settings")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.secrets or {}
        for key in self.secret_keys:
            self.fields[f"secret_{key}"].help_text = f"{SET}; leave blank to keep it." if stored.get(key) else "Not set."
        self.fields["forget"].choices = [(key, key.replace("_", " ")) for key in self.secret_keys]
        schema = schema_for(self.instance.system) if self.instance.pk else None
        if schema is not None:
            names = [*auth_setting_keys_for(self.instance.auth_method), *(s.name for s in schema.settings)]
            helps = {"url": schema.url_help,
                     "company": f"{schema.label}: {schema.company_label}." if schema.company_label else "",
                     "settings": f"Non-secret settings of {schema.label}: {', '.join(names)}."}
            for name, text in helps.items():
                if text and name in self.fields:  # a read-only page has no inputs
                    self.fields[name].help_text = text

    def secret_changes(self) -> dict[str, str]:
        return {key: self.cleaned_data[f"secret_{key}"] for key in self.secret_keys
                if self.cleaned_data.get(f"secret_{key}")}

    def merged_secrets(self) -> dict[str, str]:
        """The secrets the connection would hold after this save."""
        forget = set(self.cleaned_data.get("forget") or []) - set(self.secret_changes())
        current = {k: v for k, v in (self.instance.secrets or {}).items() if k not in forget}
        return {**current, **self.secret_changes()}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        schema = schema_for(data.get("system") or "")
        if data.get("system") and schema is None:
            self.add_error("system", f"No connector for {data['system']} yet.")
            return data
        if schema is None or any(name in self.errors for name in ("url", "port", "settings", "auth_method")):
            return data
        method = data.get("auth_method") or ""
        fields = ConnectionFields(url=data.get("url") or "", port=data.get("port"), company=data.get("company") or "",
                                  auth_method=method, settings=data.get("settings"),
                                  secrets={k: v for k, v in self.merged_secrets().items()
                                           if k in schema.method_secrets(method)})
        for name, problems in schema.problems(fields).items():
            if name == "secrets":
                for problem in problems:
                    key = problem.split(":", 1)[0]
                    self.add_error(f"secret_{key}" if key in self.secret_keys else None, problem)
            else:
                self.add_error(name if name in self.fields else None, problems)
        return data


def connection_form(system: str | None) -> type[_ConnectionForm]:
    """The form for a connection to ``system``: only its secrets have inputs (all of them while
    a new connection's system is not chosen yet)."""
    schema = schema_for(system or "")
    keys = schema.secret_keys() if schema else tuple(sorted(SECRET_KEYS))
    fields: dict[str, Any] = {f"secret_{key}": _secret_input(key) for key in keys}
    fields["forget"] = forms.MultipleChoiceField(
        required=False,
        choices=[(key, key.replace("_", " ")) for key in keys],
        widget=forms.CheckboxSelectMultiple,
        label="Forget stored secrets",
        help_text="Removes the ticked secrets, e.g. after switching the auth method.",
    )
    return type("ConnectionForm", (_ConnectionForm,), {**fields, "secret_keys": keys})


ConnectionForm = connection_form(None)


def _system_of(request: HttpRequest, obj: Connection | None) -> str:
    if obj is not None:
        return obj.system
    return str(request.POST.get("system") or request.GET.get("system") or "")


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

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = connection_form(_system_of(request, obj))
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        # a read-only page cannot show inputs: it says which secrets are stored, never what
        editable = obj is None or self.has_change_permission(request, obj)
        secret_inputs = tuple(f"secret_{key}" for key in connection_form(_system_of(request, obj)).secret_keys)
        return [
            (None, {"fields": ("tenant", "name", "system", "url", "port", "company")}),
            ("Authentication", {"fields": ("auth_method", "settings")}),
            ("Secrets (write-only: never shown back)",
             {"fields": (*secret_inputs, "forget") if editable else ("secrets_state",)}),
            ("Status", {"fields": ("status", "token_expiry", "refresh_token_expiry", "last_test_at", "test_report",
                                   "uuid")}),
        ]

    @admin.display(description="secrets")
    def secrets_state(self, obj: Connection) -> str:
        stored = obj.secrets or {}
        keys = connection_form(obj.system).secret_keys
        return "; ".join(f"{key.replace('_', ' ')}: {SET if stored.get(key) else 'not set'}" for key in keys)

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
            obj.secrets = form.merged_secrets()
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
        context["test_reason"] = reason_unless(context["can_test"] or obj is None, Role.OPERATOR, "test connections")
        return super().render_change_form(request, context, add, change, form_url, obj)
