"""The audit trail (read-only, for every member) and who the caller is."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Membership, Tenant
from integrations.api.filters import INT, PREFIX, SINCE, UNTIL, Filter, parameters
from integrations.api.pagination import AuditCursor
from integrations.api.serializers import AuditEventSerializer, MeSerializer
from integrations.api.views.base import TenantScopedViewSet
from integrations.models import AuditEvent

AUDIT_FILTERS = (
    Filter("tenant", "tenant__slug", help="Tenant slug."),
    Filter("actor", "actor_name", help="Username, or 'system'."),
    Filter("action", "action", help="Exact action, e.g. mapping.approved."),
    Filter("action_prefix", "action", PREFIX, help="Action starting with this text, e.g. 'run.'."),
    Filter("integration", "integration_id", INT),
    Filter("connection", "connection_id", INT),
    Filter("record", "record_id", INT),
    Filter("run", "run_id", INT),
    Filter("request_id", "request_id", help="All events of one API request or admin click."),
    Filter("since", "created_at", SINCE, help="At or after (date or ISO datetime)."),
    Filter("until", "created_at", UNTIL, help="At or before (a date includes the whole day)."),
)


@extend_schema_view(
    list=extend_schema(summary="List audit events, newest first", parameters=parameters(AUDIT_FILTERS)),
    retrieve=extend_schema(summary="Show an audit event"),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    model = AuditEvent
    serializer_class = AuditEventSerializer
    pagination_class = AuditCursor
    filters = AUDIT_FILTERS

    def base_queryset(self):
        return AuditEvent.objects.select_related("tenant")


class MeView(APIView):
    """The caller and their role in each tenant (superusers see every tenant as admin)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Who am I: my tenants and roles", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        if user.is_superuser:
            tenants = [{"tenant": t, "role": "admin"} for t in Tenant.objects.order_by("slug")]
        else:
            tenants = [{"tenant": m.tenant, "role": m.role}
                       for m in Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__slug")]
        return Response(MeSerializer({"username": user.get_username(), "is_superuser": user.is_superuser,
                                      "tenants": tenants}).data)
