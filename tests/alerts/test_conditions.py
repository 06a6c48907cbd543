"""Each condition fires once while it holds and recovers once when it clears: one message each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from integrations.engine.alerts import evaluate
from integrations.engine.runner import ensure_streams
from integrations.models import (
    AlertCondition,
    AlertState,
    AlertStatus,
    AuditEvent,
    Connection,
    Integration,
    ReconciliationRun,
    ReconciliationStatus,
    RecordStatus,
    RunStatus,
    Schedule,
    StreamState,
    SyncRecord,
    SyncRun,
)

pytestmark = pytest.mark.django_db


def _records(integration: Integration, status: str, count: int, age: timedelta = timedelta(0)) -> None:
    for n in range(count):
        SyncRecord.objects.create(integration=integration, stream="invoices", source_key=f"{status}-{n}",
                                  business_key=f"INV-{status}-{n}", status=status)
    SyncRecord.objects.filter(integration=integration, status=status).update(updated_at=timezone.now() - age)


def _resolve_records(integration: Integration, status: str) -> None:
    SyncRecord.objects.filter(integration=integration, status=status).update(status=RecordStatus.SYNCED)


def _run(integration: Integration, status: str) -> None:
    SyncRun.objects.create(integration=integration, stream="invoices", status=status, finished_at=timezone.now(),
                           error="Credentials were refused" if status == RunStatus.FAILED else "")


def _successes(integration: Integration, age: timedelta) -> None:
    ensure_streams(integration)
    StreamState.objects.filter(integration=integration).update(schedule=Schedule.DAILY,
                                                               last_success_at=timezone.now() - age)


def _connections(integration: Integration, **fields) -> None:
    Connection.objects.filter(pk__in=[integration.source_id, integration.target_id]).update(**fields)


def _reconciliation(integration: Integration, status: str) -> None:
    ReconciliationRun.objects.create(integration=integration, period_start="2026-02-01", period_end="2026-02-28",
                                     status=status, differences=5 if status == ReconciliationStatus.DIFFERENCES else 0)


Step = Callable[[Integration], None]
SCENARIOS: dict[str, tuple[Step, Step]] = {
    AlertCondition.RUN_FAILED: (lambda i: _run(i, RunStatus.FAILED), lambda i: _run(i, RunStatus.SUCCEEDED)),
    AlertCondition.STALE: (lambda i: _successes(i, timedelta(days=3)), lambda i: _successes(i, timedelta(hours=1))),
    AlertCondition.CREDENTIALS_REFUSED: (lambda i: _connections(i, needs_reauth=True),
                                         lambda i: _connections(i, needs_reauth=False)),
    AlertCondition.TOKEN_EXPIRING: (
        lambda i: _connections(i, refresh_token_expires_at=timezone.now() + timedelta(days=1)),
        lambda i: _connections(i, refresh_token_expires_at=timezone.now() + timedelta(days=30))),
    AlertCondition.HELD: (lambda i: _records(i, RecordStatus.HELD, 2, age=timedelta(hours=30)),
                          lambda i: _resolve_records(i, RecordStatus.HELD)),
    AlertCondition.FAILED_RECORDS: (lambda i: _records(i, RecordStatus.FAILED, 4),
                                    lambda i: _resolve_records(i, RecordStatus.FAILED)),
    AlertCondition.RECONCILIATION: (lambda i: _reconciliation(i, ReconciliationStatus.DIFFERENCES),
                                    lambda i: _reconciliation(i, ReconciliationStatus.BALANCED)),
}


def test_every_condition_has_a_scenario():
    assert set(SCENARIOS) == set(AlertCondition.values)


@pytest.mark.parametrize("condition", list(SCENARIOS))
def test_it_fires_once_and_recovers_once(integration, alert_settings, condition):
    alert_settings.failed_threshold = 3
    alert_settings.save()
    make, clear = SCENARIOS[condition]
    assert evaluate(integration) == []  # a fresh integration: nothing holds

    make(integration)
    fired = evaluate(integration)
    assert [(c.event, c.state.condition) for c in fired] == [("fired", condition)]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject.startswith("[ml-connector] Alert: x3-to-sn")
    assert sorted(mail.outbox[0].to) == ["ap-lead@acme.test", "controller@acme.test"]
    assert evaluate(integration) == [] and evaluate(integration) == []  # still holds: no second message
    assert len(mail.outbox) == 1

    clear(integration)
    recovered = evaluate(integration)
    assert [(c.event, c.state.condition) for c in recovered] == [("recovered", condition)]
    assert evaluate(integration) == []
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject.startswith("[ml-connector] Recovered: x3-to-sn")
    state = AlertState.objects.get(integration=integration, condition=condition)
    assert state.status == AlertStatus.OK and state.recovered_at is not None
    actions = list(AuditEvent.objects.filter(tenant=integration.tenant, action__startswith="alert.")
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["alert.opened", "alert.sent", "alert.recovered", "alert.sent"]


def test_it_fires_again_after_a_recovery(integration, alert_settings):
    make, clear = SCENARIOS[AlertCondition.CREDENTIALS_REFUSED]
    for _ in range(2):
        make(integration)
        assert [c.event for c in evaluate(integration)] == ["fired"]
        clear(integration)
        assert [c.event for c in evaluate(integration)] == ["recovered"]
    assert len(mail.outbox) == 4


def test_thresholds_come_from_the_tenants_settings(integration, alert_settings):
    _records(integration, RecordStatus.FAILED, 4)
    _records(integration, RecordStatus.HELD, 1, age=timedelta(hours=5))
    alert_settings.failed_threshold, alert_settings.held_hours = 10, 24
    alert_settings.save()
    assert evaluate(integration) == []
    alert_settings.failed_threshold, alert_settings.held_hours = 3, 4
    alert_settings.save()
    assert {c.state.condition for c in evaluate(integration)} == {AlertCondition.FAILED_RECORDS, AlertCondition.HELD}


def test_a_paused_integration_is_not_stale(integration, alert_settings):
    SCENARIOS[AlertCondition.STALE][0](integration)
    Integration.objects.filter(pk=integration.pk).update(enabled=False)
    integration.refresh_from_db()
    assert evaluate(integration) == []


def test_nothing_is_evaluated_without_alert_settings_or_when_they_are_off(integration):
    SCENARIOS[AlertCondition.CREDENTIALS_REFUSED][0](integration)
    assert evaluate(integration) == []
    from tests.alerts.conftest import make_settings

    make_settings(integration, enabled=False)
    assert evaluate(integration) == []
    assert not AlertState.objects.exists() and mail.outbox == []
