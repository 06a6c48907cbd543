"""A stream's pages worked as a pipeline: page N is written while page N+1 is transformed.

Serially, a page is transformed (CPU), its intent booked, written (waiting for the target) and
its outcome booked (CPU), and the portal's own work adds up with the target's. For a stream
that declares ``RecordStream.pipelined``, the write of a page runs on a helper thread
(:func:`~integrations.systems.concurrency.in_background`) while this thread transforms the next
page and books the outcome of the one before: the portal's work overlaps the vendor's.

What does not change:

* pages end in their order, each with every record in a terminal state before the caller moves
  its checkpoint; the caller sees the same ``(page, outcome)`` sequence as serially;
* a page's intent is on disk before its write starts (write-ahead), and only one write is in
  flight at a time, so a crash leaves at most the in-flight page pending, to be looked up
  first, as a crash during a serial write does;
* the next page's write starts only once the write before it has answered, its call budget is
  not spent and no answer said the connection is refused: a stop leaves nothing planned on disk.
  The records a page meets for the first time are inserted (pending) while the page before is
  still on the wire, so that its write can start the moment that answer comes; on a stop they are
  taken back (a crash in between leaves them pending, looked up first, as above);
* a page that shares a record with the page in flight waits until that page is booked, so a
  record is never planned from what the portal knew before its previous write was booked.

The database stays on this thread: the helper's database work (a token refreshed, an event
audited) runs here whenever this thread waits for it, and its plain reads (what a stream synced,
the stored token) also between two records of the next page's plan, so that the write is not held
up until that plan is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.db import DatabaseError

from integrations.engine.pages import (
    PageOutcome,
    PagePlan,
    book_new_records,
    plan_page,
    record_intent,
    record_outcome,
    unbook_new_records,
    write_plan,
)
from integrations.flows.base import RecordStream, SourceRecord, StreamContext
from integrations.models import SyncRun
from integrations.systems.concurrency import Background, in_background
from integrations.systems.errors import SystemicError

logger = logging.getLogger(__name__)

Worked = tuple[Any, PageOutcome | None]


class Part(list):
    """A part of a page that is not its last: empty and without a token, so the caller adds its
    counts and moves no checkpoint (the page's last part carries the page)."""


class _Flight:
    """A page whose intent is booked and whose write is running on a helper thread."""

    def __init__(self, run: SyncRun, stream: RecordStream, ctx: StreamContext, page: Any, plan: PagePlan) -> None:
        self.page, self.plan = page, plan
        record_intent(run, stream, plan)
        self.write: Background[dict[str, Any]] = in_background(write_plan, stream, ctx, plan)


class Pipeline:
    """``(page, outcome)`` for each page of ``pages`` in order, as ``process_page`` would give
    them (``None`` for a page with nothing fresh); ``fresh_of(page)``: its records to work on;
    ``exhausted()``: a call budget of the cycle is spent.

    With a spent budget it stops before reading further, after booking the page in flight, and
    says so (``stopped``): the run is partial. A page read and planned but not yet sent when the
    budget ran out (the write before it spent it) is not booked: the next run reads it again.
    """

    def __init__(self, run: SyncRun, stream: RecordStream, ctx: StreamContext, pages: Iterator[Any],
                 fresh_of: Callable[[Any], list[SourceRecord]], *, actor: Any, exhausted: Callable[[], bool]) -> None:
        self.run, self.stream, self.ctx, self.pages, self.fresh_of = run, stream, ctx, pages, fresh_of
        self.actor, self.exhausted = actor, exhausted
        self.stopped = False
        self.flight: _Flight | None = None
        self.ahead: PagePlan | None = None  # its new records booked, its write not started yet

    def _land(self) -> Worked:
        landed, self.flight = self.flight, None
        assert landed is not None
        results = landed.write.result()
        return landed.page, record_outcome(self.run, self.stream, landed.plan, results, actor=self.actor)

    def _take_off(self, page: Any, plan: PagePlan) -> None:
        self.flight = _Flight(self.run, self.stream, self.ctx, page, plan)

    def __iter__(self) -> Iterator[Worked]:
        try:
            yield from self._work()
        finally:
            if self.flight is not None:  # left early (an error, an interrupt): no write outlives the run
                self.flight.write.wait()
            if self.ahead is not None:  # its write will never start: as if it had not been planned
                self._take_back(self.ahead)

    def _take_back(self, plan: PagePlan) -> None:
        self.ahead = None
        try:
            unbook_new_records(plan)
        except DatabaseError:  # already leaving on an error: the rows stay pending, looked up first
            logger.exception("The records booked ahead for %s could not be taken back", self.stream.name)

    def _units(self) -> Iterator[tuple[Any, list[SourceRecord]]]:
        """``(page, fresh records)`` per page; a large page in parts of the stream's
        ``write_chunk``, each but the last given as a :class:`Part` (the caller checkpoints the
        page once, after its last part)."""
        for page in self.pages:
            fresh = self.fresh_of(page)
            size = self.stream.write_chunk(self.ctx) if fresh else 0
            if size <= 0 or len(fresh) <= size:
                yield page, fresh
                continue
            starts = range(0, len(fresh), size)
            for start in starts:
                yield (page if start == starts[-1] else Part()), fresh[start:start + size]

    def _work(self) -> Iterator[Worked]:
        units = self._units()
        while True:
            if self.exhausted():
                if self.flight is not None:
                    yield self._land()
                self.stopped = True  # as serially: a spent budget stops the run before the next read
                return
            try:
                page, fresh = next(units)
            except StopIteration:
                break
            except Exception:
                if self.flight is not None:
                    yield self._land()  # booked and checkpointed before the reading error stops the run
                raise
            if self.flight is not None and fresh and not self.flight.plan.keys.isdisjoint(r.key for r in fresh):
                yield self._land()
            try:
                plan = plan_page(self.run, self.stream, self.ctx, fresh) if fresh else None
            except Exception:
                if self.flight is not None:
                    yield self._land()  # as serially: the page before is booked before this one fails
                raise
            if plan is not None and plan.outcome.systemic is not None:
                if self.flight is not None:
                    yield self._land()
                yield page, plan.outcome  # nothing of it booked: the caller stops here
                return
            if self.flight is None:
                if plan is None:
                    yield page, None
                else:
                    self._take_off(page, plan)
                continue
            landed = self.flight
            if plan is not None:  # on disk while the page before is on the wire
                self.ahead = plan
                book_new_records(self.run, self.stream, plan)
            results = landed.write.result()
            self.flight = None
            refused = any(isinstance(result.error, SystemicError) for result in results.values())
            stop = refused or self.exhausted()
            if plan is not None:
                self.ahead = None
                if stop:
                    unbook_new_records(plan)
                else:
                    self._take_off(page, plan)  # written while the page before is booked
            yield landed.page, record_outcome(self.run, self.stream, landed.plan, results, actor=self.actor)
            if stop:  # the caller raises on the refusal; a spent budget ends the run here
                self.stopped = True
                return
            if plan is None:
                yield page, None
        if self.flight is not None:
            yield self._land()
