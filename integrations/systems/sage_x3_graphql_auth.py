"""Sage X3 connected applications: the short HS256 JWT the client signs itself (API_FACTS 2.2).

On premise, GraphQL has no token endpoint: an administrator registers a connected application
(client id and secret, the allowed user, the registered URL and a token validity, 600 s by
default), and the client signs ``{iss: client id, sub: user, aud: URL, iat, exp}`` with the
secret (PyJWT, HS256). The token lives in the portal's one token lifecycle
(:class:`~integrations.systems.auth.TokenManager`): signed anew a fifth of its lifetime before
``exp``, by this run or by a later command that finds it saved; a saved token whose claims no
longer fit the connection (another user, audience or client, or a lifetime beyond the validity)
is never presented. X3 refuses a token with 401 ``Error NN: Invalid token``; the number says which
claim, and the message names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import jwt
import requests

from integrations.systems.auth import BearerAuth, Fetcher, Token, TokenManager, TokenStore, utcnow
from integrations.systems.errors import AuthError, SystemicError

DEFAULT_VALIDITY = 600
# [C] X3's error numbers for a connected app's token (a public connector's notes, not Sage-published)
TOKEN_ERRORS = {
    "41": "the issuer (iss, the client id {client_id!r}) is not a connected application of this X3",
    "42": "the user (sub {user!r}) is not the connected application's allowed user",
    "45": "the audience (aud {audience!r}) is not the URL registered for the connected application; it must match "
          "exactly (scheme, host, port, no trailing slash unless registered so)",
    "50": "the signature or lifetime was refused: check the client secret, the token validity ({validity} s, at "
          "most the application's) and this server's clock",
}
_ERROR = re.compile(r"Error\s+(\d+)\s*:\s*Invalid token", re.I)


class ConnectedApp:
    """What the connection says about its connected application."""

    def __init__(self, client_id: str, secret: str, user: str, audience: str, validity: int) -> None:
        if not (client_id and secret and user and audience):
            raise SystemicError("A connected application needs client_id, client_secret, user and audience")
        if validity <= 0:
            raise SystemicError(f"token_validity must be a positive number of seconds, not {validity}")
        self.client_id, self.secret, self.user, self.audience, self.validity = client_id, secret, user, audience, validity

    def claims(self, now: datetime) -> dict[str, object]:
        iat = int(now.timestamp())  # whole seconds, never after now: exp stays within the validity
        return {"iss": self.client_id, "sub": self.user, "aud": self.audience, "iat": iat, "exp": iat + self.validity}

    def fits(self, token: Token) -> bool:
        """A saved token may be presented only if it is ours, as configured now."""
        try:
            claims = jwt.decode(token.access_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        iat, exp = claims.get("iat"), claims.get("exp")
        return (claims.get("iss") == self.client_id and claims.get("sub") == self.user
                and claims.get("aud") == self.audience and isinstance(iat, int) and isinstance(exp, int)
                and 0 < exp - iat <= self.validity)

    def explain(self, number: str) -> str:
        template = TOKEN_ERRORS.get(number, "the token was refused")
        return template.format(client_id=self.client_id, user=self.user, audience=self.audience,
                               validity=self.validity)


def jwt_fetcher(app: ConnectedApp, clock: Callable[[], datetime] = utcnow) -> Fetcher:
    """Sign a new token (no call: the client is its own token issuer)."""

    def fetch(current: Token | None) -> Token:
        claims = app.claims(clock())
        signed = jwt.encode(claims, app.secret, algorithm="HS256")
        issued = datetime.fromtimestamp(int(claims["iat"]), UTC)  # type: ignore[call-overload]
        return Token(access_token=signed, issued_at=issued,
                     expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC))  # type: ignore[call-overload]

    return fetch


class ConnectedAppTokens(TokenManager):
    """The token lifecycle, refusing saved tokens that no longer fit the connected application."""

    def __init__(self, app: ConnectedApp, store: TokenStore, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(jwt_fetcher(app, clock), store, clock)
        self.app = app

    def _usable(self, token: Token | None) -> bool:
        return bool(token) and token.is_fresh(self.clock()) and self.app.fits(token)  # type: ignore[union-attr]

    def token(self) -> Token:
        current = self.store.load()
        if current is not None and self._usable(current):
            return current
        with self.store.locked() as latest:
            if latest is not None and self._usable(latest):
                return latest
            new = self.fetch(latest)
            self.refreshes += 1
            self.store.save(new)
            return new


def connected_app_auth(app: ConnectedApp, store: TokenStore, clock: Callable[[], datetime] = utcnow) -> BearerAuth:
    """``Authorization: Bearer <JWT>``, signed anew once when X3 answers 401."""
    return BearerAuth(ConnectedAppTokens(app, store, clock))


def token_refusal(response: requests.Response, app: ConnectedApp | None) -> AuthError | None:
    """X3's ``Error 41|42|45|50: Invalid token`` as an error naming the claim at fault."""
    if response.status_code != 401:
        return None
    match = _ERROR.search(response.text or "")
    if not match:
        return None
    number = match.group(1)
    what = app.explain(number) if app else "the token was refused"
    return AuthError(f"Sage X3 refused the connected application's token (Error {number}): {what}",
                     status=401, detail=(response.text or "")[:200], code=f"x3_token_{number}")
