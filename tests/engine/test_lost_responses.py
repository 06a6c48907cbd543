"""A response lost after ServiceNow committed the write never leads to a second invoice.

The simulator commits the batch and then drops the connection ("commit then drop"): the client
sees a connection reset, exactly like a timeout after the instance did the work.
"""

from __future__ import annotations

import pytest

from integrations.engine.runner import run_stream
from integrations.models import AuditEvent, ErrorClass, RecordStatus, RunStatus, SyncRecord
from integrations.sandbox.base import Faults
from tests.support import (
    INVOICE,
    INVOICE_LINE,
    assert_invoices_match_x3,
    make_failed_records_due,
    prepare_for_invoices,
    set_integration_settings,
    skey,
    source_key_counts,
)

pytestmark = pytest.mark.django_db

BATCH = "/api/now/v1/batch"


def batch_calls(sn_sim, since: int = 0) -> list:
    return [r for r in sn_sim.requests[since:] if r.path == BATCH]


def assert_each_record_points_at_its_servicenow_row(sn_sim) -> None:
    row_of = {skey(row): row["sys_id"] for row in sn_sim.rows(INVOICE)}
    records = SyncRecord.objects.filter(stream="invoices")
    assert records.count() == 60
    for record in records:
        assert record.status == RecordStatus.SYNCED
        assert record.target_id == row_of[record.source_key]


@pytest.fixture
def ready(integration):
    prepare_for_invoices(integration)
    set_integration_settings(integration, page_size=60)  # one page of invoices
    return integration


def test_a_lost_batch_response_is_recovered_in_the_same_run_by_looking_the_rows_up(ready, sn_sim, x3_sim):
    # seed 13: the first write's response is lost, every later one arrives
    sn_sim.set_faults(Faults(drop_rate=0.5, seed=13))
    before = len(sn_sim.requests)

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED and run.failed == 0
    sent = sn_sim.requests[before:]
    lookups = [r for r in sent if r.method == "GET" and r.path.endswith(f"/{INVOICE}")
               and "u_source_keyIN" in (r.param("sysparm_query") or "")]
    batches = batch_calls(sn_sim, before)
    assert len(batches) == 3, "headers (lost), headers again as updates, lines"
    assert len(lookups) == 1, "the page is looked up by source key before it is written again"
    assert sent.index(batches[0]) < sent.index(lookups[0]) < sent.index(batches[1])
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    assert_each_record_points_at_its_servicenow_row(sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_responses_lost_for_a_whole_run_leave_one_row_per_invoice_and_the_next_run_completes(ready, sn_sim,
                                                                                              x3_sim):
    sn_sim.set_faults(Faults(drop_rate=1.0))

    first = run_stream(ready, "invoices")

    assert first.failed == 60
    counts = source_key_counts(sn_sim, INVOICE)
    assert len(counts) == 60 and set(counts.values()) == {1}, "every header committed once, despite resends"
    failed = SyncRecord.objects.filter(stream="invoices", status=RecordStatus.FAILED)
    assert set(failed.values_list("error_class", flat=True)) == {ErrorClass.TRANSIENT}
    assert all(r.next_retry_at is not None and r.target_id == "" for r in failed)
    assert AuditEvent.objects.filter(action="record.failed", run_id=first.pk).count() == 60

    sn_sim.set_faults(Faults())
    make_failed_records_due(ready)
    second = run_stream(ready, "invoices")

    assert second.status == RunStatus.SUCCEEDED and second.failed == 0
    assert (second.created, second.updated) == (0, 60), "found by source key and updated, never created again"
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    assert set(source_key_counts(sn_sim, INVOICE_LINE).values()) == {1}
    assert_each_record_points_at_its_servicenow_row(sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)
    assert SyncRecord.objects.get(stream="invoices", source_key="PI00001").attempts == 2
