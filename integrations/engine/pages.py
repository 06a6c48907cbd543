"""Processing one page of records: bookkeeping in bulk, transform, idempotent write.

Per page, whatever its size, the database sees a fixed handful of calls: one read of the
known records, one bulk insert of new ones, one bulk upsert marking the write intent of known
ones, one batched update of the outcomes, one bulk insert of attempts and one of audit events.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from integrations.engine.audit import audit_event, audit_many
from integrations.engine.bulk import insert_many, new_instance, row_of, update_many
from integrations.engine.documents import SEARCH_FIELDS, search_fields
from integrations.flows.base import (
    Conflict,
    InvalidRecord,
    NeedsMapping,
    RecordStream,
    SkipRecord,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
    snapshot_and_hash,
)
from integrations.models import (
    ErrorClass,
    Mapping,
    MappingReason,
    MappingStatus,
    RecordStatus,
    SyncAttempt,
    SyncRecord,
    SyncRun,
)
from integrations.systems.concurrency import answer_reads
from integrations.systems.errors import BudgetExhausted, SyncError, SystemicError, TransientError

# A page write that fails as a whole (a lost batch response...) is retried this many times in
# the run, each time looking rows up by source identity first.
PAGE_WRITE_ATTEMPTS = 3
RETRY_BASE = timedelta(minutes=2)
RETRY_MAX = timedelta(hours=6)

RECORD_FIELDS = [
    "business_key", "status", "source_cursor", "source_hash", "source_snapshot", "target_id", "target_url",
    "target_refs", "error_class", "error_message", "missing", "attempts", "next_retry_at", "last_run", "synced_at",
    *SEARCH_FIELDS,
]
# What changes on a row between the write intent and the outcome (everything else is on disk).
OUTCOME_FIELDS = [
    "status", "target_id", "target_url", "target_refs", "error_class", "error_message", "missing", "next_retry_at",
    "synced_at", "updated_at",
]


@dataclass
class Counts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    held: int = 0
    failed: int = 0

    def add_to(self, run: SyncRun) -> None:
        for name in ("read", "created", "updated", "unchanged", "held", "failed"):
            setattr(run, name, getattr(run, name) + getattr(self, name))


@dataclass
class PageOutcome:
    counts: Counts = field(default_factory=Counts)
    systemic: SyncError | None = None


def next_retry(attempts: int) -> Any:
    delay = min(RETRY_MAX, RETRY_BASE * (2 ** max(0, attempts - 1)))
    return timezone.now() + delay


def _fail(row: SyncRecord, error: SyncError | Exception, error_class: str) -> None:
    row.status = RecordStatus.FAILED
    row.error_class = error_class
    row.error_message = str(error)[:4000]
    row.missing = ""
    row.next_retry_at = next_retry(row.attempts) if error_class == ErrorClass.TRANSIENT else None


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Let the garbage collector look only at what the page allocates.

    A page of a thousand invoices allocates hundreds of thousands of short-lived dicts, which
    trigger full collections over the whole heap (Django, the app, every cache): measured at a
    tenth of the sync's CPU. Objects that existed before the page are frozen while it runs and
    handed back to the collector afterwards (``gc.unfreeze``), so nothing is kept for good; the
    youngest generation is collected less often meanwhile (the page's dicts are mostly freed by
    reference counting anyway).
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 20_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass
class PagePlan:
    """A page read and transformed, not yet written: its rows (new ones without a pk), what to
    send, and the counts so far. ``outcome.systemic`` set: nothing of it may be booked."""

    page: list[SourceRecord]
    rows: dict[str, SyncRecord]
    payloads: dict[str, Any]
    items: list[WriteItem]
    outcome: PageOutcome
    # the records first met in this page, inserted (pending) by :func:`book_new_records` before
    # the rest of its intent: a pipeline books them while the page before is still on the wire
    booked_new: list[SyncRecord] = field(default_factory=list)

    @property
    def keys(self) -> set[str]:
        return {record.key for record in self.page}


def process_page(
    run: SyncRun,
    stream: RecordStream,
    ctx: StreamContext,
    page: list[SourceRecord],
    *,
    actor: Any = None,
    replay: bool = False,
) -> PageOutcome:
    """Take every record of ``page`` to a terminal state, persisted; see the module docstring."""
    with _heap_frozen():
        plan = _plan_page(run, stream, ctx, page, replay=replay)
        if plan.outcome.systemic is not None:
            return plan.outcome
        record_intent(run, stream, plan)
        results = write_plan(stream, ctx, plan)
        return _record_outcome(run, stream, plan, results, actor=actor, replay=replay)


def plan_page(run: SyncRun, stream: RecordStream, ctx: StreamContext, page: list[SourceRecord], *,
              replay: bool = False) -> PagePlan:
    """Read what the portal knows of the page's records and transform them; writes nothing."""
    with _heap_frozen():
        return _plan_page(run, stream, ctx, page, replay=replay)


def _plan_page(run: SyncRun, stream: RecordStream, ctx: StreamContext, page: list[SourceRecord], *,
               replay: bool) -> PagePlan:
    integration_id = run.integration_id
    outcome = PageOutcome()
    counts = outcome.counts
    counts.read = len(page)
    keys = [record.key for record in page]
    known = {
        row.source_key: row
        for row in SyncRecord.objects.filter(integration_id=integration_id, stream=stream.name, source_key__in=keys)
        .order_by()  # no sort: the unique key finds them (see SyncRecord.Meta.ordering)
    }
    ctx.forget_page()
    stream.prepare_page(ctx, page)
    # the runner loaded the integration with its connections: no query
    source_settings = run.integration.source.settings or {}
    rows: dict[str, SyncRecord] = {}
    payloads: dict[str, Any] = {}
    items: list[WriteItem] = []
    plan = PagePlan(page, rows, payloads, items, outcome)
    for record in page:
        answer_reads()  # a page in flight asking what a stream synced is not held up by this one's plan
        snapshot, digest = snapshot_and_hash(record.data)
        row = known.get(record.key)
        if (row is not None and row.status == RecordStatus.SYNCED and row.source_hash == digest
                and not replay and not ctx.force):
            counts.unchanged += 1
            continue
        if row is None:
            row = new_instance(SyncRecord, integration_id=integration_id, stream=stream.name, source_key=record.key)
        row.business_key = record.business_key[:200]
        row.source_snapshot = snapshot
        # what the header search finds it by, read from the snapshot once, here
        for name, value in search_fields(stream, record.key, row.business_key, snapshot, source_settings).items():
            setattr(row, name, value)
        row.source_hash = digest
        row.source_cursor = record.cursor
        row.last_run_id = run.pk  # by id: the related-object descriptor is slow in a per-record loop
        row.error_class = ""
        row.error_message = ""
        row.missing = ""
        row.next_retry_at = None
        rows[record.key] = row
        try:
            payload = stream.transform(ctx, record)
        except (NeedsMapping, Conflict) as exc:
            row.status = RecordStatus.HELD
            row.missing = SyncRecord.pack_missing(exc.missing)
            row.error_message = str(exc)
            continue
        except InvalidRecord as exc:
            row.attempts += 1
            _fail(row, exc, ErrorClass.DATA)
            continue
        except SkipRecord as exc:
            row.status = RecordStatus.SKIPPED
            row.error_message = str(exc)
            continue
        except BudgetExhausted:
            raise  # nothing was asked: the run stops, this page is read again by the continuation
        except SyncError as exc:  # e.g. a record it depends on is not in the target yet
            if exc.kind == ErrorClass.SYSTEMIC:
                # A connection refused (a read inside the transform): every record would fail the
                # same way. The run stops and flags the connection, and this page is read again
                # once a person has fixed it; nothing of it is booked or written.
                outcome.systemic = exc
                return plan
            row.attempts += 1
            _fail(row, exc, exc.kind)
            continue
        uncertain = bool(row.pk and not row.target_id and row.attempts > 0)
        row.status = RecordStatus.PENDING
        row.attempts += 1
        payloads[record.key] = payload
        items.append(WriteItem(record.key, payload, record, row.target_id, dict(row.target_refs or {}), uncertain))
    return plan


def record_intent(run: SyncRun, stream: RecordStream, plan: PagePlan) -> None:
    """Write-ahead: the intent to write is on disk before the first byte goes out, so a crash
    after the target committed leaves a pending row that the next attempt looks up first."""
    book_new_records(run, stream, plan)
    booked = {id(row) for row in plan.booked_new}
    pending_known = [row for row in plan.rows.values() if row.pk is not None and id(row) not in booked]
    if pending_known:
        update_many(SyncRecord, pending_known, [*RECORD_FIELDS, "updated_at"])


def book_new_records(run: SyncRun, stream: RecordStream, plan: PagePlan) -> None:
    """The first part of :func:`record_intent`: insert the page's records the portal had never met,
    and learn their ids. Undone by :func:`unbook_new_records` if the page's write never starts."""
    new_rows = [row for row in plan.rows.values() if row.pk is None]
    if not new_rows:
        return
    insert_many(SyncRecord, new_rows)
    ids = dict(SyncRecord.objects.filter(
        integration_id=run.integration_id, stream=stream.name,
        source_key__in=[row.source_key for row in new_rows],
    ).order_by().values_list("source_key", "pk"))
    for row in new_rows:
        row.pk = ids[row.source_key]
        row._state.adding = False
    plan.booked_new.extend(new_rows)


def unbook_new_records(plan: PagePlan) -> None:
    """Take back what :func:`book_new_records` inserted, for a page whose write will not start (the
    write before it spent the budget or was refused): as if the page had never been planned."""
    if not plan.booked_new:
        return
    SyncRecord.objects.filter(pk__in=[row.pk for row in plan.booked_new]).delete()
    for row in plan.booked_new:
        row.pk = None
        row._state.adding = True
    plan.booked_new.clear()


def write_plan(stream: RecordStream, ctx: StreamContext, plan: PagePlan) -> dict[str, WriteResult]:
    """Send the page's items (after :func:`record_intent`); HTTP only, so it may run on a helper
    thread (its database work goes through ``on_owner``)."""
    return _write(stream, ctx, plan.items) if plan.items else {}


def record_outcome(run: SyncRun, stream: RecordStream, plan: PagePlan, results: dict[str, WriteResult], *,
                   actor: Any = None, replay: bool = False) -> PageOutcome:
    """Book what the target answered: outcomes, attempts and their audit, in one transaction."""
    with _heap_frozen():
        return _record_outcome(run, stream, plan, results, actor=actor, replay=replay)


def _record_outcome(run: SyncRun, stream: RecordStream, plan: PagePlan, results: dict[str, WriteResult], *,
                    actor: Any, replay: bool) -> PageOutcome:
    integration_id = run.integration_id
    tenant_id = run.integration.tenant_id
    rows, payloads, outcome = plan.rows, plan.payloads, plan.outcome
    counts = outcome.counts
    now = timezone.now()
    events = []
    attempts = []
    for key, row in rows.items():
        result = results.get(key)
        if row.status == RecordStatus.PENDING:
            if result is None or result.error is not None:
                error = result.error if result else TransientError("No result for this record")
                _fail(row, error, error.kind)
                if isinstance(error, SystemicError) and outcome.systemic is None:
                    outcome.systemic = error
            else:
                row.status = RecordStatus.SYNCED
                row.target_id = result.target_id or row.target_id
                row.target_url = result.target_url or row.target_url
                if result.target_refs:
                    row.target_refs = {**(row.target_refs or {}), **result.target_refs}
                row.synced_at = now
        if row.status == RecordStatus.SYNCED:
            action = result.action if result else "updated"
            if action == "created":
                counts.created += 1
            elif action == "unchanged":
                counts.unchanged += 1
            else:
                counts.updated += 1
        elif row.status == RecordStatus.HELD:
            counts.held += 1
            events.append(audit_event(
                tenant_id, "record.held", f"{row.business_key or key} held: {row.error_message}",
                integration_id=integration_id, run_id=run.pk, record_id=row.pk, actor=actor,
                detail={"stream": stream.name, "key": key, "missing": row.missing_keys},
            ))
        elif row.status == RecordStatus.FAILED:
            counts.failed += 1
            events.append(audit_event(
                tenant_id, "record.failed", f"{row.business_key or key} failed: {row.error_message[:300]}",
                integration_id=integration_id, run_id=run.pk, record_id=row.pk, actor=actor,
                detail={"stream": stream.name, "key": key, "error_class": row.error_class},
            ))
        if row.status != RecordStatus.SKIPPED or key in payloads:
            attempts.append(row_of(
                SyncAttempt, record_id=row.pk, run_id=run.pk, number=row.attempts or 1, outcome=row.status,
                action=(result.action if result and not result.error else ""),
                # written as built: bulk.insert_many turns Decimals into strings, as snapshots do
                payload=payloads.get(key, {}), target_id=row.target_id,
                error_class=row.error_class, error_message=row.error_message[:2000],
            ))
    written = [row.business_key or key for key, row in rows.items() if row.status == RecordStatus.SYNCED]
    if written:
        events.append(audit_event(
            tenant_id, "records.replayed" if replay else "records.posted",
            f"{len(written)} {stream.name} record(s) written to the target",
            integration_id=integration_id, run_id=run.pk, actor=actor,
            detail={"stream": stream.name, "records": written[:200]},
        ))
    # Outcomes, attempts and their audit land together (and cost one commit, not three).
    with transaction.atomic(using=router.db_for_write(SyncRecord)):
        # Held, failed and skipped rows were written whole with the intent; only the rows sent
        # to the target have an outcome to record.
        update_many(SyncRecord, [rows[key] for key in payloads], OUTCOME_FIELDS)
        insert_many(SyncAttempt, attempts)
        audit_many(events)
        if stream.mapping_kind:
            # with the outcome: a synced row whose mapping was lost would hold its invoices forever
            _approve_written(run, stream.mapping_kind, rows, results)
    return outcome


def _approve_written(run: SyncRun, kind: str, rows: dict[str, SyncRecord], results: dict[str, WriteResult]) -> None:
    """Rows a stream wrote are their own approved mappings (see ``RecordStream.mapping_kind``).

    Mappings a person decided differently (approved to another row, or rejected) are left alone.
    """
    written = {key: (row, results[key]) for key, row in rows.items()
               if row.status == RecordStatus.SYNCED and key in results and row.target_id}
    if not written:
        return
    existing = {m.source_code: m for m in Mapping.objects.filter(integration_id=run.integration_id, kind=kind,
                                                                 source_code__in=list(written))}
    now = timezone.now()
    new, changed = [], []
    for key, (row, result) in written.items():
        code = (result.target_refs or {}).get("code") or key
        label = (result.target_refs or {}).get("label", "")[:300]
        mapping = existing.get(key)
        if mapping is None:
            new.append(Mapping(integration_id=run.integration_id, kind=kind, source_code=key, source_label=label,
                               target_code=code, target_label=label, target_external_id=row.target_id,
                               status=MappingStatus.APPROVED, reason=MappingReason.PUSHED, decided_at=now))
        elif mapping.status == MappingStatus.REJECTED or (
                mapping.status == MappingStatus.APPROVED and mapping.reason == MappingReason.MANUAL):
            continue
        elif (mapping.status, mapping.target_code, mapping.target_external_id) != (
                MappingStatus.APPROVED, code, row.target_id):
            mapping.status, mapping.target_code, mapping.target_external_id = MappingStatus.APPROVED, code, row.target_id
            mapping.target_label, mapping.reason, mapping.decided_at = label, MappingReason.PUSHED, now
            changed.append(mapping)
    Mapping.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        Mapping.objects.bulk_update(changed, ["status", "target_code", "target_label", "target_external_id",
                                              "reason", "decided_at", "updated_at"])


def _write(stream: RecordStream, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
    """Write a page, then again (up to ``PAGE_WRITE_ATTEMPTS`` in all) what failed transiently.

    A page that fails as a whole, or items whose answer was lost, may have reached the target:
    they are marked uncertain, so the next attempt looks them up by source identity first.
    Items that succeeded keep their outcome; only the others are sent again.
    """
    results: dict[str, WriteResult] = {}
    todo = items
    for _ in range(PAGE_WRITE_ATTEMPTS):
        try:
            answered = stream.write_page(ctx, todo)
        except SystemicError as exc:
            results.update({item.key: WriteResult("", error=exc) for item in todo})
            return results
        except BudgetExhausted:
            raise  # the rows stay pending: the continuation looks them up before writing
        except SyncError as exc:
            results.update({item.key: WriteResult("", error=exc) for item in todo})
            if not isinstance(exc, TransientError):
                return results
            again = todo
        else:
            results.update(answered)
            again = [item for item in todo if isinstance(getattr(answered.get(item.key), "error", None),
                                                         TransientError)]
        if not again:
            return results
        for item in again:
            item.uncertain = True
            # what the failed attempt did write (a header whose lines failed) is not looked up again
            done = results.get(item.key)
            if done is not None and done.target_id:
                item.target_id = done.target_id
                item.target_refs = {**item.target_refs, **(done.target_refs or {})}
        todo = again
    return results
