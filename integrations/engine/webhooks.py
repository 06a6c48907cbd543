"""Pushed events: verified and stored before they are acknowledged, processed later.

:func:`receive` decides on one request (the system's receiver checks the signature), stores it
in the inbox, and answers at once; the sender's retries of an event already received are
acknowledged and never processed twice. :func:`process_pending` (a task, and the start of every
sync cycle) takes each waiting event as a hint: the records it names are read again from the
source and go through their stream like polled records, under the stream's lock, so the mapping
gate and idempotent writes apply. Polling stays the checkpoint: a lost webhook changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.engine import locks
from integrations.engine.audit import audit
from integrations.engine.context import Cycle, connection_spec, stream_context
from integrations.engine.pages import process_page
from integrations.flows import get_flow
from integrations.flows.base import RecordStream
from integrations.models import (
    Connection,
    Integration,
    RunStatus,
    StreamState,
    SyncRecord,
    SyncRun,
    Trigger,
    WebhookEvent,
)
from integrations.systems.errors import SyncError
from integrations.systems.registry import WEBHOOK_RECEIVERS
from integrations.systems.webhooks import Received


@dataclass
class Answer:
    status: int
    message: str
    event: WebhookEvent | None = None
    queue: bool = False


def receive(system: str, tenant_slug: str, connection_name: str, body: bytes, headers: Any) -> Answer:
    """Verify, store and acknowledge one pushed request (never processing it here)."""
    receiver = WEBHOOK_RECEIVERS.get(system)
    connection = (Connection.objects.select_related("tenant")
                  .filter(system=system, tenant__slug=tenant_slug, name=connection_name).first()) if receiver else None
    if connection is None:  # the same answer whether the tenant, the connection or the system is unknown
        return Answer(404, "No webhook receiver here.")
    verdict: Received = receiver(connection_spec(connection), body, headers)
    if not verdict.ok:
        event = WebhookEvent.objects.create(
            connection=connection, event_id=f"rejected:{uuid.uuid4().hex}", status=WebhookEvent.Status.REJECTED,
            signature_ok=False, reason=verdict.reason[:300],
            payload={"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        audit(connection.tenant_id, "webhook.rejected", f"Webhook to {connection.name} rejected: {verdict.reason}",
              connection_id=connection.pk, detail={"event": event.pk, "bytes": len(body)})
        return Answer(401, "Signature missing or wrong.", event)
    status = WebhookEvent.Status.FAILED if verdict.error else WebhookEvent.Status.RECEIVED
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                connection=connection, event_id=verdict.event_id, event_type=verdict.event_type,
                signature_ok=True, status=status, payload=verdict.payload, reason=verdict.error[:300],
                raw_body=body.decode("utf-8", errors="replace"))
    except IntegrityError:
        return Answer(200, "Already received.")
    audit(connection.tenant_id, "webhook.received",
          f"Webhook {verdict.event_type or 'event'} {verdict.event_id} received" +
          (f"; it cannot be processed: {verdict.error}" if verdict.error else ""),
          connection_id=connection.pk, detail={"event": event.pk, "event_type": verdict.event_type})
    return Answer(202 if not verdict.error else 200, "Received.", event, queue=not verdict.error)


@dataclass
class Processed:
    processed: int = 0
    waiting: int = 0  # left for later: their stream was busy
    runs: int = 0


def process_pending(connection_id: int, *, integration: Integration | None = None) -> Processed:
    """Process the connection's waiting events (of one integration's streams when given)."""
    result = Processed()
    events = list(WebhookEvent.objects.filter(connection_id=connection_id, status=WebhookEvent.Status.RECEIVED)
                  .order_by("received_at", "pk"))
    if not events:
        return result
    integrations = [integration] if integration else list(
        Integration.objects.select_related("source", "target", "tenant").filter(source_id=connection_id))
    # (integration, stream) → {source key: events naming it}
    wanted: dict[tuple[int, str], dict[str, list[WebhookEvent]]] = defaultdict(lambda: defaultdict(list))
    by_id = {i.pk: i for i in integrations}
    unclaimed = []
    for event in events:
        named = False
        for candidate in integrations:
            for stream, key in get_flow(candidate.kind).webhook_records(event.event_type, event.payload or {}):
                wanted[(candidate.pk, stream)][str(key)].append(event)
                named = True
        if not named:
            unclaimed.append(event)
    if unclaimed and integration is None:
        WebhookEvent.objects.filter(pk__in=[e.pk for e in unclaimed]).update(
            status=WebhookEvent.Status.PROCESSED, processed_at=timezone.now(),
            reason="No stream of this connection's integrations uses this event; polling covers it")
        result.processed += len(unclaimed)
    for (integration_id, stream_name), keys in wanted.items():
        done = _process_stream(by_id[integration_id], stream_name, keys)
        if done is None:
            result.waiting += sum(len(v) for v in keys.values())
        else:
            result.processed += done
            result.runs += 1
    return result


def _process_stream(integration: Integration, stream_name: str, keys: dict[str, list[WebhookEvent]]) -> int | None:
    """The named records read again and processed as one page, under the stream's lock."""
    stream = get_flow(integration.kind).stream(stream_name)
    if not isinstance(stream, RecordStream):
        return 0
    state, _ = StreamState.objects.get_or_create(integration=integration, stream=stream_name)
    token = locks.claim(state)
    if token is None:
        return None  # a run of the stream is in progress: the events wait for the next pass
    run = SyncRun.objects.create(integration=integration, stream=stream_name, trigger=Trigger.WEBHOOK,
                                 triggered_by="webhook")
    cycle = Cycle(integration)
    outcomes: dict[str, str] = {}
    try:
        with stream_context(integration, cycle, run.pk) as ctx:
            records = []
            for key in keys:
                record = stream.fetch_one(ctx, key)
                if record is None:
                    outcomes[key] = "No longer in the source; nothing to do"
                else:
                    records.append(record)
            if records:
                outcome = process_page(run, stream, ctx, records)
                outcome.counts.add_to(run)
                if outcome.systemic is not None:
                    raise outcome.systemic
        run.status = RunStatus.SUCCEEDED
    except SyncError as exc:
        run.status, run.error = RunStatus.FAILED, str(exc)[:4000]
    finally:
        run.api_calls = cycle.calls
        run.finished_at = timezone.now()
        run.save()
        locks.release(state, token)
    if run.status == RunStatus.FAILED:
        # Left waiting: the next pass (or the next poll) takes them up once the cause is fixed.
        return 0
    rows = dict(SyncRecord.objects.filter(integration=integration, stream=stream_name, source_key__in=list(keys))
                .order_by().values_list("source_key", "pk"))
    now = timezone.now()
    count = 0
    for key, named_by in keys.items():
        for event in named_by:
            event.status, event.processed_at = WebhookEvent.Status.PROCESSED, now
            event.record_id = rows.get(key)
            event.reason = outcomes.get(key, f"Processed in run {run.pk}")[:300]
            count += 1
    WebhookEvent.objects.bulk_update([e for named in keys.values() for e in named],
                                     ["status", "processed_at", "record", "reason"])
    return count
