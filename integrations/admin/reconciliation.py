"""Month-end reconciliation in the console: a page per integration with its verdict, totals side by
side, a per-day chart, the differences with a way to act on each, CSV export and the run history."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import Role
from accounts.roles import reason_unless
from integrations.admin import display
from integrations.admin.base import ReadOnlyAdmin, request_id
from integrations.admin.filters import ScopedRelatedFilter
from integrations.engine.audit import audit
from integrations.engine.reconcile import mapping_words, reconciles
from integrations.engine.reconcile_report import csv_text, line_data, totals_data
from integrations.flows import get_flow
from integrations.models import (
    DifferenceReason,
    Integration,
    Mapping,
    Period,
    PeriodError,
    ReconciliationRun,
    ReconciliationStatus,
)
from integrations.systems.registry import system_label
from integrations.tasks import request_reconciliation

VERDICT_COLOURS = {ReconciliationStatus.BALANCED: "#2e7d32", ReconciliationStatus.DIFFERENCES: "#ef6c00",
                   ReconciliationStatus.ERROR: "#c62828", ReconciliationStatus.RUNNING: "#1565c0"}
SOURCE_COLOUR, TARGET_COLOUR, GAP_COLOUR = "#546e7a", "#2e7d32", "#c62828"
HISTORY = 12
DIFFERENCES_PER_PAGE = 100
LINE_ORDER = ("reason", "business_key", "pk")  # the page, its pages and the CSV list lines alike


class CountedPaginator(Paginator):
    """A paginator told how many items there are (the per-reason counts add up to it), so it runs
    no COUNT(*) of its own."""

    def __init__(self, object_list: QuerySet, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self.count = count  # shadows Paginator.count, a cached_property


def page_link(request: HttpRequest, number: int) -> str:
    """This page at another page of differences, keeping every other query parameter."""
    query = request.GET.copy()
    query["page"] = str(number)
    return f"?{query.urlencode()}#differences"


def showing_words(page: Page) -> str:
    """"Showing 101–200 of 2,137 differences", or "" when they all fit on one page."""
    if not page.has_other_pages():
        return ""
    return (f"Showing {page.start_index():,}–{page.end_index():,} of {page.paginator.count:,} differences "
            f"(page {page.number} of {page.paginator.num_pages})")


def reason_words(reason: str, target: str) -> str:
    """A difference as an AP clerk says it (the stored reason code is in the tooltip)."""
    return {
        DifferenceReason.MISSING: f"Not in {target}",
        DifferenceReason.EXTRA: f"In {target} only",
        DifferenceReason.AMOUNT: "Amount differs",
        DifferenceReason.DATE: "Dated in another period",
        DifferenceReason.HELD: "Held: waiting for a mapping",
        DifferenceReason.FAILED: f"Not sent to {target}: failed",
    }.get(reason, reason)


def verdict_badge(run: ReconciliationRun | None) -> SafeString | str:
    if run is None:
        return display.EMPTY
    return format_html('<span class="console-badge" style="background:{}" title="{}">{}</span>',
                       VERDICT_COLOURS.get(run.status, "#546e7a"), run.get_status_display(), run.verdict)


def money(value: Any) -> str:
    return "" if value in (None, "") else f"{Decimal(value):,.2f}"


def day_chart(days: dict[str, list[str]], period: Period, currency: str, labels: tuple[str, str] = ("source", "target"),
              height: int = 60, bar: int = 5, gap: int = 3) -> SafeString:
    """Source (grey) beside target (green) per day of the period, as inline SVG; a day whose totals
    differ is marked red above its bars. Each day has a <title>: the browser's tooltip."""
    series = [(day, *(Decimal(v) for v in days.get(day.isoformat(), ["0", "0"]))) for day in period.days()]
    peak = max((max(abs(s), abs(t)) for _, s, t in series), default=Decimal(0)) or Decimal(1)
    step = 2 * bar + gap
    groups = []
    for i, (day, source, target) in enumerate(series):
        x = i * step
        parts = [format_html('<rect x="{}" y="0" width="{}" height="{}" fill="transparent"></rect>', x, 2 * bar,
                             height + 6)]
        for offset, value, colour in ((0, source, SOURCE_COLOUR), (bar, target, TARGET_COLOUR)):
            h = _height(value, peak, height)
            if h:
                parts.append(format_html('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>',
                                         x + offset, height + 6 - h, bar, h, colour))
        if source != target:
            parts.append(format_html('<rect x="{}" y="0" width="{}" height="3" fill="{}"></rect>', x, 2 * bar,
                                     GAP_COLOUR))
        groups.append(format_html("<g><title>{}: {} {} in {}, {} in {}</title>{}</g>",
                                  day.isoformat(), currency, money(source), labels[0], money(target), labels[1],
                                  format_html_join("", "{}", ((p,) for p in parts))))
    width = max(len(series) * step - gap, 1)
    return format_html(
        '<svg class="recon-chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="{} per day, source beside target">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#b0bec5" stroke-width="1"></line>{}</svg>',
        width, height + 7, width, height + 7, currency, height + 6.5, width, height + 6.5,
        format_html_join("", "{}", ((g,) for g in groups)))


def _height(value: Decimal, peak: Decimal, height: int) -> float:
    if not value:
        return 0
    return round(max(1.0, float(abs(value) / peak) * height), 1)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Stored reconciliations (read-only); each one's page is its report."""

    tenant_field = "integration__tenant"
    list_display = ("reconciliation", "integration", "period", "verdict", "trigger", "triggered_by", "started")
    list_display_links = None
    list_select_related = ("integration",)
    list_filter = (("integration", ScopedRelatedFilter), "status", "trigger")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # the report names both systems of the run's integration
        return super().get_queryset(request).select_related("integration__source", "integration__target")

    @admin.display(description="reconciliation", ordering="pk")
    def reconciliation(self, obj: ReconciliationRun):
        return format_html('<a href="{}">#{}</a>', reverse("admin:integrations_reconciliationrun_change",
                                                           args=[obj.pk]), obj.pk)

    @admin.display(description="period", ordering="period_start")
    def period(self, obj: ReconciliationRun) -> str:
        return obj.period_label

    @admin.display(description="verdict", ordering="status")
    def verdict(self, obj: ReconciliationRun):
        return verdict_badge(obj)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: ReconciliationRun) -> str:
        return display.local(obj.started_at)

    # --- pages ----------------------------------------------------------------------------------
    # The integration's own page and its "Reconcile" button live under the integration's URL
    # (IntegrationAdmin.get_urls, which checks the role on the integration) and are drawn here.
    def get_urls(self):
        return [
            path("<int:object_id>/csv/", self.admin_site.admin_view(self.csv_view), name=self.url_name("csv")),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        run = self.object_for(request, object_id, Role.VIEWER)
        return self.report(request, run.integration, run)

    def csv_view(self, request: HttpRequest, object_id: int):
        run = self.object_for(request, str(object_id), Role.VIEWER)
        audit(run.integration.tenant_id, "reconciliation.exported",
              f"{run.integration.name} {run.period_label} exported as CSV", actor=request.user,
              integration_id=run.integration_id, request_id=request_id(request), detail={"reconciliation": run.pk})
        response = HttpResponse(csv_text(run, run.lines.order_by(*LINE_ORDER)),  # every line, not a page
                                content_type="text/csv; charset=utf-8")
        # a header value is plain: the integration's name may hold anything
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", run.integration.name).strip("-") or "integration"
        period = f"{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}"
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{name}-{period}.csv"'
        return response

    def report(self, request: HttpRequest, integration: Integration, run: ReconciliationRun | None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        target = system_label(integration.target.system)
        source = system_label(integration.source.system)
        can_reconcile = self.allows(request, Role.OPERATOR, ReconciliationRun(integration=integration))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Month-end reconciliation of {integration.name}",
            "integration": integration,
            "run": run,
            "source_label": source,
            "target_label": target,
            "verdict": verdict_badge(run),
            "has_money": reconciles(integration),
            "can_reconcile": can_reconcile,
            "reconcile_reason": reason_unless(can_reconcile, Role.OPERATOR, "reconcile"),
            "csv_url": reverse("admin:integrations_reconciliationrun_csv", args=[run.pk]) if run else "",
            "default_month": (run.period if run else Period.month_before(timezone.localdate())).first.strftime("%Y-%m"),
            "history": ReconciliationRun.objects.filter(integration=integration).order_by("-started_at", "-pk")[:HISTORY],
        }
        if run is not None:
            context.update(self._run_context(request, integration, run, source, target))
        return TemplateResponse(request, "admin/integrations/reconciliationrun/report.html", context)

    def _run_context(self, request: HttpRequest, integration: Integration, run: ReconciliationRun,
                     source: str, target: str) -> dict[str, Any]:
        flow = get_flow(integration.kind)
        labels = {name: flow.stream(name).label for name in flow.stream_names()}
        # one grouped query counts the lines per reason; only the asked-for page of lines is drawn
        counts = {row["reason"]: row["n"]
                  for row in run.lines.order_by("reason").values("reason").annotate(n=Count("pk"))}
        total = sum(counts.values())
        page = CountedPaginator(run.lines.order_by(*LINE_ORDER), DIFFERENCES_PER_PAGE, total).get_page(
            request.GET.get("page"))
        lines = list(page.object_list)
        mappings = self._mappings(integration, lines)
        can_replay = self.allows(request, Role.OPERATOR, run)
        rows = []
        for line in lines:
            data = line_data(line)
            # a record the portal can send again: a working "replay…" for operators, a disabled one for the others
            replayable = bool(line.record_id) and line.reason in DifferenceReason.explained()
            rows.append({
                "line": line, "words": reason_words(line.reason, target), "data": data,
                "stream_label": labels.get(line.stream, line.stream),
                "source_amount": money(data["source_amount"]), "target_amount": money(data["target_amount"]),
                "difference": money(data["difference"]),
                "lineage": reverse("admin:integrations_syncrecord_change", args=[line.record_id])
                if line.record_id else "",
                "replay": reverse("admin:integrations_syncrecord_replay", args=[line.record_id])
                if replayable and can_replay else "",
                "replay_disabled": replayable and not can_replay,
                "mappings": [(key, mapping_words(key), mappings.get(key)) for key in line.missing_keys],
            })
        totals = [{**row, "stream_label": labels.get(row["stream"], row["stream"]),
                   "source_total": money(row["source_amount"]), "target_total": money(row["target_amount"]),
                   "gap": money(row["difference"]), "off": Decimal(row["difference"]) != 0
                   or row["count_difference"] != 0}
                  for row in totals_data(run)]
        charts = [{"stream_label": labels.get(stream, stream), "currency": currency,
                   "svg": day_chart(days, run.period, currency, (source, target))}
                  for stream, currencies in (run.daily or {}).items() for currency, days in currencies.items()]
        return {
            "rows": rows, "totals": totals, "charts": charts,
            "differences_total": f"{total:,}", "differences_page": page, "showing": showing_words(page),
            "previous_url": page_link(request, page.previous_page_number()) if page.has_previous() else "",
            "next_url": page_link(request, page.next_page_number()) if page.has_next() else "",
            # the reason goes with the disabled buttons drawn, so it is read from this page's rows
            "replay_reason": reason_unless(not any(row["replay_disabled"] for row in rows), Role.OPERATOR,
                                           "replay records"),
            "reason_counts": [(reason_words(reason, target), reason, count) for reason, count in counts.items()],
            "source_colour": SOURCE_COLOUR, "target_colour": TARGET_COLOUR, "gap_colour": GAP_COLOUR,
        }

    @staticmethod
    def _mappings(integration: Integration, lines: list) -> dict[str, str]:
        """Held lines' mapping keys → the mapping's change page (one query for the whole page)."""
        # "conflict:review" names no mapping: a person decides on the record's own page
        keys = {tuple(key.split(":", 1)) for line in lines for key in line.missing_keys
                if ":" in key and not key.startswith("conflict:")}
        if not keys:
            return {}
        rows = Mapping.objects.filter(integration=integration, kind__in={k for k, _ in keys},
                                      source_code__in={c for _, c in keys}).values_list("pk", "kind", "source_code")
        found = {f"{kind}:{code}": reverse("admin:integrations_mapping_change", args=[pk]) for pk, kind, code in rows}
        base = reverse("admin:integrations_mapping_changelist")
        for kind, code in keys:
            found.setdefault(f"{kind}:{code}", f"{base}?integration__id__exact={integration.pk}&kind__exact={kind}")
        return found


def _run_admin() -> ReconciliationRunAdmin:
    return admin.site._registry[ReconciliationRun]


def integration_page(request: HttpRequest, integration: Integration) -> TemplateResponse:
    """The integration's reconciliation page: its latest run, or how to start one."""
    latest = ReconciliationRun.objects.filter(integration=integration).order_by("-started_at", "-pk").first()
    return _run_admin().report(request, integration, latest)


def reconcile_from_page(request: HttpRequest, integration: Integration) -> HttpResponseRedirect:
    """The page's "Reconcile" button (operator): a month, or a first and a last day."""
    back = reverse("admin:integrations_integration_reconciliation", args=[integration.pk])
    try:
        if request.POST.get("start") or request.POST.get("end"):
            period = Period.between(request.POST.get("start", ""), request.POST.get("end", ""))
        else:
            period = Period.month(request.POST.get("period", ""))
    except PeriodError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(back)
    if not reconciles(integration):
        messages.error(request, f"{integration.name} moves no invoices or bills: nothing to reconcile.")
        return HttpResponseRedirect(back)
    run = request_reconciliation(integration, period, request.user, request_id(request), via="in the console")
    done = run.status != ReconciliationStatus.RUNNING
    messages.info(request, f"Reconciliation of {integration.name} for {period.label}: "
                           + (f"{run.verdict}." if done else "queued; this page shows the verdict when done."))
    return HttpResponseRedirect(reverse("admin:integrations_reconciliationrun_change", args=[run.pk]))


def request_for(request: HttpRequest, integrations: QuerySet) -> int:
    """The integrations action: reconcile last month for each (with a money stream); returns how many."""
    period = Period.month_before(timezone.localdate())
    count = 0
    for integration in integrations.select_related("tenant", "source", "target"):
        if reconciles(integration):
            request_reconciliation(integration, period, request.user, request_id(request), via="in the console")
            count += 1
    return count
