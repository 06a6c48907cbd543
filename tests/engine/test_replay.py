"""A failed record is replayed with fresh source data once its cause is fixed, and the replay is on record."""

from __future__ import annotations

import pytest

from integrations.engine.replay import replay_records
from integrations.engine.runner import run_stream
from integrations.models import AuditEvent, ErrorClass, RecordStatus, SyncAttempt, SyncRecord
from tests.support import INVOICE, INVOICE_LINE, assert_invoices_match_x3, prepare_for_invoices, skey, source_key_counts

pytestmark = pytest.mark.django_db

REASON = "GL account entered on line 1000 in X3 (ticket AP-1432)"


@pytest.fixture
def broken_invoice(integration, x3_sim):
    """PI00009's first line lost its GL account in X3: the invoice cannot be posted as it is."""
    invoice = x3_sim.get("PINVOICE", "PI00009")
    original = invoice["PINVOICED"][0]["ACC"]
    invoice["PINVOICED"][0]["ACC"] = ""
    x3_sim.upsert("PINVOICE", invoice)
    prepare_for_invoices(integration)
    run = run_stream(integration, "invoices")
    return run, original


def test_an_invoice_line_without_a_gl_account_fails_the_invoice_as_a_data_error(broken_invoice, sn_sim):
    run, _ = broken_invoice

    record = SyncRecord.objects.get(stream="invoices", source_key="PI00009")
    assert (record.status, record.error_class, record.attempts) == (RecordStatus.FAILED, ErrorClass.DATA, 1)
    assert "GL account" in record.error_message and "1000" in record.error_message
    assert record.next_retry_at is None, "a data error waits for a person, not for the retry schedule"
    assert run.failed == 1 and run.created == 59
    assert "PI00009" not in source_key_counts(sn_sim, INVOICE)
    assert not [line for line in sn_sim.rows(INVOICE_LINE) if skey(line).startswith("PI00009/")]
    assert AuditEvent.objects.filter(action="record.failed", run_id=run.pk, detail__key="PI00009",
                                     detail__error_class="data").exists()


def test_a_failed_invoice_is_not_retried_by_the_next_run_until_someone_acts(broken_invoice):
    run = run_stream(broken_invoice[0].integration, "invoices")

    record = SyncRecord.objects.get(stream="invoices", source_key="PI00009")
    assert (record.status, record.attempts) == (RecordStatus.FAILED, 1)
    assert run.read == 0


def test_replaying_it_after_the_fix_in_x3_syncs_it_with_the_fresh_data_and_records_the_reason(
        broken_invoice, x3_sim, sn_sim, admin_user):
    _, original = broken_invoice
    invoice = x3_sim.get("PINVOICE", "PI00009")
    invoice["PINVOICED"][0]["ACC"] = original  # fixed in X3 by the AP clerk
    x3_sim.upsert("PINVOICE", invoice)
    record = SyncRecord.objects.get(stream="invoices", source_key="PI00009")

    result = replay_records([record.pk], actor=admin_user, reason=REASON)

    assert (result.replayed, result.synced, result.failed) == (1, 1, 0)
    record.refresh_from_db()
    assert (record.status, record.error_class, record.error_message, record.attempts) == (
        RecordStatus.SYNCED, "", "", 2)
    header = next(row for row in sn_sim.rows(INVOICE) if skey(row) == "PI00009")
    assert record.target_id == header["sys_id"]
    attempts = list(SyncAttempt.objects.filter(record=record).order_by("number"))
    assert [(a.number, a.outcome) for a in attempts] == [(1, RecordStatus.FAILED), (2, RecordStatus.SYNCED)]
    assert attempts[1].run_id == result.runs[0] and attempts[1].target_id == header["sys_id"]
    event = AuditEvent.objects.get(action="record.replayed", record_id=record.pk)
    assert event.detail["reason"] == REASON and REASON in event.message
    assert (event.actor, event.actor_name, event.run_id) == (admin_user, admin_user.username, result.runs[0])
    assert event.detail["previous_status"] == RecordStatus.FAILED and event.detail["attempt"] == 2
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_replaying_before_the_fix_fails_again_and_counts_the_attempt(broken_invoice):
    record = SyncRecord.objects.get(stream="invoices", source_key="PI00009")

    result = replay_records([record.pk], reason="try again")

    record.refresh_from_db()
    assert (result.failed, record.status, record.attempts) == (1, RecordStatus.FAILED, 2)
    assert SyncAttempt.objects.filter(record=record).count() == 2
