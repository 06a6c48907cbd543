"""Integrations: run now, pause and resume, per-stream schedules kept in step with django-q."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Role
from integrations.admin import display
from integrations.admin.base import TenantScopedAdmin, request_id
from integrations.admin.dashboard import schedules_due, streams_with_latest_runs
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit_event, audit_many
from integrations.engine.operations import set_enabled
from integrations.engine.runner import ensure_streams
from integrations.engine.schedules import sync_schedules
from integrations.flows import flow_kinds, get_flow
from integrations.models import Integration, RecordStatus, StreamState, SyncRecord, SyncRun
from integrations.tasks import request_run


def count_subquery(status: str) -> Subquery:
    """Records of the outer integration in ``status``: a count over record_queue_idx per row,
    rather than a join that would multiply the integration rows."""
    rows = (SyncRecord.objects.filter(integration=OuterRef("pk"), status=status).order_by()
            .values("integration").annotate(n=Count("pk")).values("n"))
    return Subquery(rows[:1])


class KindFilter(admin.SimpleListFilter):
    """Kinds from the flow registry (Django's own would list every tenant's distinct values)."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return flow_kinds()

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class IntegrationForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=())

    class Meta:
        model = Integration
        fields = ("tenant", "name", "kind", "source", "target", "enabled", "settings")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = flow_kinds()

    def clean(self):
        cleaned = super().clean()
        tenant, kind = cleaned.get("tenant"), cleaned.get("kind")
        if not kind:
            return cleaned
        flow = get_flow(kind)
        for side, wanted in (("source", flow.source_system), ("target", flow.target_system)):
            connection = cleaned.get(side)
            if connection is None:
                continue
            if tenant and connection.tenant_id != tenant.pk:
                self.add_error(side, "This connection belongs to another tenant.")
            elif connection.system != wanted:
                self.add_error(side, f"{flow.label} needs a {wanted} connection here, not {connection.system}.")
        return cleaned


class StreamStateInline(admin.TabularInline):
    """Per-stream schedules; streams come from the flow, so none is added or deleted here."""

    model = StreamState
    fields = ("stream", "enabled", "schedule", "cron", "next_due", "last_success", "cursor", "lock")
    readonly_fields = ("stream", "next_due", "last_success", "cursor", "lock")
    extra = 0
    can_delete = False

    def _allowed(self, request: HttpRequest, role: str, obj: Integration | None) -> bool:
        # the parent admin answers, for the parent integration
        parent = self.admin_site._registry[Integration]
        return parent.allows(request, role, obj)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, Role.VIEWER, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, Role.ADMIN, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="next run due")
    def next_due(self, state: StreamState) -> str:
        if not hasattr(self, "_due"):
            # one query for every stream of the integration on this page
            states = list(StreamState.objects.filter(integration_id=state.integration_id).select_related("integration"))
            self._due = schedules_due(states)
        return display.local(self._due.get((state.integration_id, state.stream)))

    @admin.display(description="last success")
    def last_success(self, state: StreamState) -> str:
        return display.local(state.last_success_at)

    @admin.display(description="lock")
    def lock(self, state: StreamState) -> str:
        return f"held since {display.local(state.lock_heartbeat_at)}" if state.lock_token else "free"


@admin.register(Integration)
class IntegrationAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = IntegrationForm
    add_role = change_role = delete_role = Role.ADMIN
    change_form_template = "admin/integrations/integration/change_form.html"
    list_display = ("name", "tenant", "kind_label", "source", "target", "enabled", "last_run", "failed_count",
                    "held_count")
    list_select_related = ("tenant", "source", "target")
    list_filter = ("enabled", KindFilter, ("tenant", ScopedRelatedFilter))
    search_fields = ("name",)
    autocomplete_fields = ("source", "target")
    readonly_fields = ("latest_runs", "uuid", "created_at")
    inlines = (StreamStateInline,)
    actions = ("run_now", "pause", "resume", "reconcile_last_month")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        latest = SyncRun.objects.filter(integration=OuterRef("pk")).order_by("-started_at", "-pk")
        return super().get_queryset(request).annotate(
            last_run_at=Subquery(latest.values("started_at")[:1]),
            last_run_status=Subquery(latest.values("status")[:1]),
            failed_count=count_subquery(RecordStatus.FAILED),
            held_count=count_subquery(RecordStatus.HELD),
        )

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ("tenant", "name", "kind", "source", "target", "enabled", "settings")})
        if obj is None:
            return [main]
        return [main, ("Latest run of each stream", {"fields": ("latest_runs",)}),
                ("Identity", {"classes": ("collapse",), "fields": ("uuid", "created_at")})]

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="kind", ordering="kind")
    def kind_label(self, obj: Integration) -> str:
        return dict(flow_kinds()).get(obj.kind, obj.kind)

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, obj: Integration):
        if obj.last_run_at is None:
            return display.EMPTY
        return format_html("{} {}", display.badge(obj.last_run_status), display.local(obj.last_run_at))

    @admin.display(description="failed", ordering="failed_count")
    def failed_count(self, obj: Integration):
        return self._queue_link("failedrecord", obj, obj.failed_count)

    @admin.display(description="held", ordering="held_count")
    def held_count(self, obj: Integration):
        return self._queue_link("heldrecord", obj, obj.held_count)

    def _queue_link(self, model: str, obj: Integration, count: int | None):
        url = reverse(f"admin:integrations_{model}_changelist")
        return format_html('<a href="{}?integration__id__exact={}">{}</a>', url, obj.pk, count or 0)

    @admin.display(description="latest runs")
    def latest_runs(self, obj: Integration):
        """Progress and result: the latest run of each stream with its counters."""
        if obj.pk is None:
            return display.EMPTY
        states, runs = streams_with_latest_runs([obj.pk])
        latest = [runs[s.last_run_id] for s in states if s.last_run_id in runs]
        if not latest:
            return "No runs yet."
        rows = [{"run": run, "badge": display.run_badge(run), "started": display.local(run.started_at),
                 "took": display.duration(run.duration)} for run in latest]
        return render_to_string("console/latest_runs.html", {"rows": rows})

    # --- saving: streams, schedules, audit ----------------------------------------------------
    def save_model(self, request: HttpRequest, obj: Integration, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            ensure_streams(obj)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        result = sync_schedules(obj)
        streams = [f"{s.stream}: {s.schedule}{' ' + s.cron if s.cron else ''}{'' if s.enabled else ' (off)'}"
                   for s in StreamState.objects.filter(integration=obj)]
        audit_many([audit_event(
            obj.tenant_id, "integration.updated" if change else "integration.created",
            f"{obj.name} {'changed' if change else 'added'} in the console", actor=request.user,
            integration_id=obj.pk, request_id=request_id(request),
            detail={"fields": form.changed_data, "settings": obj.settings, "streams": streams,
                    "schedules": result.__dict__})])

    # --- actions ------------------------------------------------------------------------------
    @admin.action(description="Run now", permissions=("operate",))
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        integrations = list(self.scoped(request, queryset, Role.OPERATOR).select_related("tenant"))
        for integration in integrations:
            self._queue(request, integration)
        self.message_user(request, f"Queued a run of {len(integrations)} integration(s); see each one's latest runs.")

    @admin.action(description="Pause (no scheduled runs)", permissions=("operate",))
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = set_enabled(list(self.scoped(request, queryset, Role.OPERATOR)), False, request.user, request_id(request))
        self.message_user(request, f"Paused {count} integration(s).")

    @admin.action(description="Resume", permissions=("operate",))
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = set_enabled(list(self.scoped(request, queryset, Role.OPERATOR)), True, request.user, request_id(request))
        self.message_user(request, f"Resumed {count} integration(s).")

    @admin.action(description="Reconcile last month", permissions=("operate",))
    def reconcile_last_month(self, request: HttpRequest, queryset: QuerySet) -> None:
        from integrations.admin.reconciliation import request_for

        count = request_for(request, self.scoped(request, queryset, Role.OPERATOR))
        self.message_user(request, f"Reconciliation of last month queued for {count} integration(s) with invoices; "
                                   "each one's Reconciliation page shows the verdict.")

    def _queue(self, request: HttpRequest, integration: Integration) -> None:
        request_run(integration, request.user, request_id=request_id(request), via="in the console")

    def get_urls(self):
        return [
            path("<path:object_id>/run/", self.admin_site.admin_view(self.run_view), name=self.url_name("run")),
            # month-end reconciliation (integrations/admin/reconciliation.py draws the page)
            path("<path:object_id>/reconciliation/", self.admin_site.admin_view(self.reconciliation_view),
                 name=self.url_name("reconciliation")),
            path("<path:object_id>/reconcile/", self.admin_site.admin_view(self.reconcile_view),
                 name=self.url_name("reconcile")),
            *super().get_urls(),
        ]

    def reconciliation_view(self, request: HttpRequest, object_id: str):
        from integrations.admin.reconciliation import integration_page

        return integration_page(request, self.object_for(request, object_id, Role.VIEWER))

    def reconcile_view(self, request: HttpRequest, object_id: str):
        from integrations.admin.reconciliation import reconcile_from_page

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return reconcile_from_page(request, self.object_for(request, object_id, Role.OPERATOR))

    def run_view(self, request: HttpRequest, object_id: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self.object_for(request, object_id, Role.OPERATOR)
        self._queue(request, integration)
        self.message_user(request, f"Run of {integration.name} queued; the latest runs below show its progress.")
        return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_run"] = obj is not None and self.allows(request, Role.OPERATOR, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)
