"""Mapping review: suggestions side by side, bulk approve/reject, manual mapping with autocomplete.

Approving releases the records held for the mapping; every page says how many it will release
(one correlated count per row, annotated, never a query per row) and the money they carry (kept
on the mapping by ``engine.mappings.refresh_held``, so the list can be ordered by it: "impact
first"). Codes that hold records and have no approved target are the "Needs decision" queue; a
code that never needs a target is ignored, with a reason. Mappings go out and come back as CSV.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Role
from accounts.roles import reason_unless
from accounts.scoping import scope
from integrations.admin import display
from integrations.admin.base import CappedCountPaginator, ReadOnlyAdmin, TenantScopedAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine import mapping_csv
from integrations.engine.mappings import (
    IGNORE_REASON_MIN,
    Decision,
    approve,
    held_is_stale,
    held_rows,
    held_text,
    ignore,
    map_manually,
    money_text,
    refresh_held,
    refresh_stale_held,
    reject,
    release_preview,
    release_progress,
    target_kind,
    with_held_signature,
)
from integrations.models import (
    Integration,
    Mapping,
    MappingReason,
    MappingStatus,
    RecordStatus,
    ReferenceRecord,
    Side,
    SyncRecord,
)
from integrations.models import MappingKind as MappingKindChoices
from integrations.systems.registry import system_label
from integrations.tasks import queue_release

AUTOCOMPLETE_PAGE = 20
# the bulk approval page lists at most this many mappings; approving them shows the next ones
APPROVE_PAGE = 300
HELD_LISTED = 20
# the "Needs decision" queue (?queue=decide) is worked most money held first
IMPACT_ORDER = ("-held_amount", "-held_count", "kind", "source_code")
# no reference table has a million rows; far past the end is a crafted request, not a scroll
MAX_TARGET_PAGE = 50_000


class HeldIntegrationFilter(ScopedRelatedFilter):
    """The integration filter, whose one query per page also says whose held figures are stale.

    The page already reads every integration the user sees (the filter's choices); the held
    queue's signature (how many held, latest change: ``record_queue_idx`` ranges) and the one the
    figures were computed at ride along in it, so a page costs no extra query unless the held
    records changed since, and then the money held is recomputed from the held records alone.
    """

    def field_choices(self, field, request, model_admin):
        rows = list(with_held_signature(scope(Integration.objects.all(), request.user, "tenant")
                                        .select_related("tenant", "source")))
        for integration in rows:
            if held_is_stale(integration):
                refresh_held(integration)
        if len({obj.tenant_id for obj in rows}) < 2:
            return [(obj.pk, str(obj)) for obj in rows]
        # same names recur across tenants: say whose it is
        return [(obj.pk, f"{obj} ({obj.tenant})") for obj in rows]


class QueueFilter(admin.SimpleListFilter):
    """What a person still has to do: codes holding records with no approved target first."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("decide", "Needs decision (holding invoices)"), ("open", "Not decided yet (all)"),
                ("ignored", "Ignored codes")]

    def queryset(self, request, queryset):
        undecided = list(MappingStatus.needs_decision())
        if self.value() == "decide":
            return queryset.filter(status__in=undecided, held_count__gt=0)
        if self.value() == "open":
            return queryset.filter(status__in=undecided)
        if self.value() == "ignored":
            return queryset.filter(status=MappingStatus.IGNORED)
        return queryset


def target_choices(mapping: Mapping, term: str, page: int = 1) -> tuple[list[ReferenceRecord], bool]:
    """Target-side reference rows a mapping may point at, a page at a time (no COUNT)."""
    rows = ReferenceRecord.objects.filter(integration_id=mapping.integration_id, side=Side.TARGET,
                                          kind=target_kind(mapping))
    if term:
        rows = rows.filter(Q(code__istartswith=term) | Q(label__icontains=term))
    start = (page - 1) * AUTOCOMPLETE_PAGE
    found = list(rows.order_by("code").only("code", "label")[start:start + AUTOCOMPLETE_PAGE + 1])
    return found[:AUTOCOMPLETE_PAGE], len(found) > AUTOCOMPLETE_PAGE


class TargetWidget(forms.Select):
    """The admin's select2 autocomplete, fed by the mapping's own target endpoint.

    Django's autocomplete needs a foreign key; a mapping stores target *codes*, and the choices
    depend on the mapping's kind and integration, so the endpoint is per mapping.
    """

    def __init__(self, url: str, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.url = url

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs.update({
            "class": "admin-autocomplete",
            "data-ajax--cache": "true",
            "data-ajax--delay": 250,
            "data-ajax--type": "GET",
            "data-ajax--url": self.url,
            "data-theme": "admin-autocomplete",
            "data-allow-clear": "true",
            "data-placeholder": "Type a code or a name",
            "style": "width: 30em",
        })
        return attrs

    @property
    def media(self):
        return forms.Media(
            js=("admin/js/vendor/jquery/jquery.min.js", "admin/js/vendor/select2/select2.full.min.js",
                "admin/js/jquery.init.js", "admin/js/autocomplete.js"),
            css={"screen": ("admin/css/vendor/select2/select2.min.css", "admin/css/autocomplete.css")},
        )


class MappingForm(forms.ModelForm):
    map_to = forms.CharField(
        required=False,
        label="Map to (target code)",
        help_text="Pick the target account or cost center by hand; saving approves it.",
    )

    class Meta:
        model = Mapping
        fields = ("map_to",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mapping = self.instance
        if mapping.pk:
            # nothing preselected: a plain Save must not approve anything by accident
            self.fields["map_to"].widget = TargetWidget(reverse("admin:integrations_mapping_targets",
                                                                args=[mapping.pk]))
            posted = self.data.get(self.add_prefix("map_to"), "") if self.is_bound else ""
            self.fields["map_to"].widget.choices = [("", ""), *([(posted, posted)] if posted else [])]

    def clean_map_to(self) -> str:
        code = self.cleaned_data["map_to"].strip()
        if code and (self.instance.status != MappingStatus.APPROVED or code != self.instance.target_code):
            kind = target_kind(self.instance)
            known = ReferenceRecord.objects.filter(integration_id=self.instance.integration_id, side=Side.TARGET,
                                                   kind=kind, code=code)
            if not known.exists():
                label = dict(MappingKindChoices.choices).get(kind, kind)
                raise forms.ValidationError(f"{code} is not a known {label} in the target.")
            return code
        return ""


class IgnoreForm(forms.Form):
    reason = forms.CharField(
        min_length=IGNORE_REASON_MIN, max_length=300, label="Why does this code never need a mapping?",
        help_text="Kept in the audit trail, and shown wherever its invoices wait (e.g. \"control account, "
                  "posted by the ERP itself\").",
        widget=forms.TextInput(attrs={"size": 60}),
    )


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="Columns: " + ", ".join(mapping_csv.COLUMNS) + ".")


@admin.register(Mapping)
class MappingAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = MappingForm
    tenant_field = "integration__tenant"
    change_role = Role.APPROVER
    change_form_template = "admin/integrations/mapping/change_form.html"
    change_list_template = "admin/integrations/mapping/change_list.html"
    list_display = ("kind", "source", "arrow", "target", "why", "status_badge", "held_records", "waiting",
                    "integration")
    list_display_links = ("source",)
    list_select_related = ("integration", "integration__source", "decided_by")
    list_filter = (QueueFilter, "status", "kind", "reason", ("integration", HeldIntegrationFilter))
    search_fields = ("source_code", "source_label", "target_code", "target_label")
    readonly_fields = ("integration", "kind", "source", "target", "why", "status_badge", "held_records", "waiting",
                       "decided")
    fieldsets = [
        ("Source", {"fields": ("integration", "kind", "source")}),
        ("Suggestion", {"fields": ("target", "why", "status_badge", "held_records", "waiting", "decided")}),
        ("Decide", {"fields": ("map_to",)}),
    ]
    actions = ("approve_selected", "reject_selected", "ignore_selected", "export_selected")
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_ordering(self, request: HttpRequest):
        if request.GET.get(QueueFilter.parameter_name) == "decide":
            return IMPACT_ORDER  # the queue is worked most money first
        return super().get_ordering(request)

    def get_changelist(self, request: HttpRequest, **kwargs: Any):
        base = super().get_changelist(request, **kwargs)

        class ImpactChangeList(base):
            def _get_default_ordering(self):
                # Django marks the sorted column from the admin's fixed ordering; the queue's is by money
                if self.params.get(QueueFilter.parameter_name) == "decide":
                    return list(IMPACT_ORDER)
                return super()._get_default_ordering()

        return ImpactChangeList

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="source (code, label)", ordering="source_code")
    def source(self, obj: Mapping):
        return format_html("<strong>{}</strong> {}", obj.source_code, obj.source_label)

    @admin.display(description="")
    def arrow(self, obj: Mapping) -> str:
        return "→"

    @admin.display(description="target (code, label)", ordering="target_code")
    def target(self, obj: Mapping):
        if obj.status == MappingStatus.IGNORED:
            return format_html('<span class="quiet">{}</span>', "never needs a mapping")
        if not obj.target_code:
            return format_html('<span class="quiet">{}</span>', "no match: map by hand")
        return format_html("<strong>{}</strong> {}", obj.target_code, obj.target_label)

    @admin.display(description="why suggested", ordering="reason")
    def why(self, obj: Mapping):
        """The suggestion's confidence and reason in words; without one, the best candidates seen."""
        if obj.status == MappingStatus.IGNORED:
            return format_html("Ignored: {}", obj.ignore_reason)
        if obj.reason == MappingReason.PUSHED:  # written to the target by the integration itself
            return f"Pushed from {system_label(obj.integration.source.system)}"
        best = (obj.candidates or [None])[0]
        if obj.reason and best and best.get("code") == obj.target_code:
            return format_html('<span class="mapping-score" title="confidence">{}%</span> · {}', best.get("score"),
                               best.get("reason"))
        if obj.reason:
            return obj.get_reason_display() + (f" ({obj.confidence}%)" if obj.confidence is not None else "")
        if best:
            return format_html_join(
                "; ", "{} {} ({}%)", ((c.get("code"), c.get("label"), c.get("score")) for c in obj.candidates[:3]))
        return display.EMPTY

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Mapping):
        return display.badge(obj.status)

    # the stored figure (refreshed with the held queue, and by the integration filter when stale):
    # counting each row's held records live read the whole queue per row, 1.5 s at a million
    @admin.display(description="held records it releases", ordering="held_count")
    def held_records(self, obj: Mapping):
        held = obj.held_count
        if not held:
            return 0
        url = reverse("admin:integrations_heldrecord_changelist")
        return format_html('<a href="{}?integration__id__exact={}&amp;missing={}:{}">{}</a>', url,
                           obj.integration_id, obj.kind, obj.source_code, held)

    @admin.display(description="invoices waiting", ordering="held_amount")
    def waiting(self, obj: Mapping):
        text = held_text(obj.held_count, obj.held_documents, {})
        if not text:
            return display.EMPTY
        tip = f"held records waiting for {obj.kind}:{obj.source_code} (held_count {obj.held_count})"
        money = money_text(obj.held_money) if obj.held_money else ""
        ignored = " (code ignored: they stay held)" if obj.status == MappingStatus.IGNORED else ""
        return format_html('<span title="{}">held: {}{}{}</span>{}', tip, text, " · " if money else "", money, ignored)

    @admin.display(description="decided")
    def decided(self, obj: Mapping) -> str:
        if not obj.decided_at:
            return display.EMPTY
        return f"{obj.decided_by or 'system'}, {display.local(obj.decided_at)}"

    @admin.display(description="Map to (target code)")
    def map_to(self, obj: Mapping) -> str:
        return obj.target_code or display.EMPTY

    # --- deciding -----------------------------------------------------------------------------
    @admin.action(description="Approve selected suggestions", permissions=("approve",))
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        chosen = self._decidable(request, queryset)
        unmapped = [m for m in chosen if not m.target_code]
        already = [m for m in chosen if m.target_code and m.status == MappingStatus.APPROVED]
        decision = approve(chosen, request.user, request_id(request))
        self._release(request, decision, "Approved")
        # an approval that leaves selected codes as they were says why, and what to do instead
        if unmapped:
            codes = ", ".join(m.source_code for m in unmapped[:5]) + (" …" if len(unmapped) > 5 else "")
            self.message_user(request, f"{len(unmapped)} selected code(s) have no suggested target, so there was "
                                       f"nothing to approve ({codes}): open each and choose its target under "
                                       "\"Map to\", or mark it ignored if it never needs one.", messages.WARNING)
        if already:
            self.message_user(request, f"{len(already)} selected mapping(s) were already approved.", messages.INFO)

    @admin.action(description="Reject selected suggestions", permissions=("approve",))
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        chosen = self._decidable(request, queryset)
        already = [m for m in chosen if m.status == MappingStatus.REJECTED]
        decision = reject([m for m in chosen if m.status != MappingStatus.REJECTED], request.user, request_id(request))
        self.message_user(request, f"Rejected {decision.rejected} mapping(s).")
        if already:
            self.message_user(request, f"{len(already)} selected mapping(s) were already rejected.", messages.INFO)

    @admin.action(description="Mark selected codes as never needing a mapping (ignore)…", permissions=("approve",))
    def ignore_selected(self, request: HttpRequest, queryset: QuerySet):
        chosen = self._decidable(request, queryset)
        form = IgnoreForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            decision = ignore(chosen, form.cleaned_data["reason"], request.user, request_id(request))
            self.message_user(request, f"Marked {decision.ignored} code(s) as never needing a mapping; their held "
                                       "invoices stay held and say so.")
            skipped = [m for m in chosen if m.status == MappingStatus.APPROVED]
            if skipped:
                self.message_user(request, f"{len(skipped)} selected code(s) are approved (mapped), so they were "
                                           "not ignored: reject them first if they never need a mapping.",
                                  messages.WARNING)
            return None
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Ignore codes",
                   "form": form, "mappings": chosen[:100], "count": len(chosen),
                   "hidden": [("action", "ignore_selected"), *[("_selected_action", m.pk) for m in chosen]]}
        return TemplateResponse(request, "admin/integrations/mapping/ignore_confirmation.html", context)

    @admin.action(description="Export selected as CSV (spreadsheet)")
    def export_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="mappings.csv"'
        mapping_csv.write_csv(queryset.select_related("integration").order_by("integration__name", "kind",
                                                                               "source_code"), response)
        return response

    def _decidable(self, request: HttpRequest, queryset: QuerySet) -> list[Mapping]:
        return list(self.scoped(request, queryset, Role.APPROVER).select_related("integration"))

    def _release(self, request: HttpRequest, decision: Decision, verb: str) -> None:
        queue_release(decision, request.user)
        self.message_user(request, f"{verb} {decision.approved} mapping(s); "
                                   f"{len(decision.released_ids)} held record(s) released for replay.")

    def save_model(self, request: HttpRequest, obj: Mapping, form: MappingForm, change: bool) -> None:
        code = form.cleaned_data.get("map_to")
        decided = ("_approve", "_reject", "_ignore")
        request._mapping_decided = bool(code) or any(name in request.POST for name in decided)
        if code:
            self._release(request, map_manually(obj, code, request.user, request_id(request)), "Mapped and approved")
        elif "_approve" in request.POST:
            self._release(request, approve([obj], request.user, request_id(request)), "Approved")
        elif "_reject" in request.POST:
            self.message_user(request, f"Rejected {reject([obj], request.user, request_id(request)).rejected} mapping(s).")
        elif "_ignore" in request.POST:
            try:
                done = ignore([obj], request.POST.get("ignore_reason", ""), request.user, request_id(request))
            except ValueError as exc:
                self.message_user(request, f"Not ignored: {exc}", messages.ERROR)
                return
            if done.ignored:
                self.message_user(request, f"{obj.source_code} marked as never needing a mapping.")
            else:
                self.message_user(request, f"{obj.source_code} is approved (mapped), so it was not ignored: reject it "
                                           "first if it never needs a mapping.", messages.WARNING)

    def response_change(self, request: HttpRequest, obj: Mapping):
        if not getattr(request, "_mapping_decided", True):
            # Django would say "changed successfully"; nothing was
            self.message_user(request, "Nothing decided: pick a target, or approve or reject the suggestion.",
                              messages.WARNING)
            return HttpResponseRedirect(request.path)
        if any(name in request.POST for name in ("_approve", "_ignore")) or request.POST.get("map_to"):
            return HttpResponseRedirect(request.path)  # stay: the page follows the released invoices
        return super().response_change(request, obj)

    # --- pages of their own -------------------------------------------------------------------
    def get_urls(self):
        return [
            path("<path:object_id>/targets/", self.admin_site.admin_view(self.targets_view),
                 name=self.url_name("targets")),
            path("approve-above/", self.admin_site.admin_view(self.approve_above_view),
                 name=self.url_name("approve_above")),
            path("import/", self.admin_site.admin_view(self.import_view), name=self.url_name("import")),
            *super().get_urls(),
        ]

    def approve_above_view(self, request: HttpRequest) -> TemplateResponse | HttpResponseRedirect:
        """Approve every suggestion at or above N% sure, after seeing what each releases."""
        self.require(request, Role.APPROVER)
        try:
            floor = int(request.POST.get("min") or request.GET.get("min") or 90)
        except ValueError:
            floor = -1
        if not 0 <= floor <= 100:
            self.message_user(request, "The confidence is a percentage, 0 to 100.", messages.ERROR)
            floor = 90
        chosen = self.scoped(request, self.model.objects.all(), Role.APPROVER).filter(
            status=MappingStatus.SUGGESTED, confidence__gte=floor).exclude(target_code="")
        wanted = request.GET.get("integration") or request.POST.get("integration")
        if wanted and wanted.isdigit():
            chosen = chosen.filter(integration_id=int(wanted))
        chosen = list(chosen.select_related("integration").order_by(*IMPACT_ORDER)[:APPROVE_PAGE + 1])
        more, chosen = len(chosen) > APPROVE_PAGE, chosen[:APPROVE_PAGE]
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            # exactly the mappings the person saw, if still suggested at or above the floor
            shown = {int(pk) for pk in request.POST.getlist("mapping") if pk.isdigit()}
            decision = approve([m for m in chosen if m.pk in shown], request.user, request_id(request))
            if not decision.approved:
                self.message_user(request, f"Nothing approved: no suggestion at or above {floor}% is still waiting "
                                           "(approved or changed meanwhile).", messages.WARNING)
            else:
                self._release(request, decision, f"Approved at or above {floor}%:")
            return HttpResponseRedirect(reverse("admin:integrations_mapping_changelist") + "?queue=decide")
        releases, total = release_preview(chosen)
        releases.sort(key=lambda r: (-r.held.sort_amount, -r.held.records))
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": f"Approve suggestions at or above {floor}%", "floor": floor, "more": more,
                   "integration": wanted or "", "releases": [
                       {"mapping": r.mapping, "records": r.held.records, "still_waiting": r.held.still_waiting,
                        "held": held_text(r.held.records, r.held.documents, {}),
                        "money": money_text(r.held.money_json())} for r in releases],
                   "total_records": total.records, "total_documents": total.documents,
                   "total_money": [(c or "?", f"{a:,.2f}") for c, a in sorted(total.money.items())],
                   "still_waiting": total.still_waiting}
        return TemplateResponse(request, "admin/integrations/mapping/approve_above.html", context)

    def import_view(self, request: HttpRequest) -> TemplateResponse | HttpResponseRedirect:
        """Upload a CSV of mappings: checked line by line, landing as suggestions to approve."""
        self.require(request, Role.APPROVER)
        form = ImportForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > mapping_csv.MAX_BYTES:
                form.add_error("file", "The file is larger than 5 MB: split it.")
            else:
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    form.add_error("file", "The file is not UTF-8 text: save it from the spreadsheet as "
                                           "\"CSV UTF-8\".")
                else:
                    allowed = scope(Integration.objects.select_related("tenant"), request.user, "tenant",
                                    min_role=Role.APPROVER)
                    result = mapping_csv.import_csv(text, allowed, request.user, request_id(request))
                    if not result.errors:
                        self.message_user(request, result.summary())
                        return HttpResponseRedirect(reverse("admin:integrations_mapping_changelist")
                                                    + "?reason__exact=imported")
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Import mappings from CSV",
                   "form": form, "result": result, "columns": mapping_csv.COLUMNS}
        return TemplateResponse(request, "admin/integrations/mapping/import.html", context)

    def targets_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        mapping = self.object_for(request, object_id, Role.APPROVER)
        try:
            page = int(request.GET.get("page") or 1)
        except ValueError:
            page = 0
        if not 1 <= page <= MAX_TARGET_PAGE:
            # a page far past the end was an OFFSET the database cannot hold (a 500); select2 asks 1, 2, 3...
            return JsonResponse({"error": f"page must be a whole number from 1 to {MAX_TARGET_PAGE}"}, status=400)
        term = request.GET.get("term", "").strip()
        if "\x00" in term:  # PostgreSQL refuses NUL in a string it is given
            return JsonResponse({"error": "term must not contain NUL (\\x00) characters"}, status=400)
        rows, more = target_choices(mapping, term, page)
        return JsonResponse({"results": [{"id": r.code, "text": f"{r.code} {r.label}".strip()} for r in rows],
                             "pagination": {"more": more}})

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        can_decide = self.allows(request, Role.APPROVER)
        extra = {"can_decide": can_decide, "decide_reason": reason_unless(can_decide, Role.APPROVER, "approve mappings"),
                 **(extra_context or {})}
        return super().changelist_view(request, extra)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_decide"] = obj is not None and self.allows(request, Role.APPROVER, obj)
        context["decide_reason"] = reason_unless(context["can_decide"] or obj is None, Role.APPROVER,
                                                 "approve or reject mappings")
        if obj is not None:
            context.update(self._release_context(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _release_context(self, obj: Mapping) -> dict[str, Any]:
        """What the approve button releases (the held invoices, listed), and how a past release went."""
        if refresh_stale_held([obj.integration]):
            obj.refresh_from_db(fields=["held_count", "held_documents", "held_money", "held_amount"])
        held = getattr(obj, "held", None)
        if held is None:
            held = SyncRecord.objects.filter(integration_id=obj.integration_id, status=RecordStatus.HELD,
                                             missing__contains=f"|{obj.kind}:{obj.source_code}|").count()
        listed = []
        if held:
            for row in held_rows(obj.integration, [f"{obj.kind}:{obj.source_code}"]):
                others = [k for k in row.keys if k != f"{obj.kind}:{obj.source_code}"]
                listed.append({"pk": row.pk, "key": row.business_key, "others": others,
                               "money": money_text({row.currency: row.amount}) if row.amount is not None else ""})
                if len(listed) >= HELD_LISTED:
                    break
        documents = obj.held_documents if obj.held_count == held else None
        noun = "invoice" if documents == held else "held record"
        progress = release_progress(obj) if obj.status == MappingStatus.APPROVED else None
        return {"held_now": held, "held_noun": f"{noun}{'s' if held != 1 else ''}", "held_listed": listed,
                "held_summary": held_text(obj.held_count, obj.held_documents, obj.held_money),
                "progress": progress, "ignore_reason_min": IGNORE_REASON_MIN}


@admin.register(ReferenceRecord)
class ReferenceRecordAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """GL accounts, cost centers... as read from each side: browse and search, never edit."""

    tenant_field = "integration__tenant"
    list_display = ("code", "label", "kind", "side", "integration", "external_id", "updated_at")
    list_select_related = ("integration",)
    list_filter = ("side", "kind", ("integration", ScopedRelatedFilter))
    search_fields = ("^code", "label")
    readonly_fields = ("integration", "side", "kind", "code", "label", "external_id", "data_pretty", "updated_at")
    fields = readonly_fields

    @admin.display(description="data")
    def data_pretty(self, obj: ReferenceRecord):
        return display.pretty_json(obj.data)
