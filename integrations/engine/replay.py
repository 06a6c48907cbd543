"""Replay: transform and write chosen records again, with current mappings and fresh data."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from integrations.engine import locks
from integrations.engine.audit import audit_event, audit_many
from integrations.engine.context import Cycle, flag_connection, stream_context
from integrations.engine.pages import process_page
from integrations.flows import get_flow
from integrations.flows.base import RecordStream, SourceRecord, StreamContext
from integrations.models import Integration, RunStatus, StreamState, SyncRecord, SyncRun, Trigger
from integrations.systems.errors import SyncError

CHUNK = 200


def source_records_for(stream: RecordStream, ctx: StreamContext, rows: list[SyncRecord]) -> list[SourceRecord]:
    """Fresh source data where the source can be re-read, else the stored snapshot."""
    records = []
    for row in rows:
        fresh = None
        try:
            fresh = stream.fetch_one(ctx, row.source_key)
        except SyncError:
            fresh = None  # the snapshot is still a faithful copy of what we read
        records.append(fresh or SourceRecord(row.source_key, row.source_cursor, row.source_snapshot, row.business_key))
    return records


@dataclass
class ReplayResult:
    replayed: int = 0
    synced: int = 0
    held: int = 0
    failed: int = 0
    busy: int = 0
    runs: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def replay_records(record_ids: list[int], *, actor: Any = None, reason: str = "", trigger: str = Trigger.REPLAY,
                   force: bool = True) -> ReplayResult:
    """Replay records, one run per (integration, stream), under the stream's lock."""
    result = ReplayResult()
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for pk, integration_id, stream in SyncRecord.objects.filter(pk__in=record_ids).values_list(
            "pk", "integration_id", "stream"):
        groups[(integration_id, stream)].append(pk)
    integrations = {integration.pk: integration for integration in Integration.objects.select_related(
        "source", "target", "tenant").filter(pk__in={integration_id for integration_id, _ in groups})}

    def in_flow_order(group: tuple[int, str]) -> tuple[int, int]:
        # a stream's dependencies come before it in its flow: replay them first, so a purchase
        # order replayed with its supplier finds the supplier written
        names = [cls.name for cls in get_flow(integrations[group[0]].kind).streams]
        return group[0], names.index(group[1]) if group[1] in names else len(names)

    for integration_id, stream_name in sorted(groups, key=in_flow_order):
        _replay_group(integrations[integration_id], stream_name, groups[(integration_id, stream_name)], actor, reason,
                      trigger, force, result)
    if integrations:
        from integrations.engine.mappings import refresh_stale_held  # mappings releases through replay

        refresh_stale_held(list(integrations.values()))  # what each code still holds
    return result


def _replay_group(integration: Integration, stream_name: str, ids: list[int], actor: Any, reason: str,
                  trigger: str, force: bool, result: ReplayResult) -> None:
    stream = get_flow(integration.kind).stream(stream_name)
    state, _ = StreamState.objects.get_or_create(integration=integration, stream=stream_name)
    actor_name = actor if isinstance(actor, str) else (actor.get_username() if actor else "system")
    run = SyncRun.objects.create(integration=integration, stream=stream_name, trigger=trigger,
                                 triggered_by=actor_name or "system")
    token = locks.claim(state)
    if token is None:
        run.status, run.error, run.finished_at = RunStatus.SKIPPED, "Stream busy; replay again later", timezone.now()
        run.save()
        result.busy += len(ids)
        return
    cycle = Cycle(integration)
    cycle.locked_states.add(state.pk)
    try:
        with stream_context(integration, cycle, run.pk, force=force) as ctx:
            _replay_rows(run, stream, ctx, ids, actor, reason, integration)
        run.status = RunStatus.SUCCEEDED
    except SyncError as exc:
        run.status, run.error = RunStatus.FAILED, str(exc)[:4000]
        result.errors.append(str(exc))
        # as in a run: a page's systemic error is the written side's (a read inside a transform, a write)
        flag_connection(integration, stream, "write", exc)
    finally:
        run.api_calls = cycle.calls
        run.finished_at = timezone.now()
        run.save()
        locks.release(state, token)
    result.runs.append(run.pk)
    result.replayed += run.read
    result.synced += run.created + run.updated + run.unchanged
    result.held += run.held
    result.failed += run.failed


def _replay_rows(run: SyncRun, stream: Any, ctx: Any, ids: list[int], actor: Any, reason: str,
                 integration: Integration) -> None:
    """Audit each record's replay, then transform and write them again, a chunk at a time."""
    rows = list(SyncRecord.objects.filter(pk__in=ids))
    audit_many([
        audit_event(integration.tenant_id, "record.replayed",
                    f"{row.business_key or row.source_key} replayed" + (f": {reason}" if reason else ""),
                    actor=actor, integration_id=integration.pk, record_id=row.pk, run_id=run.pk,
                    detail={"stream": stream.name, "previous_status": row.status, "reason": reason,
                            "attempt": row.attempts + 1})
        for row in rows
    ])
    for start in range(0, len(rows), CHUNK):
        page = source_records_for(stream, ctx, rows[start:start + CHUNK])
        outcome = process_page(run, stream, ctx, page, actor=actor, replay=True)
        outcome.counts.add_to(run)
        if outcome.systemic is not None:
            raise outcome.systemic
