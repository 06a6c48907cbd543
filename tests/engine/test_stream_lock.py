"""Two runs of one stream never overlap; a lock whose holder stopped heartbeating is reclaimed."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from integrations.engine import locks
from integrations.engine.runner import run_stream
from integrations.models import AuditEvent, Integration, RunStatus, StreamState, SyncRecord
from tests.support import set_integration_settings


def state_of(integration, stream: str = "suppliers") -> StreamState:
    return StreamState.objects.get(integration=integration, stream=stream)


def x3_reads(x3_sim) -> int:
    return sum(1 for r in x3_sim.requests if r.path.startswith("/api1/"))


@pytest.fixture
def with_cursor(integration):
    """The suppliers stream synced once, so it has a cursor worth protecting."""
    run_stream(integration, "suppliers")
    return integration


@pytest.mark.django_db
def test_a_second_run_while_the_lock_is_held_is_skipped_without_touching_the_cursor(with_cursor, x3_sim):
    before = state_of(with_cursor)
    holder = locks.claim(before)
    reads = x3_reads(x3_sim)

    run = run_stream(with_cursor, "suppliers")

    assert run.status == RunStatus.SKIPPED
    after = state_of(with_cursor)
    assert (after.cursor, after.checkpoint, after.resume) == (before.cursor, before.checkpoint, before.resume)
    assert after.lock_token == holder, "the holder keeps its lock"
    assert x3_reads(x3_sim) == reads, "a skipped run reads nothing"
    assert AuditEvent.objects.filter(action="run.skipped", run_id=run.pk).exists()
    locks.heartbeat(after, holder)  # the holder is undisturbed


@pytest.mark.django_db
def test_a_lock_heartbeating_within_the_stale_limit_is_not_reclaimed(with_cursor):
    state = state_of(with_cursor)
    locks.claim(state)
    StreamState.objects.filter(pk=state.pk).update(
        lock_heartbeat_at=timezone.now() - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS - 60))

    assert run_stream(with_cursor, "suppliers").status == RunStatus.SKIPPED


@pytest.mark.django_db
def test_a_stale_lock_is_reclaimed_and_its_old_holder_can_no_longer_checkpoint(with_cursor, x3_sim):
    state = state_of(with_cursor)
    dead = locks.claim(state)
    StreamState.objects.filter(pk=state.pk).update(
        lock_heartbeat_at=timezone.now() - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS + 1))
    x3_sim.upsert("BPSUPPLIER", {**x3_sim.get("BPSUPPLIER", "SUP001"), "TEL": "+33 4 00 00 00 00",
                                 "UPDDATTIM": None})

    run = run_stream(with_cursor, "suppliers")

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.updated == 1
    assert state_of(with_cursor).lock_token == "", "the reclaiming run released the lock when done"
    with pytest.raises(locks.LockLost):
        locks.heartbeat(state, dead, cursor="2099-01-01T00:00:00Z")
    assert state_of(with_cursor).cursor != "2099-01-01T00:00:00Z"


def _concurrency_is_reliable() -> bool:
    return connection.vendor == "postgresql"


@pytest.mark.django_db(transaction=True)
def test_a_run_started_while_another_thread_is_mid_run_is_skipped(integration, x3_sim):
    set_integration_settings(integration, page_size=10)
    inside, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def first_worker() -> None:
        def park(run) -> None:  # called after each checkpoint, lock held
            inside.set()
            release.wait(timeout=30)

        try:
            fresh = Integration.objects.select_related("source", "target", "tenant").get(pk=integration.pk)
            outcome["first"] = run_stream(fresh, "suppliers", progress=park)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    worker = threading.Thread(target=first_worker)
    worker.start()
    try:
        assert inside.wait(timeout=30), "the first run reached its first checkpoint"
        cursor_mid_run = state_of(integration).cursor
        second = run_stream(integration, "suppliers")
        assert second.status == RunStatus.SKIPPED
        assert state_of(integration).cursor == cursor_mid_run
    finally:
        release.set()
        worker.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["first"].status == RunStatus.SUCCEEDED
    assert SyncRecord.objects.filter(stream="suppliers").count() == 25


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not _concurrency_is_reliable(), reason="SQLite serialises writers; run with a PostgreSQL DATABASE_URL")
def test_of_many_workers_claiming_one_stream_at_the_same_instant_exactly_one_wins(integration):
    state = state_of(integration)
    barrier = threading.Barrier(8)
    tokens: list = []

    def claim() -> None:
        try:
            barrier.wait(timeout=10)
            tokens.append(locks.claim(state))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=claim) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert len(tokens) == 8
    winners = [t for t in tokens if t]
    assert len(winners) == 1
    assert state_of(integration).lock_token == winners[0]
