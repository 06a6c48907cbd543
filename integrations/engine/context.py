"""Building what a run needs: clients for both connections, approved mappings, lineage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.engine import locks
from integrations.engine.audit import audit
from integrations.engine.tokens import ConnectionTokenStore
from integrations.flows import get_flow
from integrations.flows.base import MappingLookup, StreamContext
from integrations.models import (
    Connection,
    ErrorClass,
    Integration,
    Mapping,
    MappingStatus,
    RecordStatus,
    ReferenceRecord,
    StreamState,
    SyncRecord,
)
from integrations.systems.concurrency import on_owner, read_on_owner
from integrations.systems.errors import AuthError, SyncError, TransientError
from integrations.systems.http import CallCounter, HttpPolicy
from integrations.systems.registry import client_builder, schema_for, system_label
from integrations.systems.spec import ConnectionSpec

logger = logging.getLogger(__name__)


def connection_spec(connection: Connection) -> ConnectionSpec:
    return ConnectionSpec(
        system=connection.system,
        url=connection.address,
        auth_method=connection.auth_method,
        company=connection.company,
        settings=dict(connection.settings or {}),
        secrets={k: str(v) for k, v in (connection.secrets or {}).items()},
    )


def http_policy() -> HttpPolicy:
    return HttpPolicy(
        timeout=settings.HTTP_TIMEOUT_SECONDS,
        max_retries=settings.HTTP_MAX_RETRIES,
        backoff_base=settings.HTTP_BACKOFF_BASE_SECONDS,
        backoff_max=settings.HTTP_BACKOFF_MAX_SECONDS,
    )


# Integration settings that tune the clients of its run (Integration.settings help text); they
# override the connection's own value, as one connection may serve several integrations.
CLIENT_SETTINGS = ("page_size", "batch_size")


def build_client(connection: Connection, counter: CallCounter, run_id: int | None | Callable[[], int | None] = None,
                 integration_id: int | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """A vendor client for ``connection`` whose notable events land in the audit trail.

    ``run_id`` may be a callable: a client a cycle keeps for all its streams files each event
    under the run in progress."""

    def on_event(action: str, detail: dict[str, Any]) -> None:
        on_owner(audit, connection.tenant_id, action, detail.get("reason") or detail.get("error") or "",
              connection_id=connection.pk, run_id=run_id() if callable(run_id) else run_id,
              integration_id=integration_id, detail=detail)

    spec = connection_spec(connection)
    spec.settings.update({k: v for k, v in (overrides or {}).items() if v not in (None, "")})
    if spec.settings.get("write_concurrency") in (None, ""):
        spec.settings["write_concurrency"] = settings.SYNC_WRITE_CONCURRENCY
    builder = client_builder(connection.system)
    return builder(spec, ConnectionTokenStore(connection), counter=counter, policy=http_policy(), on_event=on_event)


def approved_mappings(integration: Integration) -> MappingLookup:
    """The integration's approved mappings: whole, but for its flow's document numbers, read a page
    at a time (:class:`~integrations.flows.base.MappingLookup`)."""
    paged = {kind.name for kind in get_flow(integration.kind).mapping_kinds if kind.by_number}
    approved = Mapping.objects.filter(integration=integration, status=MappingStatus.APPROVED).order_by()
    rows = approved.exclude(kind__in=paged).values_list("kind", "source_code", "target_code", "target_external_id")

    def read(kind: str, codes: set[str]) -> dict[str, tuple[str, str]]:
        ordered = sorted(codes)
        return {code: (target, ext) for start in range(0, len(ordered), 500)
                for code, target, ext in approved.filter(kind=kind, source_code__in=ordered[start:start + 500])
                .values_list("source_code", "target_code", "target_external_id")}

    return MappingLookup({(kind, code): (target, ext) for kind, code, target, ext in rows}, paged=paged,
                         read=lambda kind, codes: read_on_owner(read, kind, codes))


def lineage_lookup(integration: Integration):
    def lookup(stream: str, keys: Iterable[str]) -> dict[str, tuple[str, dict[str, str]]]:
        keys = list(set(keys))
        if not keys:
            return {}
        rows = SyncRecord.objects.filter(integration=integration, stream=stream, source_key__in=keys).exclude(
            target_id=""
        ).order_by().values_list("source_key", "target_id", "target_refs")
        return {key: (target, refs or {}) for key, target, refs in rows}

    return lambda stream, keys: read_on_owner(lookup, stream, keys)  # a helper thread's read asks the page's thread


def reference_lookup(integration: Integration):
    """Codes of stored reference rows by the system's own ids (reference kinds are one side's each).

    An id stored under two codes is left out, as one never stored is: a row renumbered at its
    source (a purchase order's number corrected) leaves the row of its old code behind, and which
    of the two is current the stored rows cannot tell (an unchanged row is not written again)."""

    def lookup(kind: str, ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted({i for i in ids if i})
        found: dict[str, set[str]] = {}
        for start in range(0, len(wanted), 500):
            for external_id, code in ReferenceRecord.objects.filter(
                    integration=integration, kind=kind, external_id__in=wanted[start:start + 500],
            ).order_by().values_list("external_id", "code"):
                found.setdefault(external_id, set()).add(code)
        return {external_id: codes.pop() for external_id, codes in found.items() if len(codes) == 1}

    return lambda kind, ids: read_on_owner(lookup, kind, ids)


def written_lookup(integration: Integration):
    """What a stream wrote: which of ``target_ids`` it created, and whether any write of it is
    unaccounted for (attempted, no target id recorded: committed or not, we cannot tell)."""

    def lookup(stream: str, target_ids: Iterable[str]) -> tuple[set[str], bool]:
        ids = list(set(target_ids))
        # by target id across the integration (record_target_id_idx), the stream picked here:
        # with the stream in the query, SQLite walks the stream's every row instead
        known = {target for target, of in SyncRecord.objects.filter(integration=integration, target_id__in=ids)
                 .order_by().values_list("target_id", "stream") if of == stream} if ids else set()
        # a pending row (its run died) or a transient failure may have committed; a data or
        # systemic failure was refused, so it created nothing. The statuses as a list, so only
        # the rows in them are read (record_retry_idx), not the stream's every row.
        unaccounted = SyncRecord.objects.filter(
            integration=integration, stream=stream, status__in=[RecordStatus.PENDING, RecordStatus.FAILED],
            target_id="", attempts__gt=0,
        ).filter(Q(status=RecordStatus.PENDING) | Q(error_class=ErrorClass.TRANSIENT)).exists()
        return known, unaccounted

    return lambda stream, target_ids: read_on_owner(lookup, stream, target_ids)


class Cycle:
    """One sync cycle (a run of the integration, a scheduled run, a replay, a connection test).

    It owns one call counter per connection, with that connection's call budget, shared by every
    stream of the cycle: the budget is the connection's, per cycle, never the other side's.

    With ``keep_clients`` (a run of the integration's streams) it also keeps one client per
    connection for all its streams, closed by :meth:`close` at the cycle's end: one sign-in,
    and for a system whose session holds a licence seat (SYSPRO) one session per cycle.
    """

    def __init__(self, integration: Integration | None = None, *, keep_clients: bool = False) -> None:
        self.integration = integration
        self.counters: dict[int, CallCounter] = {}
        self.keep_clients = keep_clients
        self.clients: dict[int, Any] = {}
        self.run_id: int | None = None  # the run in progress, for the events of kept clients
        self.locked_states: set[int] = set()  # stream locks this cycle holds (StreamState pks)
        self.seats: dict[int, str] = {}  # connection pk -> the token of the only session it allows

    def client(self, connection: Connection, integration: Integration | None,
               tuning: dict[str, Any]) -> Any:
        """The connection's client kept for the whole cycle (built on first use)."""
        client = self.clients.get(connection.pk)
        if client is None:
            client = build_client(connection, self.counter(connection), lambda: self.run_id,
                                  integration.pk if integration else None, tuning)
            try:
                self.hold_seat(connection, client)
            except TransientError:
                _close(client)
                raise
            release_leftover_session(client, connection, self)
            self.clients[connection.pk] = client
        return client

    def close(self) -> None:
        """End of the cycle: close every kept client (a seat-holding session is logged off), then
        give the seats back."""
        clients, self.clients = list(self.clients.values()), {}
        for client in reversed(clients):
            _close(client)
        for connection_id in list(self.seats):
            self.release_seat(connection_id)

    def hold_seat(self, connection: Connection, client: Any) -> bool:
        """Wait for the connection's only session when its system allows one (SYSPRO's licence seat):
        another cycle of the same connection (another stream's schedule, a replay) may hold it. True
        when this call took it; a :class:`TransientError` once ``SYNC_SEAT_WAIT_SECONDS`` have passed,
        so the run is retried by its next schedule instead of failing for a seat."""
        if not getattr(client, "holds_seat", False) or connection.pk in self.seats:
            return False
        deadline = time.monotonic() + settings.SYNC_SEAT_WAIT_SECONDS
        while (token := locks.claim_seat(connection.pk)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                label = system_label(connection.system)
                raise TransientError(
                    f"{label} allows this connection one session (a licence seat), and another run of "
                    f"{connection.name} is using it: this run stopped and is retried by its next schedule",
                    code="seat_busy")
            time.sleep(min(1.0, left))
        self.seats[connection.pk] = token
        return True

    def renew_seats(self) -> None:
        for connection_id, token in self.seats.items():
            locks.renew_seat(connection_id, token)

    def release_seat(self, connection_id: int) -> None:
        token = self.seats.pop(connection_id, None)
        if token:
            locks.release_seat(connection_id, token)

    def counter(self, connection: Connection) -> CallCounter:
        counter = self.counters.get(connection.pk)
        if counter is None:
            counter = CallCounter(budget=call_budget(connection, self.integration), label=connection.name)
            self.counters[connection.pk] = counter
        return counter

    @property
    def calls(self) -> int:
        return sum(counter.calls for counter in self.counters.values())

    @property
    def exhausted(self) -> bool:
        return any(counter.exhausted for counter in self.counters.values())

    def usage(self) -> dict[str, dict[str, int]]:
        """Calls and budget per connection, as the console shows them."""
        return {counter.label: {"calls": counter.calls, "budget": counter.budget} for counter in self.counters.values()}


def call_budget(connection: Connection, integration: Integration | None) -> int:
    """The connection's budget per cycle: its own setting, else the integration's, else its system's
    declared default (Sage 300: 1500), else the portal's default."""
    for source in ((connection.settings or {}), (integration.settings if integration else None) or {}):
        value = source.get("call_budget")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    declared = schema_for(connection.system)
    for setting in (declared.settings if declared else ()):
        if setting.name == "call_budget" and setting.default:
            return int(setting.default)
    return int(settings.SYNC_CALL_BUDGET or 0)


def _close(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - closing must not hide the run's own outcome
        logger.warning("closing the %s client failed", type(client).__name__, exc_info=True)


def release_leftover_session(client: Any, connection: Connection, cycle: Cycle) -> None:
    """Log off a session a killed run left open (it holds a licence seat until SYSPRO's timeout).

    Only when no other run may be using the connection: no stream of any integration on it holds
    a live lock, but for this cycle's own. A session cannot tell whose it is, so while another run
    is alive its session is left alone (that run logs it off itself).
    """
    release = getattr(client, "release_leftover", None)
    if release is None:
        return
    stale = timezone.now() - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS)
    busy = (StreamState.objects.filter(Q(integration__source=connection) | Q(integration__target=connection))
            .exclude(lock_token="").filter(lock_heartbeat_at__gte=stale).exclude(pk__in=cycle.locked_states))
    if busy.exists():
        return
    try:
        release()
    except SyncError as exc:  # the cycle goes on; a seat still taken shows in its own errors
        logger.warning("could not log off a leftover session of %s: %s", connection.name, exc)


@contextmanager
def open_clients(*connections: Connection, cycle: Cycle, run_id: int | None = None,
                 integration: Integration | None = None) -> Iterator[list[Any]]:
    """Clients for ``connections``, closed at the end whatever happens: a client that holds a
    session seat ends it (SYSPRO's log-off) and every client releases its HTTP connections.

    A cycle that keeps its clients hands out the same ones to each of its streams and closes
    them itself, at its end (:meth:`Cycle.close`)."""
    tuning = {k: v for k, v in ((integration.settings if integration else None) or {}).items() if k in CLIENT_SETTINGS}
    if cycle.keep_clients:
        cycle.run_id = run_id
        yield [cycle.client(connection, integration, tuning) for connection in connections]
        return
    clients: list[Any] = []
    seats: list[int] = []
    try:
        for connection in connections:
            client = build_client(connection, cycle.counter(connection), run_id,
                                  integration.pk if integration else None, tuning)
            clients.append(client)
            if cycle.hold_seat(connection, client):
                seats.append(connection.pk)
            release_leftover_session(client, connection, cycle)
        yield clients
    finally:
        for client in reversed(clients):
            _close(client)
        for connection_id in seats:
            cycle.release_seat(connection_id)


@contextmanager
def stream_context(integration: Integration, cycle: Cycle, run_id: int | None = None,
                   force: bool = False) -> Iterator[StreamContext]:
    """What a run of one of the integration's streams needs; its clients are closed on exit."""
    with open_clients(integration.source, integration.target, cycle=cycle, run_id=run_id,
                      integration=integration) as (source, target):
        yield StreamContext(
            integration_settings=dict(integration.settings or {}),
            source=source,
            target=target,
            mappings=approved_mappings(integration),
            lineage=lineage_lookup(integration),
            written=written_lookup(integration),
            references=reference_lookup(integration),
            force=force,
            namespace=integration.source.source_namespace,
        )


def flag_connection(integration: Integration, stream: Any, phase: str, exc: SyncError) -> None:
    """A systemic error shows on the connection it came from (the side read, or the side written),
    and a refused credential marks it as needing re-authentication."""
    if exc.kind != "systemic":
        return
    reads_source = stream.reads == "source"
    side = integration.source_id if (phase == "read") == reads_source else integration.target_id
    fields: dict[str, Any] = {"last_error": str(exc)[:2000]}
    if isinstance(exc, AuthError):
        fields["needs_reauth"] = True
    Connection.objects.filter(pk=side).update(**fields)
