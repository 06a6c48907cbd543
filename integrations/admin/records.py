"""Records: all of them, the Failed and Held queues, the lineage page, replay with a reason.

These lists run over the biggest table: no full COUNT (capped paginator), filters whose
choices come from small tables, a business-key search that an index answers, and one query
for the page whatever its size.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Role
from accounts.roles import reason_unless
from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin, request_id
from integrations.admin.filters import AgeFilter, ScopedRelatedFilter, StreamFilter
from integrations.engine.documents import Document, document_of
from integrations.models import (
    AuditEvent,
    ErrorClass,
    FailedRecord,
    HeldRecord,
    RecordStatus,
    SyncAttempt,
    SyncRecord,
    SyncRun,
)
from integrations.systems.redaction import redact
from integrations.systems.registry import system_label
from integrations.tasks import MAX_REPLAY, REPLAY_REASON_MAX, REPLAY_REASON_MIN, request_replay

# one request queues at most this many records; a bigger replay is several, narrowed by filters


class ReplayForm(forms.Form):
    reason = forms.CharField(
        min_length=REPLAY_REASON_MIN,
        max_length=REPLAY_REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why these records are sent again; recorded in the audit trail with your name.",
    )


class RunFilter(admin.SimpleListFilter):
    """The records one run touched (``?run=<id>``, linked from the runs page)."""

    title = "run"
    parameter_name = "run"

    def run_id(self) -> int | None:
        """The run asked for; an id that cannot be a run's is the admin's "invalid filter" (``?e=1``).

        A number past the database's integer range used to reach SQLite as an OverflowError (a 500).
        """
        value = self.value()
        if not value:
            return None
        if value.isascii() and value.isdigit() and len(value) <= 19 and int(value) > 0:
            try:
                SyncRun._meta.pk.run_validators(int(value))  # the database's integer range
                return int(value)
            except ValidationError:
                pass
        raise IncorrectLookupParameters(f"run must be a run number, not {value!r}")

    def lookups(self, request, model_admin):
        # any value is offered, so that queryset() runs and refuses what is not a run number
        value = self.value()
        return [(value, f"run #{value}")] if value else []

    def queryset(self, request, queryset):
        run_id = self.run_id()
        if run_id is None:
            return queryset
        return queryset.filter(pk__in=SyncAttempt.objects.filter(run_id=run_id).values("record_id"))


class MissingFilter(admin.SimpleListFilter):
    """Held records waiting for one mapping key (``?missing=gl_account:61200``)."""

    title = "waiting for"
    parameter_name = "missing"

    def lookups(self, request, model_admin):
        return [(self.value(), self.value())] if self.value() else []

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(missing__contains=f"|{self.value()}|")
        return queryset


class RecordAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """All records of the user's tenants; the change page is the record's lineage."""

    tenant_field = "integration__tenant"
    scope_by_integration_ids = True
    list_display = ("record", "supplier", "document_date", "amount", "kind", "status_badge", "error_class",
                    "integration", "attempts", "updated")
    list_display_links = None
    list_select_related = ("integration", "integration__source")
    list_filter = (("integration", ScopedRelatedFilter), StreamFilter, "status", "error_class", AgeFilter, RunFilter)
    search_fields = ("business_key",)
    search_help_text = "Business key (invoice number, supplier code...): exact or starting with; all-lower-case input is read as upper case."
    actions = ("replay_selected",)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # A prefix as one range (>= term, < term + the last code point): SQLite's LIKE ignores
        # case and cannot use an index, and an OR of ranges makes it give up the index too.
        term = search_term.strip()
        if not term:
            return queryset, False
        if term == term.lower():  # "pi0004" finds PI00041: ERP keys are upper case
            term = term.upper()
        return queryset.filter(business_key__gte=term, business_key__lt=term + "\U0010ffff"), False

    # --- columns ------------------------------------------------------------------------------
    @staticmethod
    def document(obj: SyncRecord) -> Document:
        """The record as AP people know it (read from its snapshot once per row)."""
        found = getattr(obj, "_document", None)
        if found is None:
            found = obj._document = document_of(obj, obj.integration.kind, obj.integration.source.settings)
        return found

    @admin.display(description="record", ordering="business_key")
    def record(self, obj: SyncRecord):
        url = reverse("admin:integrations_syncrecord_change", args=[obj.pk])
        return format_html('<a href="{}" title="{} · source key {}">{}</a>', url, self.document(obj).kind,
                           obj.source_key, obj.business_key or obj.source_key)

    @admin.display(description="document kind", ordering="stream")
    def kind(self, obj: SyncRecord):
        return format_html('<span title="technical name: {}">{}</span>', obj.stream, self.document(obj).kind)

    @admin.display(description="supplier")
    def supplier(self, obj: SyncRecord) -> str:
        return self.document(obj).supplier or display.EMPTY

    @admin.display(description="date")
    def document_date(self, obj: SyncRecord) -> str:
        day = self.document(obj).day
        return day.isoformat() if day else display.EMPTY

    @admin.display(description="amount")
    def amount(self, obj: SyncRecord) -> str:
        return self.document(obj).amount_text or display.EMPTY

    @admin.display(description="what to do")
    def next_step(self, obj: SyncRecord) -> str:
        return next_step(obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: SyncRecord):
        return display.badge(obj.status, obj.get_status_display())

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: SyncRecord) -> str:
        return display.local(obj.updated_at)

    @admin.display(description="error")
    def error(self, obj: SyncRecord) -> str:
        return obj.error_message[:160]

    @admin.display(description="waiting for")
    def waiting_for(self, obj: SyncRecord):
        url = reverse("admin:integrations_mapping_changelist")
        parts = [key.split(":", 1) for key in obj.missing_keys]
        return format_html_join(
            ", ", '<a href="{}?integration__id__exact={}&amp;kind__exact={}&amp;q={}">{}:{}</a>',
            ((url, obj.integration_id, kind, code, kind, code) for kind, code in parts if code),
        )

    @admin.display(description="next retry", ordering="next_retry_at")
    def next_retry(self, obj: SyncRecord) -> str:
        return display.local(obj.next_retry_at)

    # --- lineage ------------------------------------------------------------------------------
    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        record = self.get_object(request, object_id)
        if record is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if self.model is not SyncRecord:
            # one lineage page per record, whichever queue it was opened from
            return HttpResponseRedirect(reverse("admin:integrations_syncrecord_change", args=[record.pk]))
        attempts = list(SyncAttempt.objects.filter(record=record).select_related("run").order_by("number", "pk"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            # "lineage" is our word; a clerk reads the record's history (the page keeps its CSS class)
            "title": f"History of {record.business_key or record.source_key}",
            "record": record,
            "integration": record.integration,
            "snapshot": display.pretty_json(record.source_snapshot),
            "target": display.safe_link(record.target_url, record.target_id),
            "document": self.document(record),
            "next_step": next_step(record),
            "target_label": system_label(record.integration.target.system),
            "source_label": system_label(record.integration.source.system),
            # only an http(s) address becomes a link (a stored URL is the target's answer, not ours)
            "open_target": display.safe_link(record.target_url, f"Open in {system_label(record.integration.target.system)}")
            if record.target_url.startswith(("http://", "https://")) else "",
            "attempts": attempt_rows(attempts),
            "events": AuditEvent.objects.filter(record=record).order_by("-created_at", "-pk")[:50],
            "can_replay": self.allows(request, Role.OPERATOR, record) and record.status in RecordStatus.replayable(),
            # a record with nothing to replay shows no button; one the role may not replay, a disabled one
            "replay_reason": reason_unless(self.allows(request, Role.OPERATOR, record)
                                           or record.status not in RecordStatus.replayable(),
                                           Role.OPERATOR, "replay records"),
        }
        return TemplateResponse(request, "admin/integrations/syncrecord/lineage.html", context)

    # --- replay -------------------------------------------------------------------------------
    @admin.action(description="Replay selected records…", permissions=("operate",))
    def replay_selected(self, request: HttpRequest, queryset: QuerySet):
        records = self.scoped(request, queryset, Role.OPERATOR).filter(status__in=RecordStatus.replayable())
        form = ReplayForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_valid():
            count, _ = request_replay(records, request.user, form.cleaned_data["reason"], request_id(request))
            self.message_user(request, f"Queued {count} record(s) for replay.")
            return None
        return self._confirm(request, records, form, hidden=[
            ("action", "replay_selected"),
            ("select_across", request.POST.get("select_across", "0")),
            *((helpers.ACTION_CHECKBOX_NAME, pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)),
        ])

    def replay_view(self, request: HttpRequest, object_id: str):
        record = self.object_for(request, object_id, Role.OPERATOR)
        records = SyncRecord.objects.filter(pk=record.pk, status__in=RecordStatus.replayable())
        form = ReplayForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            count, _ = request_replay(records, request.user, form.cleaned_data["reason"], request_id(request))
            self.message_user(request, f"Queued {count} record(s) for replay.")
            return HttpResponseRedirect(reverse("admin:integrations_syncrecord_change", args=[record.pk]))
        return self._confirm(request, records, form, hidden=[])

    def _confirm(self, request: HttpRequest, records: QuerySet, form: ReplayForm, hidden: list[tuple[str, Any]]):
        # each record as AP people know it: its kind, supplier and amount, read from its snapshot
        sample = [{"record": record, "document": self.document(record)}
                  for record in records.select_related("integration", "integration__source")[:50]]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Replay records",
            "form": form,
            "sample": sample,
            "count": records.order_by().values("pk")[:MAX_REPLAY + 1].count(),
            "max_replay": MAX_REPLAY,
            "hidden": hidden,
        }
        return TemplateResponse(request, "admin/integrations/replay_confirmation.html", context)

    def get_urls(self):
        return [
            path("<path:object_id>/replay/", self.admin_site.admin_view(self.replay_view),
                 name=self.url_name("replay")),
            *super().get_urls(),
        ]


def next_step(record: SyncRecord) -> str:
    """What a failed (or held) record needs, in words: whether it retries by itself, or who acts."""
    if record.status == RecordStatus.HELD:
        return "Waiting for a mapping – map it, and the approval releases it"
    if record.status != RecordStatus.FAILED:
        return ""
    if record.error_class == ErrorClass.DATA:
        return "Needs a data fix – will not retry: correct it in the source (or the mapping), then Replay"
    if record.error_class == ErrorClass.SYSTEMIC:
        return "Connection problem – fix the connection (credentials, tables, columns), then Replay"
    if record.next_retry_at:
        return f"Temporary – retrying at {display.local(record.next_retry_at)}"
    return "Temporary – retried at the next run"




def attempt_rows(attempts: list[SyncAttempt]) -> list[dict[str, Any]]:
    """Each attempt with its payload and the diff from the last attempt that sent something."""
    rows, previous = [], None
    for attempt in attempts:
        text = json.dumps(redact(attempt.payload), indent=2, sort_keys=True, ensure_ascii=False, default=str)
        diff = []
        if attempt.payload and previous is not None and previous != text:
            for line in difflib.unified_diff(previous.splitlines(), text.splitlines(), "before", "after", n=2,
                                             lineterm=""):
                if line.startswith(("---", "+++")):
                    continue
                kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
                diff.append((kind, line))
        rows.append({"attempt": attempt, "payload": text, "diff": diff,
                     "same_as_before": bool(attempt.payload) and previous == text})
        if attempt.payload:
            previous = text
    return rows


@admin.register(SyncRecord)
class SyncRecordAdmin(RecordAdmin):
    pass


@admin.register(FailedRecord)
class FailedRecordAdmin(RecordAdmin):
    list_display = ("record", "supplier", "amount", "next_step", "error", "kind", "error_class", "attempts",
                    "next_retry", "integration", "updated")
    list_filter = (("integration", ScopedRelatedFilter), StreamFilter, "error_class", AgeFilter, RunFilter)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=RecordStatus.FAILED)


@admin.register(HeldRecord)
class HeldRecordAdmin(RecordAdmin):
    list_display = ("record", "supplier", "document_date", "amount", "waiting_for", "kind", "attempts", "integration",
                    "updated")
    list_filter = (("integration", ScopedRelatedFilter), StreamFilter, MissingFilter, AgeFilter, RunFilter)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=RecordStatus.HELD)
