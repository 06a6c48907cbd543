"""ServiceNow authentication: Basic, and OAuth tokens from ``/oauth_token.do``.

Faithful to API_FACTS 1.4: password, client_credentials and refresh_token grants; access
tokens live 30 minutes by default and refresh tokens 100 days; client_credentials returns no
refresh token (RFC 6749 4.4.3) and runs as the OAuth Application User; every failure is
HTTP 401 with ServiceNow's non-standard ``{"error_description":"access_denied",
"error":"server_error"}``, never the RFC ``invalid_client`` shape.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from .base import SimRequest, SimResponse

ACCESS_LIFETIME = 1800
REFRESH_LIFETIME = 8_640_000
TOKEN_DENIED = {"error_description": "access_denied", "error": "server_error"}


@dataclass
class OAuthClient:
    client_id: str
    secret: str
    user: str | None  # the OAuth Application User; client_credentials runs as this user


@dataclass
class Token:
    value: str
    username: str
    client_id: str
    expires_at: float


def basic_credentials(request: SimRequest) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header, else None."""
    header = request.header("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def bearer_token(request: SimRequest) -> str | None:
    header = request.header("Authorization") or ""
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class TokenIssuer:
    """Issues and checks tokens. ``timer`` is injectable so tests can expire tokens at will."""

    def __init__(self, timer: Callable[[], float] = time.time) -> None:
        self.timer = timer
        self.clients: dict[str, OAuthClient] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}
        self.client_credentials_enabled = True  # glide.oauth.inbound.client.credential.grant_type.enabled

    def user_for(self, token: str) -> str | None:
        found = self.access.get(token)
        if found is None or found.expires_at <= self.timer():
            return None
        return found.username

    def expire_all(self) -> None:
        """Make every issued access token expired (refresh tokens stay valid)."""
        for token in self.access.values():
            token.expires_at = 0

    def revoke_refresh_tokens(self) -> None:
        self.refresh.clear()

    def token_endpoint(
        self,
        request: SimRequest,
        check_password: Callable[[str, str], bool],
        access_lifetime: int,
    ) -> SimResponse:
        """``POST /oauth_token.do`` (form-encoded)."""
        if request.method != "POST":
            return _denied()
        try:
            form = request.form()
        except UnicodeDecodeError:
            return _denied()
        client = self._client(request, form)
        if client is None:
            return _denied()
        grant = form.get("grant_type", "")
        with_refresh = True
        if grant == "client_credentials":
            if not self.client_credentials_enabled or not client.user:
                return _denied()
            username, with_refresh = client.user, False
        elif grant == "password":
            username = form.get("username", "")
            if not check_password(username, form.get("password", "")):
                return _denied()
        elif grant == "refresh_token":
            old = self.refresh.get(form.get("refresh_token", ""))
            if old is None or old.client_id != client.client_id or old.expires_at <= self.timer():
                return _denied()
            username = old.username
        else:
            return _denied()
        now = self.timer()
        access = Token(secrets.token_urlsafe(48), username, client.client_id, now + access_lifetime)
        self.access[access.value] = access
        payload: dict[str, object] = {
            "access_token": access.value,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": access_lifetime,
        }
        if with_refresh:
            if grant == "refresh_token":
                refresh = self.refresh[form["refresh_token"]]  # ServiceNow keeps the same refresh token
            else:
                refresh = Token(secrets.token_urlsafe(48), username, client.client_id, now + REFRESH_LIFETIME)
                self.refresh[refresh.value] = refresh
            payload["refresh_token"] = refresh.value
        return SimResponse.json(200, payload, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _client(self, request: SimRequest, form: dict[str, str]) -> OAuthClient | None:
        """Client authentication: HTTP Basic (RFC 6749 2.3.1) or id/secret in the form."""
        basic = basic_credentials(request)
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client


def _denied() -> SimResponse:
    return SimResponse.json(401, TOKEN_DENIED)
