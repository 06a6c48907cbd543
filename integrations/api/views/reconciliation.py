"""Month-end reconciliations: list and read the stored ones (with their differences), start a new one."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.scoping import has_role, scope
from integrations.api.filters import CHOICE, INT, Filter, parameters
from integrations.api.pagination import RunCursor
from integrations.api.permissions import role_label
from integrations.api.views.base import TenantScopedViewSet
from integrations.engine.audit import audit
from integrations.engine.reconcile import reconciles
from integrations.engine.reconcile_report import csv_text, run_data
from integrations.models import Integration, Period, PeriodError, ReconciliationRun, ReconciliationStatus
from integrations.tasks import request_reconciliation

RECONCILIATION_FILTERS = (
    Filter("integration", "integration_id", INT),
    Filter("status", "status", CHOICE, tuple(ReconciliationStatus.values)),
)


class ReconciliationSerializer(serializers.BaseSerializer):
    """A stored reconciliation (read-only): verdict, totals per stream and currency, per-day series, and in
    detail every difference line (the shape of ``engine.reconcile_report.run_data``)."""

    def to_representation(self, instance: ReconciliationRun) -> dict[str, Any]:
        lines = instance.lines.order_by("reason", "business_key", "pk") if self.context.get("with_lines") else None
        return run_data(instance, lines)


class CSVRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: text/csv``; the action answers with the file itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data).encode("utf-8")  # only error bodies get here


class ReconcileSerializer(serializers.Serializer):
    integration = serializers.IntegerField(min_value=1, max_value=10**18, help_text="The integration's id.")
    period = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=7,
                                   help_text="A month, YYYY-MM (e.g. 2026-11).")
    start = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=10,
                                  help_text="First day, YYYY-MM-DD (with end).")
    end = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=10,
                                help_text="Last day, YYYY-MM-DD (included).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        month, start, end = attrs.get("period"), attrs.get("start"), attrs.get("end")
        try:
            attrs["span"] = Period.chosen(month, start, end)
        except PeriodError as exc:
            raise ValidationError({"period": str(exc)}) from None
        return attrs


@extend_schema_view(
    list=extend_schema(summary="List reconciliations, newest first (verdicts and totals, without lines)",
                       operation_id="reconciliations_list", parameters=parameters(RECONCILIATION_FILTERS),
                       responses={200: OpenApiTypes.OBJECT}),
    retrieve=extend_schema(summary="Show a reconciliation with its totals, per-day series and every difference",
                           responses={200: OpenApiTypes.OBJECT}),
)
class ReconciliationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = ReconciliationRun
    serializer_class = ReconciliationSerializer
    pagination_class = RunCursor  # started_at, newest first (recon_latest_idx per integration)
    tenant_field = "integration__tenant"
    filters = RECONCILIATION_FILTERS
    roles = {"create": Role.OPERATOR}

    def base_queryset(self):
        return ReconciliationRun.objects.select_related("integration")

    def get_serializer_class(self):
        # the browsable API draws its POST form from this: the request a reconciliation starts from
        if self.request is not None and self.request.method == "POST":
            return ReconcileSerializer
        return ReconciliationSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "with_lines": self.action == "retrieve"}

    @extend_schema(summary="Reconcile an integration for a month or a date range (operator)",
                   description="Reads the target back (never writes) within the connection's call budget. "
                               "Answers 202 with the run: `running` while queued, else its verdict; poll its URL.",
                   request=ReconcileSerializer, responses={202: OpenApiTypes.OBJECT})
    def create(self, request: Request) -> Response:
        serializer = ReconcileSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        integration = (scope(Integration.objects.select_related("tenant", "source", "target"), request.user, "tenant")
                       .filter(pk=data["integration"]).first())
        if integration is None:  # another tenant's integration does not exist for the caller
            raise ValidationError({"integration": f"Unknown integration {data['integration']}."})
        if not has_role(request.user, integration.tenant_id, Role.OPERATOR):
            raise PermissionDenied(f"You need the {role_label(Role.OPERATOR)} role in this tenant to do this.")
        if not reconciles(integration):
            raise ValidationError({"integration": f"{integration.name} moves no invoices or bills."})
        run = request_reconciliation(integration, data["span"], request.user, request_id=self.request_id,
                                     via="through the API")
        url = reverse("api:reconciliation-detail", args=[run.pk])
        return Response(run_data(run), status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    @extend_schema(summary="A reconciliation as CSV: totals, then one row per difference",
                   responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="csv", renderer_classes=[JSONRenderer, CSVRenderer])
    def csv(self, request: Request, pk: Any = None) -> HttpResponse:
        run = self.get_object()
        audit(run.integration.tenant_id, "reconciliation.exported",
              f"{run.integration.name} {run.period_label} exported as CSV through the API", actor=request.user,
              integration_id=run.integration_id, request_id=self.request_id, detail={"reconciliation": run.pk})
        response = HttpResponse(csv_text(run, run.lines.order_by("reason", "business_key", "pk")),
                                content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{run.pk}.csv"'
        return response
