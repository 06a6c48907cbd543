"""A systemic error raised inside a transform (the supplier write-back reads X3) stops the run and
flags the connection, like one raised by a read or a write; the same in a replay."""

from __future__ import annotations

import pytest

from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration, run_stream
from integrations.models import Connection, RunStatus, SyncRecord
from tests.support import REFERENCE_STREAMS, SUPPLIER, set_integration_settings, skey

pytestmark = pytest.mark.django_db


@pytest.fixture
def edited_in_servicenow(integration, x3_sim, sn_sim):
    set_integration_settings(integration, supplier_writeback=True)
    run_integration(integration, streams=[*REFERENCE_STREAMS, "suppliers"])
    for row in sn_sim.rows(SUPPLIER)[:3]:
        sn_sim.update(SUPPLIER, row["sys_id"], {"phone": "+1 555 0100"})
    # X3's pairing is deleted and its access token no longer valid: every X3 call is refused
    x3_sim.revoke_refresh_tokens()
    x3_sim.oauth.state.access_tokens.clear()
    return integration


def test_the_run_stops_and_flags_the_x3_connection_without_failing_each_record(edited_in_servicenow):
    run = run_stream(edited_in_servicenow, "suppliers_to_x3")

    assert run.status == RunStatus.FAILED, run.error
    assert "refresh" in run.error.lower() or "pair" in run.error.lower() or "401" in run.error, run.error
    assert run.failed == 0, "not booked as per-record failures"
    assert not SyncRecord.objects.filter(stream="suppliers_to_x3", status="failed").exists()
    x3 = Connection.objects.get(pk=edited_in_servicenow.source_id)
    assert x3.last_error and x3.needs_reauth


def test_a_replay_stops_the_same_way(integration, x3_sim, sn_sim):
    set_integration_settings(integration, supplier_writeback=True)
    run_integration(integration, streams=[*REFERENCE_STREAMS, "suppliers"])
    for row in sn_sim.rows(SUPPLIER)[:3]:
        sn_sim.update(SUPPLIER, row["sys_id"], {"phone": "+1 555 0100"})
    assert run_stream(integration, "suppliers_to_x3").status == RunStatus.SUCCEEDED
    keys = [skey(row) for row in sn_sim.rows(SUPPLIER)[:3]]
    records = SyncRecord.objects.filter(stream="suppliers_to_x3", source_key__in=keys)
    assert records.count() == 3
    x3_sim.revoke_refresh_tokens()
    x3_sim.oauth.state.access_tokens.clear()

    result = replay_records(list(records.values_list("pk", flat=True)))
    assert result.errors, "the replay reports the refused connection"
    assert not records.filter(status="failed").exists(), "not booked as per-record failures"
    x3 = Connection.objects.get(pk=integration.source_id)
    assert x3.last_error and x3.needs_reauth, "the replay flags the connection as a run does"
