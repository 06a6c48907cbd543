"""Records sharing one update second across page boundaries all arrive, even when a run is cut short.

X3 stamps UPDDATTIM to the second, so a bulk change gives many records the same stamp. A run cut
short resumes strictly after its checkpoint's (second, key); a run after a finished one reads the
checkpoint's second again (``>=``) and skips the keys it remembers there (a bounded set).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from integrations.engine.runner import run_integration, run_stream
from integrations.flows import base
from integrations.flows.base import Checkpoint
from integrations.models import AuditEvent, RecordStatus, RunStatus, StreamState, SyncAttempt, SyncRecord
from tests.support import REFERENCE_STREAMS, SUPPLIER, set_integration_settings, source_key_counts

pytestmark = pytest.mark.django_db

BULK_SECOND = datetime(2026, 1, 6, 7, 30, 0, tzinfo=UTC)  # after every demo supplier
TIED = [f"TIE{n:03d}" for n in range(1, 24)]  # 23 suppliers in one second: more than three pages


@pytest.fixture
def tied(integration, x3_sim):
    template = x3_sim.get("BPSUPPLIER", "SUP001")
    for key in TIED:
        x3_sim.upsert("BPSUPPLIER", {**template, "BPSNUM": key, "BPSNAM": f"Bulk import {key}",
                                     "UPDDATTIM": BULK_SECOND})
    run_integration(integration, streams=REFERENCE_STREAMS)
    set_integration_settings(integration, page_size=7)  # splits the demo's 5-per-second groups too
    return integration


def all_suppliers(x3_sim) -> list[str]:
    return sorted(s["BPSNUM"] for s in x3_sim.records("BPSUPPLIER"))


def assert_each_supplier_written_exactly_once(x3_sim, sn_sim) -> None:
    counts = source_key_counts(sn_sim, SUPPLIER)
    assert sorted(counts) == all_suppliers(x3_sim), "nothing lost"
    assert set(counts.values()) == {1}, "nothing doubled"
    assert {row["sys_mod_count"] for row in sn_sim.rows(SUPPLIER)} == {"0"}, "not even rewritten"
    attempts = Counter(SyncAttempt.objects.filter(record__stream="suppliers").values_list("record__source_key",
                                                                                         flat=True))
    assert sorted(attempts) == all_suppliers(x3_sim) and set(attempts.values()) == {1}


def test_records_sharing_one_second_across_page_boundaries_all_arrive_once(tied, x3_sim, sn_sim):
    run = run_stream(tied, "suppliers")

    assert run.status == RunStatus.SUCCEEDED
    assert run.read == 48 and run.created == 48
    assert_each_supplier_written_exactly_once(x3_sim, sn_sim)
    state = StreamState.objects.get(integration=tied, stream="suppliers")
    assert state.cursor == "2026-01-06T07:30:00Z"
    checkpoint = Checkpoint.from_json(state.checkpoint)
    assert (checkpoint.cursor, checkpoint.key, checkpoint.complete) == ("2026-01-06T07:30:00Z", TIED[-1], True)
    assert list(checkpoint.seen) == TIED, "the checkpoint remembers the keys done at its second"


def test_a_run_cut_by_its_call_budget_is_partial_and_the_next_runs_resume_without_loss_or_doubles(
        tied, x3_sim, sn_sim):
    set_integration_settings(tied, page_size=7, call_budget=5)  # per connection and cycle
    runs, stopped_inside_the_bulk_second = [], False
    for _ in range(15):
        run = run_stream(tied, "suppliers")
        runs.append(run)
        state = StreamState.objects.get(integration=tied, stream="suppliers")
        if run.status != RunStatus.PARTIAL:
            break
        assert 5 <= run.api_calls <= 10, "each side stops at its own budget, before the call"
        assert state.resume["reason"] == "call budget reached" and state.resume["cursor"] == state.cursor
        assert AuditEvent.objects.get(action="run.finished", run_id=run.pk).detail["status"] == RunStatus.PARTIAL
        checkpoint = Checkpoint.from_json(state.checkpoint)
        if checkpoint.cursor == "2026-01-06T07:30:00Z" and checkpoint.key != TIED[-1]:
            stopped_inside_the_bulk_second = True
            assert checkpoint.seek, "an unfinished read resumes after its last key"

    statuses = [r.status for r in runs]
    assert statuses[-1] == RunStatus.SUCCEEDED, statuses
    assert statuses.count(RunStatus.PARTIAL) >= 1, "the budget really cut the work into several runs"
    assert stopped_inside_the_bulk_second, "at least one run stopped in the middle of the tied second"
    assert sum(r.created for r in runs) == 48 and sum(r.updated for r in runs) == 0
    assert_each_supplier_written_exactly_once(x3_sim, sn_sim)
    assert StreamState.objects.get(integration=tied, stream="suppliers").resume == {}


def test_a_record_stamped_later_in_the_watermark_second_is_still_picked_up(tied, x3_sim, sn_sim):
    run_stream(tied, "suppliers")
    template = x3_sim.get("BPSUPPLIER", "SUP001")
    x3_sim.upsert("BPSUPPLIER", {**template, "BPSNUM": "TIE000", "BPSNAM": "Late in the same second",
                                 "UPDDATTIM": BULK_SECOND})

    run = run_stream(tied, "suppliers")

    assert (run.created, run.updated) == (1, 0)
    assert source_key_counts(sn_sim, SUPPLIER)["TIE000"] == 1
    assert SyncRecord.objects.get(stream="suppliers", source_key="TIE000").status == RecordStatus.SYNCED
    seen = Checkpoint.from_json(StreamState.objects.get(integration=tied, stream="suppliers").checkpoint).seen
    assert list(seen) == sorted(["TIE000", *TIED])
    assert_each_supplier_written_exactly_once(x3_sim, sn_sim)


def test_the_budget_is_the_connections_and_the_other_side_does_not_spend_it(tied, x3_sim, sn_sim, settings):
    from django_q.models import Schedule

    settings.SYNC_CONTINUE_AFTER_SECONDS = 600
    x3 = tied.source
    x3.settings = {**x3.settings, "call_budget": 4}
    x3.save(update_fields=["settings"])
    run = run_stream(tied, "suppliers")

    assert run.status == RunStatus.PARTIAL
    assert f"{x3.name} used 4 of 4 calls" in run.error
    budgets = StreamState.objects.get(integration=tied, stream="suppliers").resume["budgets"]
    assert budgets[x3.name] == {"calls": 4, "budget": 4}
    assert budgets[tied.target.name]["budget"] == 0 and budgets[tied.target.name]["calls"] >= 1
    continuation = Schedule.objects.get(name__startswith=f"continue:{tied.uuid}:suppliers")
    assert continuation.func == "integrations.tasks.run_stream_task"
    assert continuation.schedule_type == Schedule.ONCE
    assert 590 <= (continuation.next_run - run.finished_at).total_seconds() <= 610
    assert AuditEvent.objects.filter(action="run.continuation_scheduled", integration_id=tied.pk).exists()

    while run.status == RunStatus.PARTIAL:  # what the continuations do
        run = run_stream(tied, "suppliers")
    assert_each_supplier_written_exactly_once(x3_sim, sn_sim)


def test_a_budget_too_small_to_pass_the_records_at_the_checkpoint_fails_with_what_to_change(tied, x3_sim, sn_sim):
    from django_q.models import Schedule

    set_integration_settings(tied, page_size=7, call_budget=3)
    runs = [run_stream(tied, "suppliers") for _ in range(5)]
    statuses = [r.status for r in runs]
    # 21 suppliers of one second are done; the X3 reads re-read their three pages and spend the budget
    assert RunStatus.FAILED in statuses, statuses
    failed = runs[statuses.index(RunStatus.FAILED)]
    assert failed.read == 0 and "Raise the connection's call budget or page size" in failed.error
    assert not Schedule.objects.filter(name__startswith="continue:", next_run__gt=failed.finished_at).exists()
    assert AuditEvent.objects.filter(action="run.budget_too_small", run_id=failed.pk).exists()


def test_a_continuation_downloads_nothing_it_already_processed(tied, x3_sim, sn_sim):
    """Cut inside the tied second, the next run asks X3 for what follows the last key, not the second."""
    set_integration_settings(tied, page_size=7, call_budget=5)
    first = run_stream(tied, "suppliers")
    assert first.status == RunStatus.PARTIAL
    checkpoint = Checkpoint.from_json(StreamState.objects.get(integration=tied, stream="suppliers").checkpoint)
    assert checkpoint.seek
    x3_sim.requests.clear()

    run_stream(tied, "suppliers")

    first_read = next(r for r in x3_sim.requests if "BPSUPPLIER" in r.path and r.param("where"))
    where = first_read.param("where")
    assert f"BPSNUM gt '{checkpoint.key}'" in where and "UPDDATTIM gt" in where, where
    read_again = SyncAttempt.objects.values_list("record__source_key", flat=True)
    assert set(Counter(read_again).values()) == {1}, "no record was processed twice"


def test_the_remembered_keys_stay_bounded_when_a_whole_second_is_one_bulk_change(tied, x3_sim, sn_sim, monkeypatch):
    monkeypatch.setattr(base, "MAX_SEEN_AT_CURSOR", 10)
    run = run_stream(tied, "suppliers")
    assert run.status == RunStatus.SUCCEEDED and run.created == 48
    checkpoint = Checkpoint.from_json(StreamState.objects.get(integration=tied, stream="suppliers").checkpoint)
    assert checkpoint.seen == (), "past the bound no key list is kept"

    again = run_stream(tied, "suppliers")  # the tied second is read again: recognised by hash, not written
    assert again.status == RunStatus.SUCCEEDED
    assert (again.created, again.updated, again.failed) == (0, 0, 0)
    assert again.unchanged == len(TIED) - 1, "all but the checkpoint's own record are compared by hash"
    assert_each_supplier_written_exactly_once(x3_sim, sn_sim)
