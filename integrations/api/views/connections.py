"""Connections: read by every member, changed by admins, tested by operators."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from integrations.api.actions import save_connection
from integrations.api.filters import CHOICE, Filter, parameters
from integrations.api.pagination import SmallPages
from integrations.api.serializers import ConnectionSerializer, ConnectionUpdateSerializer
from integrations.api.views.base import TenantScopedViewSet
from integrations.engine.checks import test_connection
from integrations.models import Connection, System
from integrations.systems.redaction import redact

CONNECTION_FILTERS = (
    Filter("tenant", "tenant__slug", help="Tenant slug."),
    Filter("system", "system", CHOICE, tuple(System.values)),
)


@extend_schema_view(
    list=extend_schema(summary="List connections", parameters=parameters(CONNECTION_FILTERS)),
    retrieve=extend_schema(summary="Show a connection (secrets are never returned)"),
    create=extend_schema(summary="Create a connection (admin)"),
    update=extend_schema(summary="Replace a connection's settings (admin); blank secrets keep their value"),
    partial_update=extend_schema(summary="Change a connection (admin); blank or absent secrets keep their value"),
)
class ConnectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                        mixins.UpdateModelMixin, TenantScopedViewSet):
    model = Connection
    serializer_class = ConnectionSerializer
    pagination_class = SmallPages
    filters = CONNECTION_FILTERS
    roles = {"create": Role.ADMIN, "update": Role.ADMIN, "partial_update": Role.ADMIN, "test": Role.OPERATOR}

    def get_serializer_class(self):
        return ConnectionUpdateSerializer if self.action in ("update", "partial_update") else ConnectionSerializer

    def base_queryset(self):
        queryset = Connection.objects.select_related("tenant").order_by("tenant__slug", "name", "pk")
        if self.action == "list":
            queryset = queryset.defer("token_cache")  # decrypting every cached token is wasted work
        return queryset

    def perform_create(self, serializer: ConnectionSerializer) -> None:
        serializer.instance = save_connection(None, dict(serializer.validated_data), actor=self.request.user,
                                              request_id=self.request_id)

    def perform_update(self, serializer: ConnectionUpdateSerializer) -> None:
        serializer.instance = save_connection(serializer.instance, dict(serializer.validated_data),
                                              actor=self.request.user, request_id=self.request_id)

    @extend_schema(summary="Test the connection now (operator): log on, check tables and roles",
                   request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: Any = None) -> Response:
        report = test_connection(self.get_object(), actor=request.user)
        return Response(redact(report))
