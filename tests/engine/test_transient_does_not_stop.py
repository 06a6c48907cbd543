"""A stream that ends on a temporary error is interrupted, not failed: the cycle's other streams still
run and run_sync exits 0; only a systemic error stops the cycle and makes the command fail."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.engine.runner import run_integration
from integrations.models import AuditEvent, Connection, RunStatus
from integrations.sandbox.base import Faults

pytestmark = pytest.mark.django_db


def test_an_x3_outage_interrupts_its_streams_and_the_servicenow_ones_still_run(integration, x3_sim):
    x3_sim.set_faults(Faults(error_rate=1.0))  # every X3 call answers 503, retries included

    runs = {run.stream: run for run in run_integration(integration)}

    assert runs["x3_gl_accounts"].status == RunStatus.INTERRUPTED and "503" in runs["x3_gl_accounts"].error
    assert runs["sn_gl_accounts"].status == RunStatus.SUCCEEDED, "the cycle went on"
    assert runs["sn_cost_centers"].status == RunStatus.SUCCEEDED
    assert not Connection.objects.get(pk=integration.source_id).last_error, "a temporary error flags nothing"
    assert AuditEvent.objects.filter(action="run.interrupted").exists()


def test_run_sync_exits_zero_after_a_temporary_error_and_non_zero_after_a_systemic_one(integration, x3_sim):
    x3_sim.set_faults(Faults(error_rate=1.0))
    call_command("run_sync", tenant=integration.tenant.slug, integration=integration.name, stdout=StringIO(),
                 stderr=StringIO())

    x3_sim.set_faults(Faults())
    x3_sim.revoke_refresh_tokens()
    x3_sim.oauth.state.access_tokens.clear()
    with pytest.raises(CommandError, match="stopped"):
        call_command("run_sync", tenant=integration.tenant.slug, integration=integration.name, stdout=StringIO(),
                     stderr=StringIO())
