"""Month-end reconciliation: each money stream's documents of a period, counted and totalled on both sides.

The source side is what the portal recorded: every record of the stream whose snapshot's document
date (the stream's ``money``) falls in the period. The target side is read back by our source
identity (the stream's ``read_back``) through the target's client, with the integration's
connection, paging and call budget (:class:`Cycle`): reads only, nothing is ever written. Each
document on which the two disagree becomes a line with one reason (worst first):

- held / failed: the record is waiting for a mapping, or its last attempt failed;
- missing: no target row carries the record's identity;
- amount: the row's amount or currency is not the source's (both values kept);
- date: the row is dated in another period than its source document;
- extra: a row with our identity whose source record is unknown or voided, or a second row
  for one record.

The run is stored with its totals, per-day series and lines, audited
(``reconciliation.finished``), and never recomputed: reconciling again makes a new run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.engine.alerts import after_reconciliation as evaluate_alerts
from integrations.engine.audit import audit
from integrations.engine.context import Cycle, lineage_lookup, open_clients
from integrations.flows import get_flow
from integrations.flows.base import MappingLookup, Money, RecordStream, StreamContext, TargetDocument
from integrations.models import (
    DifferenceReason,
    Integration,
    MappingKind,
    Period,
    ReconciliationLine,
    ReconciliationRun,
    ReconciliationStatus,
    ReconciliationTrigger,
    RecordStatus,
    StreamState,
    SyncRecord,
)
from integrations.systems.errors import BudgetExhausted, SyncError

ZERO = Decimal("0")
KEYS_PER_QUERY = 500  # record keys per ``source_key IN (...)`` when target rows name records of other periods


def money_streams(integration: Integration) -> list[RecordStream]:
    """The integration's streams that declare a ledger (invoices, bills...), in flow order."""
    flow = get_flow(integration.kind)
    streams = [flow.stream(name) for name in flow.stream_names()]
    return [s for s in streams if isinstance(s, RecordStream) and s.ledger is not None]


def reconciles(integration: Integration) -> bool:
    return bool(money_streams(integration))


# --- one stream --------------------------------------------------------------------------------
@dataclass
class SourceDocument:
    """A record of the stream as the portal holds it, with the money its snapshot says."""

    record_id: int
    key: str
    business_key: str
    status: str
    missing: str
    error: str
    money: Money


@dataclass
class Side:
    """Count and total of one currency on one side, and per day."""

    count: int = 0
    amount: Decimal = ZERO
    by_day: dict[date, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def add(self, amount: Decimal | None, day: date | None, period: Period) -> None:
        self.count += 1
        self.amount += amount or ZERO
        if day in period:
            self.by_day[day] += amount or ZERO


@dataclass
class StreamResult:
    stream: RecordStream
    source: dict[str, Side] = field(default_factory=lambda: defaultdict(Side))
    target: dict[str, Side] = field(default_factory=lambda: defaultdict(Side))
    lines: list[ReconciliationLine] = field(default_factory=list)

    def difference(self, reason: str, *, source: SourceDocument | None = None, key: str = "",
                   target: TargetDocument | None = None, message: str = "") -> None:
        money = source.money if source else None
        self.lines.append(ReconciliationLine(
            stream=self.stream.name, reason=reason, record_id=source.record_id if source else None,
            source_key=(source.key if source else key)[:200],
            business_key=(source.business_key if source else (target.money.number if target else ""))[:200],
            supplier=((money.supplier if money else "") or "")[:200],
            currency=(money.currency if money else "")[:8], source_date=money.day if money else None,
            source_amount=money.amount if money else None,
            target_id=target.target_id[:200] if target else "",
            target_currency=target.money.currency[:8] if target else "",
            target_date=target.money.day if target else None,
            target_amount=target.money.amount if target else None,
            missing=source.missing if source and reason == DifferenceReason.HELD else "",
            message=message[:2000],
        ))


def _documents(rows: Iterable[tuple[Any, ...]], stream: RecordStream,
               source_settings: dict[str, Any]) -> Iterable[SourceDocument]:
    for pk, key, business_key, status, missing, error, snapshot in rows:
        money = stream.money(snapshot, source_settings) if isinstance(snapshot, dict) and snapshot else None
        if money is not None:
            yield SourceDocument(pk, key, business_key or key, status, missing, error, money)


RECORD_FIELDS = ("pk", "source_key", "business_key", "status", "missing", "error_message", "source_snapshot")


def source_documents(integration: Integration, stream: RecordStream, period: Period,
                     source_settings: dict[str, Any]) -> dict[str, SourceDocument]:
    """The stream's records whose document date is in the period.

    The date lives in the snapshot, as each source spells it, so every record of the stream is
    read (in chunks: memory holds the period's documents only).
    """
    rows = (SyncRecord.objects.filter(integration=integration, stream=stream.name).order_by()
            .values_list(*RECORD_FIELDS).iterator(chunk_size=1000))
    return {doc.key: doc for doc in _documents(rows, stream, source_settings) if doc.money.day in period}


def _records_named(integration: Integration, stream: RecordStream, keys: list[str],
                   source_settings: dict[str, Any]) -> tuple[dict[str, SourceDocument], set[str]]:
    """The records (of other periods) that target rows dated in this period name: their documents,
    and every key that has a record at all (one may have no document date or amount)."""
    documents: dict[str, SourceDocument] = {}
    recorded: set[str] = set()
    for start in range(0, len(keys), KEYS_PER_QUERY):
        rows = list(SyncRecord.objects.filter(integration=integration, stream=stream.name,
                                              source_key__in=keys[start:start + KEYS_PER_QUERY])
                    .order_by().values_list(*RECORD_FIELDS))
        recorded.update(row[1] for row in rows)
        documents.update((doc.key, doc) for doc in _documents(rows, stream, source_settings))
    return documents, recorded


def mapping_words(key: str) -> str:
    """``gl_account:61200`` as people say it: ``GL account 61200``."""
    kind, _, code = key.partition(":")
    label = dict(MappingKind.choices).get(kind, kind.replace("_", " "))
    return f"{label} {code}".strip()


VOIDED = "Voided where it came from, still here"
TWICE = "Entered twice: a second row for the same invoice"


def _same_money(source: Money, target: Money) -> bool:
    return source.currency == (target.currency or source.currency) and source.amount == target.amount


def reconcile_stream(integration: Integration, stream: RecordStream, ctx: StreamContext, period: Period,
                     source_settings: dict[str, Any]) -> StreamResult:
    result = StreamResult(stream)
    documents = source_documents(integration, stream, period, source_settings)
    by_key: dict[str, list[TargetDocument]] = defaultdict(list)
    for page in stream.read_back(ctx, period.first, period.last, sorted(documents)):
        for row in page:
            by_key[row.key].append(row)

    for key, doc in sorted(documents.items()):
        rows = by_key.pop(key, [])
        money = doc.money
        if money.void:
            for row in rows:
                result.difference(DifferenceReason.EXTRA, source=doc, target=row, message=VOIDED)
                result.target[row.money.currency or money.currency].add(row.money.amount, row.money.day or money.day,
                                                                          period)
            continue
        result.source[money.currency].add(money.amount, money.day, period)
        rows.sort(key=lambda row: not _same_money(money, row.money))  # of two rows, the right one matches
        match, *others = rows or [None]
        if match is not None:
            result.target[match.money.currency or money.currency].add(
                match.money.amount, match.money.day if match.money.day in period else money.day, period)
        if doc.status == RecordStatus.HELD:
            result.difference(DifferenceReason.HELD, source=doc, target=match,
                              message="Waiting for a mapping of " + ", ".join(
                                  mapping_words(k) for k in doc.missing.split("|") if k))
        elif doc.status == RecordStatus.FAILED:
            result.difference(DifferenceReason.FAILED, source=doc, target=match, message=doc.error)
        elif match is None:
            result.difference(DifferenceReason.MISSING, source=doc, message=(
                "Not sent yet: a sync is running or stopped before the end" if doc.status == RecordStatus.PENDING
                else ""))
        elif not _same_money(money, match.money):
            result.difference(DifferenceReason.AMOUNT, source=doc, target=match)
        elif match.money.day is not None and match.money.day != money.day and match.money.day not in period:
            result.difference(DifferenceReason.DATE, source=doc, target=match)
        for other in others:
            result.target[other.money.currency or money.currency].add(other.money.amount, other.money.day, period)
            result.difference(DifferenceReason.EXTRA, source=doc, target=other, message=TWICE)

    # Rows dated in the period whose record is not a document of the period.
    named, recorded = _records_named(integration, stream, sorted(by_key), source_settings)
    for key, rows in sorted(by_key.items()):
        doc = named.get(key)
        for row in rows:
            result.target[row.money.currency or (doc.money.currency if doc else "")].add(
                row.money.amount, row.money.day, period)
            if doc is not None and not doc.money.void and doc.money.day is not None:
                result.difference(DifferenceReason.DATE, source=doc, target=row,
                                  message=f"The invoice is dated {doc.money.day.isoformat()}, in another period")
                continue
            if doc is not None and doc.money.void:
                why = VOIDED
            elif key in recorded:
                why = "The invoice the portal read has no date or amount"
            else:
                why = "No invoice the portal read has this reference"
            result.difference(DifferenceReason.EXTRA, source=doc, key=key, target=row, message=why)
    return result


# --- a run ---------------------------------------------------------------------------------------
def _actor_name(actor: Any) -> str:
    if actor is None or isinstance(actor, str):
        return actor or "system"
    return actor.get_username()


def start(integration: Integration, period: Period, *, trigger: str = ReconciliationTrigger.MANUAL,
          actor: Any = None) -> ReconciliationRun:
    """The run's row, before anything is read (a queued run shows as running)."""
    return ReconciliationRun.objects.create(integration=integration, period_start=period.first,
                                            period_end=period.last, trigger=trigger,
                                            triggered_by=_actor_name(actor)[:150])


def reconcile(integration: Integration, period: Period, *, trigger: str = ReconciliationTrigger.MANUAL,
              actor: Any = None, request_id: str = "") -> ReconciliationRun:
    """Reconcile one integration over one period, now; returns the stored run (never raises SyncError)."""
    return execute(start(integration, period, trigger=trigger, actor=actor), actor=actor, request_id=request_id)


def _busy_streams(integration: Integration, names: list[str]) -> list[str]:
    stale = timezone.now() - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS)
    return list(StreamState.objects.filter(integration=integration, stream__in=names, lock_heartbeat_at__gte=stale)
                .exclude(lock_token="").values_list("stream", flat=True))


def execute(run: ReconciliationRun, *, actor: Any = None, request_id: str = "") -> ReconciliationRun:
    """Read both sides of ``run``'s period, store the totals and the difference lines, audit the verdict."""
    integration = Integration.objects.select_related("source", "target", "tenant").get(pk=run.integration_id)
    period = run.period
    streams = money_streams(integration)
    busy = _busy_streams(integration, [s.name for s in streams])
    cycle = Cycle(integration)
    results: list[StreamResult] = []
    try:
        if not streams:
            raise SyncError(f"{get_flow(integration.kind).label} has no money stream to reconcile")
        # Only the target is opened: the source side is what the portal recorded, so the ERP
        # (and its call budget, its licence seat) is not touched.
        with open_clients(integration.target, cycle=cycle, integration=integration) as (target,):
            ctx = StreamContext(integration_settings=dict(integration.settings or {}), source=None, target=target,
                                mappings=MappingLookup({}), lineage=lineage_lookup(integration),
                                namespace=integration.source.source_namespace)
            source_settings = dict(integration.source.settings or {})
            for stream in streams:
                results.append(reconcile_stream(integration, stream, ctx, period, source_settings))
    except SyncError as exc:
        # half a reconciliation is no verdict: what the streams before it found is not kept
        results = []
        run.status = ReconciliationStatus.ERROR
        run.error = (f"Call budget reached while reading back: {exc}" if isinstance(exc, BudgetExhausted)
                     else str(exc))[:4000]
    except Exception as exc:  # a bug: recorded on the run, then surfaced
        run.status = ReconciliationStatus.ERROR
        run.error = f"Unexpected error: {exc!r}"[:4000]
        _finish(run, [], cycle, busy, integration, actor, request_id)
        raise
    _finish(run, results, cycle, busy + _busy_streams(integration, [s.name for s in streams]), integration, actor,
            request_id)
    return run


def _money_text(value: Decimal) -> str:
    return format(value, "f")


def _totals(results: list[StreamResult]) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        for currency in sorted(set(result.source) | set(result.target)):
            source, target = result.source.get(currency, Side()), result.target.get(currency, Side())
            rows.append({"stream": result.stream.name, "label": result.stream.label, "currency": currency,
                         "source_count": source.count, "source_amount": _money_text(source.amount),
                         "target_count": target.count, "target_amount": _money_text(target.amount)})
    return rows


def _daily(results: list[StreamResult], period: Period) -> dict[str, dict[str, dict[str, list[str]]]]:
    daily: dict[str, dict[str, dict[str, list[str]]]] = {}
    for result in results:
        per_currency = {}
        for currency in sorted(set(result.source) | set(result.target)):
            source, target = result.source.get(currency, Side()), result.target.get(currency, Side())
            per_currency[currency] = {
                day.isoformat(): [_money_text(source.by_day.get(day, ZERO)), _money_text(target.by_day.get(day, ZERO))]
                for day in period.days() if day in source.by_day or day in target.by_day}
        daily[result.stream.name] = per_currency
    return daily


def _finish(run: ReconciliationRun, results: list[StreamResult], cycle: Cycle, busy: list[str],
            integration: Integration, actor: Any, request_id: str) -> None:
    lines = [line for result in results for line in result.lines]
    if run.status != ReconciliationStatus.ERROR:
        run.status = ReconciliationStatus.DIFFERENCES if lines else ReconciliationStatus.BALANCED
    run.differences = len(lines)
    run.totals = _totals(results)
    run.daily = _daily(results, run.period)
    run.warnings = [f"{name}: a sync was running while the figures were read; reconcile again once it is done"
                    for name in sorted(set(busy))]
    run.api_calls = cycle.calls
    run.call_usage = cycle.usage()
    run.finished_at = timezone.now()
    with transaction.atomic():
        for line in lines:
            line.run = run
        ReconciliationLine.objects.bulk_create(lines, batch_size=500)
        run.save()
        reasons: dict[str, int] = defaultdict(int)
        for line in lines:
            reasons[line.reason] += 1
        audit(integration.tenant_id, "reconciliation.finished",
              f"{integration.name} {run.period_label}: {run.verdict}", actor=actor, integration_id=integration.pk,
              request_id=request_id,
              detail={"reconciliation": run.pk, "period": [run.period_start.isoformat(), run.period_end.isoformat()],
                      "status": run.status, "verdict": run.verdict, "differences": dict(reasons),
                      "off_by": {c: _money_text(g) for c, g in run.off_by().items()}, "api_calls": run.api_calls,
                      "trigger": run.trigger})
    evaluate_alerts(run)  # after the commit: queues a "differences" alert, or its recovery
