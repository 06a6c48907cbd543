"""Mapping review: suggestions side by side, bulk approve/reject, manual mapping with autocomplete.

Approving releases the records held for the mapping; every page says how many it will release
(one correlated count per row, annotated, never a query per row).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import CharField, Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.models import Role
from integrations.admin import display
from integrations.admin.base import CappedCountPaginator, ReadOnlyAdmin, TenantScopedAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.mappings import Decision, approve, map_manually, reject, target_kind
from integrations.models import Mapping, MappingReason, MappingStatus, RecordStatus, ReferenceRecord, Side, SyncRecord
from integrations.models import MappingKind as MappingKindChoices
from integrations.systems.registry import schema_for
from integrations.tasks import queue_release

AUTOCOMPLETE_PAGE = 20
# no reference table has a million rows; far past the end is a crafted request, not a scroll
MAX_TARGET_PAGE = 50_000


def held_count_subquery() -> Coalesce:
    """``engine.mappings.held_for(...).count()`` for the outer Mapping row, as an expression."""
    needle = Concat(Value("|"), OuterRef("kind"), Value(":"), OuterRef("source_code"), Value("|"),
                    output_field=CharField())
    rows = (SyncRecord.objects.filter(integration=OuterRef("integration"), status=RecordStatus.HELD,
                                      missing__contains=needle)
            .order_by().values("integration").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(rows[:1]), 0)


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


@admin.register(Mapping)
class MappingAdmin(TenantScopedAdmin, admin.ModelAdmin):
    form = MappingForm
    tenant_field = "integration__tenant"
    change_role = Role.APPROVER
    change_form_template = "admin/integrations/mapping/change_form.html"
    list_display = ("kind", "source", "arrow", "target", "why", "status_badge", "held_records", "integration")
    list_display_links = ("source",)
    list_select_related = ("integration", "integration__source", "decided_by")
    list_filter = ("status", "kind", "reason", ("integration", ScopedRelatedFilter))
    search_fields = ("source_code", "source_label", "target_code", "target_label")
    readonly_fields = ("integration", "kind", "source", "target", "why", "status_badge", "held_records", "decided")
    fieldsets = [
        ("Source", {"fields": ("integration", "kind", "source")}),
        ("Suggestion", {"fields": ("target", "why", "status_badge", "held_records", "decided")}),
        ("Decide", {"fields": ("map_to",)}),
    ]
    actions = ("approve_selected", "reject_selected")
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(held=held_count_subquery())

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="source (code, label)", ordering="source_code")
    def source(self, obj: Mapping):
        return format_html("<strong>{}</strong> {}", obj.source_code, obj.source_label)

    @admin.display(description="")
    def arrow(self, obj: Mapping) -> str:
        return "→"

    @admin.display(description="target (code, label)", ordering="target_code")
    def target(self, obj: Mapping):
        if not obj.target_code:
            return format_html('<span class="quiet">{}</span>', "no match: map by hand")
        return format_html("<strong>{}</strong> {}", obj.target_code, obj.target_label)

    @admin.display(description="why suggested", ordering="reason")
    def why(self, obj: Mapping):
        """The suggestion's confidence and reason in words; without one, the best candidates seen."""
        if obj.reason == MappingReason.PUSHED:  # written to the target by the integration itself
            schema = schema_for(obj.integration.source.system)
            return f"Pushed from {schema.label if schema else obj.integration.source.system}"
        best = (obj.candidates or [None])[0]
        if obj.reason and best and best.get("code") == obj.target_code:
            return format_html("{}% · {}", best.get("score"), best.get("reason"))
        if obj.reason:
            return obj.get_reason_display()
        if best:
            return format_html_join(
                "; ", "{} {} ({}%)", ((c.get("code"), c.get("label"), c.get("score")) for c in obj.candidates[:3]))
        return display.EMPTY

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Mapping):
        return display.badge(obj.status)

    @admin.display(description="held records it releases", ordering="held")
    def held_records(self, obj: Mapping):
        held = getattr(obj, "held", None)
        if not held:
            return 0
        url = reverse("admin:integrations_heldrecord_changelist")
        return format_html('<a href="{}?integration__id__exact={}&amp;missing={}:{}">{}</a>', url,
                           obj.integration_id, obj.kind, obj.source_code, held)

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
                                       "\"Map to\".", messages.WARNING)
        if already:
            self.message_user(request, f"{len(already)} selected mapping(s) were already approved.", messages.INFO)

    @admin.action(description="Reject selected suggestions", permissions=("approve",))
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        decision = reject(self._decidable(request, queryset), request.user, request_id(request))
        self.message_user(request, f"Rejected {decision.rejected} mapping(s).")

    def _decidable(self, request: HttpRequest, queryset: QuerySet) -> list[Mapping]:
        return list(self.scoped(request, queryset, Role.APPROVER).select_related("integration"))

    def _release(self, request: HttpRequest, decision: Decision, verb: str) -> None:
        queue_release(decision, request.user)
        self.message_user(request, f"{verb} {decision.approved} mapping(s); "
                                   f"{len(decision.released_ids)} held record(s) released for replay.")

    def save_model(self, request: HttpRequest, obj: Mapping, form: MappingForm, change: bool) -> None:
        code = form.cleaned_data.get("map_to")
        request._mapping_decided = bool(code) or "_approve" in request.POST or "_reject" in request.POST
        if code:
            self._release(request, map_manually(obj, code, request.user, request_id(request)), "Mapped and approved")
        elif "_approve" in request.POST:
            self._release(request, approve([obj], request.user, request_id(request)), "Approved")
        elif "_reject" in request.POST:
            self.message_user(request, f"Rejected {reject([obj], request.user, request_id(request)).rejected} mapping(s).")

    def response_change(self, request: HttpRequest, obj: Mapping):
        if not getattr(request, "_mapping_decided", True):
            # Django would say "changed successfully"; nothing was
            self.message_user(request, "Nothing decided: pick a target, or approve or reject the suggestion.",
                              messages.WARNING)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    # --- the target autocomplete ----------------------------------------------------------------
    def get_urls(self):
        return [
            path("<path:object_id>/targets/", self.admin_site.admin_view(self.targets_view),
                 name=self.url_name("targets")),
            *super().get_urls(),
        ]

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

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_decide"] = obj is not None and self.allows(request, Role.APPROVER, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


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
