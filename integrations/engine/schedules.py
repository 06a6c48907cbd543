"""Keeping django-q schedules in step with the streams' schedules, idempotently.

One django-q Schedule per enabled stream of an enabled integration, named
``sync:<integration uuid>:<stream>``; anything else under the ``sync:`` prefix is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django_q.models import Schedule as QSchedule

from integrations.models import Integration, Schedule, StreamState

PREFIX = "sync:"
TASK = "integrations.tasks.run_stream_task"
TYPES = {
    Schedule.HOURLY: QSchedule.HOURLY,
    Schedule.DAILY: QSchedule.DAILY,
    Schedule.WEEKLY: QSchedule.WEEKLY,
    Schedule.CRON: QSchedule.CRON,
}


@dataclass
class ScheduleSync:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


PERIODS = {Schedule.HOURLY: timedelta(hours=1), Schedule.DAILY: timedelta(days=1), Schedule.WEEKLY: timedelta(weeks=1)}


def first_run(state: StreamState) -> datetime:
    """One period from now (a new stream has just been run by whoever created it), or the cron's next slot."""
    now = timezone.now()
    if state.schedule == Schedule.CRON:
        from croniter import croniter

        return croniter(state.cron, now).get_next(datetime)
    return now + PERIODS[state.schedule]


def schedule_name(state: StreamState) -> str:
    return f"{PREFIX}{state.integration.uuid}:{state.stream}"


def sync_schedules(integration: Integration | None = None) -> ScheduleSync:
    result = ScheduleSync()
    states = StreamState.objects.select_related("integration")
    existing = QSchedule.objects.filter(name__startswith=PREFIX)
    if integration is not None:
        states = states.filter(integration=integration)
        existing = existing.filter(name__startswith=f"{PREFIX}{integration.uuid}:")
    by_name = {s.name: s for s in existing}
    wanted = set()
    for state in states:
        if not (state.integration.enabled and state.enabled and state.schedule in TYPES):
            continue
        name = schedule_name(state)
        wanted.add(name)
        fields = {
            "func": TASK,
            "args": repr((state.integration_id, state.stream)),
            "schedule_type": TYPES[state.schedule],
            "cron": state.cron if state.schedule == Schedule.CRON else None,
            "repeats": -1,
        }
        current = by_name.get(name)
        if current is None:
            QSchedule.objects.create(name=name, next_run=first_run(state), **fields)
            result.created += 1
        elif any(getattr(current, k) != v for k, v in fields.items()):
            for key, value in fields.items():
                setattr(current, key, value)
            current.save()
            result.updated += 1
        else:
            result.unchanged += 1
    stale = [name for name in by_name if name not in wanted]
    if stale:
        result.deleted = QSchedule.objects.filter(name__in=stale).delete()[0]
    return result


CONTINUATION_PREFIX = "continue:"


def schedule_continuation(integration: Integration, stream: str, delay_seconds: int) -> datetime:
    """Queue one more run of a stream that stopped at its call budget; one per stream at a time.

    Its name is outside the ``sync:`` prefix, so keeping the regular schedules in step leaves it
    alone; django-q removes a one-off schedule once it has run.
    """
    when = timezone.now() + timedelta(seconds=max(0, delay_seconds))
    QSchedule.objects.update_or_create(
        name=f"{CONTINUATION_PREFIX}{integration.uuid}:{stream}",
        defaults={"func": TASK, "args": repr((integration.pk, stream)), "schedule_type": QSchedule.ONCE,
                  "repeats": -1, "next_run": when},
    )
    return when


def cancel_continuation(integration: Integration, stream: str) -> None:
    QSchedule.objects.filter(name=f"{CONTINUATION_PREFIX}{integration.uuid}:{stream}").delete()
