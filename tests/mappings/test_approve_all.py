"""Approve every suggestion of an integration in one go (a fit check's or a first sync's), a chunk at a time."""

from __future__ import annotations

import math

from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.engine import mappings as engine
from integrations.engine.mappings import approve_all, held_for
from integrations.models import AuditEvent, Mapping, MappingStatus


def test_all_suggestions_are_approved_a_chunk_at_a_time_each_once_releasing_every_held_record(w, monkeypatch):
    monkeypatch.setattr(engine, "APPROVE_CHUNK", 2)
    suggested = Mapping.objects.filter(integration=w.acme, status=MappingStatus.SUGGESTED)
    every = list(suggested)
    with_target = [m for m in every if m.target_code]
    assert len(with_target) > 4, "the premise: more suggestions than two chunks"
    held = set()
    for mapping in with_target:
        held |= set(held_for(mapping.integration_id, mapping.kind, mapping.source_code).values_list("pk", flat=True))
    assert held, "the premise: some records wait for these codes"
    other = Mapping.objects.filter(integration=w.globex, status=MappingStatus.SUGGESTED).count()

    with CaptureQueriesContext(connection) as queries:
        decision = approve_all(suggested, actor="cli")

    assert decision.approved == len(with_target)
    assert decision.released_ids == sorted(held)
    approved = Mapping.objects.filter(pk__in=[m.pk for m in with_target], status=MappingStatus.APPROVED)
    assert approved.count() == len(with_target)
    assert AuditEvent.objects.filter(action="mapping.approved", actor_name="cli").count() == len(with_target)
    assert Mapping.objects.filter(integration=w.globex, status=MappingStatus.SUGGESTED).count() == other
    # read two at a time: one read per chunk, and one more that finds the last chunk was full
    reads = [q["sql"] for q in queries.captured_queries
             if q["sql"].startswith("SELECT") and 'FROM "integrations_mapping"' in q["sql"] and "LIMIT 2" in q["sql"]]
    assert len(reads) == math.ceil(len(every) / 2) + (len(every) % 2 == 0)
