"""Unchanged data is not written again: a second run finds nothing to send."""

from __future__ import annotations

import pytest

from integrations.engine.runner import run_integration
from integrations.models import AuditEvent, RecordStatus, RunStatus, StreamState, SyncRecord
from tests.support import assert_invoices_match_x3, skey, sync_everything, writes

pytestmark = pytest.mark.django_db


def test_a_second_full_run_with_nothing_changed_writes_nothing_to_servicenow(integration, sn_sim, x3_sim):
    sync_everything(integration)
    before = len(sn_sim.requests)

    runs = run_integration(integration)

    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * len(runs)
    assert writes(sn_sim.requests[before:]) == []
    assert sum(r.created + r.updated for r in runs) == 0
    assert not AuditEvent.objects.filter(action__in=["records.posted", "records.replayed"],
                                         run_id__in=[r.pk for r in runs]).exists()
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_rereading_everything_from_the_start_finds_every_record_unchanged_and_writes_nothing(integration, sn_sim):
    sync_everything(integration)
    StreamState.objects.filter(integration=integration).update(cursor="", checkpoint={})  # forget the watermarks
    before = len(sn_sim.requests)
    synced_at = dict(SyncRecord.objects.values_list("pk", "synced_at"))

    runs = {r.stream: r for r in run_integration(integration)}

    assert writes(sn_sim.requests[before:]) == []
    assert (runs["suppliers"].read, runs["suppliers"].unchanged) == (25, 25)
    assert (runs["purchase_orders"].read, runs["purchase_orders"].unchanged) == (40, 40)
    assert (runs["invoices"].read, runs["invoices"].unchanged) == (60, 60)
    assert dict(SyncRecord.objects.values_list("pk", "synced_at")) == synced_at
    assert SyncRecord.objects.exclude(status=RecordStatus.SYNCED).count() == 0


def test_a_changed_invoice_is_written_again_as_an_update_of_the_same_rows(integration, sn_sim, x3_sim):
    sync_everything(integration)
    invoice = x3_sim.get("PINVOICE", "PI00007")
    invoice["BPRVCR"] = "F-CORRECTED"
    x3_sim.upsert("PINVOICE", {**invoice, "UPDDATTIM": None})  # an edit in X3 stamps a new UPDDATTIM
    before = len(sn_sim.requests)

    runs = {r.stream: r for r in run_integration(integration)}

    assert (runs["invoices"].read, runs["invoices"].updated, runs["invoices"].created) == (1, 1, 0)
    sent = writes(sn_sim.requests[before:])
    assert len(sent) == 2, "one batch for the header, one for its lines"
    header = next(r for r in sn_sim.rows("sn_apo_invoice") if skey(r) == "PI00007")
    assert header["supplier_invoice_number"] == "F-CORRECTED"
    assert_invoices_match_x3(x3_sim, sn_sim)
