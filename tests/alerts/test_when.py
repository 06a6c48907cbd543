"""When alerts are evaluated (after a run, after a reconciliation, periodically), the digest, the command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule as QSchedule

from integrations.engine.alerts import digest_message, evaluate_all, install_schedules, send_digests
from integrations.engine.runner import run_integration
from integrations.models import (
    AlertCondition,
    AlertState,
    AlertStatus,
    AuditEvent,
    Connection,
    RecordStatus,
    SyncRecord,
)
from tests.alerts.conftest import make_settings

pytestmark = pytest.mark.django_db


def test_a_run_stopped_by_refused_credentials_alerts_after_the_run(integration, alert_settings, x3_sim):
    x3_sim.revoke_refresh_tokens()
    run_integration(integration)
    opened = set(AlertState.objects.filter(status=AlertStatus.OPEN).values_list("condition", flat=True))
    assert {AlertCondition.RUN_FAILED, AlertCondition.CREDENTIALS_REFUSED} <= opened
    subjects = [m.subject for m in mail.outbox]
    assert "[ml-connector] Alert: x3-to-sn: Credentials refused" in subjects
    assert "[ml-connector] Alert: x3-to-sn: Run stopped on a systemic error" in subjects


def test_an_alert_problem_never_fails_the_run(integration, alert_settings, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr("integrations.engine.alerts.evaluate", broken)
    runs = run_integration(integration, streams=["x3_gl_accounts"])
    assert runs and runs[0].status == "succeeded"


def test_the_periodic_evaluation_finds_what_the_clock_made_true(integration, alert_settings):
    later = timezone.now() + timedelta(days=5)  # every daily stream is past twice its schedule by then
    changes = evaluate_all(now=later)
    assert [c.state.condition for c in changes] == [AlertCondition.STALE]
    assert evaluate_all(now=later) == []


def test_the_digest_groups_what_is_open_by_integration(integration, alert_settings):
    alert_settings.digest = True
    alert_settings.save()
    assert digest_message(alert_settings) is None and send_digests() == 0
    Connection.objects.filter(pk=integration.source_id).update(needs_reauth=True)
    for n in range(12):
        SyncRecord.objects.create(integration=integration, stream="invoices", source_key=f"k{n}",
                                  status=RecordStatus.FAILED)
    evaluate_all()
    mail.outbox.clear()
    assert send_digests() == 1
    (digest,) = mail.outbox
    assert digest.subject == "[ml-connector] Daily digest: 2 open alert(s) in 1 integration(s)"
    assert "x3-to-sn:\n  - Credentials refused:" in digest.body
    assert "  - Failed records above the threshold: 12 failed record(s)" in digest.body
    message = digest_message(alert_settings)
    assert [g["integration"] for g in message["groups"]] == ["x3-to-sn"]
    assert sorted(a["condition"] for a in message["groups"][0]["alerts"]) == ["credentials_refused", "failed_records"]
    assert AuditEvent.objects.filter(action="alert.sent", detail__event="digest").count() == 1


def test_no_digest_unless_asked_for(integration, alert_settings):
    Connection.objects.filter(pk=integration.source_id).update(needs_reauth=True)
    evaluate_all()
    assert send_digests() == 0


def test_schedules_install_once_and_follow_the_settings(db, settings):
    assert install_schedules() == {"alerts:evaluate": "created", "alerts:digest": "created"}
    assert install_schedules() == {"alerts:evaluate": "unchanged", "alerts:digest": "unchanged"}
    settings.ALERT_DIGEST_HOUR = 9
    assert install_schedules()["alerts:digest"] == "updated"
    assert QSchedule.objects.get(name="alerts:digest").cron == "0 9 * * *"
    evaluate = QSchedule.objects.get(name="alerts:evaluate")
    assert (evaluate.schedule_type, evaluate.minutes, evaluate.func) == (
        QSchedule.MINUTES, 5, "integrations.tasks.evaluate_alerts_task")
    assert evaluate.next_run > timezone.now()  # the next slot, not at once


def test_the_command_sends_a_test_alert_and_evaluates(integration, capsys):
    make_settings(integration)
    call_command("alerts", "--tenant", integration.tenant.slug, "--test")
    assert "email: sent" in capsys.readouterr().out
    assert mail.outbox[0].subject == "[ml-connector] Test alert"
    Connection.objects.filter(pk=integration.target_id).update(needs_reauth=True)
    call_command("alerts", "--evaluate")
    assert "fired: x3-to-sn: Credentials refused" in capsys.readouterr().out


def test_the_command_says_when_a_tenant_has_no_channel(integration):
    from django.core.management.base import CommandError

    make_settings(integration, email_recipients="")
    with pytest.raises(CommandError, match="no alert channel"):
        call_command("alerts", "--tenant", integration.tenant.slug, "--test")


def test_a_reconciliation_with_differences_alerts_once_it_is_stored(integration, alert_settings, x3_sim, sn_sim):
    from integrations.engine.reconcile import reconcile
    from integrations.models import Period
    from tests.reconcile.conftest import CLEAN_MONTH, MONTH, make_differences
    from tests.support import sync_everything

    sync_everything(integration)
    make_differences(integration, x3_sim, sn_sim)
    mail.outbox.clear()
    run = reconcile(integration, Period.month(MONTH))
    assert run.status == "differences"
    state = AlertState.objects.get(condition=AlertCondition.RECONCILIATION)
    assert state.status == AlertStatus.OPEN and state.detail["reconciliation"] == run.pk
    assert [m.subject for m in mail.outbox] == ["[ml-connector] Alert: x3-to-sn: Reconciliation with differences"]
    assert reconcile(integration, Period.month(CLEAN_MONTH)).status == "balanced"
    assert AlertState.objects.get(pk=state.pk).status == AlertStatus.OK
    assert mail.outbox[-1].subject == "[ml-connector] Recovered: x3-to-sn: Reconciliation with differences"
