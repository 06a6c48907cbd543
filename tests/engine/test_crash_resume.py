"""A worker killed mid-page, after ServiceNow committed, resumes with nothing lost and nothing doubled.

The kill is simulated at the HTTP boundary: ServiceNow processes (commits) a batch, and instead
of its answer the worker gets a ``BaseException`` that nothing in the portal catches, as when
the process is OOM-killed or the container stops. The database keeps whatever the engine
had written before the call; the lock is left behind, still "held", until it goes stale.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from integrations.engine.runner import run_stream
from integrations.models import AuditEvent, RecordStatus, RunStatus, StreamState, SyncRecord, SyncRun
from integrations.sandbox.base import Faults
from integrations.sandbox.inprocess import mount
from tests.conftest import SN_URL, X3_URL
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


class WorkerKilled(BaseException):  # noqa: N818 - it is not an error the portal could handle
    """The worker process died."""


class KillSwitch:
    """ServiceNow as mounted for the test: kills the worker right after the n-th batch committed."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.countdown = 0
        self.batches = 0

    def arm(self, after_batches: int) -> None:
        self.countdown = after_batches

    def handle(self, request):
        response = self.sim.handle(request)  # ServiceNow does the work and commits
        if request.path == "/api/now/v1/batch":
            self.batches += 1
            if self.countdown:
                self.countdown -= 1
                if self.countdown == 0:
                    raise WorkerKilled("killed after ServiceNow committed the batch")
        return response


@pytest.fixture
def kill_switch(sn_sim) -> KillSwitch:
    return KillSwitch(sn_sim)


@pytest.fixture
def sandbox(x3_sim, kill_switch):  # the project's sandbox, with ServiceNow behind the kill switch
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(x3_sim, X3_URL, rsps)
        mount(kill_switch, SN_URL, rsps)
        yield rsps


@pytest.fixture
def ready(integration):
    prepare_for_invoices(integration)
    set_integration_settings(integration, page_size=20)  # 60 invoices: three pages, two batches each
    return integration


def the_lock_goes_stale(integration) -> None:
    """Time passes: the dead worker's heartbeat is older than the stale limit."""
    StreamState.objects.filter(integration=integration).exclude(lock_token="").update(
        lock_heartbeat_at=timezone.now() - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS + 1))


def assert_everything_exactly_once(integration, x3_sim, sn_sim) -> None:
    assert set(source_key_counts(sn_sim, INVOICE).values()) == {1}
    assert set(source_key_counts(sn_sim, INVOICE_LINE).values()) == {1}
    assert_invoices_match_x3(x3_sim, sn_sim)
    row_of = {skey(row): row["sys_id"] for row in sn_sim.rows(INVOICE)}
    records = SyncRecord.objects.filter(integration=integration, stream="invoices")
    assert records.count() == 60
    assert {r.status for r in records} == {RecordStatus.SYNCED}
    assert all(r.target_id == row_of[r.source_key] for r in records)


@pytest.mark.parametrize(("killed_after", "what_committed"), [
    (3, "the second page's invoice headers, not their lines"),
    (4, "the second page's headers and lines"),
])
def test_a_run_killed_after_servicenow_committed_resumes_with_nothing_lost_or_doubled(
        ready, x3_sim, sn_sim, kill_switch, killed_after, what_committed):
    kill_switch.arm(after_batches=killed_after)

    with pytest.raises(WorkerKilled):
        run_stream(ready, "invoices")

    state = StreamState.objects.get(integration=ready, stream="invoices")
    first_page = sorted(x3_sim.records("PINVOICE"), key=lambda i: (i["UPDDATTIM"], i["NUM"]))[:20]
    assert SyncRecord.objects.filter(stream="invoices", status=RecordStatus.SYNCED).count() == 20
    pending = SyncRecord.objects.filter(stream="invoices", status=RecordStatus.PENDING)
    assert pending.count() == 20, f"the write intent of the killed page is on disk ({what_committed})"
    assert state.lock_token and state.cursor.startswith(first_page[-1]["UPDDATTIM"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert len(source_key_counts(sn_sim, INVOICE)) == 40, "ServiceNow holds pages one and two"

    assert run_stream(ready, "invoices").status == RunStatus.SKIPPED, "the dead worker's lock still counts"
    the_lock_goes_stale(ready)
    resumed = run_stream(ready, "invoices")

    assert resumed.status == RunStatus.SUCCEEDED, resumed.error
    assert resumed.created == 20 and resumed.updated == 20, "page two found by source key, page three created"
    assert AuditEvent.objects.filter(action="records.posted", run_id=resumed.pk).exists()
    assert_everything_exactly_once(ready, x3_sim, sn_sim)
    for _ in range(2):  # and again: nothing moves any more
        again = run_stream(ready, "invoices")
        assert (again.created, again.updated, again.failed) == (0, 0, 0)
    assert_everything_exactly_once(ready, x3_sim, sn_sim)


def test_a_worker_killed_while_retrying_failed_records_leaves_nothing_stuck(ready, x3_sim, sn_sim, kill_switch,
                                                                           monkeypatch):
    sn_sim.set_faults(Faults(drop_rate=1.0))  # a first run whose every answer is lost...
    with monkeypatch.context() as patch:  # ...and that ends before it could look its rows up
        patch.setattr("integrations.systems.servicenow.UPSERT_ROUNDS", 1)
        patch.setattr("integrations.engine.pages.PAGE_WRITE_ATTEMPTS", 1)
        run_stream(ready, "invoices")
    sn_sim.set_faults(Faults())
    assert SyncRecord.objects.filter(stream="invoices", status=RecordStatus.FAILED).count() == 60
    make_failed_records_due(ready)
    kill_switch.arm(after_batches=1)

    with pytest.raises(WorkerKilled):
        run_stream(ready, "invoices")  # killed in the retry pass, after the cursor had passed them all

    assert SyncRecord.objects.filter(stream="invoices", status=RecordStatus.PENDING).exists()
    the_lock_goes_stale(ready)
    resumed = run_stream(ready, "invoices")

    assert resumed.status == RunStatus.SUCCEEDED, resumed.error
    assert_everything_exactly_once(ready, x3_sim, sn_sim)


def test_the_run_row_of_a_killed_worker_is_closed_when_its_lock_is_reclaimed(ready, kill_switch):
    kill_switch.arm(after_batches=1)
    with pytest.raises(WorkerKilled):
        run_stream(ready, "invoices")
    killed = SyncRun.objects.get(stream="invoices", status=RunStatus.RUNNING)

    the_lock_goes_stale(ready)
    run_stream(ready, "invoices")

    killed.refresh_from_db()
    assert killed.status == RunStatus.FAILED and killed.finished_at is not None
    assert "stopped" in killed.error.lower()
