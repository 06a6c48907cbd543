"""API tokens: obtained with a username and password, stored only as a hash, expiring.

``POST /api/auth/token/`` keeps the body clients already send (``{"username", "password"}``)
and answers ``{"token", "expiry"}``. The token is django-rest-knox's: the database holds a
SHA-512 digest of it (256 random bits), never the token, and the token stops working at ``expiry``
(``API_TOKEN_TTL_HOURS``). Sign-ins here are throttled and audited like the admin's
(portal/throttling.py): a locked-out client gets 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox import views as knox_views
from knox.models import get_token_model
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api.authentication import TokenAuthentication


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(write_only=True)
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as 'Authorization: Token <token>'. Shown once; only its hash is kept.")
    expiry = serializers.DateTimeField(help_text="When the token stops working (UTC).")


_LOCKED = inline_serializer("SignInLocked", {
    "detail": serializers.CharField(),
    "retry_after": serializers.IntegerField(help_text="Seconds; also in the Retry-After header."),
    "locked_until": serializers.DateTimeField(),
})


class ObtainTokenView(knox_views.LoginView):
    """Exchange a username and password for a new expiring token."""

    authentication_classes: list[Any] = []  # the credentials are in the body: no session, no CSRF
    permission_classes = [AllowAny]

    @extend_schema(summary="Obtain an API token", request=CredentialsSerializer,
                   responses={200: TokenSerializer, 400: OpenApiResponse(description="Wrong username or password."),
                              429: OpenApiResponse(_LOCKED, description="Too many failed sign-ins from this client.")},
                   auth=[])
    def post(self, request: Request, format: str | None = None) -> Response:
        given = CredentialsSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        # The Django request, not DRF's wrapper: django-axes marks a lockout on the request it is
        # handed, and its middleware (which answers 429) sees only the Django one.
        user = authenticate(request._request, username=given.validated_data["username"],
                            password=given.validated_data["password"])
        if user is None:  # wrong password, unknown or inactive user, or locked out
            raise serializers.ValidationError({"non_field_errors": ["Unable to log in with provided credentials."]})
        request.user = user
        return super().post(request, format)


class RevokeTokenView(knox_views.LogoutView):
    """Delete the token this request is authenticated with; other tokens of the user keep working."""

    authentication_classes = (TokenAuthentication,)

    @extend_schema(summary="Revoke the token this request is made with", request=None, responses={204: None})
    def post(self, request: Request, format: str | None = None) -> Response:
        if not isinstance(request.auth, get_token_model()):  # only a token request names a token
            raise NotAuthenticated("Send the token to revoke in the Authorization header.")
        return super().post(request, format)


class RevokeAllTokensView(knox_views.LogoutAllView):
    """Delete every token of the caller (a leaked token, a departing script)."""

    authentication_classes = (TokenAuthentication,)

    @extend_schema(summary="Revoke every token of the caller", request=None, responses={204: None})
    def post(self, request: Request, format: str | None = None) -> Response:
        return super().post(request, format)
