"""Mappings as CSV, the format finance teams keep in spreadsheets: export, and import as suggestions.

An import is checked line by line before anything is written; one bad line and nothing is
imported, each error naming its line ("line 7: target 69990 is not a known gl_account on the
target side"). Imported rows land as *suggestions* (reason "imported"): a person still approves
each one in the review, never the spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from integrations.engine.audit import audit_event, audit_many
from integrations.flows import get_flow
from integrations.models import (
    Integration,
    Mapping,
    MappingKind,
    MappingReason,
    MappingStatus,
    ReferenceRecord,
    Side,
)

COLUMNS = ("integration", "kind", "source_code", "source_label", "target_code", "target_label", "status",
           "confidence", "reason")
REQUIRED = ("kind", "source_code", "target_code")
MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024
# a spreadsheet runs a cell starting with one of these as a formula: exported with a leading quote
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _uncell(value: str | None) -> str:
    text = (value or "").strip()
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def reason_text(mapping: Mapping) -> str:
    if mapping.status == MappingStatus.IGNORED:
        return f"ignored: {mapping.ignore_reason}"
    best = (mapping.candidates or [None])[0]
    if best and best.get("code") == mapping.target_code and best.get("reason"):
        return str(best["reason"])
    return mapping.get_reason_display() if mapping.reason else ""


def write_csv(mappings: Iterable[Mapping], out: TextIO) -> int:
    """Write ``mappings`` (with their integration loaded) as CSV; returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for m in mappings:
        writer.writerow([_cell(v) for v in (
            m.integration.name, m.kind, m.source_code, m.source_label, m.target_code, m.target_label, m.status,
            "" if m.confidence is None else m.confidence, reason_text(m))])
        count += 1
    return count


def export_csv(queryset: QuerySet) -> str:
    buffer = io.StringIO()
    write_csv(queryset.select_related("integration").order_by("integration__name", "kind", "source_code")
              .iterator(chunk_size=2000), buffer)
    return buffer.getvalue()


@dataclass
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # rows without a target: nothing to suggest
    errors: list[LineError] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    def summary(self) -> str:
        if self.errors:
            return (f"Nothing imported: {len(self.errors)} line(s) need fixing. "
                    + "; ".join(str(e) for e in self.errors[:10]) + (" …" if len(self.errors) > 10 else ""))
        return (f"Imported {self.imported} suggestion(s) to review ({self.created} new, {self.updated} changed); "
                f"{self.unchanged} already so, {self.skipped} without a target skipped. "
                "Nothing was approved: approve them in the review.")

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped, "errors": [e.as_json() for e in self.errors]}


def _rows(text: str) -> tuple[list[tuple[int, dict[str, str]]], list[LineError]]:
    text = text.lstrip("\ufeff")  # Excel's UTF-8 byte order mark
    first = text.split("\n", 1)[0]
    # Excel in much of Europe writes ";"; a tab-separated paste is common too
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        return [], [LineError(1, f"the header must name the columns {', '.join(REQUIRED)} "
                                 f"(missing: {', '.join(missing)})")]
    reader.fieldnames = header
    rows = []
    for row in reader:
        if len(rows) >= MAX_ROWS:
            return [], [LineError(reader.line_num, f"more than {MAX_ROWS} rows: split the file")]
        if not any((value or "").strip() for key, value in row.items() if key):
            continue  # a blank line
        rows.append((reader.line_num, {key: _uncell(value if isinstance(value, str) else "")
                                       for key, value in row.items() if key}))
    return rows, []


def import_csv(text: str, integrations: Iterable[Integration], actor: Any = None, request_id: str = "",
               default: Integration | None = None) -> ImportResult:
    """Import suggestions from CSV ``text`` into ``integrations`` (those the person may import into).

    A row names its integration by name (or the column is left out and ``default`` is meant).
    Checked per line: the integration, the kind, the source code, the target code on the target
    side, a pair rejected before, a code approved to another target. All or nothing.
    """
    result = ImportResult()
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        result.errors.append(LineError(1, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it"))
        return result
    # by name, and by "tenant/name" for a person who may import into two tenants' same-named integrations
    named: dict[str, list[Integration]] = {}
    for integ in [*integrations, *([default] if default is not None else [])]:
        for key in (integ.name, f"{integ.tenant.slug}/{integ.name}"):
            if all(other.pk != integ.pk for other in named.setdefault(key, [])):
                named[key].append(integ)
    rows, errors = _rows(text)
    if errors:
        result.errors = errors
        return result
    targets: dict[tuple[int, str], dict[str, ReferenceRecord]] = {}
    existing: dict[int, dict[tuple[str, str], Mapping]] = {}
    seen: dict[tuple[int, str, str], int] = {}
    planned: list[tuple[Integration, Mapping | None, dict[str, Any]]] = []
    for line, row in rows:
        name = row.get("integration", "")
        found = named.get(name, []) if name else [default] if default is not None else []
        if len(found) != 1:
            result.errors.append(LineError(line, (
                f"{len(found)} integrations you may import into are named {name!r}: write it as tenant/name "
                f"({', '.join(f'{i.tenant.slug}/{i.name}' for i in found)})") if found else
                f"no integration named {name!r} that you may import into" if name else
                "the integration column is empty"))
            continue
        integration = found[0]
        kind, code, target_code = row.get("kind", ""), row.get("source_code", ""), row.get("target_code", "")
        flow = get_flow(integration.kind)
        kinds = [k.name for k in flow.mapping_kinds] or list(MappingKind.values)
        if kind not in kinds:
            result.errors.append(LineError(line, f"kind {kind!r} is not one of {', '.join(kinds)}"))
            continue
        if not code:
            result.errors.append(LineError(line, "source_code is empty"))
            continue
        key = (integration.pk, kind, code)
        if key in seen:
            result.errors.append(LineError(line, f"{kind} {code} is already given on line {seen[key]}"))
            continue
        seen[key] = line
        if not target_code:
            result.skipped += 1  # an export's unmapped rows come back as they left
            continue
        confidence = row.get("confidence", "")
        if confidence:
            try:
                confidence_value: int | None = int(float(confidence.rstrip("%")))
            except ValueError:
                confidence_value = -1
            if not 0 <= confidence_value <= 100:
                result.errors.append(LineError(line, f"confidence {confidence!r} is not a percentage 0-100"))
                continue
        else:
            confidence_value = None
        mappings = existing.get(integration.pk)
        if mappings is None:
            mappings = existing[integration.pk] = {
                (m.kind, m.source_code): m for m in Mapping.objects.filter(integration=integration)
                .select_related("integration")}
        mapping = mappings.get((kind, code))
        wanted_kind = flow.mapping_kind(kind).target_kind
        known = targets.get((integration.pk, wanted_kind))
        if known is None:
            known = targets[(integration.pk, wanted_kind)] = {
                r.code: r for r in ReferenceRecord.objects.filter(integration=integration, side=Side.TARGET,
                                                                  kind=wanted_kind).only("code", "label", "external_id")}
        target = known.get(target_code)
        if target is None:
            result.errors.append(LineError(line, f"target {target_code} is not a known {wanted_kind} on the target side"))
            continue
        if mapping is not None:
            if mapping.status == MappingStatus.APPROVED:
                if mapping.target_code == target_code:
                    result.unchanged += 1
                else:
                    result.errors.append(LineError(line, f"{kind} {code} is approved to {mapping.target_code}: "
                                                         "reject it in the review first to suggest another target"))
                continue
            if target_code in (mapping.rejected_targets or []):
                result.errors.append(LineError(line, f"{code} → {target_code} was rejected before, and is never "
                                                     "suggested again"))
                continue
            if mapping.status == MappingStatus.IGNORED:
                result.errors.append(LineError(line, f"{kind} {code} is marked as never needing a mapping "
                                                     f"({mapping.ignore_reason}): map it in the review instead"))
                continue
            if (mapping.status, mapping.target_code) == (MappingStatus.SUGGESTED, target_code):
                result.unchanged += 1  # already suggested so (an export coming back): its reason stands
                continue
        planned.append((integration, mapping, {
            "source_label": row.get("source_label", "")[:300], "target": target, "confidence": confidence_value,
            "kind": kind, "code": code}))
    if result.errors:
        return result
    _write(planned, result, actor, request_id)
    return result


def _write(planned: list[tuple[Integration, Mapping | None, dict[str, Any]]], result: ImportResult, actor: Any,
           request_id: str) -> None:
    new, changed = [], []
    now = timezone.now()
    by_integration: dict[int, tuple[Integration, list[str]]] = {}
    for integration, mapping, row in planned:
        target: ReferenceRecord = row["target"]
        fields = {"status": MappingStatus.SUGGESTED, "reason": MappingReason.IMPORTED, "target_code": target.code,
                  "target_label": target.label, "target_external_id": target.external_id,
                  "confidence": row["confidence"], "updated_at": now}
        if mapping is None:
            new.append(Mapping(integration=integration, kind=row["kind"], source_code=row["code"],
                               source_label=row["source_label"], **fields))
        else:
            for name, value in fields.items():
                setattr(mapping, name, value)
            changed.append(mapping)
        by_integration.setdefault(integration.pk, (integration, []))[1].append(f"{row['kind']}:{row['code']}"
                                                                               f"→{target.code}")
    with transaction.atomic():
        Mapping.objects.bulk_create(new, batch_size=500)
        Mapping.objects.bulk_update(changed, ["status", "reason", "target_code", "target_label",
                                              "target_external_id", "confidence", "updated_at"], batch_size=500)
        audit_many([
            audit_event(integration.tenant_id, "mapping.imported",
                        f"{len(pairs)} mapping suggestion(s) imported from CSV, to review",
                        actor=actor, integration_id=integration.pk, request_id=request_id,
                        detail={"count": len(pairs), "pairs": pairs[:200]})
            for integration, pairs in by_integration.values()
        ])
    result.created, result.updated = len(new), len(changed)

