"""The fit check: "add your credentials, ping your real systems, and see if we fit".

For one integration it runs both connection tests, then reads (never writes) both systems through
the clients a sync uses: every reference stream in full, and each record stream for a bounded
number of pages. Each record read is transformed as the first sync would, to see what would be
written, what would wait for a mapping and what would be refused. It reports, per stream, the
records that would move in a chosen period; reference data on each side with the mapping
suggestions; target tables, columns and roles; the calls a first full sync needs against each
connection's call budget and how many cycles that takes; what blocks; and a verdict.

Nothing is sent to either system but reads and sign-ins: no stream's ``write_page`` is called.
In the portal it keeps what it read of the reference data and the mapping suggestions (so they
can be approved straight away), stores the connection test reports, and audits the report.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.utils import timezone

from integrations.engine.audit import audit
from integrations.engine.checks import test_connection
from integrations.engine.context import Cycle, call_budget, stream_context
from integrations.engine.mappings import refresh_suggestions, store_reference_page
from integrations.engine.runner import ensure_streams
from integrations.flows import get_flow
from integrations.flows.base import (
    Checkpoint,
    Conflict,
    InvalidRecord,
    MappingLookup,
    NeedsMapping,
    RecordStream,
    ReferenceStream,
    SkipRecord,
    SourceRecord,
    Stream,
    StreamContext,
)
from integrations.models import Connection, Integration, Mapping, MappingStatus, ReferenceRecord, Side
from integrations.setup.words import advise, kind_label
from integrations.systems.errors import BudgetExhausted, SyncError
from integrations.systems.registry import schema_for, system_label

ACTION = "integration.fit_checked"
DEFAULT_MAX_PAGES = 50
MAX_LISTED = 200  # rows per list kept in a report (mappings, held codes): an audit detail stays small
# What a record refers to that the first sync writes before it (its supplier, its purchase order).
PENDING = "(written just before it)"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")

READY, MAPPINGS, BLOCKED = "ready", "ready_after_mappings", "blocked"


def fit_check(integration: Integration, *, since: date | None = None, max_pages: int = DEFAULT_MAX_PAGES,
              actor: Any = None, request_id: str = "") -> dict[str, Any]:
    """Run the fit check of ``integration``; return the report (JSON types), audited."""
    flow = get_flow(integration.kind)
    states = {state.stream: state for state in ensure_streams(integration)}
    report: dict[str, Any] = {
        "integration": {"id": integration.pk, "name": integration.name, "kind": integration.kind,
                        "label": flow.label, "tenant": integration.tenant.name},
        "at": timezone.now().isoformat(),
        "period": {"since": since.isoformat() if since else ""},
        "max_pages": max_pages,
        "connections": [], "tables": [], "roles": [], "streams": [], "reference": [], "mappings": [],
        "held_codes": [], "budget": [], "blockers": [],
    }
    for side, connection in (("source", integration.source), ("target", integration.target)):
        report["connections"].append(_connection_part(side, connection, actor))
    for part in report["connections"]:
        for line in part["checks"]:
            kind = line["check"].split(":", 1)[0]
            if kind in ("table", "column", "columns"):
                report["tables"].append({**line, "system": part["label"]})
            elif kind in ("role", "roles", "user"):
                report["roles"].append({**line, "system": part["label"]})
            if not line["ok"]:
                report["blockers"].append(line["text"])

    cycle = Cycle(integration, keep_clients=True)
    read_calls: Counter[int] = Counter()
    incomplete: set[int] = set()  # connections a bounded read (pages, budget) did not read to the end
    spent: set[int] = set()  # connections whose call budget the reads reached
    writes: list[tuple[RecordStream, int]] = []
    try:
        if not report["blockers"]:
            with stream_context(integration, cycle) as ctx:
                ctx.lineage = _pending_lineage(ctx.lineage)
                hopeful = _hopeful_lookup(integration)
                for cls in flow.streams:
                    stream = cls()
                    state = states.get(stream.name)
                    if state is not None and not state.enabled:
                        report["streams"].append(_stream_head(stream, flow_side(integration, stream)) | {"off": True})
                        continue
                    connection = integration.source if stream.reads == "source" else integration.target
                    counter = cycle.counter(connection)
                    before = counter.calls
                    part = _read_stream(integration, stream, ctx, hopeful, since, max_pages, actor)
                    read_calls[connection.pk] += counter.calls - before
                    part["calls"] = counter.calls - before
                    if not part["complete"]:
                        incomplete.add(connection.pk)
                    if part.get("budget_reached"):
                        spent.add(connection.pk)
                    report["streams"].append(part)
                    if part.get("error"):
                        report["blockers"].append(part["error"])
                        if part.get("stop"):
                            break
                    if isinstance(stream, RecordStream):
                        writes.append((stream, part["would_move"]))
                    if isinstance(stream, ReferenceStream):
                        hopeful = _hopeful_lookup(integration)  # new suggestions count for the next streams
    except SyncError as exc:
        report["blockers"].append(f"Could not open both connections for reading: {exc}")
    finally:
        cycle.close()

    report["reference"] = _reference_part(integration)
    report["mappings"], report["suggestions"] = _mappings_part(integration, flow)
    report["held_codes"] = _held_codes(report["streams"], integration)
    # blocked before reading: nothing to estimate the first sync from
    report["budget"] = _budget_part(integration, read_calls, writes, incomplete, spent) if report["streams"] else []
    report["api_calls"] = cycle.calls + sum(part.get("api_calls", 0) for part in report["connections"])
    report["verdict"] = verdict(report)
    audit(integration.tenant_id, ACTION, f"{integration.name}: {report['verdict']['text']}"[:2000], actor=actor,
          integration_id=integration.pk, request_id=request_id, detail={"report": report})
    return report


def flow_side(integration: Integration, stream: Stream) -> Connection:
    return integration.source if stream.reads == "source" else integration.target


def latest_report(integration: Integration) -> dict[str, Any] | None:
    """The last fit check of ``integration`` (from the audit trail, where each one is kept)."""
    from integrations.models import AuditEvent

    event = (AuditEvent.objects.filter(integration=integration, action=ACTION).order_by("-pk")
             .only("detail").first())
    return (event.detail or {}).get("report") if event else None


# --- the parts ---------------------------------------------------------------------------------------
def _connection_part(side: str, connection: Connection, actor: Any) -> dict[str, Any]:
    tested = test_connection(connection, actor=actor)
    checks = [{**advise(connection.system, line).as_json(), "ok": bool(line.get("ok"))} for line in tested["checks"]]
    return {"side": side, "name": connection.name, "system": connection.system, "label": system_label(connection.system),
            "ok": tested["ok"], "checks": checks, "api_calls": tested.get("api_calls", 0)}


def _stream_head(stream: Stream, connection: Connection) -> dict[str, Any]:
    return {"name": stream.name, "label": stream.label or stream.name.replace("_", " "),
            "reference": stream.is_reference, "reads": stream.reads, "system": system_label(connection.system),
            "kind": getattr(stream, "kind", ""), "read": 0, "pages": 0, "complete": False}


def _read_stream(integration: Integration, stream: Stream, ctx: StreamContext, hopeful: MappingLookup,
                 since: date | None, max_pages: int, actor: Any) -> dict[str, Any]:
    part = _stream_head(stream, flow_side(integration, stream))
    tally: Counter[str] = Counter()
    missing_now: Counter[str] = Counter()
    missing_after: Counter[str] = Counter()
    problems: list[str] = []
    try:
        for page in stream.read(ctx, Checkpoint()):
            part["pages"] += 1
            part["read"] += len(page)
            if isinstance(stream, ReferenceStream):
                store_reference_page(integration, stream, list(page))
            elif isinstance(stream, RecordStream):
                _transform_page(stream, ctx, hopeful, [r for r in page if _in_period(r, since)], tally,
                                missing_now, missing_after, problems)
            if part["pages"] >= max_pages:
                break
        else:
            part["complete"] = True
    except BudgetExhausted as exc:
        part["budget_reached"] = True
        part["note"] = f"Stopped reading at the call budget of one cycle ({exc}); the first sync continues there."
    except SyncError as exc:
        part["error"] = f"Could not read {part['label']} from {part['system']}: {exc}"
        part["stop"] = exc.kind == "systemic"
    if isinstance(stream, ReferenceStream) and part["pages"]:
        refresh_suggestions(integration, stream.kind, actor=actor)
    if isinstance(stream, RecordStream):
        part.update(
            in_period=sum(tally.values()),
            would_move=tally["written"] + tally["held"],
            written=tally["written"], held=tally["held"], held_after_suggestions=tally["held_after"],
            invalid=tally["invalid"], skipped=tally["skipped"], other=tally["other"],
            missing_now=dict(missing_now.most_common(MAX_LISTED)),
            missing_after=dict(missing_after.most_common(MAX_LISTED)),
            problems=problems[:20],
        )
    return part


def _in_period(record: SourceRecord, since: date | None) -> bool:
    """A record changed on or after ``since`` (a cursor that is not a date cannot tell: it counts)."""
    if since is None or not _DAY.match(record.cursor or ""):
        return True
    return record.cursor[:10] >= since.isoformat()


def transform_outcome(stream: RecordStream, ctx: StreamContext, record: SourceRecord) -> tuple[str, Any]:
    """What the first sync would do with one record: ("written", payload), ("held", missing keys),
    ("invalid" | "skipped" | "other", reason). Calls only ``transform``: nothing is written."""
    try:
        return "written", stream.transform(ctx, record)
    except NeedsMapping as exc:
        return "held", exc.missing
    except Conflict as exc:
        return "other", str(exc)
    except InvalidRecord as exc:
        return "invalid", str(exc)
    except SkipRecord as exc:
        return "skipped", str(exc)
    except SyncError as exc:
        return "other", str(exc)
    except (KeyError, ValueError, TypeError) as exc:  # a record that refers to one written just before it
        return "other", f"{type(exc).__name__}: {exc}"


def _transform_page(stream: RecordStream, ctx: StreamContext, hopeful: MappingLookup, records: list[SourceRecord],
                    tally: Counter[str], missing_now: Counter[str], missing_after: Counter[str],
                    problems: list[str]) -> None:
    if not records:
        return
    stream.prepare_page(ctx, records)
    approved = ctx.mappings
    for record in records:
        outcome, detail = transform_outcome(stream, ctx, record)
        if outcome == "held":
            missing_now.update(detail)
            ctx.mappings = hopeful
            try:
                after, after_detail = transform_outcome(stream, ctx, record)
            finally:
                ctx.mappings = approved
            if after == "held":
                tally["held_after"] += 1
                missing_after.update(after_detail)
        elif outcome == "written" and stream.mapping_kind:
            # a record this stream writes becomes its own mapping (a GL account pushed to the target):
            # what waits for it later in the first sync needs no person
            for lookup in (approved, hopeful):
                lookup.approved[(stream.mapping_kind, record.key)] = (PENDING, "")
        elif outcome in ("invalid", "other") and len(problems) < 20:
            problems.append(f"{record.business_key or record.key}: {detail}")
        tally[outcome] += 1


def _pending_lineage(real: Any) -> Any:
    """Lineage that answers for records not synced yet: the first sync writes them just before."""

    def lookup(stream: str, keys: Iterable[str]) -> dict[str, tuple[str, dict[str, str]]]:
        keys = list(keys)
        found = real(stream, keys)
        return {key: found.get(key) or (PENDING, {}) for key in keys}

    return lookup


def _hopeful_lookup(integration: Integration) -> MappingLookup:
    """The mappings as they would be once every suggestion is approved."""
    rows = Mapping.objects.filter(integration=integration, status__in=[MappingStatus.APPROVED, MappingStatus.SUGGESTED]
                                  ).exclude(target_code="").values_list("kind", "source_code", "target_code",
                                                                        "target_external_id")
    return MappingLookup({(kind, code): (target, ext) for kind, code, target, ext in rows})


def _reference_part(integration: Integration) -> list[dict[str, Any]]:
    rows = Counter(ReferenceRecord.objects.filter(integration=integration).values_list("side", "kind"))
    return [{"side": "your " + (system_label(integration.source.system) if side == Side.SOURCE
                                else system_label(integration.target.system)),
             "kind": kind_label(kind), "count": count} for (side, kind), count in sorted(rows.items())]


def _mappings_part(integration: Integration, flow: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    mappings = Mapping.objects.filter(integration=integration).order_by("kind", "source_code")
    counts = Counter(mappings.values_list("status", flat=True))
    listed = [{"kind": m.kind, "source_code": m.source_code, "source_label": m.source_label, "status": m.status,
               "target_code": m.target_code, "target_label": m.target_label, "reason": m.reason}
              for m in mappings.exclude(status=MappingStatus.APPROVED)[:MAX_LISTED]]
    return listed, {status: counts.get(status, 0) for status in MappingStatus.values}


def _held_codes(streams: list[dict[str, Any]], integration: Integration) -> list[dict[str, Any]]:
    """Each code records would wait for today, with what is suggested for it (or nothing: map by hand)."""
    waiting: Counter[str] = Counter()
    for part in streams:
        waiting.update(part.get("missing_now") or {})
    decided = {(m.kind, m.source_code): m for m in Mapping.objects.filter(integration=integration)}
    out = []
    for key, records in waiting.most_common(MAX_LISTED):
        kind, _, code = key.partition(":")
        mapping = decided.get((kind, code))
        out.append({"key": key, "kind": kind_label(kind), "code": code, "records": records,
                    "label": mapping.source_label if mapping else "",
                    "suggested": mapping.target_code if mapping and mapping.status == MappingStatus.SUGGESTED else "",
                    "suggested_label": mapping.target_label if mapping else "",
                    "status": mapping.status if mapping else "unknown"})
    return out


def _size(connection: Connection, integration: Integration, name: str) -> int | None:
    for source in (integration.settings or {}, connection.settings or {}):
        if isinstance(source.get(name), int):
            return int(source[name])
    schema = schema_for(connection.system)
    for setting in (schema.settings if schema else ()):
        if setting.name == name and setting.default:
            return int(setting.default)
    return None


def _budget_part(integration: Integration, read_calls: Counter[int], writes: list[tuple[RecordStream, int]],
                 incomplete: set[int], spent: set[int]) -> list[dict[str, Any]]:
    """Calls a first full sync needs per connection: the reads just made (sign-in included), and the writes
    (a batch per ``batch_size`` and a look-up per batch where the target has a batch API, else one
    call per record and a look-up per page). Where a read stopped before the end (the page bound, or
    the call budget, which the fit check honours too) the figures are lower bounds: ``at_least``."""
    out = []
    for side, connection in (("source", integration.source), ("target", integration.target)):
        write_calls = 0
        for stream, records in writes:
            if flow_side(integration, stream).pk == connection.pk or not records:
                continue  # a stream writes to the other side than it reads
            page = _size(connection, integration, "page_size") or 100
            batch = _size(connection, integration, "batch_size")
            write_calls += (2 * math.ceil(records / batch)) if batch else records + math.ceil(records / page)
        needed = read_calls.get(connection.pk, 0) + write_calls  # the reads include the sign-in
        budget = call_budget(connection, integration)
        if connection.pk in spent:  # the reads alone went past one cycle's budget
            needed = max(needed, budget + 1)
        out.append({"side": side, "connection": connection.name, "system": system_label(connection.system),
                    "read_calls": read_calls.get(connection.pk, 0), "write_calls": write_calls, "needed": needed,
                    "budget": budget, "cycles": math.ceil(needed / budget) if budget else 1,
                    # an unfinished read leaves both sides short: its reads here, its writes there
                    "at_least": bool(incomplete)})
    return out


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    if report["blockers"]:
        first = report["blockers"][0]
        more = f" (and {len(report['blockers']) - 1} more)" if len(report["blockers"]) > 1 else ""
        return {"status": BLOCKED, "text": f"Blocked by: {first}{more}", "mappings": 0}
    held = report["held_codes"]
    if held:
        by_hand = sum(1 for h in held if not h["suggested"] and h["status"] != MappingStatus.APPROVED)
        how = f" ({len(held) - by_hand} suggested, {by_hand} to map by hand)" if by_hand else " (all suggested)"
        return {"status": MAPPINGS, "mappings": len(held),
                "text": f"Ready after these {len(held)} mapping{'s' if len(held) != 1 else ''}{how}: "
                        + ", ".join(f"{h['kind']} {h['code']}" for h in held[:8]) + ("…" if len(held) > 8 else "")}
    return {"status": READY, "text": "Ready: every record read can be written as it is.", "mappings": 0}
