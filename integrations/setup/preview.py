"""The first sync's preview: the first records of each stream exactly as they would be written.

A dry run: each record stream reads its first page and transforms its first records with the
mappings approved now. The payload shown is what the stream's ``write_page`` would be given;
``write_page`` itself is never called, so nothing reaches either system.
"""

from __future__ import annotations

import json
from typing import Any

from integrations.engine.audit import audit
from integrations.engine.context import Cycle, stream_context
from integrations.engine.runner import ensure_streams
from integrations.flows import get_flow
from integrations.flows.base import Checkpoint, RecordStream
from integrations.models import Integration
from integrations.setup.fitcheck import _pending_lineage, transform_outcome
from integrations.systems.errors import SyncError
from integrations.systems.registry import system_label

PER_STREAM = 3


def preview(integration: Integration, per_stream: int = PER_STREAM, actor: Any = None,
            request_id: str = "") -> list[dict[str, Any]]:
    """Per record stream: its first ``per_stream`` records and what the first sync would do with each."""
    flow = get_flow(integration.kind)
    enabled = {state.stream for state in ensure_streams(integration) if state.enabled}
    out: list[dict[str, Any]] = []
    cycle = Cycle(integration, keep_clients=True)
    try:
        with stream_context(integration, cycle) as ctx:
            ctx.lineage = _pending_lineage(ctx.lineage)
            for cls in flow.streams:
                stream = cls()
                if not isinstance(stream, RecordStream) or stream.name not in enabled:
                    continue
                reads, writes = ((integration.source, integration.target) if stream.reads == "source"
                                 else (integration.target, integration.source))
                part: dict[str, Any] = {"name": stream.name, "label": stream.label or stream.name.replace("_", " "),
                                        "from": system_label(reads.system), "to": system_label(writes.system), "records": []}
                try:
                    for page in stream.read(ctx, Checkpoint()):
                        records = list(page)[:per_stream]
                        stream.prepare_page(ctx, records)
                        for record in records:
                            outcome, detail = transform_outcome(stream, ctx, record)
                            part["records"].append({
                                "key": record.business_key or record.key, "outcome": outcome,
                                "payload": json.dumps(detail, indent=2, sort_keys=True, default=str)
                                if outcome == "written" else "",
                                "reason": ", ".join(detail) if outcome == "held" else
                                ("" if outcome == "written" else str(detail))})
                        break  # the first page is enough
                except SyncError as exc:
                    part["error"] = str(exc)
                out.append(part)
    finally:
        cycle.close()
    audit(integration.tenant_id, "integration.previewed",
          f"{integration.name}: first records previewed ({sum(len(p['records']) for p in out)} record(s), nothing written)",
          actor=actor, integration_id=integration.pk, request_id=request_id,
          detail={"streams": {p["name"]: len(p["records"]) for p in out}})
    return out
