import json

import pytest
from django.core.management import CommandError, call_command

from integrations.models import AuditEvent, RecordStatus, SyncRecord


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.django_db
def test_run_sync_prints_counts_per_stream_as_json(integration, capsys):
    call_command("run_sync", "--tenant", "acme", "--integration", "x3-to-sn", "--json")
    result = {row["stream"]: row for row in _json(capsys)}
    assert result["suppliers"]["created"] == 25
    assert result["invoices"]["held"] == 60
    assert all(row["api_calls"] > 0 for row in result.values())
    assert set(result["invoices"]) >= {"read", "created", "updated", "unchanged", "held", "failed", "api_calls"}


@pytest.mark.django_db
def test_run_sync_exits_non_zero_on_a_systemic_error(integration, sn_sim):
    sn_sim.uninstall_table("proc_vendor")
    with pytest.raises(CommandError, match="Invalid table proc_vendor"):
        call_command("run_sync", "--tenant", "acme", "--integration", "x3-to-sn", "--stream", "suppliers")


@pytest.mark.django_db
def test_run_sync_names_an_unknown_stream(integration):
    with pytest.raises(CommandError, match="no stream 'bills'"):
        call_command("run_sync", "--tenant", "acme", "--integration", "x3-to-sn", "--stream", "bills")


@pytest.mark.django_db
def test_approve_suggested_releases_held_invoices_and_is_audited(integration, sn_sim, capsys):
    call_command("run_sync", "--tenant", "acme", "--integration", "x3-to-sn", "--json")
    capsys.readouterr()
    call_command("mappings", "--tenant", "acme", "--integration", "x3-to-sn", "--approve-suggested", "--json")
    result = _json(capsys)
    assert result["approved"] == 17  # 11 of 12 GL accounts + 6 cost centers have a match
    assert result["released"] == 60 and result["released_still_held"] == 6
    assert len(sn_sim.rows("sn_apo_invoice")) == 54
    assert AuditEvent.objects.filter(action="mapping.approved", actor_name="cli").count() == 17
    unmapped = [m for m in result["mappings"] if m["status"] == "unmapped"]
    assert [m["source_code"] for m in unmapped] == ["61200"]


@pytest.mark.django_db
def test_replay_command_replays_held_records(integration, capsys):
    call_command("run_sync", "--tenant", "acme", "--integration", "x3-to-sn", "--json")
    capsys.readouterr()
    call_command("replay", "--tenant", "acme", "--integration", "x3-to-sn", "--status", "held", "--json")
    result = _json(capsys)
    assert result["selected"] == 60 and result["held"] == 60  # still unmapped: held again, nothing lost
    assert SyncRecord.objects.filter(status=RecordStatus.HELD, attempts=0).count() == 60
    assert AuditEvent.objects.filter(action="record.replayed").count() == 60


@pytest.mark.django_db
def test_test_connection_reports_a_missing_role_and_table_and_exits_non_zero(integration, sn_sim, capsys):
    call_command("test_connection", "--tenant", "acme", "--connection", "sn", "--json")
    assert _json(capsys)["ok"] is True
    sn_sim.revoke_role("integration.user", "procurement_user")
    sn_sim.uninstall_table("sn_apo_invoice_line")
    with pytest.raises(CommandError) as error:
        call_command("test_connection", "--tenant", "acme", "--connection", "sn")
    assert "lacks the role procurement_user" in str(error.value)
    assert "sn_apo_invoice_line" in str(error.value)


@pytest.mark.django_db
def test_sync_schedules_is_idempotent(integration, capsys):
    from django_q.models import Schedule

    call_command("sync_schedules")
    first = set(Schedule.objects.values_list("name", "schedule_type"))
    call_command("sync_schedules")
    assert "0 created, 0 updated, 0 removed" in capsys.readouterr().out.splitlines()[-1]
    assert set(Schedule.objects.values_list("name", "schedule_type")) == first
    assert any(name.endswith(":invoices") and kind == Schedule.DAILY for name, kind in first)
