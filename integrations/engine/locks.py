"""The per-stream lock: a conditional update that must change exactly one row.

A run claims ``StreamState.lock_token`` only if it is empty or its holder stopped heartbeating
(``SYNC_LOCK_STALE_SECONDS``); every checkpoint renews the heartbeat *and* proves the lock is
still ours, so a run that lost its lock (it stalled past the stale limit) stops instead of
racing the run that reclaimed it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.models import Connection, StreamState


class LockLost(Exception):
    """Another run took over this stream's lock."""


def claim(state: StreamState) -> str | None:
    """Claim the stream's lock; return our token, or ``None`` if another run holds it."""
    token = uuid.uuid4().hex
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS)
    claimed = (
        StreamState.objects.filter(pk=state.pk)
        .filter(Q(lock_token="") | Q(lock_heartbeat_at__lt=stale) | Q(lock_heartbeat_at__isnull=True))
        .update(lock_token=token, lock_heartbeat_at=now)
    )
    return token if claimed == 1 else None


def heartbeat(state: StreamState, token: str, **fields) -> None:
    """Renew the lock (and save ``fields``, e.g. the checkpoint) only while it is still ours."""
    updated = StreamState.objects.filter(pk=state.pk, lock_token=token).update(
        lock_heartbeat_at=timezone.now(), **fields
    )
    if updated != 1:
        raise LockLost(f"{state} lock was taken over by another run")


def release(state: StreamState, token: str) -> None:
    StreamState.objects.filter(pk=state.pk, lock_token=token).update(lock_token="", lock_heartbeat_at=None)


# --- a connection's only session (a licence seat) ------------------------------------------------
def claim_seat(connection_id: int) -> str | None:
    """Claim the connection's seat; our token, or ``None`` while another live cycle holds it."""
    token = uuid.uuid4().hex
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS)
    claimed = (
        Connection.objects.filter(pk=connection_id)
        .filter(Q(seat_token="") | Q(seat_heartbeat_at__lt=stale) | Q(seat_heartbeat_at__isnull=True))
        .update(seat_token=token, seat_heartbeat_at=now)
    )
    return token if claimed == 1 else None


def renew_seat(connection_id: int, token: str) -> None:
    Connection.objects.filter(pk=connection_id, seat_token=token).update(seat_heartbeat_at=timezone.now())


def release_seat(connection_id: int, token: str) -> None:
    Connection.objects.filter(pk=connection_id, seat_token=token).update(seat_token="", seat_heartbeat_at=None)
