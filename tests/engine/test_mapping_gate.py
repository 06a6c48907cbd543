"""Invoice lines only land on approved GL accounts and cost centers; approving releases what waited."""

from __future__ import annotations

import pytest

from integrations.engine.mappings import approve, map_manually, reject
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration, run_stream
from integrations.models import (
    AuditEvent,
    Mapping,
    MappingReason,
    MappingStatus,
    RecordStatus,
    SyncRecord,
    SyncRun,
    Trigger,
)
from integrations.sandbox.snstore import stable_sys_id
from tests.support import INVOICE, INVOICE_LINE, SN_SUSPENSE_ACCOUNT, assert_invoices_match_x3, skey

pytestmark = pytest.mark.django_db

HELD_FOR_61200 = {"PI00004", "PI00013", "PI00022", "PI00031", "PI00044", "PI00055"}


def invoices(status: str):
    return SyncRecord.objects.filter(stream="invoices", status=status)


def approve_suggestions(integration):
    return approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))


@pytest.fixture
def suggestions_approved(integration):
    """Everything read; every suggestion approved and its held invoices replayed: 61200 still waits."""
    run_integration(integration)
    replay_records(approve_suggestions(integration).released_ids, trigger=Trigger.MAPPING)
    return integration


def test_it_holds_every_invoice_while_its_gl_accounts_and_cost_centers_are_unapproved(integration, sn_sim, x3_sim):
    run_integration(integration)

    assert invoices(RecordStatus.HELD).count() == 60
    assert sn_sim.rows(INVOICE) == []
    pi4 = invoices(RecordStatus.HELD).get(source_key="PI00004")
    x3_lines = x3_sim.get("PINVOICE", "PI00004")["PINVOICED"]
    assert pi4.missing_keys == sorted({f"gl_account:{line['ACC']}" for line in x3_lines}
                                      | {f"cost_center:{line['CCE']}" for line in x3_lines})
    held = AuditEvent.objects.get(action="record.held", detail__key="PI00004")
    assert held.detail["missing"] == pi4.missing_keys
    assert Mapping.objects.filter(status=MappingStatus.SUGGESTED).exists(), "suggestions alone release nothing"


def test_it_holds_an_invoice_whose_gl_account_has_no_counterpart_in_servicenow(suggestions_approved, sn_sim):
    held = invoices(RecordStatus.HELD)

    assert set(held.values_list("source_key", flat=True)) == HELD_FOR_61200
    assert all(r.missing_keys == ["gl_account:61200"] for r in held)
    assert invoices(RecordStatus.SYNCED).count() == 54
    assert not {skey(r) for r in sn_sim.rows(INVOICE)} & HELD_FOR_61200
    assert Mapping.objects.get(kind="gl_account", source_code="61200").status == MappingStatus.UNMAPPED


def test_approving_mappings_releases_the_invoices_held_for_them(integration, sn_sim):
    run_integration(integration)

    decision = approve_suggestions(integration)

    assert decision.approved == 17  # 11 GL accounts and 6 cost centers found on both sides
    assert sorted(decision.released_ids) == sorted(invoices(RecordStatus.HELD).values_list("pk", flat=True))
    event = AuditEvent.objects.filter(action="mapping.approved", detail__source="60100").get()
    assert event.detail["released"] == SyncRecord.objects.filter(missing__contains="|gl_account:60100|").count()

    result = replay_records(decision.released_ids, trigger=Trigger.MAPPING)

    assert (result.synced, result.held, result.failed) == (54, 6, 0)
    assert SyncRun.objects.get(pk=result.runs[0]).trigger == Trigger.MAPPING
    assert AuditEvent.objects.filter(action="record.replayed").count() == 60


def test_mapping_61200_by_hand_to_an_existing_servicenow_account_releases_the_last_six(suggestions_approved,
                                                                                        sn_sim, x3_sim):
    mapping = Mapping.objects.get(kind="gl_account", source_code="61200")

    decision = map_manually(mapping, SN_SUSPENSE_ACCOUNT)

    assert set(SyncRecord.objects.filter(pk__in=decision.released_ids).values_list("source_key", flat=True)) \
        == HELD_FOR_61200
    mapping.refresh_from_db()
    assert (mapping.status, mapping.reason, mapping.target_code) == (
        MappingStatus.APPROVED, MappingReason.MANUAL, SN_SUSPENSE_ACCOUNT)
    assert AuditEvent.objects.filter(action="mapping.approved", detail__source="61200",
                                     detail__target=SN_SUSPENSE_ACCOUNT, detail__released=6).exists()

    result = replay_records(decision.released_ids, trigger=Trigger.MAPPING, reason="61200 mapped to suspense")

    assert (result.synced, result.held) == (6, 0)
    assert invoices(RecordStatus.HELD).count() == 0 and invoices(RecordStatus.SYNCED).count() == 60
    suspense = stable_sys_id("itfm_gl_accounts", SN_SUSPENSE_ACCOUNT)
    on_suspense = {skey(line).split("/")[0] for line in sn_sim.rows(INVOICE_LINE)
                   if line["gl_account"] == suspense}
    assert on_suspense == HELD_FOR_61200
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_creating_61200_in_servicenow_lets_its_suggestion_be_approved_and_releases_the_six(suggestions_approved,
                                                                                           sn_sim, x3_sim):
    created = sn_sim.insert("itfm_gl_accounts", {"account_number": "61200", "name": "Miscellaneous purchases",
                                                 "active": "true"})
    run_stream(suggestions_approved, "sn_gl_accounts")
    mapping = Mapping.objects.get(kind="gl_account", source_code="61200")
    assert (mapping.status, mapping.reason, mapping.target_external_id) == (
        MappingStatus.SUGGESTED, MappingReason.EXACT_CODE, created["sys_id"])

    decision = approve([mapping])
    replay_records(decision.released_ids, trigger=Trigger.MAPPING)

    assert invoices(RecordStatus.SYNCED).count() == 60
    lines_on_61200 = [line for line in sn_sim.rows(INVOICE_LINE) if line["gl_account"] == created["sys_id"]]
    assert {skey(line).split("/")[0] for line in lines_on_61200} == HELD_FOR_61200
    assert_invoices_match_x3(x3_sim, sn_sim)


def test_a_rejected_suggestion_keeps_its_invoices_held(integration):
    run_integration(integration)

    reject(list(Mapping.objects.filter(kind="cost_center", source_code="CC100")))
    replay_records(approve_suggestions(integration).released_ids)

    still_held = invoices(RecordStatus.HELD).exclude(source_key__in=HELD_FOR_61200)
    assert still_held.exists()
    assert all("cost_center:CC100" in r.missing_keys for r in still_held)
    assert AuditEvent.objects.filter(action="mapping.rejected", detail__source="CC100").exists()
