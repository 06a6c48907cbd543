"""Target rows carry a source identity namespaced by the ERP system and connection.

Two ERPs staging into one ServiceNow instance must never collide on a bare key (``1200`` from
Sage 300 and ``1200`` from SYSPRO); rows written before identities were namespaced keep working.
"""

from __future__ import annotations

import pytest

from integrations.engine.runner import run_integration, run_stream
from integrations.flows.base import StreamContext, bare_key
from integrations.models import RecordStatus, RunStatus, SyncRecord
from integrations.sandbox.base import Faults
from tests.support import REFERENCE_STREAMS, SUPPLIER, skey, source_key_counts

pytestmark = pytest.mark.django_db


def test_each_row_is_known_by_the_system_and_connection_it_came_from(integration, sn_sim):
    run_integration(integration, streams=REFERENCE_STREAMS)
    run = run_stream(integration, "suppliers")
    assert run.status == RunStatus.SUCCEEDED and run.created > 0

    namespace = f"sage_x3.{integration.source.uuid.hex[:8]}"
    identities = [row["u_source_key"] for row in sn_sim.rows(SUPPLIER)]
    assert identities and all(value.startswith(namespace + ":") for value in identities), identities[:3]
    assert sorted(map(bare_key, identities)) == sorted(SyncRecord.objects.filter(stream="suppliers")
                                                     .values_list("source_key", flat=True))


def test_the_same_key_from_two_connections_is_two_identities():
    sage300 = StreamContext({}, None, None, None, None, namespace="sage_300.1f3a9c2e")
    syspro = StreamContext({}, None, None, None, None, namespace="syspro.77aa0b1c")
    assert sage300.identity("1200") != syspro.identity("1200")
    assert sage300.key_of(syspro.identity("1200")) is None, "another source's row is not ours"
    assert sage300.key_of(sage300.identity("1200")) == "1200"
    assert sage300.key_of("1200") == "1200", "a row written before namespaces is still ours"


def test_a_row_written_with_a_bare_key_is_found_and_renamed_not_duplicated(integration, x3_sim, sn_sim):
    """An upgrade: ServiceNow holds a supplier staged under its bare key, and our answer for it was lost."""
    run_integration(integration, streams=REFERENCE_STREAMS)
    run_stream(integration, "suppliers")
    row = next(r for r in sn_sim.rows(SUPPLIER) if skey(r) == "SUP001")
    sn_sim.update(SUPPLIER, row["sys_id"], {"u_source_key": "SUP001"})  # as the portal wrote it before
    SyncRecord.objects.filter(stream="suppliers", source_key="SUP001").update(
        status=RecordStatus.PENDING, target_id="")  # the write's outcome is unknown
    x3_sim.upsert("BPSUPPLIER", {**x3_sim.get("BPSUPPLIER", "SUP001"), "BPSNAM": "Renamed supplier"})

    sn_sim.set_faults(Faults())
    run = run_stream(integration, "suppliers")

    assert run.failed == 0
    assert source_key_counts(sn_sim, SUPPLIER)["SUP001"] == 1, "found by its bare key, not created again"
    updated = next(r for r in sn_sim.rows(SUPPLIER) if r["sys_id"] == row["sys_id"])
    assert updated["name"] == "Renamed supplier"
    assert updated["u_source_key"] == f"sage_x3.{integration.source.uuid.hex[:8]}:SUP001", "now namespaced"
