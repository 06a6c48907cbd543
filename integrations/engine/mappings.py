"""Reference data, mapping suggestions, and the mapping gate.

Suggestions are made source → target by exact code first, then by name (case- and
space-insensitive). Only approved mappings reach flows. Approving a mapping finds the records
held for it; the caller re-queues them (a task, or inline in tests and commands).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.engine.audit import audit, audit_event, audit_many
from integrations.engine.pages import Counts
from integrations.flows.base import ReferenceStream, RefItem
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


def _norm(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", label.lower()).strip()


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


def refresh_suggestions(integration: Integration, kind: str, actor: Any = None) -> int:
    """(Re)suggest a target for every source code of ``kind`` not yet decided by a person."""
    sources = list(ReferenceRecord.objects.filter(integration=integration, side=Side.SOURCE, kind=kind))
    targets = list(ReferenceRecord.objects.filter(integration=integration, side=Side.TARGET, kind=kind))
    by_code = {t.code: t for t in targets}
    by_name: dict[str, ReferenceRecord] = {}
    for target in targets:
        by_name.setdefault(_norm(target.label), target)
    existing = {m.source_code: m for m in Mapping.objects.filter(integration=integration, kind=kind)}
    new, changed = [], []
    for source in sources:
        # A source row may name what it is matched by when its own code is not that (a GL
        # account suggesting a cost center by its department segment): ``data["match_code"]``
        # and ``data["match_label"]``.
        data = source.data if isinstance(source.data, dict) else {}
        code, label = data.get("match_code") or source.code, data.get("match_label") or source.label
        match, reason = by_code.get(code), MappingReason.EXACT_CODE
        if match is None and label:
            match, reason = by_name.get(_norm(label)), MappingReason.NAME_MATCH
        mapping = existing.get(source.code)
        if mapping is not None and mapping.status in (MappingStatus.APPROVED, MappingStatus.REJECTED):
            continue
        wanted = (
            (MappingStatus.SUGGESTED, reason, match.code, match.label, match.external_id)
            if match else (MappingStatus.UNMAPPED, MappingReason.NONE, "", "", "")
        )
        if mapping is None:
            new.append(Mapping(integration=integration, kind=kind, source_code=source.code,
                               source_label=source.label, status=wanted[0], reason=wanted[1],
                               target_code=wanted[2], target_label=wanted[3], target_external_id=wanted[4]))
        elif (mapping.status, mapping.reason, mapping.target_code, mapping.target_label,
              mapping.target_external_id, mapping.source_label) != (*wanted, source.label):
            (mapping.status, mapping.reason, mapping.target_code, mapping.target_label,
             mapping.target_external_id) = wanted
            mapping.source_label = source.label
            changed.append(mapping)
    Mapping.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        Mapping.objects.bulk_update(changed, ["status", "reason", "target_code", "target_label",
                                              "target_external_id", "source_label", "updated_at"])
    suggested = sum(1 for m in [*new, *changed] if m.status == MappingStatus.SUGGESTED)
    if new or changed:
        audit(integration.tenant_id, "mapping.suggested",
              f"{kind}: {suggested} suggestion(s), {len(new) + len(changed) - suggested} without a match",
              integration_id=integration.pk, actor=actor,
              detail={"kind": kind, "suggested": suggested, "changed": len(new) + len(changed)})
    return suggested


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
            mapping.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
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
    target = ReferenceRecord.objects.filter(
        integration_id=mapping.integration_id, side=Side.TARGET, kind=mapping.kind, code=target_code
    ).first()
    if target is None:
        raise ValueError(f"{target_code!r} is not a known {mapping.kind} on the target side")
    mapping.target_code = target.code
    mapping.target_label = target.label
    mapping.target_external_id = target.external_id
    mapping.reason = MappingReason.MANUAL
    mapping.status = MappingStatus.SUGGESTED
    return approve([mapping], actor, request_id)
