"""Mappings: review suggestions, approve (releasing the records held for them) or reject."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from integrations import tasks
from integrations.api.filters import CHOICE, INT, PREFIX, Filter, parameters
from integrations.api.pagination import SmallPages
from integrations.api.serializers import (
    ApproveSerializer,
    BulkIdsSerializer,
    DecisionSerializer,
    MappingDetailSerializer,
    MappingSerializer,
)
from integrations.api.views.base import TenantScopedViewSet
from integrations.engine import mappings as engine
from integrations.models import Mapping, MappingKind, MappingStatus

MAPPING_FILTERS = (
    Filter("integration", "integration_id", INT),
    Filter("kind", "kind", CHOICE, tuple(MappingKind.values)),
    Filter("status", "status", CHOICE, tuple(MappingStatus.values)),
    Filter("search", "source_code", PREFIX, help="Source code starting with this text."),
)


@extend_schema_view(
    list=extend_schema(summary="List mappings", parameters=parameters(MAPPING_FILTERS)),
    retrieve=extend_schema(summary="Show a mapping and how many records wait for it"),
)
class MappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = Mapping
    pagination_class = SmallPages
    tenant_field = "integration__tenant"
    filters = MAPPING_FILTERS
    roles = {"approve": Role.APPROVER, "reject": Role.APPROVER,
             "approve_many": Role.APPROVER, "reject_many": Role.APPROVER}

    def get_serializer_class(self):
        return MappingDetailSerializer if self.action == "retrieve" else MappingSerializer

    def base_queryset(self):
        return (Mapping.objects.select_related("integration", "decided_by")
                .order_by("integration_id", "kind", "source_code", "pk"))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        mapping = self.get_object()
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
