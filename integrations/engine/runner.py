"""Running a stream: claim, retry what is due, read pages, process, checkpoint, release."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from integrations.engine import locks
from integrations.engine.audit import audit
from integrations.engine.context import stream_context
from integrations.engine.mappings import refresh_suggestions, store_reference_page
from integrations.engine.pages import Counts, process_page
from integrations.engine.replay import source_records_for
from integrations.flows import get_flow
from integrations.flows.base import RecordStream, ReferenceStream, SourceRecord, Stream
from integrations.models import (
    Connection,
    ErrorClass,
    Integration,
    RecordStatus,
    RunStatus,
    StreamState,
    SyncRecord,
    SyncRun,
    Trigger,
)
from integrations.systems.errors import AuthError, SyncError
from integrations.systems.http import CallCounter

logger = logging.getLogger(__name__)

Progress = Callable[[SyncRun], None]


class PageWriteFailed(Exception):
    """A systemic error met while writing a page: it belongs to the written side, not the read one."""

    def __init__(self, error: SyncError) -> None:
        super().__init__(str(error))
        self.error = error


def ensure_streams(integration: Integration) -> list[StreamState]:
    """A state row for every stream of the integration's flow, in dependency order."""
    flow = get_flow(integration.kind)
    existing = {s.stream: s for s in StreamState.objects.filter(integration=integration)}
    states = []
    for cls in flow.streams:
        state = existing.get(cls.name)
        if state is None:
            state = StreamState.objects.create(integration=integration, stream=cls.name,
                                               schedule=cls.default_schedule,
                                               enabled=cls.enabled_by_default(integration.settings or {}))
        states.append(state)
    return states


def run_integration(integration: Integration, *, trigger: str = Trigger.MANUAL, actor: Any = None,
                    streams: list[str] | None = None, progress: Progress | None = None) -> list[SyncRun]:
    """Run the integration's streams in dependency order; stop after a systemic failure."""
    runs = []
    for state in ensure_streams(integration):
        if streams and state.stream not in streams:
            continue
        if not state.enabled and not streams:
            continue
        run = run_stream(integration, state.stream, trigger=trigger, actor=actor, progress=progress)
        runs.append(run)
        if run.status == RunStatus.FAILED:
            break
    return runs


def _actor_name(actor: Any) -> str:
    if actor is None or isinstance(actor, str):
        return actor or "system"
    return actor.get_username()


def run_stream(integration: Integration, stream_name: str, *, trigger: str = Trigger.MANUAL, actor: Any = None,
               progress: Progress | None = None, budget: int | None = None) -> SyncRun:
    """One run of one stream. Returns the SyncRun, whatever happened (never raises SyncError)."""
    flow = get_flow(integration.kind)
    stream = flow.stream(stream_name)
    ensure_streams(integration)
    state = StreamState.objects.get(integration=integration, stream=stream_name)
    run = SyncRun.objects.create(integration=integration, stream=stream_name, trigger=trigger,
                                 triggered_by=_actor_name(actor))
    token = locks.claim(state)
    if token is None:
        run.status = RunStatus.SKIPPED
        run.error = "Another run of this stream is in progress"
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        audit(integration.tenant_id, "run.skipped", f"{stream_name}: another run holds the lock",
              integration_id=integration.pk, run_id=run.pk, actor=actor)
        return run
    _close_abandoned_runs(run)
    audit(integration.tenant_id, "run.started", f"{stream_name} started ({trigger})",
          integration_id=integration.pk, run_id=run.pk, actor=actor)
    if budget is None:
        budget = int((integration.settings or {}).get("call_budget") or settings.SYNC_CALL_BUDGET)
    counter = CallCounter(budget=budget)
    phase = "connect"
    try:
        ctx = stream_context(integration, counter, run.pk)
        if isinstance(stream, RecordStream):
            phase = "write"
            _retry_due(run, stream, ctx, actor, progress, counter)
        phase = "read"
        status = _read_pages(run, state, token, stream, ctx, actor, progress, counter)
        run.status = status
    except (SyncError, PageWriteFailed) as failure:
        exc, phase = (failure.error, "write") if isinstance(failure, PageWriteFailed) else (failure, phase)
        run.status = RunStatus.FAILED
        run.error = str(exc)[:4000]
        _flag_connection(integration, stream, phase, exc)
        audit(integration.tenant_id, "run.systemic_error", f"{stream_name} stopped: {exc}",
              integration_id=integration.pk, run_id=run.pk, actor=actor,
              detail={"error_class": exc.kind, "phase": phase})
    except locks.LockLost as exc:
        run.status = RunStatus.FAILED
        run.error = str(exc)
    except Exception as exc:  # an unexpected bug: record it on the run, then let it surface
        run.status = RunStatus.FAILED
        run.error = f"Unexpected error: {exc!r}"[:4000]
        _finish(run, counter, integration, actor)
        locks.release(state, token)
        raise
    _finish(run, counter, integration, actor)
    locks.release(state, token)
    return run


def _close_abandoned_runs(run: SyncRun) -> None:
    """Runs of this stream still marked running while we hold its lock died without finishing."""
    SyncRun.objects.filter(integration_id=run.integration_id, stream=run.stream, status=RunStatus.RUNNING,
                           started_at__lte=run.started_at).exclude(pk=run.pk).update(
        status=RunStatus.FAILED, finished_at=timezone.now(),
        error="The worker stopped before finishing (its lock went stale and was reclaimed)")


def _finish(run: SyncRun, counter: CallCounter, integration: Integration, actor: Any) -> None:
    run.api_calls = counter.calls
    run.finished_at = timezone.now()
    run.save()
    if run.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL):
        StreamState.objects.filter(integration=integration, stream=run.stream).update(
            last_success_at=run.finished_at if run.status == RunStatus.SUCCEEDED else F("last_success_at"))
    audit(integration.tenant_id, "run.finished", f"{run.stream} {run.status}: {_summary(run)}",
          integration_id=integration.pk, run_id=run.pk, actor=actor, detail={**run.counts(), "status": run.status})


def _summary(run: SyncRun) -> str:
    return ", ".join(f"{name} {value}" for name, value in run.counts().items())


def _flag_connection(integration: Integration, stream: Stream, phase: str, exc: SyncError) -> None:
    if exc.kind != ErrorClass.SYSTEMIC:
        return
    reads_source = stream.reads == "source"
    side = integration.source_id if (phase == "read") == reads_source else integration.target_id
    fields: dict[str, Any] = {"last_error": str(exc)[:2000]}
    if isinstance(exc, AuthError):
        fields["needs_reauth"] = True
    Connection.objects.filter(pk=side).update(**fields)


def _read_pages(run: SyncRun, state: StreamState, token: str, stream: Stream, ctx: Any, actor: Any,
                progress: Progress | None, counter: CallCounter) -> str:
    since = state.cursor
    ties = set(state.tie_keys or [])
    if counter.exhausted:
        return RunStatus.PARTIAL
    for page in stream.read(ctx, since):
        if not page:
            continue
        outcome = None
        fresh = [r for r in page if not (since and r.cursor == since and (r.key if isinstance(r, SourceRecord)
                                                                           else r.code) in ties)]
        if fresh:
            if isinstance(stream, ReferenceStream):
                counts = store_reference_page(run.integration, stream, fresh)
            else:
                outcome = process_page(run, stream, ctx, fresh, actor=actor)
                counts = outcome.counts
            counts.add_to(run)
        else:
            counts = Counts()
        if outcome is not None and outcome.systemic is not None:
            # Stop at once, without checkpointing: once a person has fixed the connection, the
            # next run reads this page again instead of leaving its records behind as failed.
            run.save(update_fields=[*SyncRun.COUNTERS])
            raise PageWriteFailed(outcome.systemic)
        # Checkpoint only now: every record of the page has a terminal state on disk.
        last = page[-1].cursor
        page_ties = {(r.key if isinstance(r, SourceRecord) else r.code) for r in page if r.cursor == last}
        if last == since:
            page_ties |= ties
        since, ties = last, (page_ties if last else set())
        run.api_calls = counter.calls
        locks.heartbeat(state, token, cursor=since, tie_keys=sorted(ties), resume={})
        run.save(update_fields=[*SyncRun.COUNTERS])
        if progress:
            progress(run)
        if counter.exhausted:
            locks.heartbeat(state, token, resume={"cursor": since, "reason": "call budget reached",
                                                  "calls": counter.calls})
            return RunStatus.PARTIAL
    if isinstance(stream, ReferenceStream):
        refresh_suggestions(run.integration, stream.kind, actor=actor)
    return RunStatus.SUCCEEDED


def _retry_due(run: SyncRun, stream: RecordStream, ctx: Any, actor: Any, progress: Progress | None,
               counter: CallCounter) -> None:
    """Failed-transient records whose retry time has come get another attempt in this run.

    So do records left "pending" by a worker that died between writing its intent and the
    outcome (we hold the stream's lock, so no live run owns them): their write may or may not
    have reached the target, and the attempt looks them up by source identity first.
    """
    due = SyncRecord.objects.filter(
        Q(status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT, next_retry_at__lte=timezone.now())
        | Q(status=RecordStatus.PENDING),
        integration=run.integration, stream=stream.name,
    ).exclude(last_run=run).order_by(F("next_retry_at").asc(nulls_first=True), "pk")[:1000]
    rows = list(due)
    if not rows:
        return
    for start in range(0, len(rows), 200):
        chunk = rows[start:start + 200]
        page = source_records_for(stream, ctx, chunk)
        outcome = process_page(run, stream, ctx, page, actor=actor, replay=True)
        outcome.counts.add_to(run)
        run.save(update_fields=[*SyncRun.COUNTERS])
        if progress:
            progress(run)
        if outcome.systemic is not None:
            raise PageWriteFailed(outcome.systemic)
        if counter.exhausted:
            return
