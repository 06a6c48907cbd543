"""The Sage X3 cloud token service, as the simulator plays it (API_FACTS 2.2 and 7).

Documented [D: developer.sage.com/x3/authorization-token-endpoints/*]: pairing through
``GET /v1/token/authorise``, then ``POST /v1/token`` with ``grant_type`` ``authorization_code``
or ``refresh_token``; JWT access tokens valid 5 minutes and refresh tokens valid 30 days; a
refresh returns a *new* access and refresh token, and a customer may delete the refresh token,
after which the application must pair again. The request body is shown as JSON in Sage's
example, while RFC 6749 says form-encoded: both are accepted. Refresh-token rotation (the
old token refused once used) is how the simulator reads "get a new access and refresh token"
[U]; it is the strict reading, so a client that survives it survives a lenient server too.
``client_credentials`` is not an X3 grant; it is offered only when enabled, for the seeds'
wording (RFC 6749 4.4: no refresh token in that answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .base import DropResponse, SimRequest, SimResponse


@dataclass
class AccessToken:
    client_id: str
    expires_at: datetime
    grant: str


@dataclass
class RefreshToken:
    client_id: str
    issued_at: datetime
    expires_at: datetime
    revoked: str | None = None  # why it stopped working: "rotated", "deleted"


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str | None
    expires_at: datetime
    used: bool = False


@dataclass
class OAuthState:
    """Everything the token service remembers; tests read ``grant_counts`` and the token maps."""

    clients: dict[str, str] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    grant_counts: Counter[str] = field(default_factory=Counter)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class X3TokenService:
    """Issues and checks tokens; the simulator routes ``/token`` and ``/v1/token*`` here."""

    def __init__(
        self,
        now: Callable[[], datetime],
        access_lifetime: Callable[[], int],
        refresh_lifetime: int = 30 * 86400,
        allow_client_credentials: bool = False,
        issuer: str = "api.sandbox-sagex3.com",
    ) -> None:
        self.now = now
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.allow_client_credentials = allow_client_credentials
        self.rotate_resets_expiry = True  # each new refresh token lives the full lifetime [U]
        # the next N refresh grants rotate the token, then their answer is lost on the way back
        self.lose_refresh_answers = 0
        self.issuer = issuer
        self.code_lifetime = 600
        self.state = OAuthState()
        self._key = secrets.token_bytes(32)

    # --- token minting ------------------------------------------------------------------------
    def _jwt(self, claims: dict[str, Any]) -> str:
        """JWT-shaped (HS256) like Sage's tokens, so a client may decode ``exp`` if it wants to."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def _claims(self, client_id: str, issued: datetime, expires: datetime) -> dict[str, Any]:
        return {
            "jti": str(uuid.uuid4()), "iss": self.issuer, "aud": self.issuer, "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()), "region": "sandbox", "azp": client_id, "scopes": "api.dataIngestion",
        }

    def mint_access(self, client_id: str, grant: str) -> tuple[str, int]:
        issued = self.now()
        lifetime = self.access_lifetime()
        token = self._jwt(self._claims(client_id, issued, issued + timedelta(seconds=lifetime)))
        self.state.access_tokens[token] = AccessToken(client_id, issued + timedelta(seconds=lifetime), grant)
        return token, lifetime

    def mint_refresh(self, client_id: str, expires_at: datetime | None = None) -> str:
        issued = self.now()
        expires = expires_at or issued + timedelta(seconds=self.refresh_lifetime)
        token = self._jwt(self._claims(client_id, issued, expires))
        self.state.refresh_tokens[token] = RefreshToken(client_id, issued, expires)
        return token

    def issue_code(self, client_id: str, redirect_uri: str | None = None) -> str:
        code = secrets.token_urlsafe(24)
        self.state.codes[code] = AuthorizationCode(client_id, redirect_uri, self.now() + timedelta(seconds=self.code_lifetime))
        return code

    def valid_refresh_tokens(self, client_id: str | None = None) -> list[str]:
        now = self.now()
        return [
            token for token, info in self.state.refresh_tokens.items()
            if info.revoked is None and info.expires_at > now and (client_id is None or info.client_id == client_id)
        ]

    def revoke(self, client_id: str | None = None, reason: str = "deleted") -> int:
        """The customer deletes the pairing: every live refresh token of the client stops working."""
        tokens = self.valid_refresh_tokens(client_id)
        for token in tokens:
            self.state.refresh_tokens[token].revoked = reason
        return len(tokens)

    # --- bearer check ----------------------------------------------------------------------------
    def check_bearer(self, token: str) -> str | None:
        """``None`` when the token is good, else why not (the 401 message)."""
        info = self.state.access_tokens.get(token)
        if info is None:
            return "Invalid access token"
        if info.expires_at <= self.now():
            return "Access token expired"
        return None

    # --- HTTP endpoints ------------------------------------------------------------------------
    @staticmethod
    def _oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> SimResponse:
        merged = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        merged.update(headers or {})
        return SimResponse.json(status, {"error": error, "error_description": description}, merged)

    @staticmethod
    def _params(request: SimRequest) -> dict[str, str]:
        content_type = (request.header("Content-Type") or "").lower()
        body = request.body.strip()
        if "json" in content_type or body.startswith(b"{"):
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return request.form()

    def token_endpoint(self, request: SimRequest) -> SimResponse:
        """``POST /v1/token``: the grants; ``DELETE`` deletes a refresh token [U: method and shape]."""
        params = self._params(request)
        if request.method == "DELETE":
            info = self.state.refresh_tokens.get(params.get("refresh_token") or request.param("refresh_token") or "")
            if info is None:
                return self._oauth_error(400, "invalid_grant", "Unknown refresh token")
            info.revoked = "deleted"
            return SimResponse(204)
        if request.method != "POST":
            return self._oauth_error(405, "invalid_request", "Use POST")

        used_basic = False
        client_id, secret = params.get("client_id"), params.get("client_secret")
        authorization = request.header("Authorization") or ""
        if authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:].strip()).decode().partition(":")
                used_basic = True
            except (ValueError, UnicodeDecodeError):
                return self._oauth_error(400, "invalid_request", "Malformed Basic client authentication")
        grant = params.get("grant_type")
        if not grant:
            return self._oauth_error(400, "invalid_request", "grant_type is required")
        supported = {"refresh_token", "authorization_code"} | ({"client_credentials"} if self.allow_client_credentials else set())
        if grant not in supported:
            return self._oauth_error(400, "unsupported_grant_type", f"grant_type {grant} is not supported")
        if not client_id or self.state.clients.get(client_id) is None or not hmac.compare_digest(
            self.state.clients[client_id], secret or ""
        ):
            # RFC 6749 5.2: 401 when the client tried HTTP authentication, else 400.
            headers = {"WWW-Authenticate": 'Basic realm="token"'} if used_basic else None
            return self._oauth_error(401 if used_basic else 400, "invalid_client", "Client authentication failed", headers)

        now = self.now()
        refresh_expiry: datetime | None = None
        if grant == "refresh_token":
            presented = params.get("refresh_token") or ""
            info = self.state.refresh_tokens.get(presented)
            if info is None or info.client_id != client_id:
                return self._oauth_error(400, "invalid_grant", "Unknown refresh token")
            if info.revoked == "rotated":
                return self._oauth_error(400, "invalid_grant", "Refresh token already used (tokens rotate on every refresh)")
            if info.revoked:
                return self._oauth_error(400, "invalid_grant", "Refresh token was deleted; pair the application again")
            if info.expires_at <= now:
                return self._oauth_error(400, "invalid_grant", "Refresh token expired; pair the application again")
            info.revoked = "rotated"
            if not self.rotate_resets_expiry:
                refresh_expiry = info.expires_at
        elif grant == "authorization_code":
            code = self.state.codes.get(params.get("code") or "")
            if code is None or code.client_id != client_id or code.used or code.expires_at <= now:
                return self._oauth_error(400, "invalid_grant", "Invalid, used or expired authorization code")
            if code.redirect_uri and params.get("redirect_uri") and params["redirect_uri"] != code.redirect_uri:
                return self._oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
            code.used = True

        self.state.grant_counts[grant] += 1
        access, lifetime = self.mint_access(client_id, grant)
        payload: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime}
        if grant != "client_credentials":
            refresh = self.mint_refresh(client_id, refresh_expiry)
            payload["refresh_token"] = refresh
            payload["refresh_token_expires_in"] = int((self.state.refresh_tokens[refresh].expires_at - now).total_seconds())
        if grant == "refresh_token" and self.lose_refresh_answers > 0:
            self.lose_refresh_answers -= 1
            raise DropResponse("token endpoint: refresh token rotated, then the answer was lost")
        return SimResponse.json(200, payload, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def authorise_endpoint(self, request: SimRequest) -> SimResponse:
        """``GET /v1/token/authorise``: the pairing request, approved at once by the sandbox's "admin".

        Sage notifies the application's callback with ``authorizationCode`` and ``state``; the
        sandbox does it as a browser redirect to ``redirect_uri`` [U: real X3 shows an approval
        page first and the folder choice].
        """
        client_id = request.param("client_id") or ""
        redirect_uri = request.param("redirect_uri") or ""
        if client_id not in self.state.clients:
            return self._oauth_error(400, "invalid_client", "Unknown client_id")
        if not redirect_uri:
            return self._oauth_error(400, "invalid_request", "redirect_uri is required")
        code = self.issue_code(client_id, redirect_uri)
        parts = urlsplit(redirect_uri)
        query = parse_qs(parts.query, keep_blank_values=True)
        query["authorizationCode"] = [code]
        if request.param("state") is not None:
            query["state"] = [request.param("state") or ""]
        location = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return SimResponse(302, b"", {"Location": location})
