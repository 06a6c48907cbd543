"""Reference data, mapping suggestions, and the mapping gate.

Suggestions are scored source → target (:mod:`integrations.engine.suggest`): the same code, a
decision made elsewhere in the tenant, the same name, similar names. Only approved mappings reach
flows. Approving a mapping finds the records held for it; the caller re-queues them (a task, or
inline in tests and commands). A code that never needs a target is ignored, with a reason.

What waits for each code (held records, their money per currency) is kept on the mapping by
:func:`refresh_held`, so the review can be ordered by money held without reading a million
records on every page: only the held ones, and only when the held queue changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Count, DateTimeField, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.engine.audit import audit, audit_event, audit_many
from integrations.engine.bulk import Row, insert_many, new_instance, row_of, update_many
from integrations.engine.pages import Counts
from integrations.engine.reconcile import money_streams
from integrations.engine.suggest import SUGGEST_AT, Scorer, Target
from integrations.flows import get_flow
from integrations.flows.base import MappingKind, ReferenceStream, RefItem
from integrations.models import (
    Integration,
    Mapping,
    MappingReason,
    MappingStatus,
    RecordStatus,
    ReferenceRecord,
    Side,
    SyncRecord,
)
from integrations.models.mappings import HeldTally


def store_reference_page(integration: Integration, stream: ReferenceStream, items: list[RefItem]) -> Counts:
    """Upsert one page of reference rows in bulk (plain SQL rows: a chart of accounts or thousands
    of purchase orders read hourly need no model instance per row)."""
    side = Side.SOURCE if stream.reads == "source" else Side.TARGET
    counts = Counts(read=len(items))
    codes = [item.code for item in items]
    known = {
        code: (pk, (label, external_id, data))
        for pk, code, label, external_id, data in ReferenceRecord.objects.filter(
            integration=integration, side=side, kind=stream.kind, code__in=codes,
        ).values_list("pk", "code", "label", "external_id", "data")
    }
    new, changed = [], []
    for item in items:
        found = known.get(item.code)
        values = (item.label[:300], item.external_id, item.data)
        if found is None:
            new.append(row_of(ReferenceRecord, integration_id=integration.pk, side=side, kind=stream.kind,
                              code=item.code, label=values[0], external_id=values[1], data=values[2]))
        elif found[1] != values:
            changed.append(Row({"pk": found[0], "label": values[0], "external_id": values[1], "data": values[2],
                                "updated_at": None}))
        else:
            counts.unchanged += 1
    insert_many(ReferenceRecord, new, ignore_conflicts=True)  # a refresh running beside this one wrote it first
    update_many(ReferenceRecord, changed, ["label", "external_id", "data", "updated_at"])
    counts.created, counts.updated = len(new), len(changed)
    return counts


def target_kind(mapping: Mapping) -> str:
    """The target side's reference kind a mapping points at (a job type mapping points at GL accounts)."""
    return get_flow(mapping.integration.kind).mapping_kind(mapping.kind).target_kind


def refresh_suggestions(integration: Integration, reference_kind: str, actor: Any = None) -> int:
    """(Re)suggest targets for every mapping kind that reads reference rows of ``reference_kind``."""
    return sum(_refresh(integration, kind, actor)
               for kind in get_flow(integration.kind).mapping_kinds_reading(reference_kind))


# statuses a refresh of the suggestions leaves alone: a person decided them
KEPT = frozenset({MappingStatus.APPROVED, MappingStatus.REJECTED, MappingStatus.IGNORED})
REASON_OF = {"exact_code": MappingReason.EXACT_CODE, "learned": MappingReason.LEARNED,
             "name_match": MappingReason.NAME_MATCH, "fuzzy": MappingReason.FUZZY}
SUGGESTION_FIELDS = ("status", "reason", "target_code", "target_label", "target_external_id", "confidence",
                     "candidates")


class _Row(NamedTuple):
    """A source reference row as far as a kind matching by code and label reads it."""

    code: str
    label: str


# source codes refreshed at a time: the mappings, candidates and rows of one chunk are in memory,
# not those of every purchase order of a ledger (the targets they are scored against are)
REFRESH_CHUNK = 2000


def _refresh(integration: Integration, mapping_kind: MappingKind, actor: Any) -> int:
    """(Re)suggest a target for every source code of the mapping kind not yet decided by a person.

    Candidates are scored (:mod:`integrations.engine.suggest`); the best is suggested at or above
    the integration's ``suggest_at`` threshold, and the best three are kept for the review screen.
    What people decided for the same code in the tenant's other integrations counts: an approval
    is offered again, a rejected pair is never suggested again. Source codes are worked
    :data:`REFRESH_CHUNK` at a time.
    """
    kind = mapping_kind.name
    of_integration = ReferenceRecord.objects.filter(integration=integration)
    targets = of_integration.filter(side=Side.TARGET, kind=mapping_kind.target_kind).values_list(
        "code", "label", "external_id")
    # document numbers: each chunk reads only the targets of its own numbers (a ledger's purchase
    # orders are not all held to be matched); other kinds are scored against the whole list
    whole = None if mapping_kind.by_number else Scorer(Target(*row) for row in targets)
    threshold = int((integration.settings or {}).get("suggest_at") or SUGGEST_AT)
    learned, rejected = _decisions_elsewhere(integration, kind)
    suggested = touched = 0
    for sources in _source_chunks(of_integration.filter(side=Side.SOURCE, kind=mapping_kind.source_kind),
                                  mapping_kind):
        scorer = whole or _numbers_scorer(targets, [mapping_kind.match_of(source)[0] for source in sources]
                                          + [learned[source.code][0] for source in sources if source.code in learned])
        existing = {m.source_code: m for m in Mapping.objects.filter(
            integration=integration, kind=kind, source_code__in=[source.code for source in sources])}
        new, changed = [], []
        for source in sources:
            mapping = existing.get(source.code)
            if mapping is not None and (mapping.status in KEPT or mapping.reason == MappingReason.IMPORTED):
                continue  # a person's decision, or their spreadsheet's suggestion, stands
            # What the source row is matched by: its own code and label, or what the mapping kind says
            # (a GL account suggesting a cost center by its department segment).
            code, label = mapping_kind.match_of(source)
            taught, where = learned.get(source.code, ("", ""))
            candidates = scorer.candidates(code, label, learned=scorer.by_code.get(taught), learned_from=where,
                                           excluded=rejected.get(source.code, frozenset()))
            best = candidates[0] if candidates and candidates[0].score >= threshold else None
            wanted = (
                (MappingStatus.SUGGESTED, REASON_OF[best.how], best.code, best.label, best.external_id)
                if best else (MappingStatus.UNMAPPED, MappingReason.NONE, "", "", "")
            ) + (candidates[0].score if candidates else None, [c.as_json() for c in candidates])
            if mapping is None:
                new.append(new_instance(Mapping, integration_id=integration.pk, kind=kind, source_code=source.code,
                                        source_label=source.label, **dict(zip(SUGGESTION_FIELDS, wanted, strict=True))))
            elif tuple(getattr(mapping, f) for f in SUGGESTION_FIELDS) + (mapping.source_label,) != (*wanted, source.label):
                for name, value in zip(SUGGESTION_FIELDS, wanted, strict=True):
                    setattr(mapping, name, value)
                mapping.source_label = source.label
                changed.append(mapping)
        insert_many(Mapping, new, ignore_conflicts=True)  # a refresh running beside this one may have added some
        update_many(Mapping, changed, [*SUGGESTION_FIELDS, "source_label", "updated_at"])
        suggested += sum(1 for m in [*new, *changed] if m.status == MappingStatus.SUGGESTED)
        touched += len(new) + len(changed)
    if touched:
        audit(integration.tenant_id, "mapping.suggested",
              f"{kind}: {suggested} suggestion(s), {touched - suggested} without a match",
              integration_id=integration.pk, actor=actor,
              detail={"kind": kind, "suggested": suggested, "changed": touched})
    return suggested


def _numbers_scorer(targets: QuerySet, numbers: list[str]) -> Scorer:
    """A scorer of the targets with these numbers only (as written, or in upper or lower case)."""
    wanted = sorted({variant for number in numbers if number for variant in (number, number.upper(), number.lower())})
    return Scorer((Target(*row) for start in range(0, len(wanted), 500)
                   for row in targets.filter(code__in=wanted[start:start + 500])), fuzzy=False)


def _source_chunks(found: QuerySet, mapping_kind: MappingKind) -> Iterator[list[Any]]:
    """The source reference rows, :data:`REFRESH_CHUNK` at a time in id order: as plain values
    where they are only read (a chart or thousands of purchase orders), as models only when the
    mapping kind matches by more than code and label."""
    after = 0
    while True:
        chunk = found.filter(pk__gt=after).order_by("pk")
        rows = (list(chunk[:REFRESH_CHUNK]) if mapping_kind.match
                else list(chunk.values_list("pk", "code", "label")[:REFRESH_CHUNK]))
        if not rows:
            return
        after = rows[-1].pk if mapping_kind.match else rows[-1][0]
        yield rows if mapping_kind.match else [_Row(code, label) for _, code, label in rows]
        if len(rows) < REFRESH_CHUNK:
            return


def _decisions_elsewhere(integration: Integration, kind: str
                         ) -> tuple[dict[str, tuple[str, str]], dict[str, frozenset[str]]]:
    """Per source code: a target approved for it in another integration of the tenant (and where),
    and every target rejected for it anywhere in the tenant."""
    decided = (Mapping.objects.filter(integration__tenant_id=integration.tenant_id, kind=kind)
               .filter(Q(status=MappingStatus.APPROVED) | ~Q(rejected_targets=[])).select_related("integration")
               .only("source_code", "target_code", "status", "rejected_targets", "integration__name", "integration_id"))
    learned: dict[str, tuple[str, str]] = {}
    rejected: dict[str, set[str]] = {}
    for mapping in decided.iterator(chunk_size=2000):
        if mapping.rejected_targets:  # not an empty set for every approved code
            rejected.setdefault(mapping.source_code, set()).update(mapping.rejected_targets)
        if mapping.status == MappingStatus.APPROVED and mapping.integration_id != integration.pk:
            learned.setdefault(mapping.source_code, (mapping.target_code, mapping.integration.name))
    return learned, {code: frozenset(codes) for code, codes in rejected.items()}


def held_for(integration_id: int, kind: str, source_code: str):
    """Held records waiting for this mapping key."""
    return SyncRecord.objects.filter(
        integration_id=integration_id, status=RecordStatus.HELD, missing__contains=f"|{kind}:{source_code}|"
    )


RELEASED_KEPT = 1000
IGNORE_REASON_MIN = 3


@dataclass
class Decision:
    approved: int = 0
    rejected: int = 0
    ignored: int = 0
    released_ids: list[int] = field(default_factory=list)


def approve(mappings: list[Mapping], actor: Any = None, request_id: str = "") -> Decision:
    """Approve mappings that have a target; returns how many and which held records they release.

    Any number of mappings costs a fixed handful of queries: the held records they release are
    found in one pass over the integrations' held queue, and the mappings saved in bulk.
    """
    decision = Decision()
    now = timezone.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    chosen = [m for m in mappings if m.target_code and m.status != MappingStatus.APPROVED]
    events = []
    with transaction.atomic():
        released_by = _held_by_key(chosen)
        for mapping in chosen:
            released = released_by.get((mapping.integration_id, f"{mapping.kind}:{mapping.source_code}"), [])
            mapping.status = MappingStatus.APPROVED
            mapping.decided_by = user
            mapping.decided_at = now
            mapping.updated_at = now
            mapping.ignore_reason = ""
            mapping.released_records = released[:RELEASED_KEPT]  # the page follows their replay
            decision.approved += 1
            decision.released_ids.extend(released)
            events.append(audit_event(
                mapping.integration.tenant_id, "mapping.approved",
                f"{mapping.kind} {mapping.source_code} → {mapping.target_code} approved; "
                f"{len(released)} held record(s) released",
                actor=actor, integration_id=mapping.integration_id, request_id=request_id,
                detail={"kind": mapping.kind, "source": mapping.source_code, "target": mapping.target_code,
                        "reason": mapping.reason, "released": len(released)},
            ))
        _save_approved(chosen, user, now)
        audit_many(events)
    decision.released_ids = sorted(set(decision.released_ids))
    return decision


APPROVE_CHUNK = 2000
# what approve reads and writes of a mapping, and of its integration: not its candidates (a list of
# three scored rows) nor the integration's settings, decoded for every row of a chunk otherwise
APPROVE_READS = ("integration_id", "integration__tenant_id", "kind", "source_code", "status", "reason",
                 "target_code", "target_label", "target_external_id", "released_records")


def approve_all(mappings: QuerySet, actor: Any = None, request_id: str = "") -> Decision:
    """Approve every mapping ``mappings`` finds that has a target: "approve all suggestions" of a
    fit check or a first sync, which may be tens of thousands of purchase-order codes.

    All of them in one transaction, as :func:`approve` would, but read :data:`APPROVE_CHUNK` at a
    time in id order, so memory stays that of one chunk, however many there are.
    """
    total = Decision()
    after = 0
    with transaction.atomic():
        while True:
            chunk = list(mappings.filter(pk__gt=after).select_related("integration").only(*APPROVE_READS)
                         .order_by("pk")[:APPROVE_CHUNK])
            if not chunk:
                break
            after = chunk[-1].pk
            decision = approve(chunk, actor, request_id)
            total.approved += decision.approved
            total.released_ids.extend(decision.released_ids)
            if len(chunk) < APPROVE_CHUNK:
                break
    total.released_ids = sorted(set(total.released_ids))
    return total


APPROVED_FIELDS = ["status", "decided_by", "decided_at", "updated_at", "ignore_reason", "target_code", "target_label",
                   "target_external_id", "reason", "released_records"]


def _save_approved(chosen: list[Mapping], user: Any, now: datetime) -> None:
    """Save approved mappings in a few statements (Django's ``bulk_update`` spent seconds on a
    ``CASE WHEN`` per row and column). One mapping is saved whole: its target may have just been
    set (``map_manually``); many, chosen as they were read, get the decision in one ``UPDATE`` per
    500 and their released records by id."""
    if len(chosen) == 1:
        update_many(Mapping, chosen, APPROVED_FIELDS)
        return
    ids = [mapping.pk for mapping in chosen]
    for start in range(0, len(ids), 500):
        Mapping.objects.filter(pk__in=ids[start:start + 500]).update(
            status=MappingStatus.APPROVED, decided_by=user, decided_at=now, updated_at=now, ignore_reason="",
            released_records=[])
    update_many(Mapping, [mapping for mapping in chosen if mapping.released_records], ["released_records"])


def _held_by_key(mappings: list[Mapping]) -> dict[tuple[int, str], list[int]]:
    """(integration, "kind:code") -> the held records waiting for that key, in id order."""
    if len(mappings) == 1:  # one mapping: its own indexed look-up
        mapping = mappings[0]
        return {(mapping.integration_id, f"{mapping.kind}:{mapping.source_code}"): list(
            held_for(mapping.integration_id, mapping.kind, mapping.source_code).order_by("pk")
            .values_list("pk", flat=True))}
    wanted = {(m.integration_id, f"{m.kind}:{m.source_code}") for m in mappings}
    found: dict[tuple[int, str], list[int]] = {}
    held = (SyncRecord.objects.filter(integration_id__in={m.integration_id for m in mappings},
                                      status=RecordStatus.HELD).exclude(missing="")
            .order_by("pk").values_list("pk", "integration_id", "missing"))
    for pk, integration_id, missing in held.iterator(chunk_size=5000):
        for key in missing.split("|"):
            if (integration_id, key) in wanted:
                found.setdefault((integration_id, key), []).append(pk)
    return found


def reject(mappings: list[Mapping], actor: Any = None, request_id: str = "") -> Decision:
    decision = Decision()
    now = timezone.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    events = []
    with transaction.atomic():
        for mapping in mappings:
            mapping.status = MappingStatus.REJECTED
            mapping.decided_by = user
            mapping.decided_at = now
            if mapping.target_code:  # remembered for good: never suggested again, here or elsewhere
                mapping.rejected_targets = sorted({*(mapping.rejected_targets or []), mapping.target_code})
            mapping.save(update_fields=["status", "decided_by", "decided_at", "rejected_targets", "updated_at"])
            decision.rejected += 1
            events.append(audit_event(
                mapping.integration.tenant_id, "mapping.rejected",
                f"{mapping.kind} {mapping.source_code} → {mapping.target_code or '?'} rejected",
                actor=actor, integration_id=mapping.integration_id, request_id=request_id,
                detail={"kind": mapping.kind, "source": mapping.source_code, "target": mapping.target_code},
            ))
        audit_many(events)
    return decision


def map_manually(mapping: Mapping, target_code: str, actor: Any = None, request_id: str = "") -> Decision:
    """Point ``mapping`` at a target code read from the target side, and approve it."""
    kind = target_kind(mapping)
    target = ReferenceRecord.objects.filter(
        integration_id=mapping.integration_id, side=Side.TARGET, kind=kind, code=target_code
    ).first()
    if target is None:
        raise ValueError(f"{target_code!r} is not a known {kind} on the target side")
    mapping.target_code = target.code
    mapping.target_label = target.label
    mapping.target_external_id = target.external_id
    mapping.reason = MappingReason.MANUAL
    mapping.status = MappingStatus.SUGGESTED
    return approve([mapping], actor, request_id)


def ignore(mappings: list[Mapping], reason: str, actor: Any = None, request_id: str = "") -> Decision:
    """Mark codes that never need a mapping (a control account...), with the reason, audited.

    Their held records stay held (a flow still cannot code them); the review stops asking and
    says why. Mapping the code later (by hand, or approving a suggestion) undoes it.
    """
    reason = (reason or "").strip()
    if len(reason) < IGNORE_REASON_MIN:
        raise ValueError("Say why this code never needs a mapping (at least a few words).")
    decision = Decision()
    now = timezone.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    events = []
    with transaction.atomic():
        for mapping in mappings:
            if mapping.status in (MappingStatus.APPROVED, MappingStatus.IGNORED):
                continue  # an approved code is mapped; ignoring it would stop records that sync today
            mapping.status = MappingStatus.IGNORED
            mapping.ignore_reason = reason[:300]
            mapping.decided_by = user
            mapping.decided_at = now
            mapping.save(update_fields=["status", "ignore_reason", "decided_by", "decided_at", "updated_at"])
            decision.ignored += 1
            events.append(audit_event(
                mapping.integration.tenant_id, "mapping.ignored",
                f"{mapping.kind} {mapping.source_code} marked as never needing a mapping: {reason}",
                actor=actor, integration_id=mapping.integration_id, request_id=request_id,
                detail={"kind": mapping.kind, "source": mapping.source_code, "reason": reason,
                        "held": mapping.held_count},
            ))
        audit_many(events)
    return decision


# --- what waits for each code -----------------------------------------------------------------
@dataclass
class Held:
    """Held records waiting for one code (or a set of codes), and their money per currency."""

    records: int = 0
    documents: int = 0  # of them, money documents (invoices, bills) counted in ``money``
    still_waiting: int = 0  # of them, records that also wait for another code not decided with it
    money: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, currency: str | None, amount: Decimal | None) -> None:
        self.records += 1
        if amount is not None:
            self.documents += 1
            self.money[currency or ""] += amount

    @property
    def sort_amount(self) -> Decimal:
        # currencies added up as plain numbers: an order of magnitude to sort by, never shown
        return sum(self.money.values(), Decimal("0")).quantize(Decimal("0.01"))

    def money_json(self) -> dict[str, str]:
        return {currency: str(amount.quantize(Decimal("0.01"))) for currency, amount in sorted(self.money.items())}


@dataclass
class HeldRow:
    pk: int
    keys: list[str]
    currency: str | None
    amount: Decimal | None
    business_key: str
    updated_at: datetime


def held_rows(integration: Integration, keys: Iterable[str] | None = None) -> Iterator[HeldRow]:
    """The integration's held records (those waiting for ``keys`` when given), with their money.

    The money comes from the stream's :meth:`~integrations.flows.base.RecordStream.money` (streams
    that declare a ledger: invoices, bills); a record of another stream counts, without money.
    """
    streams = {stream.name: stream for stream in money_streams(integration)}
    source_settings = dict(integration.source.settings or {})
    rows = SyncRecord.objects.filter(integration=integration, status=RecordStatus.HELD)
    if keys is not None:
        wanted = Q()
        for key in keys:
            wanted |= Q(missing__contains=f"|{key}|")
        if not wanted:
            return
        rows = rows.filter(wanted)
    fields = ("pk", "stream", "missing", "business_key", "source_key", "updated_at", "source_snapshot")
    for pk, stream_name, missing, business_key, source_key, updated_at, snapshot in (
            rows.order_by().values_list(*fields).iterator(chunk_size=2000)):
        stream = streams.get(stream_name)
        try:
            money = stream.money(snapshot, source_settings) if stream and isinstance(snapshot, dict) and snapshot \
                else None
        except (ArithmeticError, KeyError, TypeError, ValueError):
            money = None  # a snapshot the stream cannot read counts as a record without an amount
        yield HeldRow(pk, [k for k in missing.split("|") if k], money.currency if money else None,
                      money.amount if money else None, business_key or source_key, updated_at)


def refresh_held(integration: Integration) -> int:
    """Recompute what waits for each of the integration's codes; returns the held records read.

    One pass over the held records only (the ``record_queue_idx`` range), never the whole table.
    """
    by_key: dict[str, Held] = defaultdict(Held)
    count, last = 0, None
    for row in held_rows(integration):
        count += 1
        last = row.updated_at if last is None or row.updated_at > last else last
        for key in row.keys:
            by_key[key].add(row.currency, row.amount)
    changed = []
    for mapping in Mapping.objects.filter(integration=integration).only(
            "kind", "source_code", "held_count", "held_documents", "held_money", "held_amount"):
        held = by_key.get(f"{mapping.kind}:{mapping.source_code}") or Held()
        wanted = (held.records, held.documents, held.money_json(), held.sort_amount)
        if (mapping.held_count, mapping.held_documents, mapping.held_money, mapping.held_amount) != wanted:
            mapping.held_count, mapping.held_documents, mapping.held_money, mapping.held_amount = wanted
            changed.append(mapping)
    Mapping.objects.bulk_update(changed, ["held_count", "held_documents", "held_money", "held_amount"],
                                batch_size=500)
    HeldTally.objects.update_or_create(integration=integration, defaults={"held": count, "last_change": last})
    return count


def with_held_signature(integrations: QuerySet) -> QuerySet:
    """Integrations annotated with their held queue's signature (how many records are held, and
    their latest change: ranges of ``record_queue_idx``) and the one their figures were computed at."""
    held = SyncRecord.objects.filter(integration=OuterRef("pk"), status=RecordStatus.HELD).order_by()
    return integrations.annotate(
        held_now=Coalesce(Subquery(held.values("integration").annotate(n=Count("pk")).values("n")[:1]), 0),
        held_last=Subquery(held.values("integration").annotate(t=Max("updated_at")).values("t")[:1],
                           output_field=DateTimeField()),
        tally_held=F("held_tally__held"), tally_last=F("held_tally__last_change"))


def held_is_stale(integration: Integration) -> bool:
    """For an integration from :func:`with_held_signature`: did its held queue change since its figures?"""
    return (integration.tally_held or 0, integration.tally_last) != (integration.held_now, integration.held_last)


def refresh_stale_held(integrations: QuerySet | Iterable[Integration]) -> list[int]:
    """Refresh the held figures of the integrations whose held queue changed since; returns their ids."""
    if not isinstance(integrations, QuerySet):
        integrations = Integration.objects.filter(pk__in=[i.pk for i in integrations]).select_related("source")
    stale = [i for i in with_held_signature(integrations) if held_is_stale(i)]
    for integration in stale:
        refresh_held(integration)
    return [i.pk for i in stale]


@dataclass
class Release:
    """What approving one mapping releases."""

    mapping: Mapping
    held: Held
    records: list[HeldRow] = field(default_factory=list)


def release_preview(mappings: list[Mapping], rows_kept: int = 0) -> tuple[list[Release], Held]:
    """Per mapping, the held records approving it releases and their money per currency; and the
    total over distinct records. A record waiting for another undecided code is replayed but
    held again: counted in ``Held.still_waiting``. ``rows_kept``: records listed per mapping."""
    by_integration: dict[int, list[Mapping]] = defaultdict(list)
    for mapping in mappings:
        by_integration[mapping.integration_id].append(mapping)
    releases = {(m.integration_id, f"{m.kind}:{m.source_code}"): Release(m, Held()) for m in mappings}
    total = Held()
    for integration_id, chosen in by_integration.items():
        integration = chosen[0].integration
        keys = {f"{m.kind}:{m.source_code}" for m in chosen}
        approved = {f"{kind}:{code}" for kind, code in Mapping.objects.filter(
            integration_id=integration_id, status=MappingStatus.APPROVED).values_list("kind", "source_code")}
        for row in held_rows(integration, keys):
            total.add(row.currency, row.amount)
            blocked = bool(set(row.keys) - keys - approved)
            total.still_waiting += blocked
            for key in set(row.keys) & keys:
                release = releases[(integration_id, key)]
                release.held.add(row.currency, row.amount)
                release.held.still_waiting += blocked
                if len(release.records) < rows_kept:
                    release.records.append(row)
    return list(releases.values()), total


@dataclass
class Progress:
    """How the records an approval released are doing since."""

    released: int
    synced: int
    held: int
    failed: int
    pending: int
    runs: list[int]


def release_progress(mapping: Mapping) -> Progress | None:
    """The replay of the records ``mapping``'s approval released: how many synced, and the runs."""
    ids = mapping.released_records or []
    if not ids:
        return None
    by_status = dict(SyncRecord.objects.filter(pk__in=ids).order_by().values_list("status")
                     .annotate(n=Count("pk")).values_list("status", "n"))
    runs = sorted({run for run in SyncRecord.objects.filter(pk__in=ids, last_run__isnull=False,
                                                            last_run__started_at__gte=mapping.decided_at)
                  .values_list("last_run", flat=True)}) if mapping.decided_at else []
    return Progress(released=len(ids), synced=by_status.get(RecordStatus.SYNCED, 0) + by_status.get(
        RecordStatus.SKIPPED, 0), held=by_status.get(RecordStatus.HELD, 0),
        failed=by_status.get(RecordStatus.FAILED, 0), pending=by_status.get(RecordStatus.PENDING, 0), runs=runs)


def money_text(money: dict[str, Any]) -> str:
    """``{"USD": "18420.55"}`` → ``USD 18,420.55``; several currencies apart, never added up."""
    return " · ".join(f"{currency or '?'} {Decimal(str(amount)):,.2f}" for currency, amount in sorted(money.items()))


def held_text(records: int, documents: int, money: dict[str, Any]) -> str:
    """``6 invoices · USD 18,420.55`` (and ``+ 2 other records`` that carry no amount)."""
    if not records:
        return ""
    parts = []
    if documents:
        parts.append(f"{documents} invoice{'s' if documents != 1 else ''}")
        if money:
            parts.append(money_text(money))
    others = records - documents
    if others:
        parts.append(f"{'+ ' if documents else ''}{others} {'other ' if documents else ''}"
                     f"record{'s' if others != 1 else ''}")
    return " · ".join(parts)
