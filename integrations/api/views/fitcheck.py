"""The fit check through the API: POST an integration id, get the report (reads both systems, writes neither)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.scoping import has_role, scope
from integrations.models import Integration
from integrations.setup.fitcheck import DEFAULT_MAX_PAGES, fit_check
from portal.middleware import request_id


class FitCheckRequestSerializer(serializers.Serializer):
    integration = serializers.IntegerField(min_value=1, help_text="The integration to check.")
    since = serializers.DateField(required=False, help_text="Count records changed on or after this day.")
    max_pages = serializers.IntegerField(required=False, min_value=1, max_value=500, default=DEFAULT_MAX_PAGES,
                                         help_text="Pages read per record stream at most.")


class FitCheckView(APIView):
    """Run the fit check of an integration (operator); the report as JSON, also kept in the audit trail."""

    @extend_schema(summary="Fit check (operator): read both systems, write neither, report what would happen",
                   request=FitCheckRequestSerializer,
                   responses={200: OpenApiResponse(description="The fit check report"),
                              403: OpenApiResponse(description="The operator role is needed"),
                              404: OpenApiResponse(description="No such integration in your tenants")})
    def post(self, request: Request) -> Response:
        body = FitCheckRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # another tenant's integration is simply not found: 404, never 403
        integration = (scope(Integration.objects.select_related("source", "target", "tenant"), request.user)
                       .filter(pk=body.validated_data["integration"]).first())
        if integration is None:
            return Response({"detail": "No such integration."}, status=status.HTTP_404_NOT_FOUND)
        if not has_role(request.user, integration.tenant_id, Role.OPERATOR):
            return Response({"detail": "You need the operator role in this tenant to run a fit check."},
                            status=status.HTTP_403_FORBIDDEN)
        report = fit_check(integration, since=body.validated_data.get("since"),
                           max_pages=body.validated_data["max_pages"], actor=request.user,
                           request_id=request_id(request))
        return Response(report)
