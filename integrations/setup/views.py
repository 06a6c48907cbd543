"""The guided setup's pages: choose the pair, enter both sides, ping, fit check, preview, start.

Thin callers: forms become a tenant document loaded by :func:`integrations.tenants.load_document`;
pings are the connection test; the fit check and the preview are :mod:`.fitcheck` and
:mod:`.preview`; approving and starting are the console's own actions. Every page is for admins of
the integration's tenant only; anyone else gets a 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role, Tenant
from accounts.scoping import has_role, tenants_for
from accounts.signup import needs_verification
from integrations.engine.checks import test_connection
from integrations.engine.mappings import approve_all
from integrations.engine.operations import set_enabled
from integrations.flows import get_flow
from integrations.models import Integration, Mapping, MappingStatus, SyncRecord, SyncRun
from integrations.setup.fitcheck import DEFAULT_MAX_PAGES, fit_check, latest_report
from integrations.setup.forms import PairForm, PairSettingsForm, SideForm, connection_name, methods_of, place_errors
from integrations.setup.preview import preview
from integrations.setup.report import report_csv
from integrations.setup.words import advise_report
from integrations.systems.registry import schema_for, system_label
from integrations.tasks import queue_release, request_run
from integrations.tenants import load_document, validate
from portal.middleware import request_id


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), **extra}


def _integration(request: HttpRequest, pk: int) -> Integration:
    """The integration, if the user is an admin of its tenant; a 404 otherwise (no hint it exists)."""
    integration = get_object_or_404(Integration.objects.select_related("source", "target", "tenant"), pk=pk)
    if not has_role(request.user, integration.tenant_id, Role.ADMIN):
        raise Http404("No such integration")
    return integration


def _admin_tenants(request: HttpRequest):
    return tenants_for(request.user, Role.ADMIN)


@login_required
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    tenants = _admin_tenants(request)
    form = PairForm(request.POST or None, tenants=tenants)
    if request.method == "POST" and form.is_valid():
        tenant = form.cleaned_data.get("tenant") or tenants.first()
        if tenant is None:
            raise PermissionDenied("Only an organisation's admin can set up an integration")
        return redirect(f"{reverse('setup:new', args=[form.cleaned_data['kind']])}?tenant={tenant.pk}")
    integrations = (Integration.objects.filter(tenant__in=tenants).select_related("source", "target", "tenant")
                    .order_by("tenant__name", "name"))
    return TemplateResponse(request, "setup/start.html", _context(
        request, title="Set up an integration", form=form, integrations=integrations,
        verified=not needs_verification(request.user), can_set_up=tenants.exists()))


def _methods(request: HttpRequest, flow: Any, integration: Integration | None) -> dict[str, str]:
    chosen = {}
    for side, system in (("source", flow.source_system), ("target", flow.target_system)):
        offered = methods_of(schema_for(system))
        current = getattr(integration, side).auth_method if integration else ""
        wanted = request.GET.get(f"{side}_method") or current
        chosen[side] = wanted if wanted in offered else offered[0]
    return chosen


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, kind: str | None = None, pk: int | None = None) -> HttpResponse:
    """New (``kind``) or existing (``pk``) integration: both sides and the pair's settings on one page."""
    integration = _integration(request, pk) if pk is not None else None
    if integration is not None:
        kind, tenant = integration.kind, integration.tenant
    else:
        try:
            get_flow(kind or "")
        except KeyError:
            raise Http404("No such pair") from None
        tenant = _admin_tenants(request).filter(pk=request.GET.get("tenant") or 0).first() or (
            _admin_tenants(request).first() if _admin_tenants(request).count() == 1 else None)
        if tenant is None:
            raise Http404("No organisation to set up")
    flow = get_flow(kind)
    methods = _methods(request, flow, integration)
    data = request.POST if request.method == "POST" else None
    source = SideForm(data, prefix="source", system=flow.source_system, method=methods["source"],
                      connection=integration.source if integration else None)
    target = SideForm(data, prefix="target", system=flow.target_system, method=methods["target"],
                      connection=integration.target if integration else None)
    pair = PairSettingsForm(data, prefix="pair", kind=kind, integration=integration)
    if request.method == "POST" and all([source.is_valid(), target.is_valid(), pair.is_valid()]):
        saved = _save(request, tenant, kind, integration, source, target, pair)
        if saved is not None:
            messages.success(request, f"Saved {saved.name}. Now ping both sides to check the details work.")
            return redirect("setup:hub", pk=saved.pk)
    sides = []
    for side, form, system in (("source", source, flow.source_system), ("target", target, flow.target_system)):
        schema = schema_for(system)
        sides.append({"side": side, "form": form, "label": schema.label, "help": schema.help,
                      "method": methods[side], "methods": [(m, _method_label(m)) for m in methods_of(schema)],
                      "webhook": _webhook_url(request, tenant, integration, side, system, pair)})
    return TemplateResponse(request, "setup/edit.html", _context(
        request, title=f"Set up {flow.label}", flow=flow, sides=sides, pair=pair, integration=integration,
        tenant=tenant, methods=methods))


def _method_label(method: str) -> str:
    from integrations.setup.forms import METHOD_LABELS

    return METHOD_LABELS.get(method, method.replace("_", " "))


def _webhook_url(request: HttpRequest, tenant: Tenant, integration: Integration | None, side: str, system: str,
                 pair: PairSettingsForm) -> str:
    """Where the system pushes its events (ServiceTitan): the address to paste into it."""
    if system != "servicetitan":
        return ""
    name = getattr(integration, side).name if integration else connection_name(
        pair["name"].value() or pair.fields["name"].initial, side)
    return request.build_absolute_uri(reverse("webhook", args=[system, tenant.slug, name]))


def _save(request: HttpRequest, tenant: Tenant, kind: str, integration: Integration | None, source: SideForm,
          target: SideForm, pair: PairSettingsForm) -> Integration | None:
    name = pair.cleaned_data["name"].strip()
    clash = Integration.objects.filter(tenant=tenant, name=name).exclude(pk=getattr(integration, "pk", None))
    if clash.exists():
        pair.add_error("name", "Another integration of yours has this name.")
        return None
    names = ((integration.source.name, integration.target.name) if integration
             else (connection_name(name, "source"), connection_name(name, "target")))
    doc = {
        "tenant": {"slug": tenant.slug, "name": tenant.name},
        "connections": [source.connection_document(names[0]), target.connection_document(names[1])],
        "integrations": [{"name": name, "kind": kind, "source": names[0], "target": names[1],
                          # disabled until "Start"; an edit keeps what it was
                          "enabled": bool(integration and integration.enabled),
                          "settings": pair.settings_document(dict(integration.settings or {}) if integration else {})}],
    }
    errors = validate(doc)
    if errors:
        place_errors(errors, source, target, pair)
        return None
    if integration is not None and integration.name != name:
        Integration.objects.filter(pk=integration.pk).update(name=name)  # load_document finds it by name
    load_document(doc, actor=request.user)
    return Integration.objects.get(tenant=tenant, name=name)


@login_required
@require_GET
def hub(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _integration(request, pk)
    sides = []
    for side in ("source", "target"):
        connection = getattr(integration, side)
        sides.append({"side": side, "connection": connection, "label": system_label(connection.system),
                      "advice": advise_report(connection.system, connection.last_test_report),
                      "tested": connection.last_test_at, "ok": connection.last_test_ok})
    report = latest_report(integration)
    suggested = Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).count()
    records = dict(SyncRecord.objects.filter(integration=integration).values_list("status").annotate(n=Count("pk"))
                   .order_by())
    labels = {cls.name: cls.label or cls.name.replace("_", " ") for cls in get_flow(integration.kind).streams}
    runs = list(SyncRun.objects.filter(integration=integration).order_by("-pk")[:8])
    for run in runs:
        run.label = labels.get(run.stream, run.stream)
    return TemplateResponse(request, "setup/hub.html", _context(
        request, title=integration.name, integration=integration, sides=sides, report=report,
        suggested=suggested, records=records, runs=runs, verified=not needs_verification(request.user)))


@login_required
@require_POST
def ping(request: HttpRequest, pk: int, side: str) -> HttpResponse:
    integration = _integration(request, pk)
    if side not in ("source", "target"):
        raise Http404("No such side")
    connection = getattr(integration, side)
    report = test_connection(connection, actor=request.user)
    (messages.success if report["ok"] else messages.warning)(
        request, f"{system_label(connection.system)}: " + ("every check passed." if report["ok"] else
                                                        "some checks failed; see what to do below."))
    return redirect(f"{reverse('setup:hub', args=[pk])}#{side}")


@login_required
@require_http_methods(["GET", "POST"])
def fit(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _integration(request, pk)
    if request.method == "POST":
        since = None
        if request.POST.get("since"):
            try:
                since = date.fromisoformat(request.POST["since"])
            except ValueError:
                messages.error(request, "The period start must be a date like 2026-01-31.")
                return redirect("setup:fit", pk=pk)
        fit_check(integration, since=since, actor=request.user, request_id=request_id(request),
                  max_pages=DEFAULT_MAX_PAGES)
        return redirect("setup:fit", pk=pk)
    report = latest_report(integration)
    return TemplateResponse(request, "setup/fit.html", _context(
        request, title=f"Fit check: {integration.name}", integration=integration, report=report))


@login_required
@require_GET
def fit_csv(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _integration(request, pk)
    report = latest_report(integration)
    if report is None:
        raise Http404("No fit check yet")
    response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fit-check-{integration.pk}.csv"'
    return response


@login_required
@require_POST
def approve_suggestions(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _integration(request, pk)
    decision = approve_all(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED),
                           actor=request.user, request_id=request_id(request))
    queue_release(decision, request.user)
    messages.success(request, f"Approved {decision.approved} suggested mapping(s).")
    return redirect(request.POST.get("next") == "fit" and reverse("setup:fit", args=[pk])
                    or reverse("setup:hub", args=[pk]))


@login_required
@require_http_methods(["GET", "POST"])
def preview_view(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _integration(request, pk)
    shown = preview(integration, actor=request.user, request_id=request_id(request)) if request.method == "POST" else None
    return TemplateResponse(request, "setup/preview.html", _context(
        request, title=f"Preview the first sync: {integration.name}", integration=integration, shown=shown,
        verified=not needs_verification(request.user)))


@login_required
@require_POST
def start_sync(request: HttpRequest, pk: int) -> HttpResponse:
    integration = _integration(request, pk)
    if needs_verification(request.user):
        messages.error(request, "Confirm your email address first (open the link we sent you): nothing is written "
                                "to your systems before that.")
        return redirect("setup:hub", pk=pk)
    set_enabled([integration], True, actor=request.user, request_id=request_id(request), via="from the guided setup")
    request_run(integration, actor=request.user, request_id=request_id(request), via="(first sync, guided setup)")
    messages.success(request, f"{integration.name} is on: its first sync has started and its schedules are set.")
    return redirect("setup:hub", pk=pk)
