"""The one token lifecycle of every client: OAuth2 tokens and logon sessions alike.

A :class:`TokenManager` hands out a valid access token (or session id). Tokens live in a
:class:`TokenStore`: in production the Connection row (encrypted, shared by every worker), in
the bare benchmark client plain memory. A token is refreshed *before* it expires (a margin of a
fifth of its lifetime, at most five minutes), and once more when the system answers 401. The
refresh runs under the store's lock and re-reads the token first, so two workers never both
spend a rotating refresh token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from integrations.systems.errors import AuthError, SyncError, TransientError
from integrations.systems.http import decode_json, unexpected_answer

MAX_REFRESH_MARGIN = timedelta(minutes=5)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Token:
    """An access token or session, with what is needed to get the next one."""

    access_token: str
    expires_at: datetime | None = None
    issued_at: datetime = field(default_factory=utcnow)
    refresh_token: str = ""
    refresh_expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def margin(self) -> timedelta:
        if self.expires_at is None:
            return timedelta(0)
        lifetime = self.expires_at - self.issued_at
        return min(MAX_REFRESH_MARGIN, lifetime / 5)

    def is_fresh(self, now: datetime | None = None) -> bool:
        if not self.access_token:
            return False
        if self.expires_at is None:
            return True
        return (now or utcnow()) < self.expires_at - self.margin()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("expires_at", "issued_at", "refresh_expires_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Token | None:
        if not data or not data.get("access_token") and not data.get("refresh_token"):
            return None
        # The store leaves out empty values: an invalidated token keeps only its refresh token.
        parsed = {"access_token": "", **data}
        for key in ("expires_at", "issued_at", "refresh_expires_at"):
            parsed[key] = datetime.fromisoformat(parsed[key]) if parsed.get(key) else None
        if parsed["issued_at"] is None:
            parsed["issued_at"] = utcnow()
        if isinstance(parsed.get("extra"), str):  # encrypted JSON stores scalars as strings
            parsed["extra"] = {}
        return cls(**{k: parsed.get(k) for k in cls.__dataclass_fields__ if k in parsed})

    def expired_copy(self) -> Token:
        """The same token marked expired, keeping its refresh token."""
        return Token(
            access_token="",
            expires_at=None,
            issued_at=self.issued_at,
            refresh_token=self.refresh_token,
            refresh_expires_at=self.refresh_expires_at,
            extra={},
        )


class TokenStore(Protocol):
    def load(self) -> Token | None: ...

    def save(self, token: Token | None) -> None: ...

    def locked(self) -> Any:
        """Context manager: hold the store's lock, yield the freshly re-read token."""
        ...


class MemoryTokenStore:
    """Tokens in memory, for one process (tests, the bare benchmark client)."""

    def __init__(self, token: Token | None = None) -> None:
        self.token = token
        self._lock = threading.RLock()

    def load(self) -> Token | None:
        return self.token

    def save(self, token: Token | None) -> None:
        self.token = token

    @contextmanager
    def locked(self) -> Iterator[Token | None]:
        with self._lock:
            yield self.token


Fetcher = Callable[[Token | None], Token]


class TokenManager:
    """Get, cache and refresh one credential.

    ``fetch(current)`` obtains a new token; ``current`` is the previous token (so a refresh
    token can be spent) or ``None``. It raises :class:`AuthError` when credentials are refused.
    """

    def __init__(self, fetch: Fetcher, store: TokenStore, clock: Callable[[], datetime] = utcnow) -> None:
        self.fetch = fetch
        self.store = store
        self.clock = clock
        self.refreshes = 0

    def token(self) -> Token:
        current = self.store.load()
        if current and current.is_fresh(self.clock()):
            return current
        with self.store.locked() as latest:
            if latest and latest.is_fresh(self.clock()):
                return latest
            new = self.fetch(latest)
            self.refreshes += 1
            self.store.save(new)
            return new

    def access_token(self) -> str:
        return self.token().access_token

    def invalidate(self, rejected: str) -> None:
        """Drop ``rejected`` (refused with a 401) unless another worker already replaced it."""
        with self.store.locked() as latest:
            if latest and latest.access_token == rejected:
                self.store.save(latest.expired_copy())


class BearerAuth:
    """``Authorization: Bearer <token>`` from a TokenManager, refreshed once on a 401."""

    def __init__(self, tokens: TokenManager, header: str = "Authorization", prefix: str = "Bearer ") -> None:
        self.tokens = tokens
        self.header = header
        self.prefix = prefix

    def apply(self, headers: dict[str, str]) -> None:
        headers[self.header] = f"{self.prefix}{self.tokens.access_token()}"

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        sent = headers.get(self.header, "")[len(self.prefix):]
        self.tokens.invalidate(sent)
        return True


def _expiry(now: datetime, seconds: Any) -> datetime | None:
    try:
        return now + timedelta(seconds=float(seconds))
    except (TypeError, ValueError, OverflowError):  # absent, not a number, NaN, or beyond any calendar
        return None


REPAIR = "repair_needed"


def _after_a_lost_refresh(http: Any, token_url: str, form: dict[str, str]) -> Any:
    """The refresh answer was lost: ask once more with the same token. Refused now, the server had
    rotated it (the old token is spent, the new one never arrived): only pairing again helps."""
    try:
        return http.request("POST", token_url, data=form, idempotent=True)
    except SyncError as exc:
        if exc.kind != "data":
            raise
        raise AuthError(
            "Re-pairing needed: the system rotated the refresh token but its answer was lost on the way, so the "
            "old token is spent and the new one never arrived. Pair the connection again (an administrator "
            "approves the application once more); nothing else can renew its access.",
            status=exc.status, detail=exc.detail, code=REPAIR) from None


def oauth2_fetcher(
    http: Any,
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    grant: str,
    refresh_token: str = "",
    username: str = "",
    password: str = "",
    scope: str = "",
    default_refresh_lifetime: timedelta | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Fetcher:
    """A fetcher for an OAuth2 token endpoint (RFC 6749 sections 4.4 and 6).

    ``grant`` is the configured grant: ``client_credentials``, ``password`` or
    ``refresh_token`` (with ``refresh_token`` as the seed). Whenever the current token carries a
    refresh token (possibly rotated since the seed), it is spent first; a rotated refresh token
    returned by the server replaces it.
    """

    def fetch(current: Token | None) -> Token:
        form: dict[str, str] = {"client_id": client_id, "client_secret": client_secret}
        live_refresh = current.refresh_token if current and current.refresh_token else ""
        if live_refresh or grant == "refresh_token":
            form.update(grant_type="refresh_token", refresh_token=live_refresh or refresh_token)
        elif grant == "password":
            form.update(grant_type="password", username=username, password=password)
        else:
            form.update(grant_type="client_credentials")
        if scope:
            form["scope"] = scope
        # Spending a refresh token is not idempotent where the server rotates it: an answer lost
        # on the way back may have taken the old token with it.
        rotating = form["grant_type"] == "refresh_token"
        try:
            try:
                response = http.request("POST", token_url, data=form, idempotent=not rotating)
            except TransientError as exc:
                if not (rotating and exc.ambiguous):
                    raise
                response = _after_a_lost_refresh(http, token_url, form)
        except AuthError as exc:
            raise AuthError(str(exc) if exc.code == REPAIR else "The token endpoint refused the credentials",
                            status=exc.status, detail=exc.detail, code=exc.code)
        except SyncError as exc:
            if exc.kind == "data":  # 400 invalid_grant & co: a person must re-authorise
                raise AuthError("The token endpoint refused the grant", status=exc.status, detail=exc.detail)
            raise
        body = decode_json(response, "The token endpoint")
        if not isinstance(body, dict):
            raise unexpected_answer(response, "The token endpoint", "JSON that is not an object")
        if not body.get("access_token") or not isinstance(body["access_token"], str):
            raise AuthError("The token endpoint returned no access token", detail=str(body.get("error", ""))[:300])
        if not isinstance(body.get("refresh_token") or "", str):
            raise AuthError("The token endpoint returned a refresh token that is not a string")
        now = clock()
        new_refresh = body.get("refresh_token") or (live_refresh if grant != "client_credentials" else "")
        if body.get("refresh_token"):
            refresh_expires = _expiry(now, body.get("refresh_token_expires_in")) or (
                now + default_refresh_lifetime if default_refresh_lifetime else None
            )
        else:
            refresh_expires = current.refresh_expires_at if current else None
        return Token(
            access_token=body["access_token"],
            expires_at=_expiry(now, body.get("expires_in", 1800)),
            issued_at=now,
            refresh_token=new_refresh or "",
            refresh_expires_at=refresh_expires,
        )

    return fetch
