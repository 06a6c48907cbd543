"""Reference data, mapping suggestions, and the mapping gate.

Suggestions are scored source → target (:mod:`integrations.engine.suggest`): the same code, a
decision made elsewhere in the tenant, the same name, similar names. Only approved mappings reach
flows. Approving a mapping finds the records held for it; the caller re-queues them (a task, or
inline in tests and commands).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.engine.audit import audit, audit_event, audit_many
from integrations.engine.pages import Counts
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


def store_reference_page(integration: Integration, stream: ReferenceStream, items: list[RefItem]) -> Counts:
    """Upsert one page of reference rows in bulk."""
    side = Side.SOURCE if stream.reads == "source" else Side.TARGET
    counts = Counts(read=len(items))
    codes = [item.code for item in items]
    known = {
        row.code: row
        for row in ReferenceRecord.objects.filter(integration=integration, side=side, kind=stream.kind, code__in=codes)
    }
    new, changed = [], []
    for item in items:
        row = known.get(item.code)
        if row is None:
            new.append(ReferenceRecord(integration=integration, side=side, kind=stream.kind, code=item.code,
                                       label=item.label[:300], external_id=item.external_id, data=item.data))
        elif (row.label, row.external_id, row.data) != (item.label[:300], item.external_id, item.data):
            row.label, row.external_id, row.data = item.label[:300], item.external_id, item.data
            changed.append(row)
        else:
            counts.unchanged += 1
    ReferenceRecord.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        ReferenceRecord.objects.bulk_update(changed, ["label", "external_id", "data", "updated_at"])
    counts.created, counts.updated = len(new), len(changed)
    return counts


def target_kind(mapping: Mapping) -> str:
    """The target side's reference kind a mapping points at (a job type mapping points at GL accounts)."""
    return get_flow(mapping.integration.kind).mapping_kind(mapping.kind).target_kind


def refresh_suggestions(integration: Integration, reference_kind: str, actor: Any = None) -> int:
    """(Re)suggest targets for every mapping kind that reads reference rows of ``reference_kind``."""
    return sum(_refresh(integration, kind, actor)
               for kind in get_flow(integration.kind).mapping_kinds_reading(reference_kind))


REASON_OF = {"exact_code": MappingReason.EXACT_CODE, "learned": MappingReason.LEARNED,
             "name_match": MappingReason.NAME_MATCH, "fuzzy": MappingReason.FUZZY}
SUGGESTION_FIELDS = ("status", "reason", "target_code", "target_label", "target_external_id", "confidence",
                     "candidates")


def _refresh(integration: Integration, mapping_kind: MappingKind, actor: Any) -> int:
    """(Re)suggest a target for every source code of the mapping kind not yet decided by a person.

    Candidates are scored (:mod:`integrations.engine.suggest`); the best is suggested at or above
    the integration's ``suggest_at`` threshold, and the best three are kept for the review screen.
    What people decided for the same code in the tenant's other integrations counts: an approval
    is offered again, a rejected pair is never suggested again.
    """
    kind = mapping_kind.name
    sources = list(ReferenceRecord.objects.filter(integration=integration, side=Side.SOURCE,
                                                  kind=mapping_kind.source_kind))
    scorer = Scorer(Target(t.code, t.label, t.external_id) for t in ReferenceRecord.objects.filter(
        integration=integration, side=Side.TARGET, kind=mapping_kind.target_kind))
    threshold = int((integration.settings or {}).get("suggest_at") or SUGGEST_AT)
    learned, rejected = _decisions_elsewhere(integration, kind)
    existing = {m.source_code: m for m in Mapping.objects.filter(integration=integration, kind=kind)}
    new, changed = [], []
    for source in sources:
        mapping = existing.get(source.code)
        if mapping is not None and mapping.status in (MappingStatus.APPROVED, MappingStatus.REJECTED):
            continue
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
            new.append(Mapping(integration=integration, kind=kind, source_code=source.code,
                               source_label=source.label, **dict(zip(SUGGESTION_FIELDS, wanted, strict=True))))
        elif tuple(getattr(mapping, f) for f in SUGGESTION_FIELDS) + (mapping.source_label,) != (*wanted, source.label):
            for name, value in zip(SUGGESTION_FIELDS, wanted, strict=True):
                setattr(mapping, name, value)
            mapping.source_label = source.label
            changed.append(mapping)
    Mapping.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        Mapping.objects.bulk_update(changed, [*SUGGESTION_FIELDS, "source_label", "updated_at"])
    suggested = sum(1 for m in [*new, *changed] if m.status == MappingStatus.SUGGESTED)
    if new or changed:
        audit(integration.tenant_id, "mapping.suggested",
              f"{kind}: {suggested} suggestion(s), {len(new) + len(changed) - suggested} without a match",
              integration_id=integration.pk, actor=actor,
              detail={"kind": kind, "suggested": suggested, "changed": len(new) + len(changed)})
    return suggested


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
        rejected.setdefault(mapping.source_code, set()).update(mapping.rejected_targets or [])
        if mapping.status == MappingStatus.APPROVED and mapping.integration_id != integration.pk:
            learned.setdefault(mapping.source_code, (mapping.target_code, mapping.integration.name))
    return learned, {code: frozenset(codes) for code, codes in rejected.items()}


def held_for(integration_id: int, kind: str, source_code: str):
    """Held records waiting for this mapping key."""
    return SyncRecord.objects.filter(
        integration_id=integration_id, status=RecordStatus.HELD, missing__contains=f"|{kind}:{source_code}|"
    )


@dataclass
class Decision:
    approved: int = 0
    rejected: int = 0
    released_ids: list[int] = field(default_factory=list)


def approve(mappings: list[Mapping], actor: Any = None, request_id: str = "") -> Decision:
    """Approve mappings that have a target; returns how many and which held records they release."""
    decision = Decision()
    now = timezone.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    events = []
    with transaction.atomic():
        for mapping in mappings:
            if not mapping.target_code or mapping.status == MappingStatus.APPROVED:
                continue
            mapping.status = MappingStatus.APPROVED
            mapping.decided_by = user
            mapping.decided_at = now
            mapping.save(update_fields=["status", "decided_by", "decided_at", "updated_at",
                                        "target_code", "target_label", "target_external_id", "reason"])
            released = list(held_for(mapping.integration_id, mapping.kind, mapping.source_code)
                            .values_list("pk", flat=True))
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
        audit_many(events)
    decision.released_ids = sorted(set(decision.released_ids))
    return decision


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
