"""Reading the next page while this one is written (``RecordStream.read_ahead``, ``SYNC_READ_AHEAD``).

The X3 invoices stream allows it: its page work calls ServiceNow only. Whether the next page is
read ahead or after, the same invoices land once each and the checkpoint ends at the same place;
with it on, the X3 reads of the stream come from the helper thread.
"""

from __future__ import annotations

import threading

import pytest

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


@pytest.fixture
def x3_threads(x3_sim):
    """The thread each X3 invoice page was asked from (seen at the simulator, the HTTP boundary)."""
    seen: list[str] = []
    handle = x3_sim.handle

    def recording(request):
        if request.method == "GET" and "/PINVOICE" in request.url:
            seen.append(threading.current_thread().name)
        return handle(request)

    x3_sim.handle = recording
    return seen


@pytest.mark.parametrize("ahead", [True, False])
def test_the_same_invoices_land_once_and_the_checkpoint_ends_alike(ready, x3_sim, sn_sim, x3_threads, settings,
                                                                   ahead):
    settings.SYNC_READ_AHEAD = ahead

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.SUCCEEDED and run.created == 60
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    assert set(source_key_counts(sn_sim, INVOICE_LINE).values()) == {1}
    assert_invoices_match_x3(x3_sim, sn_sim)
    assert set(SyncRecord.objects.filter(integration=ready, stream="invoices").values_list("status", flat=True)) == {
        RecordStatus.SYNCED}
    last = max(x3_sim.records("PINVOICE"), key=lambda row: (row["UPDDATTIM"], row["NUM"]))
    checkpoint = StreamState.objects.get(integration=ready, stream="invoices").checkpoint
    assert (checkpoint["key"], checkpoint["complete"]) == (last["NUM"], True)
    assert len(x3_threads) >= 3
    assert set(x3_threads) == ({"read-ahead"} if ahead else {threading.current_thread().name})


def test_a_refused_write_stops_the_run_at_the_last_written_page_and_the_helper_with_it(ready, x3_sim, sn_sim,
                                                                                        settings):
    settings.SYNC_READ_AHEAD = True
    handle, batches = sn_sim.handle, []

    def refusing_after_the_first_page(request):  # ServiceNow takes the first page, then refuses the account
        if request.method == "POST" and request.url.endswith("/batch"):
            batches.append(request)
            if len(batches) > 2:  # the first page's headers, then its lines
                return SimResponse.json(401, {"error": {"message": "User Not Authenticated"}})
        return handle(request)

    sn_sim.handle = refusing_after_the_first_page

    run = run_stream(ready, "invoices")

    assert run.status == RunStatus.FAILED
    synced = SyncRecord.objects.filter(integration=ready, stream="invoices", status=RecordStatus.SYNCED)
    assert synced.count() == 20
    in_order = sorted(x3_sim.records("PINVOICE"), key=lambda row: (row["UPDDATTIM"], row["NUM"]))
    assert set(synced.values_list("source_key", flat=True)) == {row["NUM"] for row in in_order[:20]}
    checkpoint = StreamState.objects.get(integration=ready, stream="invoices").checkpoint
    assert (checkpoint["key"], checkpoint["complete"]) == (in_order[19]["NUM"], False), "page 2 not checkpointed"
    assert not [t for t in threading.enumerate() if t.name == "read-ahead" and t.is_alive()]
