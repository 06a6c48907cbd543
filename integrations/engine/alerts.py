"""Alerts: which conditions hold for an integration, and telling the tenant once per change.

Each condition is a plain function of an integration, its tenant's settings and the time. An
``AlertState`` row per (integration, condition) remembers whether it is open: a condition that
starts to hold opens it and queues one "fired" message; one that stops holding closes it and
queues one "recovered" message; nothing is sent while it stays as it was. Both moves are
conditional updates that must change exactly one row, so the hook after a run and the periodic
evaluation never both send.

When: after each run (``after_run``, from the runner), after each reconciliation
(``after_reconciliation``), and every ``ALERT_EVALUATE_MINUTES`` for what the clock alone makes
true (stale, held, expiring). Sending is always queued (``integrations.tasks.deliver_alert_task``):
a run never waits on SMTP or a slow webhook.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, OuterRef, Subquery
from django.utils import timezone
from django_q.models import Schedule as QSchedule
from django_q.tasks import async_task

from integrations.engine.audit import audit
from integrations.engine.schedules import PERIODS
from integrations.models import (
    AlertCondition,
    AlertEvent,
    AlertSettings,
    AlertState,
    AlertStatus,
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
from integrations.systems.redaction import redact, redact_text

logger = logging.getLogger(__name__)

DELIVER_TASK = "integrations.tasks.deliver_alert_task"
EVALUATE_SCHEDULE, EVALUATE_TASK = "alerts:evaluate", "integrations.tasks.evaluate_alerts_task"
DIGEST_SCHEDULE, DIGEST_TASK = "alerts:digest", "integrations.tasks.alert_digest_task"


@dataclass
class Finding:
    """Whether a condition holds now, and in words what a person should know."""

    holds: bool
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Change:
    """A state that moved: opened (``fired``) or closed (``recovered``)."""

    event: str
    state: AlertState


# --- the conditions -------------------------------------------------------------------------------
def _run_failed(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    """The last finished run of a stream stopped on a systemic error (until a later run of it does not)."""
    latest = (SyncRun.objects.filter(integration_id=integration.pk, stream=OuterRef("stream"))
              .exclude(status__in=[RunStatus.RUNNING, RunStatus.SKIPPED]).order_by("-started_at", "-id"))
    rows = (StreamState.objects.filter(integration_id=integration.pk)
            .annotate(last_status=Subquery(latest.values("status")[:1]),
                      last_error=Subquery(latest.values("error")[:1]),
                      last_run=Subquery(latest.values("pk")[:1]))
            .values_list("stream", "last_status", "last_error", "last_run"))
    failed = [(stream, error, run) for stream, status, error, run in rows if status == RunStatus.FAILED]
    if not failed:
        return Finding(False)
    words = "; ".join(f"{stream}: {redact_text(error or 'failed')[:300]}" for stream, error, _ in failed)
    return Finding(True, f"Stopped on a systemic error: {words}",
                   {"streams": [stream for stream, _, _ in failed], "runs": [run for _, _, run in failed]})


def _period(state: StreamState, now: datetime) -> timedelta | None:
    if state.schedule == Schedule.CRON:
        try:
            slots = croniter(state.cron, now)
            first = slots.get_next(datetime)
            return slots.get_next(datetime) - first
        except (ValueError, KeyError):
            return None
    return PERIODS.get(state.schedule)


def _stale(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    """A scheduled stream with no success within ``ALERT_STALE_FACTOR`` periods (paused integrations excepted)."""
    if not integration.enabled:
        return Finding(False)
    late = []
    for state in StreamState.objects.filter(integration_id=integration.pk, enabled=True).exclude(
            schedule=Schedule.MANUAL).order_by("id"):
        period = _period(state, now)
        if period is None:
            continue
        since = state.last_success_at or integration.created_at  # a new stream: from the integration's start
        if now - since > period * settings.ALERT_STALE_FACTOR:
            late.append((state.stream, state.last_success_at))
    if not late:
        return Finding(False)
    words = ", ".join(f"{stream} (last success {f'{when:%Y-%m-%d %H:%M} UTC' if when else 'never'})"
                      for stream, when in late)
    return Finding(True, f"No successful run within {settings.ALERT_STALE_FACTOR:g}× the schedule: {words}",
                   {"streams": [stream for stream, _ in late]})


def _connections(integration: Integration) -> list[Connection]:
    # read afresh: the run's copy predates what the run flagged
    return list(Connection.objects.filter(pk__in=[integration.source_id, integration.target_id]).order_by("pk")
                .only("name", "needs_reauth", "refresh_token_expires_at", "last_error"))


def _credentials_refused(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    refused = [c for c in _connections(integration) if c.needs_reauth]
    if not refused:
        return Finding(False)
    return Finding(True, "Credentials refused; re-enter them on the connection: "
                   + "; ".join(f"{c.name}: {redact_text(c.last_error or 'refused')[:300]}" for c in refused),
                   {"connections": [c.name for c in refused]})


def _token_expiring(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    horizon = now + timedelta(days=cfg.token_warning_days)
    expiring = [c for c in _connections(integration)
                if c.refresh_token_expires_at is not None and c.refresh_token_expires_at <= horizon]
    if not expiring:
        return Finding(False)
    words = "; ".join(f"{c.name}: {'ran' if c.refresh_token_expires_at <= now else 'runs'} out "
                      f"{c.refresh_token_expires_at:%Y-%m-%d %H:%M} UTC" for c in expiring)
    return Finding(True, f"Refresh token running out; pair the connection again: {words}",
                   {"connections": [c.name for c in expiring], "warning_days": cfg.token_warning_days})


def _held(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    """Records held for a mapping, unchanged for longer than ``held_hours``."""
    found = SyncRecord.objects.filter(integration_id=integration.pk, status=RecordStatus.HELD,
                                      updated_at__lte=now - timedelta(hours=cfg.held_hours)).aggregate(
        count=Count("pk"), oldest=Min("updated_at"))
    if not found["count"]:
        return Finding(False)
    return Finding(True, f"{found['count']} record(s) held for a mapping longer than {cfg.held_hours} hours "
                   f"(oldest since {found['oldest']:%Y-%m-%d %H:%M} UTC); approve the mappings they wait for",
                   {"count": found["count"], "held_hours": cfg.held_hours})


def _failed_records(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    count = SyncRecord.objects.filter(integration_id=integration.pk, status=RecordStatus.FAILED).count()
    if count <= cfg.failed_threshold:
        return Finding(False)
    return Finding(True, f"{count} failed record(s), more than the threshold of {cfg.failed_threshold}",
                   {"count": count, "threshold": cfg.failed_threshold})


def _reconciliation(integration: Integration, cfg: AlertSettings, now: datetime) -> Finding:
    """The latest finished reconciliation has differences (until a later one balances)."""
    run = (ReconciliationRun.objects.filter(integration_id=integration.pk,
                                            status__in=ReconciliationStatus.finished())
           .order_by("-started_at", "-id").only("status", "differences", "totals", "period_start", "period_end",
                                                 "error").first())
    if run is None or run.status != ReconciliationStatus.DIFFERENCES:
        return Finding(False)
    return Finding(True, f"Reconciliation of {run.period_label}: {run.verdict}",
                   {"reconciliation": run.pk, "period": run.period_label, "differences": run.differences})


CHECKS: dict[str, Callable[[Integration, AlertSettings, datetime], Finding]] = {
    AlertCondition.RUN_FAILED: _run_failed,
    AlertCondition.STALE: _stale,
    AlertCondition.CREDENTIALS_REFUSED: _credentials_refused,
    AlertCondition.TOKEN_EXPIRING: _token_expiring,
    AlertCondition.HELD: _held,
    AlertCondition.FAILED_RECORDS: _failed_records,
    AlertCondition.RECONCILIATION: _reconciliation,
}


# --- evaluating -----------------------------------------------------------------------------------
def settings_for(tenant_id: int) -> AlertSettings | None:
    """The tenant's alert settings when alerts are on; ``None`` means nothing to evaluate."""
    return AlertSettings.objects.filter(tenant_id=tenant_id, enabled=True).select_related("tenant").first()


def evaluate(integration: Integration, conditions: Iterable[str] | None = None, *, now: datetime | None = None,
             alert_settings: AlertSettings | None = None) -> list[Change]:
    """Check ``conditions`` (all by default) for one integration; queue one message per state that moved."""
    cfg = alert_settings or settings_for(integration.tenant_id)
    if cfg is None:
        return []
    now = now or timezone.now()
    states = {s.condition: s for s in AlertState.objects.filter(integration_id=integration.pk)}
    changes = []
    for condition in conditions or AlertCondition.values:
        finding = CHECKS[condition](integration, cfg, now)
        state = states.get(condition)
        if state is None:
            if not finding.holds:
                continue  # no row until a condition first holds: "ok" is the default
            state = _state_row(integration, condition)
        change = _move(state, finding, now)
        if change is not None:
            changes.append(change)
    for change in changes:
        _announce(cfg, integration, change)
    return changes


def _state_row(integration: Integration, condition: str) -> AlertState:
    try:
        with transaction.atomic():
            return AlertState.objects.get_or_create(integration_id=integration.pk, condition=condition,
                                                    defaults={"tenant_id": integration.tenant_id})[0]
    except IntegrityError:  # another evaluator created it between our read and our insert
        return AlertState.objects.get(integration_id=integration.pk, condition=condition)


def _move(state: AlertState, finding: Finding, now: datetime) -> Change | None:
    """Open or close ``state`` if the finding says so; only the evaluator whose update lands reports it."""
    rows = AlertState.objects.filter(pk=state.pk)
    if finding.holds and state.status == AlertStatus.OK:
        fields = {"status": AlertStatus.OPEN, "opened_at": now, "recovered_at": None, "checked_at": now,
                  "message": finding.message[:4000], "detail": redact(finding.detail)}
        if rows.filter(status=AlertStatus.OK).update(**fields) != 1:
            return None
        for name, value in fields.items():
            setattr(state, name, value)
        return Change(AlertEvent.FIRED, state)
    if not finding.holds and state.status == AlertStatus.OPEN:
        if rows.filter(status=AlertStatus.OPEN).update(status=AlertStatus.OK, recovered_at=now, checked_at=now) != 1:
            return None
        state.status, state.recovered_at, state.checked_at = AlertStatus.OK, now, now
        return Change(AlertEvent.RECOVERED, state)
    if finding.holds and finding.message[:4000] != state.message:
        # still open, in other words (e.g. more failed records): the console shows it, nobody is mailed
        rows.update(message=finding.message[:4000], detail=redact(finding.detail), checked_at=now)
    return None


def _announce(cfg: AlertSettings, integration: Integration, change: Change) -> None:
    state = change.state
    verb = "opened" if change.event == AlertEvent.FIRED else "recovered"
    audit(integration.tenant_id, f"alert.{verb}", f"{integration.name}: {state.get_condition_display()} {verb}"
          + (f": {state.message}" if change.event == AlertEvent.FIRED else ""),
          integration_id=integration.pk, detail={"condition": state.condition, "alert": state.pk})
    queue(cfg, change_message(cfg, integration, change))


def evaluate_all(now: datetime | None = None, conditions: Iterable[str] | None = None,
                 tenant_id: int | None = None) -> list[Change]:
    """Every integration of every tenant with alerts on (the periodic task)."""
    changes = []
    configs = AlertSettings.objects.filter(enabled=True).select_related("tenant")
    if tenant_id is not None:
        configs = configs.filter(tenant_id=tenant_id)
    for cfg in configs:
        for integration in Integration.objects.filter(tenant_id=cfg.tenant_id).order_by("pk"):
            changes += evaluate(integration, conditions, now=now, alert_settings=cfg)
    return changes


def after_run(run: SyncRun) -> None:
    """The runner's hook when a run finishes: never lets an alert problem fail the run."""
    try:
        evaluate(run.integration)
    except Exception:
        logger.exception("alert evaluation after run %s failed", run.pk)


def after_reconciliation(run: ReconciliationRun) -> None:
    """The reconciliation's hook once its result is stored."""
    try:
        evaluate(run.integration, [AlertCondition.RECONCILIATION])
    except Exception:
        logger.exception("alert evaluation after reconciliation %s failed", run.pk)


# --- messages -------------------------------------------------------------------------------------
def _alert_item(state: AlertState, integration: Integration) -> dict[str, Any]:
    return {"integration": integration.name, "integration_id": str(integration.uuid),
            "integration_pk": integration.pk, "condition": state.condition,
            "condition_label": state.get_condition_display(), "status": state.status, "message": state.message,
            "detail": state.detail, "since": state.opened_at.isoformat() if state.opened_at else None}


def _message(cfg: AlertSettings, event: str, title: str, summary: str, groups: list[dict[str, Any]],
             request_id: str = "") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "event": event, "title": title, "summary": summary,
            "tenant": cfg.tenant.slug, "tenant_name": cfg.tenant.name, "sent_at": timezone.now().isoformat(),
            "groups": groups, "request_id": request_id}


def change_message(cfg: AlertSettings, integration: Integration, change: Change) -> dict[str, Any]:
    state = change.state
    label = state.get_condition_display()
    if change.event == AlertEvent.FIRED:
        title, summary = f"Alert: {integration.name}: {label}", state.message
    else:
        title, summary = f"Recovered: {integration.name}: {label}", f"{label} no longer holds for {integration.name}."
    return _message(cfg, change.event, title, summary,
                    [{"integration": integration.name, "alerts": [_alert_item(state, integration)]}])


def digest_message(cfg: AlertSettings) -> dict[str, Any] | None:
    """What is open for the tenant, grouped by integration; ``None`` when nothing is."""
    open_states = list(AlertState.objects.filter(tenant_id=cfg.tenant_id, status=AlertStatus.OPEN)
                       .select_related("integration").order_by("integration__name", "condition"))
    if not open_states:
        return None
    groups: dict[str, list[dict[str, Any]]] = {}
    for state in open_states:
        groups.setdefault(state.integration.name, []).append(_alert_item(state, state.integration))
    count, names = len(open_states), len(groups)
    return _message(cfg, AlertEvent.DIGEST, f"Daily digest: {count} open alert(s) in {names} integration(s)",
                    f"{count} alert(s) still open in {cfg.tenant.name}.",
                    [{"integration": name, "alerts": alerts} for name, alerts in groups.items()])


def test_message(cfg: AlertSettings, actor_name: str, request_id: str = "") -> dict[str, Any]:
    return _message(cfg, AlertEvent.TEST, "Test alert",
                    f"A test alert requested by {actor_name}: this channel reaches you.", [], request_id)


def queue(cfg: AlertSettings, message: dict[str, Any]) -> str:
    """Send ``message`` in a worker (inline when django-q runs synchronously)."""
    return async_task(DELIVER_TASK, cfg.tenant_id, message, task_name=f"alert {message['event']} {message['id']}",
                      group=f"alerts-{cfg.tenant_id}")


def send_digests(tenant_id: int | None = None) -> int:
    """Queue the daily digest for every tenant that asked for one and has something open."""
    sent = 0
    configs = AlertSettings.objects.filter(enabled=True, digest=True).select_related("tenant")
    if tenant_id is not None:
        configs = configs.filter(tenant_id=tenant_id)
    for cfg in configs:
        message = digest_message(cfg)
        if message is not None:
            queue(cfg, message)
            sent += 1
    return sent


def request_test(cfg: AlertSettings, actor: Any = None, request_id: str = "") -> dict[str, Any]:
    """Audit the request, then queue a test message on the tenant's channels; returns the message."""
    name = actor if isinstance(actor, str) else getattr(actor, "get_username", lambda: "system")()
    message = test_message(cfg, name or "system", request_id)
    audit(cfg.tenant_id, "alert.test_requested", f"Test alert requested ({', '.join(cfg.channels) or 'no channel'})",
          actor=actor, request_id=request_id, detail={"delivery": message["id"], "channels": cfg.channels})
    queue(cfg, message)
    return message


# --- schedules ------------------------------------------------------------------------------------
def install_schedules() -> dict[str, str]:
    """Keep the periodic evaluation and the daily digest schedules in step with the settings (idempotent)."""
    return {
        EVALUATE_SCHEDULE: _install(EVALUATE_SCHEDULE, {"func": EVALUATE_TASK, "schedule_type": QSchedule.MINUTES,
                                                        "minutes": settings.ALERT_EVALUATE_MINUTES, "repeats": -1},
                                    timezone.now() + timedelta(minutes=settings.ALERT_EVALUATE_MINUTES)),
        DIGEST_SCHEDULE: _install(DIGEST_SCHEDULE, {"func": DIGEST_TASK, "schedule_type": QSchedule.CRON,
                                                    "cron": f"0 {settings.ALERT_DIGEST_HOUR} * * *", "repeats": -1},
                                  None),
    }


def _install(name: str, fields: dict[str, Any], first: datetime | None) -> str:
    current = QSchedule.objects.filter(name=name).first()
    if current is None:
        if first is None:  # the next slot, not now
            first = croniter(fields["cron"], timezone.localtime()).get_next(datetime)
        QSchedule.objects.create(name=name, next_run=first, **fields)
        return "created"
    if any(getattr(current, key) != value for key, value in fields.items()):
        for key, value in fields.items():
            setattr(current, key, value)
        current.save()
        return "updated"
    return "unchanged"
