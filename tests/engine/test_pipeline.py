"""Writing a page while the next one is transformed (``RecordStream.pipelined``, ``SYNC_PIPELINE``).

The X3 invoices stream allows it. Pipelined or not, the same invoices land once each and the
checkpoint ends at the same place; a spent call budget or a refused write stops the run at the
same page with nothing of the next pages on disk; a record met again in the next page, while its
first write is in flight, is written again from its newer version and stays one row.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from decimal import Decimal

import pytest

from integrations.engine import pipeline, runner
from integrations.engine.runner import run_stream
from integrations.models import RecordStatus, RunStatus, StreamState, SyncRecord
from integrations.sandbox.base import SimResponse
from tests.support import (
    INVOICE,
    INVOICE_LINE,
    assert_invoices_match_x3,
    prepare_for_invoices,
    set_integration_settings,
    source_key_counts,
)


@pytest.fixture
def ready(integration):
    prepare_for_invoices(integration)
    set_integration_settings(integration, page_size=20)  # 60 invoices: three pages
    return integration


def _in_order(x3_sim) -> list[dict]:
    return sorted(x3_sim.records("PINVOICE"), key=lambda row: (row["UPDDATTIM"], row["NUM"]))


def _checkpoint(integration) -> tuple[str, bool]:
    checkpoint = StreamState.objects.get(integration=integration, stream="invoices").checkpoint
    return checkpoint["key"], checkpoint["complete"]


def _source_keys(batch) -> list[str]:
    """The source keys a ServiceNow Batch API request writes (its sub-requests' bodies are base64)."""
    bodies = [json.loads(base64.b64decode(sub["body"])) for sub in json.loads(batch.body)["rest_requests"]
              if sub.get("body")]
    return [body["u_source_key"] for body in bodies if "u_source_key" in body]


def _batch_posts(sn_sim, hold_seconds: float = 0.0) -> list[tuple[str, float, float]]:
    """Each ServiceNow batch POST: (its thread, when it came, when it was answered)."""
    seen: list[tuple[str, float, float]] = []
    handle = sn_sim.handle

    def recording(request):
        if request.method == "POST" and request.url.endswith("/batch"):
            began = time.monotonic()
            time.sleep(hold_seconds)
            answer = handle(request)
            seen.append((threading.current_thread().name, began, time.monotonic()))
            return answer
        return handle(request)

    sn_sim.handle = recording
    return seen


@pytest.mark.parametrize("pipelined", [True, False])
def test_the_same_invoices_land_once_and_the_checkpoint_ends_alike(ready, x3_sim, sn_sim, settings, pipelined):
    settings.SYNC_PIPELINE = pipelined
    settings.SYNC_WRITE_CONCURRENCY = 1  # a write's Batch API calls one after another, on the write's thread
    posts = _batch_posts(sn_sim)

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED and run.created == 60
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    assert set(source_key_counts(sn_sim, INVOICE_LINE).values()) == {1}
    assert_invoices_match_x3(x3_sim, sn_sim)
    assert set(SyncRecord.objects.filter(integration=ready, stream="invoices").values_list("status", flat=True)) == {
        RecordStatus.SYNCED}
    assert _checkpoint(ready) == (_in_order(x3_sim)[-1]["NUM"], True)
    threads = {name for name, _, _ in posts}
    assert threads == ({"background"} if pipelined else {threading.current_thread().name})


def test_the_next_page_is_transformed_while_this_one_is_written(ready, sn_sim, settings, monkeypatch):
    settings.SYNC_PIPELINE = True
    posts = _batch_posts(sn_sim, hold_seconds=0.3)  # ServiceNow takes its time with each batch
    planned: list[float] = []
    plan = pipeline.plan_page

    def timed(*args, **kwargs):  # a spy: the page is planned as before, and when is noted
        planned.append(time.monotonic())
        return plan(*args, **kwargs)

    monkeypatch.setattr(pipeline, "plan_page", timed)

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED and len(planned) == 3
    overlapped = [when for when in planned[1:] if any(began < when < answered for _, began, answered in posts)]
    assert overlapped, "pages 2 and 3 were planned while a batch of the page before was being written"


def test_the_next_pages_new_records_are_booked_while_this_one_is_written(ready, sn_sim, settings, monkeypatch):
    """So that the next write starts the moment this one is answered; a stop takes them back (the
    budget and refusal tests below find nothing of the next pages on disk)."""
    settings.SYNC_PIPELINE = True
    posts = _batch_posts(sn_sim, hold_seconds=0.3)
    booked: list[tuple[float, int]] = []
    book = pipeline.book_new_records

    def timed(run, stream, plan):  # a spy: the records are booked as before, and when is noted
        booked.append((time.monotonic(), sum(1 for row in plan.rows.values() if row.pk is None)))
        return book(run, stream, plan)

    monkeypatch.setattr(pipeline, "book_new_records", timed)

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED and run.created == 60
    assert [count for _, count in booked] == [20, 20], "pages 2 and 3, each while the page before was written"
    # each page is two batches (headers, lines): page k + 1 was booked before page k's lines were answered
    assert len(posts) == 6
    assert all(when < posts[2 * k + 1][2] for k, (when, _) in enumerate(booked))
    assert set(SyncRecord.objects.filter(integration=ready, stream="invoices").values_list("status", flat=True)) == {
        RecordStatus.SYNCED}


@pytest.mark.parametrize("pipelined", [True, False])
@pytest.mark.parametrize("budget", [4, 5])
def test_a_spent_budget_stops_at_the_same_page_with_nothing_of_the_next_ones_on_disk(ready, x3_sim, sn_sim,
                                                                                    settings, pipelined, budget):
    """ServiceNow calls of the cycle: the column check, page 1's look-up, headers and lines (4);
    with one more, page 2's headers go out and its lines do not: page 2 stays pending, to be looked
    up first. Pipelined, page 2 is planned early, but nothing of it is booked before its write may
    start, and page 3 never."""
    settings.SYNC_PIPELINE = pipelined
    target = ready.target
    target.settings = {**target.settings, "call_budget": budget}
    target.save()

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.PARTIAL, (run.error, run.call_usage)
    in_order = _in_order(x3_sim)
    rows = {row.source_key: row.status for row in SyncRecord.objects.filter(integration=ready, stream="invoices")}
    expected = {r["NUM"]: RecordStatus.SYNCED for r in in_order[:20]}
    if budget == 5:
        expected.update({r["NUM"]: RecordStatus.PENDING for r in in_order[20:40]})
    assert rows == expected
    assert _checkpoint(ready) == (in_order[19]["NUM"], False)

    for _ in range(5):  # each run is a cycle with its own budget
        if run_stream(ready, "invoices").status == RunStatus.SUCCEEDED:
            break
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1} and len(source_key_counts(sn_sim, INVOICE)) == 60
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_a_refused_write_starts_no_further_write_and_books_nothing_after_it(ready, x3_sim, sn_sim, settings):
    settings.SYNC_PIPELINE = True
    handle, batches = sn_sim.handle, []

    def refusing_after_the_first_page(request):
        if request.method == "POST" and request.url.endswith("/batch"):
            batches.append(request)
            if len(batches) > 2:  # page 1's headers and lines pass; page 2's headers are refused
                return SimResponse.json(401, {"error": {"message": "User Not Authenticated"}})
        return handle(request)

    sn_sim.handle = refusing_after_the_first_page

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.FAILED
    in_order = _in_order(x3_sim)
    sent = {key.rpartition(":")[2].partition("/")[0] for batch in batches for key in _source_keys(batch)}
    assert sent == {r["NUM"] for r in in_order[:40]}, "no write of page 3 after page 2 was refused"
    rows = {row.source_key: row.status for row in SyncRecord.objects.filter(integration=ready, stream="invoices")}
    assert {key for key, status in rows.items() if status == RecordStatus.SYNCED} == {r["NUM"] for r in in_order[:20]}
    assert set(rows) == {r["NUM"] for r in in_order[:40]}, "page 3 was never booked"
    assert _checkpoint(ready) == (in_order[19]["NUM"], False)
    assert not [t for t in threading.enumerate() if t.name == "background" and t.is_alive()]


def test_a_record_met_again_while_its_first_write_is_in_flight_stays_one_row(ready, x3_sim, sn_sim, settings):
    settings.SYNC_PIPELINE = True
    settings.SYNC_READ_AHEAD = False  # the change lands between the reads of pages 2 and 3
    in_order = _in_order(x3_sim)
    moved = in_order[25]["NUM"]  # on page 2
    handle, reads = x3_sim.handle, []

    def changing_after_page_two(request):
        answer = handle(request)
        if request.method == "GET" and "/PINVOICE" in request.url and "$key" not in request.url:
            reads.append(request.url)
            if len(reads) == 2:  # page 2 is read: the invoice changes, so page 3 has it again
                row = x3_sim.get("PINVOICE", moved)
                x3_sim.upsert("PINVOICE", {**row, "BPRVCR": "CHANGED-IN-FLIGHT",
                                           "UPDDATTIM": "2099-01-01T00:00:00Z"})
        return answer

    x3_sim.handle = changing_after_page_two

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED
    assert source_key_counts(sn_sim, INVOICE)[moved] == 1
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    staged = [row for row in sn_sim.rows(INVOICE) if row.get("supplier_invoice_number") == "CHANGED-IN-FLIGHT"]
    assert len(staged) == 1
    record = SyncRecord.objects.get(integration=ready, stream="invoices", source_key=moved)
    assert record.status == RecordStatus.SYNCED and record.attempts == 2
    assert Decimal(staged[0]["amount_invoiced"]) == Decimal(str(x3_sim.get("PINVOICE", moved)["AMTATI"]))


def test_a_page_larger_than_a_batch_is_written_in_parts_and_checkpointed_once(ready, x3_sim, sn_sim, settings):
    settings.SYNC_PIPELINE = True
    target = ready.target
    target.settings = {**target.settings, "batch_size": 8}  # a page of 20 invoices: parts of 8, 8 and 4
    target.save()
    posts = _batch_posts(sn_sim)
    moves = []
    save = runner._save_checkpoint

    def noting(state, token, checkpoint):  # a spy: every checkpoint, as it is saved
        moves.append(checkpoint.key)
        return save(state, token, checkpoint)

    planned = []
    plan = pipeline.plan_page

    def sizing(run, stream, ctx, records, **kwargs):  # a spy: the records of each part planned
        planned.append(records)
        return plan(run, stream, ctx, records, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "_save_checkpoint", noting)
        patch.setattr(pipeline, "plan_page", sizing)
        run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED and run.created == 60
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1} and len(source_key_counts(sn_sim, INVOICE)) == 60
    assert_invoices_match_x3(x3_sim, sn_sim)
    in_order = _in_order(x3_sim)
    assert {in_order[19]["NUM"], in_order[39]["NUM"], in_order[59]["NUM"]} <= set(moves)
    assert not set(moves) - {r["NUM"] for r in (in_order[19], in_order[39], in_order[59])}, "no checkpoint in a page"
    assert [len(part) for part in planned] == [8, 8, 4] * 3, "each page planned and written in three parts"
    assert {name for name, _, _ in posts} == {"background"}
