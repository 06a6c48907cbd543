"""Mappings: review suggestions, approve (releasing the records held for them), reject or ignore;
export and import them as CSV (imported rows are suggestions, never approvals)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.scoping import scope
from integrations import tasks
from integrations.api.filters import CHOICE, INT, PREFIX, Filter, parameters
from integrations.api.pagination import SmallPages
from integrations.api.serializers import (
    ApproveSerializer,
    BulkIdsSerializer,
    DecisionSerializer,
    IgnoreSerializer,
    MappingDetailSerializer,
    MappingImpactSerializer,
    MappingImportResultSerializer,
    MappingImportSerializer,
    MappingSerializer,
)
from integrations.api.views.base import TenantScopedViewSet
from integrations.engine import mapping_csv
from integrations.engine import mappings as engine
from integrations.models import Integration, Mapping, MappingKind, MappingStatus

MAPPING_FILTERS = (
    Filter("integration", "integration_id", INT),
    Filter("kind", "kind", CHOICE, tuple(MappingKind.values)),
    Filter("status", "status", CHOICE, tuple(MappingStatus.values)),
    Filter("search", "source_code", PREFIX, help="Source code starting with this text."),
    Filter("held", "held_count__gte", INT, help="Codes with at least this many held records waiting."),
)
ORDER = OpenApiParameter("order", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=["impact"],
                         description="impact: most money held first (then most records held).")


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data.encode("utf-8") if isinstance(data, str) else JSONRenderer().render(data)


@extend_schema_view(
    list=extend_schema(summary="List mappings", parameters=[*parameters(MAPPING_FILTERS), ORDER]),
    retrieve=extend_schema(summary="Show a mapping and how many records wait for it"),
)
class MappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = Mapping
    pagination_class = SmallPages
    tenant_field = "integration__tenant"
    filters = MAPPING_FILTERS
    roles = {"approve": Role.APPROVER, "reject": Role.APPROVER, "ignore": Role.APPROVER,
             "approve_many": Role.APPROVER, "reject_many": Role.APPROVER, "import_csv": Role.APPROVER}

    def get_serializer_class(self):
        if self.action == "retrieve":
            return MappingDetailSerializer
        return MappingImpactSerializer if self._impact else MappingSerializer

    @property
    def _impact(self) -> bool:
        """Listed by money held, or filtered by it: the held figures are brought up to date and shown."""
        params = self.request.query_params
        return params.get("order") == "impact" or "held" in params

    def base_queryset(self):
        rows = Mapping.objects.select_related("integration", "decided_by")
        if self.request.query_params.get("order") == "impact":
            return rows.order_by("-held_amount", "-held_count", "pk")
        return rows.order_by("integration_id", "kind", "source_code", "pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if self._impact:  # recomputed for the integrations whose held queue changed since
            engine.refresh_stale_held(scope(Integration.objects.select_related("source"), request.user, "tenant"))
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        mapping = self.get_object()
        if engine.refresh_stale_held([mapping.integration]):
            mapping.refresh_from_db(fields=["held_count", "held_documents", "held_money", "held_amount"])
        mapping.held_records = engine.held_for(mapping.integration_id, mapping.kind, mapping.source_code).count()
        return Response(MappingDetailSerializer(mapping, context=self.get_serializer_context()).data)

    @extend_schema(summary="Approve a mapping (approver); its held records are queued for replay",
                   request=ApproveSerializer, responses={200: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: Any = None) -> Response:
        mapping = self.get_object()
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        target = serializer.validated_data.get("target_code")
        if target:
            try:
                decision = engine.map_manually(mapping, target, request.user, self.request_id)
            except ValueError as exc:
                raise ValidationError({"target_code": str(exc)})
        elif not mapping.target_code:
            raise ValidationError({"target_code": "This mapping has no suggested target; give target_code."})
        else:
            decision = engine.approve([mapping], request.user, self.request_id)
        return self._decided(decision)

    @extend_schema(summary="Reject a mapping (approver)", request=None, responses={200: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: Any = None) -> Response:
        return self._decided(engine.reject([self.get_object()], request.user, self.request_id))

    @extend_schema(operation_id="mappings_approve_many", summary="Approve many mappings (approver); those without a target are skipped",
                   request=BulkIdsSerializer, responses={200: DecisionSerializer})
    @action(detail=False, methods=["post"], url_path="approve", url_name="approve-many")
    def approve_many(self, request: Request) -> Response:
        mappings = self._bulk(request)
        skipped = [m.pk for m in mappings if not m.target_code]
        decision = engine.approve([m for m in mappings if m.target_code], request.user, self.request_id)
        return self._decided(decision, skipped)

    @extend_schema(operation_id="mappings_reject_many", summary="Reject many mappings (approver)", request=BulkIdsSerializer,
                   responses={200: DecisionSerializer})
    @action(detail=False, methods=["post"], url_path="reject", url_name="reject-many")
    def reject_many(self, request: Request) -> Response:
        return self._decided(engine.reject(self._bulk(request), request.user, self.request_id))

    def _bulk(self, request: Request) -> list[Mapping]:
        serializer = BulkIdsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self.scoped_objects(serializer.validated_data["ids"], Role.APPROVER)

    def _decided(self, decision: engine.Decision, skipped: list[int] | None = None) -> Response:
        task_id = tasks.queue_release(decision, self.request.user)
        return Response({"approved": decision.approved, "rejected": decision.rejected,
                         "released": len(decision.released_ids), "skipped": skipped or [], "task_id": task_id})

    @extend_schema(summary="Mark a code as never needing a mapping (approver), with the reason",
                   request=IgnoreSerializer, responses={200: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def ignore(self, request: Request, pk: Any = None, format: str | None = None) -> Response:
        mapping = self.get_object()
        serializer = IgnoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if mapping.status == MappingStatus.APPROVED:
            raise ValidationError({"status": "This code is approved (mapped); reject it first if it never needs one."})
        decision = engine.ignore([mapping], serializer.validated_data["reason"], request.user, self.request_id)
        return Response({"approved": 0, "rejected": 0, "released": 0, "skipped": [] if decision.ignored else [mapping.pk],
                         "task_id": None})

    @extend_schema(summary="Export mappings as CSV (the list's filters apply)", parameters=parameters(MAPPING_FILTERS),
                   responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], renderer_classes=[CSVRenderer, JSONRenderer])
    def export(self, request: Request, format: str | None = None) -> HttpResponse:
        if format not in (None, "csv"):
            raise NotFound("The export is CSV: /api/mappings/export/ (or export.csv).")
        text = mapping_csv.export_csv(self.filter_queryset(self.get_queryset()))
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="mappings.csv"'
        return response

    @extend_schema(operation_id="mappings_import", summary="Import mappings from CSV as suggestions (approver); "
                   "checked per line, all or nothing", request=MappingImportSerializer,
                   responses={200: MappingImportResultSerializer, 400: MappingImportResultSerializer})
    @action(detail=False, methods=["post"], url_path="import", url_name="import",
            parser_classes=[MultiPartParser, FormParser, JSONParser])
    def import_csv(self, request: Request, format: str | None = None) -> Response:
        serializer = MappingImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("file"):
            if data["file"].size > mapping_csv.MAX_BYTES:
                raise ValidationError({"file": "The file is larger than 5 MB: split it."})
            try:
                text = data["file"].read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationError({"file": "The file is not UTF-8 text."})
        else:
            text = data["csv"]
        allowed = list(scope(Integration.objects.select_related("tenant"), request.user, "tenant",
                             min_role=Role.APPROVER))
        default = None
        if data.get("integration"):
            default = next((i for i in allowed if i.pk == data["integration"]), None)
            if default is None:
                if scope(Integration.objects.filter(pk=data["integration"]), request.user, "tenant").exists():
                    raise PermissionDenied("You need the approver role in this integration's tenant to import.")
                raise ValidationError({"integration": "No such integration."})
        result = mapping_csv.import_csv(text, allowed, request.user, self.request_id, default=default)
        return Response(result.as_json(), status=400 if result.errors else 200)
