"""Tokens cached on the Connection row (encrypted), shared by every worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from integrations.engine.audit import audit
from integrations.models import Connection
from integrations.systems.auth import Token
from integrations.systems.concurrency import held_on_owner, on_owner, read_on_owner


def _stored(token: Token | None) -> dict:
    if token is None:
        return {}
    # The encrypted JSON field stores scalars as strings: leave out empty values entirely.
    return {k: v for k, v in token.to_dict().items() if v not in (None, "", {})}


class ConnectionTokenStore:
    """A :class:`~integrations.systems.auth.TokenStore` backed by ``Connection.token_cache``.

    Reads are served from memory while the token is fresh, so a page of calls costs no query;
    refreshes run under ``select_for_update`` on the row so two workers never both spend a
    (rotating) refresh token. Safe from the helper threads of a page's concurrent calls
    (:mod:`integrations.systems.concurrency`): the database work runs on the page's thread, and
    one refresh at a time in this process.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection_id = connection.pk
        self.tenant_id = connection.tenant_id
        self._cached = Token.from_dict(connection.token_cache)
        self._mutex = threading.RLock()

    def load(self) -> Token | None:
        if self._cached and self._cached.is_fresh():
            return self._cached
        return read_on_owner(self._read)

    def _read(self) -> Token | None:
        row = Connection.objects.only("token_cache").get(pk=self.connection_id)
        self._cached = Token.from_dict(row.token_cache)
        return self._cached

    def save(self, token: Token | None) -> None:
        on_owner(self._save, token)

    def _save(self, token: Token | None) -> None:
        previous = self._cached
        Connection.objects.filter(pk=self.connection_id).update(
            token_cache=_stored(token),
            token_expires_at=token.expires_at if token else None,
            refresh_token_expires_at=token.refresh_expires_at if token else None,
        )
        refreshed = bool(token and token.access_token)
        if refreshed:
            Connection.objects.filter(pk=self.connection_id, needs_reauth=True).update(needs_reauth=False)
        self._cached = token
        # A session that holds a licence seat (``extra["seat"]``) is opened and ended by us, not refused.
        seat = bool((token or previous) and (token or previous).extra.get("seat"))
        if seat:
            action, message = (("connection.session_opened", "Session opened (it holds a licence seat until logged off)")
                               if refreshed else ("connection.session_ended", "Session logged off; its seat is free"))
        else:
            action, message = (("connection.token_refreshed", "Access token refreshed") if refreshed else
                               ("connection.token_invalidated", "Access token refused by the system and dropped"))
        audit(
            self.tenant_id,
            action,
            message,
            connection_id=self.connection_id,
            detail={
                "expires_at": token.expires_at.isoformat() if token and token.expires_at else None,
                "refresh_token_rotated": bool(
                    token and token.refresh_token and (previous is None or previous.refresh_token != token.refresh_token)
                ),
                "refresh_expires_at": (
                    token.refresh_expires_at.isoformat() if token and token.refresh_expires_at else None
                ),
            },
        )

    @contextmanager
    def locked(self) -> Iterator[Token | None]:
        # On a helper thread the page's thread (it holds the database connection) takes and
        # releases the row lock, and does nothing else meanwhile: the refresh in between is the
        # helper's own HTTP call, and its failure rolls back the lock's transaction alone.
        with self._mutex, held_on_owner(self._row_locked) as token:
            yield token

    @contextmanager
    def _row_locked(self) -> Iterator[Token | None]:
        with transaction.atomic():
            yield self._read_for_update()

    def _read_for_update(self) -> Token | None:
        row = Connection.objects.select_for_update().only("token_cache").get(pk=self.connection_id)
        self._cached = Token.from_dict(row.token_cache)
        return self._cached
