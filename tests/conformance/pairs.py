"""One harness per registered pair: what the conformance checks need to know about it, and nothing else.

A check only ever talks to a :class:`PairHarness`: build and mount the simulators, load a
tenant, add source records to the pair's main record stream (some sharing one cursor value),
fault the target, read back what the target holds per source key. The harnesses themselves
live in :mod:`tests.conformance.harnesses`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import responses
from django.conf import settings as django_settings
from django.utils import timezone

from integrations.engine.mappings import approve
from integrations.engine.replay import replay_records
from integrations.engine.runner import ensure_streams, run_integration, run_stream
from integrations.models import (
    Connection,
    Integration,
    Mapping,
    MappingStatus,
    RecordStatus,
    StreamState,
    SyncRecord,
    SyncRun,
    Trigger,
)
from integrations.sandbox.base import DropResponse, Faults, SimRequest, SimResponse, Simulator
from integrations.sandbox.inprocess import mount

# Every harness stamps the records it adds from here on, one second apart (ties share one):
# later than any record of the demo seeds, so new records always sort after the seeded ones.
EPOCH = datetime(2027, 1, 1, tzinfo=UTC)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WorkerKilled(BaseException):  # noqa: N818 - not an error: nothing in the portal may catch it
    """The worker process died (OOM kill, container stopped) while a call was on the wire."""


@dataclass(frozen=True)
class TargetRow:
    """One target row written for a source record: its id, the value checks compare, its version."""

    id: str
    value: str
    version: int


class Gate:
    """A simulator as mounted: counts its write calls, and strikes at the worst moments.

    ``kill_after`` and ``drop_answers`` strike *after* the system committed a write call;
    ``outage_from`` answers every call with the system's own "temporarily unavailable".
    """

    def __init__(self, sim: Simulator, is_write: Callable[[SimRequest], bool]) -> None:
        self.sim = sim
        self.is_write = is_write
        self.calls = 0
        self.writes = 0
        self.lost = 0
        self._committed = 0
        self._kill_at = 0
        self._drop_at: set[int] = set()
        self._outage_at = 0

    def kill_after(self, writes: int) -> None:
        """The worker dies right after the ``writes``-th write call from now has committed."""
        self._committed, self._kill_at = 0, writes

    def drop_answers(self, *writes: int) -> None:
        """The answers of these write calls (counted from now, from 1) are lost after commit."""
        self._committed, self._drop_at = 0, set(writes)

    def outage_from(self, call: int) -> None:
        """From the ``call``-th call from now on, the system is unavailable (until :meth:`outage_over`)."""
        self._outage_at = self.calls + call

    def outage_over(self) -> None:
        self._outage_at = 0

    def handle(self, request: SimRequest) -> SimResponse:
        self.calls += 1
        if self._outage_at and self.calls >= self._outage_at:
            return self.sim.transient_response(request)
        write = self.is_write(request)
        self.writes += write
        try:
            response = self.sim.handle(request)  # the system does the work and commits
        except DropResponse:
            self.lost += 1  # the simulator's own "commit, then drop" fault
            raise
        if write and response.status < 400:
            self._committed += 1
            if self._committed == self._kill_at:
                self._kill_at = 0
                raise WorkerKilled(f"killed after {self.sim.name} committed write call {self._committed}")
            if self._committed in self._drop_at:
                self._drop_at.discard(self._committed)
                self.lost += 1
                raise DropResponse(f"{self.sim.name}: committed, answer lost")
        return response


class PairHarness:
    """What the conformance suite needs from a pair. Subclasses fill in the vendor parts."""

    kind: ClassVar[str]
    main_stream: ClassVar[str]
    # streams to run (and mappings to approve) before the main stream can write without holding
    upstream: ClassVar[tuple[str, ...]] = ()
    # the connection whose per-cycle call budget the budget check squeezes, and to how many calls
    budget_side: ClassVar[str] = "source"
    budget: ClassVar[int] = 3
    source_url: ClassVar[str]
    target_url: ClassVar[str]

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.integration: Integration
        self.source_sim: Simulator
        self.target_sim: Simulator
        self.gate: Gate  # the target's
        self.source_gate: Gate
        self._second = 0
        self._ties: dict[str, int] = {}
        self._serial = 0
        self._edits: dict[str, int] = {}

    # --- the vendor parts ---------------------------------------------------------------------
    def build_simulators(self) -> tuple[Simulator, Simulator]:
        """Fresh (source, target) simulators, seeded as the pair's demo is."""
        raise NotImplementedError

    def load_tenant(self) -> Integration:
        """A tenant with both connections and the integration, loaded the way operators load it."""
        raise NotImplementedError

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        """Add (or edit) a main-stream record in the source: named ``name``, updated at ``updated``."""
        raise NotImplementedError

    def source_values(self) -> dict[str, str]:
        """Every main-stream record in the source: key → the value the target must end up holding."""
        raise NotImplementedError

    def target_rows(self) -> dict[str, list[TargetRow]]:
        """What the target holds for the main stream: source key → every row written for it."""
        raise NotImplementedError

    def is_target_write(self, request: SimRequest) -> bool:
        """Whether a request to the target can change its data (sign-in calls do not count)."""
        return request.method in WRITE_METHODS

    def approve_mappings(self) -> None:
        """What an approver does on day one, so that no main-stream record is held."""
        decision = approve(list(Mapping.objects.filter(integration=self.integration,
                                                       status=MappingStatus.SUGGESTED)))
        if decision.released_ids:
            replay_records(decision.released_ids, trigger=Trigger.MAPPING)

    def new_key(self, serial: int) -> str:
        return f"CF{serial:04d}"

    # --- provided ------------------------------------------------------------------------------
    @contextmanager
    def running(self) -> Iterator[PairHarness]:
        """Simulators mounted at the HTTP boundary and the tenant loaded, for the test's duration."""
        self.source_sim, self.target_sim = self.build_simulators()
        self.gate = Gate(self.target_sim, self.is_target_write)
        self.source_gate = Gate(self.source_sim, lambda request: False)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            mount(self.source_gate, self.source_url, rsps)
            mount(self.gate, self.target_url, rsps)
            self.integration = self.load_tenant()
            yield self

    def add_records(self, count: int, *, tie: str | None = None) -> list[str]:
        """``count`` new records, each a second later than the last; those given one ``tie`` label
        share one update time (taken when the label is first used)."""
        keys = []
        for _ in range(count):
            if tie is None or tie not in self._ties:
                self._second += 1
                if tie is not None:
                    self._ties[tie] = self._second
            second = self._second if tie is None else self._ties[tie]
            self._serial += 1
            key = self.new_key(self._serial)
            self.put_record(key, f"{key} v1", EPOCH + timedelta(seconds=second))
            keys.append(key)
        return keys

    def edit_records(self, keys: list[str]) -> None:
        """Someone edits these records in the source: new names, new update times."""
        for key in keys:
            self._second += 1
            self._edits[key] = self._edits.get(key, 1) + 1
            self.put_record(key, f"{key} v{self._edits[key]}", EPOCH + timedelta(seconds=self._second))

    def configure(self, **values: Any) -> None:
        """Integration settings (page_size, batch_size...)."""
        self.integration.settings = {**(self.integration.settings or {}), **values}
        self.integration.save(update_fields=["settings"])

    def limit_calls(self, calls: int) -> None:
        """The budget side's connection may make ``calls`` calls per cycle (its own setting)."""
        connection = getattr(self.integration, self.budget_side)
        Connection.objects.filter(pk=connection.pk).update(settings={**connection.settings, "call_budget": calls})
        self.integration = Integration.objects.select_related("source", "target", "tenant").get(pk=self.integration.pk)

    def set_source_faults(self, faults: Faults) -> None:
        self.source_sim.set_faults(faults)

    def set_target_faults(self, faults: Faults) -> None:
        self.target_sim.set_faults(faults)

    def prepare(self) -> None:
        """Upstream streams synced and their mappings approved: the main stream holds nothing."""
        if self.upstream:
            run_integration(self.integration, streams=list(self.upstream))
            self.approve_mappings()

    def run(self) -> SyncRun:
        """One run of the main stream, as a schedule or a continuation would start it."""
        return run_stream(self.integration, self.main_stream)

    def run_round(self) -> list[SyncRun]:
        """One scheduled cycle of the upstream streams and the main stream."""
        return run_integration(self.integration, streams=[*self.upstream, self.main_stream])

    def state(self) -> StreamState:
        ensure_streams(self.integration)
        return StreamState.objects.get(integration=self.integration, stream=self.main_stream)

    def records(self) -> dict[str, SyncRecord]:
        return {r.source_key: r for r in SyncRecord.objects.filter(integration=self.integration,
                                                                    stream=self.main_stream)}

    def failed_records_come_due(self) -> None:
        """Time passes: every failed record's retry time has come."""
        SyncRecord.objects.filter(integration=self.integration, status=RecordStatus.FAILED).update(
            next_retry_at=timezone.now())

    def lock_goes_stale(self) -> None:
        """Time passes: a dead worker's heartbeat is older than the stale limit."""
        StreamState.objects.filter(integration=self.integration).exclude(lock_token="").update(
            lock_heartbeat_at=timezone.now() - timedelta(seconds=django_settings.SYNC_LOCK_STALE_SECONDS + 1))
