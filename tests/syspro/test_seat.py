"""One licence seat is enough: each SYSPRO connection's e.net session belongs to one cycle at a
time. Streams on their own schedules (hourly invoices and postings, daily reference data) and
replays wait for the cycle that holds it, or stop to be retried; they never take a second seat."""

from __future__ import annotations

import pytest

from integrations.engine import locks
from integrations.engine.context import Cycle
from integrations.engine.runner import run_stream
from integrations.models import Connection, RunStatus

pytestmark = pytest.mark.django_db


def test_a_cycle_holds_the_seat_while_its_session_is_open_and_gives_it_back(pair, sim, integration):
    cycle = Cycle(integration, keep_clients=True)
    client = cycle.client(integration.source, integration, {})
    assert client.holds_seat
    assert Connection.objects.get(pk=integration.source_id).seat_token == cycle.seats[integration.source_id]
    # the ServiceNow side allows any number of sessions: no seat taken for it
    cycle.client(integration.target, integration, {})
    assert set(cycle.seats) == {integration.source_id}
    cycle.close()
    assert Connection.objects.get(pk=integration.source_id).seat_token == ""


def test_a_second_cycle_waits_for_the_seat_then_stops_to_be_retried(pair, sim, integration, settings):
    settings.SYNC_SEAT_WAIT_SECONDS = 0.3
    holder = Cycle(integration, keep_clients=True)  # e.g. the hourly invoices, mid-run
    holder.client(integration.source, integration, {})
    logons = sim.logons

    run = run_stream(integration, "suppliers")  # the suppliers' own schedule comes due meanwhile
    assert run.status == RunStatus.INTERRUPTED, (run.status, run.error)
    assert "one session (a licence seat)" in run.error and "retried" in run.error
    assert sim.logons == logons, "no second session was opened"

    holder.close()
    again = run_stream(integration, "suppliers")
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert Connection.objects.get(pk=integration.source_id).seat_token == ""


def test_a_seat_left_by_a_dead_cycle_is_taken_over_once_stale(integration, settings):
    from datetime import timedelta

    from django.utils import timezone

    assert locks.claim_seat(integration.source_id)  # a worker claimed it, then was killed
    assert locks.claim_seat(integration.source_id) is None
    Connection.objects.filter(pk=integration.source_id).update(
        seat_heartbeat_at=timezone.now() - timedelta(seconds=settings.SYNC_LOCK_STALE_SECONDS + 1))
    assert locks.claim_seat(integration.source_id)


def test_reading_through_odata_takes_no_seat(pair, sim, integration):
    Connection.objects.filter(pk=integration.source_id).update(
        settings={**integration.source.settings, "odata_url": "http://syspro.acme.test:20000/odata/EDU1"})
    integration.source.refresh_from_db()
    cycle = Cycle(integration, keep_clients=True)
    client = cycle.client(integration.source, integration, {})
    assert not client.holds_seat and cycle.seats == {}
    cycle.close()
