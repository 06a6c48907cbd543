"""django-q2 entry points: thin wrappers over the engine.

Tasks take ids, not objects, so they can be queued, retried and scheduled. Every task is safe
to run twice: the engine's per-stream lock and idempotent writes make a duplicate harmless.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django_q.tasks import async_task
from encrypted_fields.fields import EncryptedFieldMixin

from integrations.engine.audit import audit, audit_event, audit_many
from integrations.engine.checks import test_connection
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration, run_stream
from integrations.models import Connection, Integration, Trigger


def warm_up() -> None:
    """What a worker's first sync would otherwise load by itself, done once in the ``qcluster``
    process before it forks its workers (``IntegrationsConfig.ready``): every pair's flow and
    client modules imported, and each encrypted field's keys derived (PBKDF2, per field). Each
    worker inherits them instead of spending its first task on them (measured with ``benchmark
    --scale``: a tenth of the workers' time, more where no bytecode cache is written)."""
    from django.apps import apps

    from integrations.flows import flow_kinds

    flow_kinds()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedFieldMixin):
                field.f  # noqa: B018 - a cached property: derives and keeps the keys


def _user(actor_id: int | None) -> Any:
    if actor_id is None:
        return None
    return get_user_model().objects.filter(pk=actor_id).first()


def _integration(integration_id: int) -> Integration:
    return Integration.objects.select_related("source", "target", "tenant").get(pk=integration_id)


def run_stream_task(integration_id: int, stream: str, trigger: str = Trigger.SCHEDULE,
                    actor_id: int | None = None) -> dict[str, Any]:
    integration = _integration(integration_id)
    if trigger == Trigger.SCHEDULE and not integration.enabled:
        return {"skipped": "integration paused"}
    run = run_stream(integration, stream, trigger=trigger, actor=_user(actor_id))
    return {"run": run.pk, "status": run.status, **run.counts()}


def run_integration_task(integration_id: int, actor_id: int | None = None,
                         streams: list[str] | None = None, trigger: str = Trigger.MANUAL) -> list[dict[str, Any]]:
    runs = run_integration(_integration(integration_id), trigger=trigger, actor=_user(actor_id), streams=streams)
    return [{"run": r.pk, "stream": r.stream, "status": r.status, **r.counts()} for r in runs]


def replay_task(record_ids: list[int], actor_id: int | None = None, reason: str = "",
                trigger: str = Trigger.REPLAY) -> dict[str, Any]:
    result = replay_records(record_ids, actor=_user(actor_id), reason=reason, trigger=trigger)
    return result.__dict__


def process_webhooks_task(connection_id: int) -> dict[str, Any]:
    from integrations.engine.webhooks import process_pending

    return process_pending(connection_id).__dict__


def test_connection_task(connection_id: int, actor_id: int | None = None) -> dict[str, Any]:
    return test_connection(Connection.objects.get(pk=connection_id), actor=_user(actor_id))


# --- queueing helpers used by the admin, the API and commands ---------------------------------
def queue_run(integration: Integration, actor: Any = None, streams: list[str] | None = None) -> str:
    return async_task(run_integration_task, integration.pk, getattr(actor, "pk", None), streams,
                      task_name=f"run {integration.name}", group=f"integration-{integration.pk}")


def request_run(integration: Integration, actor: Any = None, streams: list[str] | None = None,
                request_id: str = "", via: str = "") -> str:
    """Audit an operator's "run now", then queue it; returns the django-q task id."""
    audit(integration.tenant_id, "integration.run_requested",
          f"{integration.name}: run requested" + (f" {via}" if via else "")
          + (f" ({', '.join(streams)})" if streams else " (all enabled streams)"),
          actor=actor, integration_id=integration.pk, request_id=request_id, detail={"streams": streams or []})
    return queue_run(integration, actor, streams or None)


# An operator's replay says why, in at least a few letters: the reason is the audit trail's answer
# to "why was this invoice sent again?".
REPLAY_REASON_MIN, REPLAY_REASON_MAX = 3, 500
MAX_REPLAY = 10_000


def request_replay(records: QuerySet, actor: Any, reason: str, request_id: str = "") -> tuple[int, str | None]:
    """Audit an operator's replay per tenant, then queue it (the engine audits each record).

    Returns how many records were queued and the django-q task id.
    """
    rows = list(records.order_by().values_list("pk", "integration__tenant_id", "integration_id")[:MAX_REPLAY])
    if not rows:
        return 0, None
    by_tenant: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pk, tenant_id, integration_id in rows:
        by_tenant[tenant_id].append((pk, integration_id))
    audit_many([
        audit_event(tenant_id, "records.replay_requested", f"{len(items)} record(s) queued for replay: {reason}",
                    actor=actor, request_id=request_id,
                    integration_id=items[0][1] if len({i for _, i in items}) == 1 else None,
                    detail={"reason": reason, "count": len(items), "records": [pk for pk, _ in items][:500]})
        for tenant_id, items in by_tenant.items()
    ])
    ids = [pk for pk, _, _ in rows]
    return len(ids), queue_replay(ids, actor, reason)


def queue_webhooks(connection_id: int) -> str:
    """Process a connection's waiting webhook events in a worker (the sender got its answer already)."""
    return async_task(process_webhooks_task, connection_id, task_name=f"webhooks:{connection_id}")


def queue_test(connection: Connection, actor: Any = None) -> str:
    return async_task(test_connection_task, connection.pk, getattr(actor, "pk", None),
                      task_name=f"test {connection.name}", group=f"connection-{connection.pk}")


def queue_replay(record_ids: list[int], actor: Any = None, reason: str = "", trigger: str = Trigger.REPLAY) -> str | None:
    if not record_ids:
        return None
    return async_task(replay_task, list(record_ids), getattr(actor, "pk", None), reason, trigger,
                      task_name=f"replay {len(record_ids)} record(s)")


def queue_release(decision: Any, actor: Any = None) -> str | None:
    """Re-queue the held records an approval released."""
    return queue_replay(decision.released_ids, actor, "mapping approved", Trigger.MAPPING)


# --- month-end reconciliation --------------------------------------------------------------------
def reconcile_task(run_id: int, actor_id: int | None = None, request_id: str = "") -> dict[str, Any]:
    from integrations.engine.reconcile import execute
    from integrations.models import ReconciliationRun, ReconciliationStatus

    run = ReconciliationRun.objects.get(pk=run_id)
    if run.status != ReconciliationStatus.RUNNING:  # a second delivery of the task: the result stands
        return {"reconciliation": run.pk, "status": run.status, "skipped": "already finished"}
    run = execute(run, actor=_user(actor_id), request_id=request_id)
    return {"reconciliation": run.pk, "status": run.status, "verdict": run.verdict}


def reconcile_month_end_task() -> list[dict[str, Any]]:
    """The django-q schedule after month end (``RECONCILE_DAY``): last month, every integration."""
    from integrations.engine.reconcile_schedule import reconcile_month_end

    return [{"reconciliation": run.pk, "integration": run.integration_id, "status": run.status}
            for run in reconcile_month_end()]


def request_reconciliation(integration: Integration, period: Any, actor: Any = None, request_id: str = "",
                           via: str = "") -> Any:
    """Audit an operator's "reconcile", store the run (shown as running) and queue it; returns the run."""
    from integrations.engine.reconcile import start

    run = start(integration, period, actor=actor)
    audit(integration.tenant_id, "reconciliation.requested",
          f"{integration.name}: reconciliation of {period.label} requested" + (f" {via}" if via else ""),
          actor=actor, integration_id=integration.pk, request_id=request_id,
          detail={"reconciliation": run.pk, "period": [period.first.isoformat(), period.last.isoformat()]})
    async_task(reconcile_task, run.pk, getattr(actor, "pk", None), request_id,
               task_name=f"reconcile {integration.name} {period.label}", group=f"integration-{integration.pk}")
    run.refresh_from_db()  # done already when tasks run inline
    return run


# --- alerts --------------------------------------------------------------------------------------
def deliver_alert_task(tenant_id: int, message: dict[str, Any]) -> dict[str, Any]:
    """Send one alert message on the tenant's channels (each outcome is audited by the engine)."""
    from integrations.engine.alerts_send import deliver
    from integrations.models import AlertEvent, AlertSettings

    alert_settings = AlertSettings.objects.select_related("tenant").filter(tenant_id=tenant_id).first()
    if alert_settings is None or not (alert_settings.enabled or message.get("event") == AlertEvent.TEST):
        return {"delivery": message.get("id"), "skipped": "alerts are off for this tenant"}
    return {"delivery": message.get("id"),
            "channels": {d.channel: ("sent" if d.ok else "failed") for d in deliver(alert_settings, message)}}


def evaluate_alerts_task() -> dict[str, Any]:
    """The periodic evaluation (``ALERT_EVALUATE_MINUTES``): what the clock alone makes true, and the rest."""
    from integrations.engine.alerts import evaluate_all

    changes = evaluate_all()
    return {"opened": sum(c.event == "fired" for c in changes), "recovered": sum(c.event == "recovered" for c in changes)}


def alert_digest_task() -> dict[str, Any]:
    """The daily digest (``ALERT_DIGEST_HOUR``) of every tenant that asked for one."""
    from integrations.engine.alerts import send_digests

    return {"digests": send_digests()}
