"""Alerts in the console: a tenant's alert settings (write-only webhook secret, "Send test alert")
and the alerts open or recovered per integration (read-only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from accounts.models import Role
from accounts.roles import reason_unless
from integrations.admin.base import ReadOnlyAdmin, TenantScopedAdmin, request_id
from integrations.engine.alerts import request_test
from integrations.engine.audit import audit, audit_event
from integrations.models import AlertSettings, AlertState, AlertStatus, AuditEvent

SET = "••••• set"
SECRET_MIN = 16


class AlertSettingsForm(forms.ModelForm):
    """The model's fields plus a write-only input for the webhook secret (never rendered back)."""

    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=AlertSettings._meta.get_field("webhook_url").help_text,
    )
    new_webhook_secret = forms.CharField(
        required=False,
        strip=False,
        min_length=SECRET_MIN,
        max_length=200,
        label="Webhook secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    forget_webhook_secret = forms.BooleanField(
        required=False,
        label="Forget the stored webhook secret",
    )

    class Meta:
        model = AlertSettings
        fields = ("tenant", "enabled", "email_recipients", "webhook_url", "digest", "held_hours", "failed_threshold",
                  "token_warning_days")
        widgets = {"email_recipients": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            # defaults from settings are callables; compare with the row, not a hidden "initial" input
            field.show_hidden_initial = False
        stored = bool(self.instance.webhook_secret)
        self.fields["new_webhook_secret"].help_text = (
            f"{SET}; leave blank to keep it." if stored else
            f"Not set. At least {SECRET_MIN} characters; the portal signs each webhook body with it (HMAC-SHA256).")

    def secret_after_save(self) -> str:
        if self.cleaned_data.get("new_webhook_secret"):
            return self.cleaned_data["new_webhook_secret"]
        return "" if self.cleaned_data.get("forget_webhook_secret") else (self.instance.webhook_secret or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("webhook_url") and not self.secret_after_save() and "new_webhook_secret" not in self.errors:
            self.add_error("new_webhook_secret", "A webhook needs a secret to sign its messages.")
        return data


@admin.register(AlertSettings)
class AlertSettingsAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = AlertSettingsForm
    add_role = change_role = delete_role = Role.ADMIN
    change_form_template = "admin/integrations/alertsettings/change_form.html"
    list_display = ("tenant", "enabled", "recipient_count", "webhook_host", "digest", "open_alerts")
    list_select_related = ("tenant",)
    list_filter = ("enabled", "digest")
    readonly_fields = ("webhook_secret_state", "open_alerts", "updated_at")

    def get_queryset(self, request: HttpRequest):
        # a subquery, not a join: the count per tenant without grouping the settings rows
        open_count = (AlertState.objects.filter(tenant=OuterRef("tenant"), status=AlertStatus.OPEN).order_by()
                      .values("tenant").annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(open_count=Coalesce(Subquery(open_count[:1]), 0))

    def get_fieldsets(self, request: HttpRequest, obj: AlertSettings | None = None):
        editable = obj is None or self.has_change_permission(request, obj)
        secret = ("new_webhook_secret", "forget_webhook_secret") if editable else ("webhook_secret_state",)
        return [
            (None, {"fields": ("tenant", "enabled")}),
            ("Email", {"fields": ("email_recipients",)}),
            ("Webhook (signed JSON; the secret is write-only)", {"fields": ("webhook_url", *secret)}),
            ("Thresholds", {"fields": ("held_hours", "failed_threshold", "token_warning_days", "digest")}),
            ("Status", {"fields": ("open_alerts", "updated_at")}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: AlertSettings | None = None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "tenant") if obj is not None else fields  # settings do not move between tenants

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="recipients")
    def recipient_count(self, obj: AlertSettings) -> int:
        return len(obj.recipients)

    @admin.display(description="webhook")
    def webhook_host(self, obj: AlertSettings) -> str:
        return (urlsplit(obj.webhook_url).hostname or "") if obj.webhook_url else "—"

    @admin.display(description="webhook secret")
    def webhook_secret_state(self, obj: AlertSettings) -> str:
        return SET if obj.webhook_secret else "not set"

    @admin.display(description="open alerts")
    def open_alerts(self, obj: AlertSettings) -> int:
        if getattr(obj, "open_count", None) is not None:
            return obj.open_count
        return AlertState.objects.filter(tenant_id=obj.tenant_id, status=AlertStatus.OPEN).count()

    # --- saving: the secret merges, the change is audited (never the secret) --------------------
    def save_model(self, request: HttpRequest, obj: AlertSettings, form: AlertSettingsForm, change: bool) -> None:
        replaced = bool(form.cleaned_data.get("new_webhook_secret"))
        removed = not replaced and bool(form.cleaned_data.get("forget_webhook_secret")) and bool(obj.webhook_secret)
        obj.webhook_secret = form.secret_after_save()
        changed = [name for name in form.changed_data if name not in ("new_webhook_secret", "forget_webhook_secret")]
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit(obj.tenant_id, "alert_settings.updated" if change else "alert_settings.created",
                  f"Alert settings {'changed' if change else 'added'} in the console", actor=request.user,
                  request_id=request_id(request),
                  detail={"fields": changed, "webhook_key": "replaced" if replaced else "removed" if removed else "kept",
                          "channels": obj.channels})

    def delete_model(self, request: HttpRequest, obj: AlertSettings) -> None:
        event = audit_event(obj.tenant_id, "alert_settings.deleted", "Alert settings deleted in the console",
                            actor=request.user, request_id=request_id(request))
        with transaction.atomic():
            super().delete_model(request, obj)
            event.save()

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in self.scoped(request, queryset, Role.ADMIN):
            self.delete_model(request, obj)

    # --- "Send test alert" --------------------------------------------------------------------
    def get_urls(self):
        return [
            path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name=self.url_name("test")),
            *super().get_urls(),
        ]

    def test_view(self, request: HttpRequest, object_id: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        cfg = self.object_for(request, object_id, Role.OPERATOR)
        back = HttpResponseRedirect(reverse("admin:integrations_alertsettings_change", args=[cfg.pk]))
        if not cfg.channels:
            self.message_user(request, "No channel to test: add an email recipient or a webhook first.",
                              messages.WARNING)
            return back
        rid = request_id(request)
        request_test(cfg, request.user, rid)
        outcomes = list(AuditEvent.objects.filter(tenant_id=cfg.tenant_id, request_id=rid).filter(
            Q(action="alert.sent") | Q(action="alert.delivery_failed")).values_list("action", "message"))
        if not outcomes:  # a worker sends it: the outcome is in the audit trail
            self.message_user(request, f"Test alert queued for {', '.join(cfg.channels)}.")
        for action, text in outcomes:
            self.message_user(request, text, messages.SUCCESS if action == "alert.sent" else messages.ERROR)
        return back

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_test_alert"] = obj is not None and self.allows(request, Role.OPERATOR, obj)
        context["test_alert_reason"] = reason_unless(context["can_test_alert"] or obj is None, Role.OPERATOR,
                                                     "send test alerts")
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """What is open now, and what recovered, per integration and condition."""

    list_display = ("integration", "tenant", "condition", "status", "opened_at", "recovered_at", "message")
    list_select_related = ("integration", "tenant")
    list_filter = ("status", "condition")
    search_fields = ("integration__name", "message")
    readonly_fields = ("tenant", "integration", "condition", "status", "message", "detail", "opened_at",
                       "recovered_at", "checked_at")
    fields = readonly_fields
