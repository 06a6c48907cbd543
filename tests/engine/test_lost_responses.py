"""A response lost after ServiceNow committed the write never leads to a second invoice.

The simulator commits the batch and then drops the connection ("commit then drop"): the client
sees a connection reset, exactly like a timeout after the instance did the work.
"""

from __future__ import annotations

import json

import pytest

from integrations.engine.runner import run_stream
from integrations.models import RecordStatus, RunStatus, SyncRecord
from integrations.sandbox.base import Faults
from tests.support import (
    INVOICE,
    INVOICE_LINE,
    assert_invoices_match_x3,
    prepare_for_invoices,
    set_integration_settings,
    skey,
    source_key_counts,
)

pytestmark = pytest.mark.django_db

BATCH = "/api/now/v1/batch"


def items_of(call) -> list[dict]:
    return json.loads(call.body)["rest_requests"]


def items_written(calls, table: str) -> int:
    return sum(1 for call in calls for item in items_of(call) if f"/{table}?" in item["url"] or
               f"/{table}/" in item["url"])


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
    assert len(lookups) == 1, "the page is looked up by source key before it is written again"
    assert sent.index(batches[0]) < sent.index(lookups[0]) < sent.index(batches[1])
    # the headers found holding what was sent are not written again: every later call writes lines
    assert items_written(batches, INVOICE) == 60
    assert all(f"/{INVOICE}?" not in json.dumps(items_of(call)) for call in batches[1:])
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    assert_each_record_points_at_its_servicenow_row(sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_answers_lost_for_a_whole_run_are_verified_by_lookup_and_nothing_is_written_twice(ready, sn_sim,
                                                                                            x3_sim):
    # every write commits and its answer is lost: the rows are found holding what was sent
    sn_sim.set_faults(Faults(drop_rate=1.0))
    before = len(sn_sim.requests)

    first = run_stream(ready, "invoices")

    assert first.status == RunStatus.SUCCEEDED and first.failed == 0
    counts = source_key_counts(sn_sim, INVOICE)
    assert len(counts) == 60 and set(counts.values()) == {1}, "every header committed once"
    assert set(source_key_counts(sn_sim, INVOICE_LINE).values()) == {1}
    batches = batch_calls(sn_sim, before)
    assert items_written(batches, INVOICE) == 60, "no header sent twice"
    assert items_written(batches, INVOICE_LINE) == len(sn_sim.rows(INVOICE_LINE)), "no line sent twice"
    assert_each_record_points_at_its_servicenow_row(sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)

    sn_sim.set_faults(Faults())
    second = run_stream(ready, "invoices")
    assert (second.created, second.updated, second.failed) == (0, 0, 0)
    assert SyncRecord.objects.get(stream="invoices", source_key="PI00001").attempts == 1
