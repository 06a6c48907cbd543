"""Running a stream: claim, retry what is due, read pages, process, checkpoint, release."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from integrations.engine import locks
from integrations.engine.alerts import after_run as evaluate_alerts
from integrations.engine.audit import audit
from integrations.engine.context import Cycle, flag_connection, stream_context
from integrations.engine.mappings import refresh_stale_held, refresh_suggestions, store_reference_page
from integrations.engine.pages import Counts, PageOutcome, process_page
from integrations.engine.pipeline import Pipeline
from integrations.engine.replay import source_records_for
from integrations.engine.schedules import cancel_continuation, schedule_continuation
from integrations.engine.webhooks import process_pending
from integrations.flows import get_flow
from integrations.flows.base import Checkpoint, RecordStream, ReferenceStream, SourceRecord, Stream, position
from integrations.models import (
    ErrorClass,
    Integration,
    Mapping,
    MappingStatus,
    RecordStatus,
    RunStatus,
    StreamState,
    SyncRecord,
    SyncRun,
    Trigger,
)
from integrations.systems.concurrency import read_ahead
from integrations.systems.errors import BudgetExhausted, SyncError

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
    """One sync cycle: the integration's streams in dependency order, sharing each connection's
    call budget and its clients (one sign-in, one SYSPRO session, logged off at the end whatever
    happens); it stops after a systemic failure or once a budget is spent."""
    runs = []
    # Events pushed since the last cycle first (each a hint, read again from the source).
    process_pending(integration.source_id, integration=integration)
    cycle = Cycle(integration, keep_clients=True)
    try:
        for state in ensure_streams(integration):
            if streams and state.stream not in streams:
                continue
            if not state.enabled and not streams:
                continue
            run = run_stream(integration, state.stream, trigger=trigger, actor=actor, progress=progress,
                             cycle=cycle)
            runs.append(run)
            if run.status in (RunStatus.FAILED, RunStatus.PARTIAL):
                break
        else:
            _retry_waiting(integration, runs, cycle, actor, progress)
    finally:
        cycle.close()
    return runs


def _actor_name(actor: Any) -> str:
    if actor is None or isinstance(actor, str):
        return actor or "system"
    return actor.get_username()


def run_stream(integration: Integration, stream_name: str, *, trigger: str = Trigger.MANUAL, actor: Any = None,
               progress: Progress | None = None, cycle: Cycle | None = None) -> SyncRun:
    """One run of one stream. Returns the SyncRun, whatever happened (never raises SyncError).

    ``cycle`` carries the connections' call budgets when the run is one of several in a cycle.
    """
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
    cycle = cycle or Cycle(integration)
    cycle.locked_states.add(state.pk)
    meter = RunMeter(cycle)
    phase = "connect"
    try:
        with stream_context(integration, cycle, run.pk) as ctx:
            if isinstance(stream, RecordStream):
                phase = "write"
                _retry_due(run, stream, ctx, actor, progress, meter)
            phase = "read"
            run.status = _read_pages(run, state, token, stream, ctx, actor, progress, meter)
        if run.status == RunStatus.PARTIAL:
            _continue_later(run, state, token, cycle, actor)
    except BudgetExhausted as exc:
        # Nothing was sent past the budget; what this run finished is checkpointed, and rows
        # whose write had begun stay pending for the continuation, which looks them up first.
        run.status = RunStatus.PARTIAL
        run.error = str(exc)[:4000]
        _continue_later(run, state, token, cycle, actor)
    except (SyncError, PageWriteFailed) as failure:
        exc, phase = (failure.error, "write") if isinstance(failure, PageWriteFailed) else (failure, phase)
        run.error = str(exc)[:4000]
        if exc.kind == ErrorClass.TRANSIENT:
            # Still failing after the client's retries (an outage, a rate limit that outlasted them):
            # what was checkpointed stays, the next run goes on from there, and the cycle's other
            # streams still run. Only a systemic error stops a cycle and needs a person.
            run.status = RunStatus.INTERRUPTED
            audit(integration.tenant_id, "run.interrupted", f"{stream_name} interrupted, retried next run: {exc}",
                  integration_id=integration.pk, run_id=run.pk, actor=actor,
                  detail={"error_class": exc.kind, "phase": phase})
        else:
            run.status = RunStatus.FAILED
            flag_connection(integration, stream, phase, exc)
            audit(integration.tenant_id, "run.systemic_error", f"{stream_name} stopped: {exc}",
                  integration_id=integration.pk, run_id=run.pk, actor=actor,
                  detail={"error_class": exc.kind, "phase": phase})
    except locks.LockLost as exc:
        run.status = RunStatus.FAILED
        run.error = str(exc)
    except Exception as exc:  # an unexpected bug: record it on the run, then let it surface
        run.status = RunStatus.FAILED
        run.error = f"Unexpected error: {exc!r}"[:4000]
        _finish(run, meter, integration, actor)
        locks.release(state, token)
        cycle.locked_states.discard(state.pk)
        raise
    _finish(run, meter, integration, actor)
    locks.release(state, token)
    cycle.locked_states.discard(state.pk)
    if isinstance(stream, RecordStream) and (run.held or run.created or run.updated):
        # what each code holds, for the review ordered by money and the dashboard's inbox
        refresh_stale_held([integration])
    return run


def _close_abandoned_runs(run: SyncRun) -> None:
    """Runs of this stream still marked running while we hold its lock died without finishing."""
    SyncRun.objects.filter(integration_id=run.integration_id, stream=run.stream, status=RunStatus.RUNNING,
                           started_at__lte=run.started_at).exclude(pk=run.pk).update(
        status=RunStatus.FAILED, finished_at=timezone.now(),
        error="The worker stopped before finishing (its lock went stale and was reclaimed)")


class RunMeter:
    """The calls one run made, out of its cycle's counters."""

    def __init__(self, cycle: Cycle) -> None:
        self.cycle = cycle
        self.start = cycle.calls
        self.start_by_connection = {label: use["calls"] for label, use in cycle.usage().items()}

    @property
    def calls(self) -> int:
        return self.cycle.calls - self.start

    def usage(self) -> dict[str, dict[str, int]]:
        """Per connection: this run's calls, the cycle's so far and the cycle's budget (0: none)."""
        return {label: {"calls": use["calls"] - self.start_by_connection.get(label, 0), "cycle_calls": use["calls"],
                        "budget": use["budget"]}
                for label, use in self.cycle.usage().items()}

    @property
    def exhausted(self) -> bool:
        return self.cycle.exhausted


def _continue_later(run: SyncRun, state: StreamState, token: str, cycle: Cycle, actor: Any) -> None:
    """Note where the run stopped and queue its continuation after the configured delay.

    A run that spent its budget without reading one new record would do the same again and
    again (records sharing one timestamp can fill more pages than the budget allows): it fails
    instead, saying what to change.
    """
    integration = run.integration
    if not run.error:
        run.error = "Call budget reached: " + ", ".join(
            f"{label} used {use['calls']:,} of {use['budget']:,} calls"
            for label, use in cycle.usage().items() if use["budget"] and use["calls"] >= use["budget"])
    cursor = StreamState.objects.filter(pk=state.pk).values_list("cursor", flat=True).first()
    locks.heartbeat(state, token, resume={"cursor": cursor, "reason": "call budget reached",
                                          "calls": cycle.calls, "budgets": cycle.usage()})
    if run.read == 0:
        run.status = RunStatus.FAILED
        run.error = ("The call budget ran out before one new record was read: the records at the checkpoint "
                     "fill more pages than the budget allows. Raise the connection's call budget or page size, "
                     f"then run again. ({run.error or 'budget reached'})")[:4000]
        audit(integration.tenant_id, "run.budget_too_small", f"{run.stream}: {run.error}",
              integration_id=integration.pk, run_id=run.pk, actor=actor, detail={"budgets": cycle.usage()})
        cancel_continuation(integration, run.stream)
        return
    delay = int((integration.settings or {}).get("continue_after_seconds") or settings.SYNC_CONTINUE_AFTER_SECONDS)
    when = schedule_continuation(integration, run.stream, delay)
    run.continues_at = when
    audit(integration.tenant_id, "run.continuation_scheduled",
          f"{run.stream}: call budget reached; continues at {when:%Y-%m-%d %H:%M} UTC",
          integration_id=integration.pk, run_id=run.pk, actor=actor,
          detail={"budgets": cycle.usage(), "delay_seconds": delay})


def _finish(run: SyncRun, meter: RunMeter, integration: Integration, actor: Any) -> None:
    run.api_calls = meter.calls
    run.call_usage = meter.usage()
    run.finished_at = timezone.now()
    run.save()
    if run.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL):
        StreamState.objects.filter(integration=integration, stream=run.stream).update(
            last_success_at=run.finished_at if run.status == RunStatus.SUCCEEDED else F("last_success_at"))
    audit(integration.tenant_id, "run.finished", f"{run.stream} {run.status}: {_summary(run)}",
          integration_id=integration.pk, run_id=run.pk, actor=actor, detail={**run.counts(), "status": run.status})
    evaluate_alerts(run)  # queues any alert: the run never waits on mail or a webhook


def _summary(run: SyncRun) -> str:
    return ", ".join(f"{name} {value}" for name, value in run.counts().items())


def _read_pages(run: SyncRun, state: StreamState, token: str, stream: Stream, ctx: Any, actor: Any,
                progress: Progress | None, counter: RunMeter) -> str:
    start = checkpoint = Checkpoint.from_json(state.checkpoint)
    if counter.exhausted:
        return RunStatus.PARTIAL
    pages = stream.read(ctx, checkpoint)
    if isinstance(stream, RecordStream):
        pages = _looked_ahead(stream, ctx, pages)
    if getattr(stream, "read_ahead", False) and settings.SYNC_READ_AHEAD:
        pages = read_ahead(pages)
    try:
        return _each_page(run, state, token, stream, ctx, actor, progress, counter, start, checkpoint, pages)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:  # the reading stops here (and its helper thread, if any)
            close()


def _looked_ahead(stream: RecordStream, ctx: Any, pages: Iterator[Any]) -> Iterator[Any]:
    """``pages``, each after the stream's :meth:`~RecordStream.look_ahead` for it, on the thread that
    reads them. A look-up that fails is logged and dropped: the page's own work makes it again."""
    try:
        for page in pages:
            try:
                stream.look_ahead(ctx, page)
            except Exception:
                logger.warning("%s: looking ahead for a page failed; its plan looks up what it needs itself",
                               stream.name, exc_info=True)
            yield page
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _each_page(run: SyncRun, state: StreamState, token: str, stream: Stream, ctx: Any, actor: Any,
               progress: Progress | None, counter: RunMeter, start: Checkpoint, checkpoint: Checkpoint,
               pages: Iterator[Any]) -> str:
    def fresh_of(page: Any) -> list[Any]:
        # Records read again at the checkpoint: skipped by key, unless the cursor is only a date
        # (one may have changed later that day; the hash tells).
        return page if stream.coarse_cursor else [r for r in page if not start.already_done(r.cursor, position(r))]

    pipeline = None
    if isinstance(stream, RecordStream) and stream.pipelined and settings.SYNC_PIPELINE:
        pipeline = Pipeline(run, stream, ctx, pages, fresh_of, actor=actor, exhausted=lambda: counter.exhausted)
        worked = iter(pipeline)
    else:
        worked = _one_by_one(run, stream, ctx, pages, fresh_of, actor)
    try:
        for page, outcome in worked:
            if isinstance(outcome, PageOutcome):
                outcome.counts.add_to(run)
            elif outcome is not None:
                outcome.add_to(run)  # a reference page's counts
                outcome = None
            if outcome is not None and outcome.systemic is not None:
                # Stop at once, without checkpointing: once a person has fixed the connection, the
                # next run reads this page again instead of leaving its records behind as failed.
                run.save(update_fields=[*SyncRun.COUNTERS])
                raise PageWriteFailed(outcome.systemic)
            if not page and not getattr(page, "token", ""):
                continue
            # Checkpoint only now: every record of the page has a terminal state on disk.
            checkpoint = checkpoint.after(page, token=getattr(page, "token", ""), coarse=stream.coarse_cursor)
            _save_checkpoint(state, token, checkpoint)
            counter.cycle.renew_seats()  # a licence seat lives as long as the stream lock's heartbeat
            run.api_calls = counter.calls
            run.save(update_fields=[*SyncRun.COUNTERS])
            if progress:
                progress(run)
            if counter.exhausted and pipeline is None:  # a pipeline stops before its next read itself
                return RunStatus.PARTIAL
    finally:
        worked.close()  # a write still in flight ends before the run does
    if pipeline is not None and pipeline.stopped:
        return RunStatus.PARTIAL
    _save_checkpoint(state, token, checkpoint.completed())
    if isinstance(stream, ReferenceStream):
        refresh_suggestions(run.integration, stream.kind, actor=actor)
    return RunStatus.SUCCEEDED


def _one_by_one(run: SyncRun, stream: Stream, ctx: Any, pages: Iterator[Any],
                fresh_of: Callable[[Any], list[Any]], actor: Any) -> Iterator[tuple[Any, PageOutcome | Counts | None]]:
    for page in pages:
        fresh = fresh_of(page)
        if not fresh:
            yield page, None
        elif isinstance(stream, ReferenceStream):
            yield page, store_reference_page(run.integration, stream, fresh)
        else:
            yield page, process_page(run, stream, ctx, fresh, actor=actor)


def _save_checkpoint(state: StreamState, token: str, checkpoint: Checkpoint) -> None:
    locks.heartbeat(state, token, checkpoint=checkpoint.as_json(), cursor=checkpoint.cursor[:64], resume={})


# What a record says while it waits for another stream's record (flows.servicenow_common.synced_id).
WAITING_FOR_DEPENDENCY = "yet; will retry"
WAITING_PASS_LIMIT = 1000  # records per stream the end-of-cycle pass takes up


def _retry_waiting(integration: Integration, runs: list[SyncRun], cycle: Cycle, actor: Any,
                   progress: Progress | None) -> None:
    """Once per cycle, after every stream ran: when a record failed waiting for another stream's
    record, take up again, in stream order, the records this cycle's runs failed transiently.

    A supplier whose answer was lost and the purchase order waiting for it, then the invoice
    waiting for that order: retried in this cycle, dependencies first, instead of a stream per
    cycle. One pass, from the snapshots just read (no source call), under each stream's lock;
    what still fails is retried on its schedule.
    """
    ran = {run.stream: run for run in runs if run.status == RunStatus.SUCCEEDED}
    failed = SyncRecord.objects.filter(integration=integration, status=RecordStatus.FAILED,
                                       error_class=ErrorClass.TRANSIENT, last_run__in=list(ran.values()))
    if not ran or cycle.exhausted or not failed.filter(error_message__contains=WAITING_FOR_DEPENDENCY).exists():
        return
    flow = get_flow(integration.kind)
    for state in ensure_streams(integration):
        run = ran.get(state.stream)
        stream = flow.stream(state.stream)
        if run is None or not isinstance(stream, RecordStream):
            continue
        rows = list(failed.filter(stream=state.stream).order_by("pk")[:WAITING_PASS_LIMIT])
        if not rows:
            continue
        token = locks.claim(state)
        if token is None:
            continue
        cycle.locked_states.add(state.pk)
        calls = cycle.calls
        try:
            with stream_context(integration, cycle, run.pk) as ctx:
                for start in range(0, len(rows), 200):
                    chunk = rows[start:start + 200]
                    page = [SourceRecord(row.source_key, row.source_cursor, row.source_snapshot, row.business_key)
                            for row in chunk]
                    outcome = process_page(run, stream, ctx, page, actor=actor)
                    counts = outcome.counts
                    counts.failed -= len(chunk)  # counted failed once by this run already
                    counts.read = 0
                    counts.add_to(run)
                    if outcome.systemic is not None:
                        raise PageWriteFailed(outcome.systemic)
                    if cycle.exhausted:
                        break
        except BudgetExhausted:
            return  # the rows whose write began stay pending: the next run looks them up first
        except (SyncError, PageWriteFailed) as failure:
            exc = failure.error if isinstance(failure, PageWriteFailed) else failure
            if exc.kind == ErrorClass.SYSTEMIC:
                run.status, run.error = RunStatus.FAILED, str(exc)[:4000]
                flag_connection(integration, stream, "write", exc)
                audit(integration.tenant_id, "run.systemic_error", f"{state.stream} stopped: {exc}",
                      integration_id=integration.pk, run_id=run.pk, actor=actor,
                      detail={"error_class": exc.kind, "phase": "write"})
            return
        finally:
            run.api_calls += cycle.calls - calls
            run.save(update_fields=[*SyncRun.COUNTERS, "status", "error"])
            locks.release(state, token)
            cycle.locked_states.discard(state.pk)
            if progress:
                progress(run)
        if cycle.exhausted:
            return


def _held_but_released(run: SyncRun, stream: RecordStream) -> list[int]:
    """Held records every mapping key of which is approved now: nothing they waited for is missing.

    An approval releases the records held *when it is made* (a queued replay). That misses records
    a run still in progress holds afterwards, with the mappings it read before the approval's
    commit; and records whose release was lost with its worker or its broker, or skipped because
    the stream was busy. They are taken up here. A key is resolved when an approved mapping has it
    as its source code, or when exactly one approved mapping has it as its target code (flows that
    map in reverse, ServiceNow to the ERP, name the target's code and need it unambiguous).
    Conflicts wait for a person.
    """
    approved = list(Mapping.objects.filter(integration_id=run.integration_id, status=MappingStatus.APPROVED)
                    .values_list("kind", "source_code", "target_code"))
    if not approved:
        return []
    resolved = {f"{kind}:{source}" for kind, source, _ in approved}
    targets = Counter(f"{kind}:{target}" for kind, _, target in approved if target)
    resolved |= {key for key, count in targets.items() if count == 1}
    held = (SyncRecord.objects.filter(integration_id=run.integration_id, stream=stream.name, status=RecordStatus.HELD)
            .exclude(last_run=run).exclude(missing="").exclude(missing__contains="|conflict:")
            .order_by("pk").values_list("pk", "missing"))
    out = []
    for pk, missing in held.iterator(chunk_size=2000):
        if all(key in resolved for key in missing.split("|") if key):
            out.append(pk)
            if len(out) >= 1000:
                break
    return out


def _retry_due(run: SyncRun, stream: RecordStream, ctx: Any, actor: Any, progress: Progress | None,
               counter: RunMeter) -> None:
    """Failed-transient records whose retry time has come get another attempt in this run.

    So do records left "pending" by a worker that died between writing its intent and the
    outcome (we hold the stream's lock, so no live run owns them): their write may or may not
    have reached the target, and the attempt looks them up by source identity first. And so do
    held records whose mappings are all approved by now (:func:`_held_but_released`).
    """
    due = SyncRecord.objects.filter(
        Q(status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT, next_retry_at__lte=timezone.now())
        | Q(status=RecordStatus.PENDING),
        integration=run.integration, stream=stream.name,
    ).exclude(last_run=run).order_by(F("next_retry_at").asc(nulls_first=True), "pk")[:1000]
    rows = list(due)
    released = _held_but_released(run, stream)[:1000 - len(rows)]
    if released:
        rows += list(SyncRecord.objects.filter(pk__in=released).order_by("pk"))
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
