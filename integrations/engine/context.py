"""Building what a run needs: clients for both connections, approved mappings, lineage."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db.models import Q

from integrations.engine.audit import audit
from integrations.engine.tokens import ConnectionTokenStore
from integrations.flows.base import MappingLookup, StreamContext
from integrations.models import (
    Connection,
    ErrorClass,
    Integration,
    Mapping,
    MappingStatus,
    RecordStatus,
    SyncRecord,
)
from integrations.systems.http import CallCounter, HttpPolicy
from integrations.systems.registry import client_builder, schema_for
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


def build_client(connection: Connection, counter: CallCounter, run_id: int | None = None,
                 integration_id: int | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """A vendor client for ``connection`` whose notable events land in the audit trail."""

    def on_event(action: str, detail: dict[str, Any]) -> None:
        audit(connection.tenant_id, action, detail.get("reason") or detail.get("error") or "",
              connection_id=connection.pk, run_id=run_id, integration_id=integration_id, detail=detail)

    spec = connection_spec(connection)
    spec.settings.update({k: v for k, v in (overrides or {}).items() if v not in (None, "")})
    builder = client_builder(connection.system)
    return builder(spec, ConnectionTokenStore(connection), counter=counter, policy=http_policy(), on_event=on_event)


def approved_mappings(integration: Integration) -> MappingLookup:
    rows = Mapping.objects.filter(integration=integration, status=MappingStatus.APPROVED).values_list(
        "kind", "source_code", "target_code", "target_external_id"
    )
    return MappingLookup({(kind, code): (target, ext) for kind, code, target, ext in rows})


def lineage_lookup(integration: Integration):
    def lookup(stream: str, keys: Iterable[str]) -> dict[str, tuple[str, dict[str, str]]]:
        keys = list(set(keys))
        if not keys:
            return {}
        rows = SyncRecord.objects.filter(integration=integration, stream=stream, source_key__in=keys).exclude(
            target_id=""
        ).values_list("source_key", "target_id", "target_refs")
        return {key: (target, refs or {}) for key, target, refs in rows}

    return lookup


def written_lookup(integration: Integration):
    """What a stream wrote: which of ``target_ids`` it created, and whether any write of it is
    unaccounted for (attempted, no target id recorded: committed or not, we cannot tell)."""

    def lookup(stream: str, target_ids: Iterable[str]) -> tuple[set[str], bool]:
        records = SyncRecord.objects.filter(integration=integration, stream=stream)
        ids = list(set(target_ids))
        known = set(records.filter(target_id__in=ids).values_list("target_id", flat=True)) if ids else set()
        # a pending row (its run died) or a transient failure may have committed; a data or
        # systemic failure was refused, so it created nothing
        unaccounted = records.filter(target_id="", attempts__gt=0).filter(
            Q(status=RecordStatus.PENDING) | Q(status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT)
        ).exists()
        return known, unaccounted

    return lookup


class Cycle:
    """One sync cycle (a run of the integration, a scheduled run, a replay, a connection test).

    It owns one call counter per connection, with that connection's call budget, shared by every
    stream of the cycle: the budget is the connection's, per cycle, never the other side's.
    """

    def __init__(self, integration: Integration | None = None) -> None:
        self.integration = integration
        self.counters: dict[int, CallCounter] = {}

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


@contextmanager
def open_clients(*connections: Connection, cycle: Cycle, run_id: int | None = None,
                 integration: Integration | None = None) -> Iterator[list[Any]]:
    """Clients for ``connections``, closed at the end whatever happens: a client that holds a
    session seat ends it (SYSPRO's log-off) and every client releases its HTTP connections."""
    tuning = {k: v for k, v in ((integration.settings if integration else None) or {}).items() if k in CLIENT_SETTINGS}
    clients: list[Any] = []
    try:
        for connection in connections:
            clients.append(build_client(connection, cycle.counter(connection), run_id,
                                        integration.pk if integration else None, tuning))
        yield clients
    finally:
        for client in reversed(clients):
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's own outcome
                logger.warning("closing the %s client failed", type(client).__name__, exc_info=True)


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
            force=force,
            namespace=integration.source.source_namespace,
        )
