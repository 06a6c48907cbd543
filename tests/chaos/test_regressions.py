"""Defects the chaos run found, pinned in-process (fast, no services needed)."""

from __future__ import annotations

from integrations.engine.runner import run_stream
from integrations.models import ErrorClass, RecordStatus, SyncRecord
from integrations.sandbox.base import Faults
from integrations.sandbox.intacct_seed import COMPANY_ID
from tests.support import make_failed_records_due, skey

INVOICES = "sn_apo_invoice"


def _new_bill(intacct_sim, staged) -> dict:
    """A bill entered in Intacct after the first sync, on the same (mapped) dimensions as a synced one."""
    synced = SyncRecord.objects.filter(integration=staged, stream="bills", status=RecordStatus.SYNCED).order_by(
        "source_key").first()
    model = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDNO"] == synced.source_key)
    values = {k: v for k, v in model.items() if k not in ("RECORDNO", "WHENMODIFIED", "WHENCREATED")}
    values.update({"RECORDID": "CHAOS-REG-1", "DOCNUMBER": "CHAOS-REG-1", "STATE": "Posted", "TOTALPAID": "0.00",
                   "WHENCREATED": model["WHENCREATED"]})
    return intacct_sim.insert(COMPANY_ID, "APBILL", values)


def test_an_invoice_approved_while_its_staging_answer_was_lost_is_posted_once_it_is_accounted_for(
        staged, sn_sim, intacct_sim, monkeypatch):
    """Chaos run, seed 3: bills 108/109 were staged in ServiceNow but every Batch API answer was lost
    (failed, transient, no target id yet); the AP clerk approved them meanwhile; the approvals stream
    took them for invoices 'linked to a bill this integration did not sync' and skipped them for good,
    so the approvals never reached Intacct. They must wait (a transient failure, retried) instead."""
    bill = _new_bill(intacct_sim, staged)
    sn_sim.set_faults(Faults(drop_rate=1.0))  # ServiceNow commits every batch, then the answer is lost
    # ...and the run ends before it could look the rows up (one write, no verification in the run)
    monkeypatch.setattr("integrations.systems.servicenow.UPSERT_ROUNDS", 1)
    monkeypatch.setattr("integrations.engine.pages.PAGE_WRITE_ATTEMPTS", 1)
    run_stream(staged, "bills")
    sn_sim.set_faults(Faults())
    monkeypatch.undo()
    staging = SyncRecord.objects.get(integration=staged, stream="bills", source_key=bill["RECORDNO"])
    assert (staging.status, staging.error_class, staging.target_id) == (RecordStatus.FAILED, ErrorClass.TRANSIENT, "")
    (invoice,) = [r for r in sn_sim.rows(INVOICES) if skey(r) == bill["RECORDNO"]]

    sn_sim.approve(INVOICES, invoice["sys_id"])  # the AP clerk approves what she sees in ServiceNow
    run_stream(staged, "approved_invoices")
    approval = SyncRecord.objects.get(integration=staged, stream="approved_invoices", source_key=invoice["sys_id"])
    assert approval.status != RecordStatus.SKIPPED, approval.error_message
    assert (approval.status, approval.error_class) == (RecordStatus.FAILED, ErrorClass.TRANSIENT)

    make_failed_records_due(staged)
    run_stream(staged, "bills")  # the staging is found by source identity and recorded
    assert SyncRecord.objects.get(pk=staging.pk).target_id == invoice["sys_id"]
    make_failed_records_due(staged)
    run_stream(staged, "approved_invoices")
    approval.refresh_from_db()
    assert (approval.status, approval.target_id) == (RecordStatus.SYNCED, bill["RECORDNO"])
    updates = [entry for entry in intacct_sim.function_log if entry[0] == "update" and entry[2] == "success"]
    assert len(updates) == 1
    assert [r["sys_id"] for r in sn_sim.rows(INVOICES) if skey(r) == bill["RECORDNO"]] == [
        invoice["sys_id"]]


def test_records_held_for_a_mapping_approved_without_releasing_them_are_released_by_the_next_run(
        integration, sn_sim, x3_sim):
    """Chaos run, seed 3: invoices BPI0000011, 13, 14, 15 and CPI0000029 stayed held for mappings that
    were all approved. The approval's release is a queued replay of the records held *at that moment*;
    a run that had read the mappings before the approval went on holding records after it (and a
    release can be lost with a killed worker or a restarted Redis, or skipped while the stream is
    busy). Nothing else ever looked at those records again. The next run of the stream must."""
    from integrations.engine.mappings import approve
    from integrations.engine.runner import run_integration
    from integrations.models import Mapping, MappingStatus

    run_integration(integration)  # nothing approved yet: every invoice is held
    held = SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.HELD)
    assert held.count() > 0
    decision = approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
    assert decision.released_ids  # ...and their release never runs

    run = run_stream(integration, "invoices")
    still = set(held.values_list("source_key", flat=True))
    waiting_61200 = {r.source_key for r in held if "gl_account:61200" in r.missing_keys}
    assert still == waiting_61200 and still  # only what waits for the unapproved 61200 stays held
    synced = SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.SYNCED)
    assert run.created == synced.count() > 0
    assert {skey(r) for r in sn_sim.rows("sn_apo_invoice")} == set(synced.values_list("source_key",
                                                                                                 flat=True))

    # what is still held was looked at again once, not on every run
    again = run_stream(integration, "invoices")
    assert (again.read, again.held) == (0, 0)


def test_records_held_by_a_run_that_read_the_mappings_before_the_approval_committed_are_released(
        integration, sn_sim):
    """Chaos run, seed 11 (4 tenants): 58 invoices stayed held for mappings all approved. An approval
    stamps ``decided_at`` when its transaction starts and commits later (one transaction for a bulk
    approval); a run that started in between read the mappings without it, and its held records were
    neither among those the approval released nor, by time, 'held before the approval'."""
    from datetime import timedelta

    from integrations.engine.mappings import approve
    from integrations.engine.runner import run_integration
    from integrations.models import Mapping, MappingStatus, SyncRun

    run_integration(integration)
    holding = SyncRun.objects.filter(integration=integration, stream="invoices").latest("started_at")
    approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
    # the approval's transaction had begun just before that run started (its release saw nothing yet)
    Mapping.objects.filter(integration=integration, status=MappingStatus.APPROVED).update(
        decided_at=holding.started_at - timedelta(seconds=1))

    run_stream(integration, "invoices")
    held = SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.HELD)
    assert held.exists()
    assert all(r.missing_keys == ["gl_account:61200"] or "gl_account:61200" in r.missing_keys for r in held)
    assert SyncRecord.objects.filter(integration=integration, stream="invoices", status=RecordStatus.SYNCED).exists()
