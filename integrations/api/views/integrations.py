"""Integrations (run now, pause, resume, settings) and their runs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from integrations.api.actions import update_integration
from integrations.api.filters import CHOICE, INT, SINCE, UNTIL, Filter, parameters
from integrations.api.pagination import RunCursor, SmallPages
from integrations.api.serializers import IntegrationSerializer, RunNowSerializer, RunSerializer, TaskQueuedSerializer
from integrations.api.views.base import TenantScopedViewSet
from integrations.engine.operations import set_enabled
from integrations.flows import get_flow
from integrations.models import Integration, RunStatus, SyncRun, Trigger
from integrations.tasks import request_run

INTEGRATION_FILTERS = (
    Filter("tenant", "tenant__slug", help="Tenant slug."),
    Filter("kind", "kind", help="e.g. sage_x3__servicenow"),
)
RUN_FILTERS = (
    Filter("integration", "integration_id", INT),
    Filter("stream", "stream"),
    Filter("status", "status", CHOICE, tuple(RunStatus.values)),
    Filter("trigger", "trigger", CHOICE, tuple(Trigger.values)),
    Filter("since", "started_at", SINCE, help="Started at or after (date or ISO datetime)."),
    Filter("until", "started_at", UNTIL, help="Started at or before (a date includes the whole day)."),
)


@extend_schema_view(
    list=extend_schema(summary="List integrations", parameters=parameters(INTEGRATION_FILTERS)),
    retrieve=extend_schema(summary="Show an integration with its streams"),
    update=extend_schema(summary="Rename an integration or replace its settings (admin)"),
    partial_update=extend_schema(summary="Rename an integration or change its settings (admin)"),
)
class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                         TenantScopedViewSet):
    model = Integration
    serializer_class = IntegrationSerializer
    pagination_class = SmallPages
    filters = INTEGRATION_FILTERS
    roles = {"update": Role.ADMIN, "partial_update": Role.ADMIN,
             "run": Role.OPERATOR, "pause": Role.OPERATOR, "resume": Role.OPERATOR}

    def base_queryset(self):
        return (Integration.objects.select_related("tenant", "source", "target").prefetch_related("streams")
                .order_by("tenant__slug", "name", "pk"))

    def perform_update(self, serializer: IntegrationSerializer) -> None:
        serializer.instance = update_integration(serializer.instance, dict(serializer.validated_data),
                                                 actor=self.request.user, request_id=self.request_id)

    @extend_schema(summary="Run now (operator): queue a run of every enabled stream, or of the ones named",
                   request=RunNowSerializer, responses={202: TaskQueuedSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: Any = None) -> Response:
        integration = self.get_object()
        serializer = RunNowSerializer(data=request.data,
                                      context={"stream_names": get_flow(integration.kind).stream_names()})
        serializer.is_valid(raise_exception=True)
        task_id = request_run(integration, request.user, serializer.validated_data.get("streams"),
                              request_id=self.request_id, via="through the API")
        return Response({"task_id": task_id}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Pause scheduled syncs (operator); manual runs still work",
                   request=None, responses={200: IntegrationSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: Any = None) -> Response:
        return self._set_enabled(False)

    @extend_schema(summary="Resume scheduled syncs (operator)", request=None, responses={200: IntegrationSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: Any = None) -> Response:
        return self._set_enabled(True)

    def _set_enabled(self, enabled: bool) -> Response:
        integration = self.get_object()
        set_enabled([integration], enabled, actor=self.request.user, request_id=self.request_id,
                    via="through the API")
        return Response(IntegrationSerializer(integration, context=self.get_serializer_context()).data)


@extend_schema_view(
    list=extend_schema(summary="List runs, newest first", parameters=parameters(RUN_FILTERS)),
    retrieve=extend_schema(summary="Show a run"),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = SyncRun
    serializer_class = RunSerializer
    pagination_class = RunCursor
    tenant_field = "integration__tenant"
    filters = RUN_FILTERS

    def base_queryset(self):
        # the list shows integration ids only; a detail needs the integration for its tenant
        return SyncRun.objects.select_related("integration") if self.detail else SyncRun.objects.all()
