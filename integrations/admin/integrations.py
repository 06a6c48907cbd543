"""Integrations: run now, pause and resume, per-stream schedules kept in step with django-q."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.models import Role
from accounts.roles import DOING, disabled_reason, reason_unless
from integrations.admin import display
from integrations.admin.base import TenantScopedAdmin, request_id
from integrations.admin.dashboard import schedules_due, streams_with_latest_runs
from integrations.admin.display import stream_name
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit_event, audit_many
from integrations.engine.documents import stream_label
from integrations.engine.operations import set_enabled
from integrations.engine.runner import ensure_streams
from integrations.engine.schedules import sync_schedules
from integrations.flows import flow_kinds, get_flow
from integrations.models import Integration, RecordStatus, RunStatus, StreamState, SyncRecord, SyncRun
from integrations.tasks import request_run

# what Run now and Resume do, in the words their disabled buttons and their 403s share
RUN, RESUME = DOING["integration_run"], DOING["resume"]


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


class StreamStateForm(forms.ModelForm):
    """A row of the syncs table: its fields named after the sync they set, since a table's column
    headers are not labels of the inputs below them."""

    class Meta:
        model = StreamState
        fields = ("enabled", "schedule", "cron")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = self.instance
        what = stream_label(state.integration.kind, state.stream) if state.pk else "this sync"
        for name, words in (("enabled", "Switched on"), ("schedule", "Schedule"), ("cron", "Cron expression")):
            if name in self.fields:
                self.fields[name].widget.attrs["aria-label"] = f"{words}: {what}"


class StreamStateInline(admin.TabularInline):
    """What the integration syncs, one row per stream, with its schedule and a "Run now".

    Streams come from the flow, so none is added or deleted here. People read the stream's label
    ("AP invoices (Sage X3 → ServiceNow AP)"); its technical name, the cursor and the lock stay in
    tooltips. The Run now buttons submit the page's separate ``stream-run`` form (see
    change_form.html): a form cannot sit inside the change form.
    """

    model = StreamState
    form = StreamStateForm
    verbose_name = "sync"
    verbose_name_plural = "What it syncs, and when"
    # the label and its button first: the columns that matter stay in view on a narrow screen
    fields = ("what", "run", "enabled", "schedule", "cron", "last_success", "next_due", "synced_up_to", "running")
    readonly_fields = ("what", "next_due", "last_success", "synced_up_to", "running", "run")
    extra = 0
    can_delete = False
    can_run = False  # set per request in get_formset: operators and above

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

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("integration")  # each row's kind, for its label

    def get_formset(self, request, obj=None, **kwargs):
        # inline instances are made per request, so this flag is this request's
        self.can_run = obj is not None and self._allowed(request, Role.OPERATOR, obj)
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="syncs")
    def what(self, state: StreamState):
        return stream_name(state.integration.kind, state.stream)

    @admin.display(description="next run due")
    def next_due(self, state: StreamState) -> str:
        if not hasattr(self, "_due"):
            # one query for every stream of the integration on this page
            states = list(StreamState.objects.filter(integration_id=state.integration_id).select_related("integration"))
            self._due = schedules_due(states)
        return display.local(self._due.get((state.integration_id, state.stream)))

    @admin.display(description="last synced")
    def last_success(self, state: StreamState) -> str:
        return display.local(state.last_success_at)

    @admin.display(description="changes read up to")
    def synced_up_to(self, state: StreamState):
        # the cursor is the source's own update time of the last record read, as the source wrote it
        return format_html('<span title="cursor: {}">{}</span>', state.cursor or "none", state.cursor or "not yet")

    @admin.display(description="running now")
    def running(self, state: StreamState):
        if state.lock_token:
            return format_html('<span title="lock held since {}">yes, since {}</span>',
                               display.local(state.lock_heartbeat_at), display.local(state.lock_heartbeat_at))
        return mark_safe('<span title="lock free">no</span>')  # a constant

    @admin.display(description="run")
    def run(self, state: StreamState):
        label = stream_label(state.integration.kind, state.stream)
        if self.can_run:
            return format_html('<button type="submit" form="stream-run" name="stream" value="{}" '
                               'class="console-stream-run" aria-label="Run {} now">Run now</button>',
                               state.stream, label)
        # the same label and name as the working button; the reason as its tooltip and, for screen
        # readers, the one beside the page's disabled Run now (_disabled_tool.html, #run-now-reason)
        return format_html('<button type="button" class="console-stream-run" disabled aria-label="Run {} now" '
                           'aria-describedby="run-now-reason" title="{}">Run now</button>', label,
                           disabled_reason(Role.OPERATOR, RUN))


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
        return [main, ("Latest run of each sync", {"fields": ("latest_runs",)}),
                ("Identity", {"classes": ("collapse",), "fields": ("uuid", "created_at")})]

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="kind", ordering="kind")
    def kind_label(self, obj: Integration) -> str:
        return dict(flow_kinds()).get(obj.kind, obj.kind)

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, obj: Integration):
        if obj.last_run_at is None:
            return display.EMPTY
        status = obj.last_run_status
        words = RunStatus(status).label if status in RunStatus.values else status
        return format_html("{} {}", display.badge(status, words), display.local(obj.last_run_at))

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
        rows = [{"run": run, "what": stream_name(obj.kind, run.stream), "badge": display.run_badge(run),
                 "started": display.local(run.started_at), "took": display.duration(run.duration)} for run in latest]
        return render_to_string("admin/integrations/integration/latest_runs.html", {"rows": rows})

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
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """As the integration page's Run now: a selection with paused integrations asks first, naming them."""
        integrations = list(self.scoped(request, queryset, Role.OPERATOR).select_related("tenant")
                            .order_by("tenant__name", "name"))
        paused = [integration for integration in integrations if not integration.enabled]
        if paused and request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/integrations/integration/run_selected_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.opts,
                "title": "Run integrations that are paused?", "paused": paused, "count": len(integrations),
                "hidden": [("action", "run_now"), ("select_across", request.POST.get("select_across", "0")),
                           *((helpers.ACTION_CHECKBOX_NAME, pk)
                             for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))]})
        for integration in integrations:
            self._queue(request, integration)
        self.message_user(request, f"Queued a run of {len(integrations)} integration(s); see each one's latest runs.")
        return None

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

    def _queue(self, request: HttpRequest, integration: Integration, streams: list[str] | None = None) -> None:
        request_run(integration, request.user, streams=streams, request_id=request_id(request), via="in the console")

    def get_urls(self):
        return [
            path("<path:object_id>/run/", self.admin_site.admin_view(self.run_view), name=self.url_name("run")),
            path("<path:object_id>/resume/", self.admin_site.admin_view(self.resume_view),
                 name=self.url_name("resume")),
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

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run now, of the whole integration or of one stream (``stream`` in the POST); a paused
        integration asks first, since its runs were stopped on purpose."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self.object_for(request, object_id, Role.OPERATOR)
        page = reverse("admin:integrations_integration_change", args=[integration.pk])
        stream = request.POST.get("stream", "")
        if stream and not StreamState.objects.filter(integration=integration, stream=stream).exists():
            self.message_user(request, "That sync is not part of this integration; nothing was run.", messages.ERROR)
            return HttpResponseRedirect(page)
        what = stream_label(integration.kind, stream) if stream else ""
        if not integration.enabled and request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/integrations/integration/run_paused_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.opts, "original": integration,
                "title": f"Run {integration.name} while it is paused?", "stream": stream, "what": what,
                "stream_title": stream and stream_name(integration.kind, stream)})
        self._queue(request, integration, [stream] if stream else None)
        if stream:
            self.message_user(request, f"Run of {what} in {integration.name} queued; the latest runs below show it.")
        else:
            self.message_user(request, f"Run of {integration.name} queued; the latest runs below show its progress.")
        return HttpResponseRedirect(page)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self.object_for(request, object_id, Role.OPERATOR)
        if set_enabled([integration], True, request.user, request_id(request), via="in the console"):
            self.message_user(request, f"Resumed {integration.name}: its scheduled runs start again.")
        else:
            self.message_user(request, f"{integration.name} was already running on its schedule.")
        return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_run"] = obj is not None and self.allows(request, Role.OPERATOR, obj)
        context["run_reason"] = reason_unless(context["can_run"] or obj is None, Role.OPERATOR, RUN)
        context["resume_reason"] = reason_unless(context["can_run"] or obj is None, Role.OPERATOR, RESUME)
        return super().render_change_form(request, context, add, change, form_url, obj)
