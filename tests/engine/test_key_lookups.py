"""A sync finds a page's records by their keys in the unique index, however many the integration holds.

``SyncRecord``'s default order (newest first) makes SQLite's planner read the integration's every
row off ``record_integration_time_idx`` rather than sort: a page's look-up that grows with the
integration (measured: 0.8 s of a 10,000-bill sync). The plans are read from SQLite itself.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.engine.context import written_lookup
from integrations.engine.mappings import approve
from integrations.engine.runner import run_integration
from integrations.models import ErrorClass, Mapping, MappingStatus, RecordStatus, SyncRecord

sqlite_plans = pytest.mark.skipif(connection.vendor != "sqlite", reason="the plans read are SQLite's")

KEY_LOOKUP = re.compile(r'FROM "integrations_syncrecord" .*"source_key" IN \(', re.S)


def _plans(sqls: list[str | tuple[str, tuple]]) -> list[tuple[str, str]]:
    plans = []
    with connection.cursor() as cursor:
        for sql in sqls:
            sql, params = sql if isinstance(sql, tuple) else (sql, ())
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plans.append((sql, " / ".join(row[3] for row in cursor.fetchall())))
    return plans


@sqlite_plans
def test_every_key_look_up_of_a_sync_uses_the_unique_key(integration):
    run_integration(integration)
    approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED)))
    SyncRecord.objects.update(source_hash="")  # every record read again is planned, not skipped
    with CaptureQueriesContext(connection) as captured:
        run_integration(integration)

    lookups = [q["sql"] for q in captured.captured_queries
               if q["sql"].startswith("SELECT") and KEY_LOOKUP.search(q["sql"])]
    assert len(lookups) >= 3, "the page plans' and the lineage's look-ups by key were made"
    for sql, plan in _plans(lookups):
        assert "record_integration_time_idx" not in plan and "SCAN" not in plan, (plan, sql[:300])
        assert "(integration_id=? AND stream=? AND source_key=?)" in plan, (plan, sql[:300])


@sqlite_plans
def test_a_sorted_look_up_by_key_is_what_reads_the_whole_integration(integration):
    """The premise of the test above: the same look-up in the default order takes the time index."""
    keys = ["1", "2", "3", "4", "5"]
    query = SyncRecord.objects.filter(integration=integration, stream="invoices", source_key__in=keys)
    sorted_plan, unsorted_plan = (plan for _, plan in _plans([query.query.sql_with_params(), query.order_by().query.sql_with_params()]))
    assert "record_integration_time_idx" in sorted_plan
    assert "source_key=?" in unsorted_plan


@sqlite_plans
def test_what_a_stream_wrote_is_found_by_target_id_and_by_status_not_by_walking_the_stream(integration):
    lookup = written_lookup(integration)
    with CaptureQueriesContext(connection) as captured:
        lookup("invoices", ["INV-1", "INV-2"])
    (_, by_target), (_, unaccounted) = _plans([q["sql"] for q in captured.captured_queries])
    assert "(integration_id=? AND target_id=?)" in by_target
    assert "(integration_id=? AND stream=? AND status=?)" in unaccounted


@pytest.mark.parametrize("status, error_class, target_id, attempts, expected", [
    (RecordStatus.PENDING, "", "", 1, True),
    (RecordStatus.FAILED, ErrorClass.TRANSIENT, "", 1, True),
    (RecordStatus.FAILED, ErrorClass.DATA, "", 1, False),
    (RecordStatus.PENDING, "", "", 0, False),
    (RecordStatus.PENDING, "", "INV-9", 1, False),
    (RecordStatus.SYNCED, "", "", 1, False),
])
def test_a_write_is_unaccounted_for_while_it_may_have_committed(integration, status, error_class, target_id,
                                                                  attempts, expected):
    SyncRecord.objects.create(integration=integration, stream="invoices", source_key="K1", status=status,
                              error_class=error_class, target_id=target_id, attempts=attempts)
    SyncRecord.objects.create(integration=integration, stream="suppliers", source_key="K2", target_id="INV-1")
    known, unaccounted = written_lookup(integration)("invoices", ["INV-1", "INV-9"])
    assert unaccounted is expected
    assert known == ({"INV-9"} if target_id else set()), "a target id another stream wrote is not this stream's"
