"""Records: the lineage of every source record, and replay of failed or held ones."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from integrations import tasks
from integrations.api.filters import CHOICE, INT, PREFIX, Filter, parameters
from integrations.api.pagination import RecordCursor
from integrations.api.serializers import (
    BulkReplaySerializer,
    RecordDetailSerializer,
    RecordSerializer,
    ReplaySerializer,
    TaskQueuedSerializer,
)
from integrations.api.views.base import TenantScopedViewSet
from integrations.models import ErrorClass, RecordStatus, SyncRecord
from portal.middleware import request_id

RECORD_FILTERS = (
    Filter("integration", "integration_id", INT),
    Filter("stream", "stream"),
    Filter("status", "status", CHOICE, tuple(RecordStatus.values)),
    Filter("error_class", "error_class", CHOICE, tuple(ErrorClass.values)),
    Filter("search", "business_key", PREFIX, help="Business key (invoice number...) starting with this text."),
)


def not_replayable(records: list[SyncRecord]) -> list[str]:
    return [f"{r.pk} ({r.business_key or r.source_key}: {r.status})"
            for r in records if r.status not in RecordStatus.replayable()]


@extend_schema_view(
    list=extend_schema(summary="List records, most recently changed first", parameters=parameters(RECORD_FILTERS)),
    retrieve=extend_schema(summary="Show a record with its snapshot, target ids and attempts"),
)
class RecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = SyncRecord
    pagination_class = RecordCursor
    tenant_field = "integration__tenant"
    filters = RECORD_FILTERS
    roles = {"replay": Role.OPERATOR, "replay_many": Role.OPERATOR}

    def get_serializer_class(self):
        return RecordDetailSerializer if self.action == "retrieve" else RecordSerializer

    def base_queryset(self):
        if self.action == "list":
            # the snapshot and child ids can be large: the list has no use for them
            return SyncRecord.objects.defer("source_snapshot", "target_refs")
        queryset = SyncRecord.objects.select_related("integration")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("attempt_log")
        return queryset

    @extend_schema(summary="Replay one failed or held record (operator)",
                   request=ReplaySerializer, responses={202: TaskQueuedSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: Any = None) -> Response:
        record = self.get_object()
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._queue([record], serializer.validated_data["reason"])

    @extend_schema(operation_id="records_replay_many", summary="Replay many failed or held records (operator)",
                   request=BulkReplaySerializer, responses={202: TaskQueuedSerializer})
    @action(detail=False, methods=["post"], url_path="replay", url_name="replay-many")
    def replay_many(self, request: Request) -> Response:
        serializer = BulkReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        records = self.scoped_objects(serializer.validated_data["ids"], Role.OPERATOR,
                                      SyncRecord.objects.select_related("integration").defer("source_snapshot"))
        return self._queue(records, serializer.validated_data["reason"])

    def _queue(self, records: list[SyncRecord], reason: str) -> Response:
        refused = not_replayable(records)
        if refused:
            raise ValidationError({"ids": f"Only failed or held records can be replayed; not: {', '.join(refused)}. "
                                          "Nothing was queued."})
        count, task_id = tasks.request_replay(SyncRecord.objects.filter(pk__in=[r.pk for r in records]),
                                              self.request.user, reason, request_id(self.request))
        return Response({"task_id": task_id, "records": count}, status=status.HTTP_202_ACCEPTED)
