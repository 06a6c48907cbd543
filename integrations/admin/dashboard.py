"""The dashboard on the admin index: how each of the user's integrations is doing.

Built in a fixed handful of queries whatever the number of integrations, streams or records:
the integrations, their streams (with each stream's latest run), those runs, the django-q
schedules, the failed/held counts, and 30 days of run totals. ``templates/admin/index.html``
renders it through the ``console_dashboard`` tag.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_q.models import Schedule as QSchedule

from accounts.scoping import scope
from integrations.admin.display import refresh_expiring
from integrations.engine.documents import stream_label
from integrations.engine.schedules import schedule_name
from integrations.models import (
    Integration,
    ReconciliationRun,
    RecordStatus,
    RunStatus,
    Schedule,
    StreamState,
    SyncRecord,
    SyncRun,
)

CHART_DAYS = 30
PERIODS = {
    Schedule.HOURLY: timedelta(hours=1),
    Schedule.DAILY: timedelta(days=1),
    Schedule.WEEKLY: timedelta(days=7),
}
# a stream is stale once its last success is this many periods old (one missed run is noise)
STALE_PERIODS = 1.5
# or once its django-q schedule is overdue by this much (no worker is picking it up)
OVERDUE = timedelta(hours=1)


@dataclass
class Day:
    day: date
    synced: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Reason:
    """One line under a health badge, in a clerk's words; ``technical`` (a stream's name) is for
    the tooltip."""

    text: str
    technical: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass
class Health:
    """One dashboard row."""

    integration: Integration
    state: str = "ok"  # ok | failing | interrupted | stale | reauth | paused
    reasons: list[Reason] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_run: SyncRun | None = None
    next_due: datetime | None = None
    failed: int = 0
    held: int = 0
    series: list[Day] = field(default_factory=list)
    reconciliation: ReconciliationRun | None = None  # the latest month-end reconciliation

    LABELS = {"ok": "OK", "failing": "Failing", "interrupted": "Interrupted, retrying", "stale": "Stale",
              "reauth": "Needs re-authentication", "paused": "Paused"}

    @property
    def label(self) -> str:
        return self.LABELS[self.state]


def latest_run_subquery(field_name: str = "pk") -> Subquery:
    """The latest run of the outer StreamState's stream (uses run_latest_idx)."""
    runs = SyncRun.objects.filter(integration=OuterRef("integration"), stream=OuterRef("stream"))
    return Subquery(runs.order_by("-started_at", "-pk").values(field_name)[:1])


def streams_with_latest_runs(integration_ids: list[int]) -> tuple[list[StreamState], dict[int, SyncRun]]:
    states = list(StreamState.objects.filter(integration_id__in=integration_ids)
                  .annotate(last_run_id=latest_run_subquery()).order_by("integration_id", "id"))
    runs = SyncRun.objects.in_bulk([s.last_run_id for s in states if s.last_run_id])
    return states, runs


def schedules_due(states: list[StreamState]) -> dict[tuple[int, str], datetime]:
    """Next run time of each stream's django-q schedule; ``state.integration`` must be loaded."""
    names = {schedule_name(s): (s.integration_id, s.stream) for s in states}
    rows = QSchedule.objects.filter(name__in=list(names)).values_list("name", "next_run")
    return {names[name]: next_run for name, next_run in rows if next_run}


def queue_counts(integration_ids: list[int]) -> dict[int, dict[str, int]]:
    """Failed and held records per integration, in one aggregate over record_queue_idx."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {"failed": 0, "held": 0})
    rows = (SyncRecord.objects.filter(integration_id__in=integration_ids,
                                      status__in=[RecordStatus.FAILED, RecordStatus.HELD])
            .values("integration_id", "status").annotate(n=Count("pk")).order_by())
    for row in rows:
        counts[row["integration_id"]][row["status"]] = row["n"]
    return counts


def daily_series(integration_ids: list[int], days: int = CHART_DAYS) -> dict[int, list[Day]]:
    """Records synced (created + updated) and failed per local day, from the runs' counters."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (SyncRun.objects.filter(integration_id__in=integration_ids, started_at__gte=start)
            .annotate(day=TruncDate("started_at", tzinfo=timezone.get_current_timezone()))
            .values("integration_id", "day")
            .annotate(synced=Sum(F("created") + F("updated")), failed=Sum("failed")).order_by())
    found = {(row["integration_id"], row["day"]): row for row in rows}
    series = {}
    for integration_id in integration_ids:
        series[integration_id] = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            row = found.get((integration_id, day), {})
            series[integration_id].append(Day(day, row.get("synced") or 0, row.get("failed") or 0))
    return series


# the latest reconciliation's fields the dashboard shows, annotated on the integrations query
RECONCILIATION_FIELDS = ("pk", "status", "differences", "totals", "period_start", "period_end", "error")


def with_latest_reconciliation(integrations: QuerySet) -> QuerySet:
    """Each integration's latest reconciliation, as subqueries of the integrations query (recon_latest_idx
    per row): no query of its own on a page whose query count is held."""
    latest = ReconciliationRun.objects.filter(integration=OuterRef("pk")).order_by("-started_at", "-pk")
    return integrations.annotate(**{f"recon_{name}": Subquery(latest.values(name)[:1])
                                    for name in RECONCILIATION_FIELDS})


def latest_reconciliation(integration: Integration) -> ReconciliationRun | None:
    values = {name: getattr(integration, f"recon_{name}", None) for name in RECONCILIATION_FIELDS}
    if values["pk"] is None:
        return None
    return ReconciliationRun(integration_id=integration.pk, **values)


def _stale_reason(state: StreamState, what: str, created_at: datetime, due: datetime | None, now: datetime) -> str:
    """Why ``state`` (called ``what`` on screen) is behind its schedule; "" when it is not."""
    if due is not None and now - due > OVERDUE:
        return f"{what}: scheduled run overdue since {timezone.localtime(due):%Y-%m-%d %H:%M}"
    period = PERIODS.get(state.schedule)
    if period is None:
        return ""
    since = state.last_success_at or created_at
    if now - since > period * STALE_PERIODS:
        return (f"{what}: last success {timezone.localtime(state.last_success_at):%Y-%m-%d %H:%M}"
                if state.last_success_at else f"{what}: never synced") + f" ({state.schedule} schedule)"
    return ""


def assess(integration: Integration, states: list[StreamState], runs: dict[int, SyncRun],
           due: dict[tuple[int, str], datetime], now: datetime) -> Health:
    """Worst first: credentials, then failing runs, then paused, then stale schedules."""
    health = Health(integration)
    reauth = []
    for side in (integration.source, integration.target):
        if side.needs_reauth or (side.refresh_token_expires_at and side.refresh_token_expires_at <= now):
            reauth.append(Reason(f"{side.name}: credentials refused or expired; re-authorise"))
        elif refresh_expiring(side.refresh_token_expires_at):
            health.warnings.append(
                f"{side.name}: refresh token runs out {timezone.localtime(side.refresh_token_expires_at):%Y-%m-%d}")
    latest = [runs[s.last_run_id] for s in states if s.last_run_id in runs]
    failing = [r for r in latest if r.status == RunStatus.FAILED]
    interrupted = [r for r in latest if r.status == RunStatus.INTERRUPTED]
    stale = []

    def what(stream: str) -> str:
        return stream_label(integration.kind, stream)

    if integration.enabled:
        for state in states:
            if state.enabled and state.schedule != Schedule.MANUAL:
                reason = _stale_reason(state, what(state.stream), integration.created_at,
                                       due.get((state.integration_id, state.stream)), now)
                if reason:
                    stale.append(Reason(reason, state.stream))
    health.reasons = [*reauth, *(Reason(f"{what(r.stream)}: {r.error[:200] or 'failed'}", r.stream) for r in failing),
                      *(Reason(f"{what(r.stream)}: a temporary error interrupted it; it goes on at its next run "
                               f"({r.error[:150]})", r.stream) for r in interrupted), *stale]
    if reauth:
        health.state = "reauth"
    elif failing:
        health.state = "failing"
    elif interrupted:
        health.state = "interrupted"
    elif not integration.enabled:
        health.state = "paused"
    elif stale:
        health.state = "stale"
    health.last_run = max(latest, key=lambda r: r.started_at, default=None)
    dues = [due[(s.integration_id, s.stream)] for s in states if (s.integration_id, s.stream) in due]
    health.next_due = min(dues, default=None) if integration.enabled else None
    return health


def build(user: Any) -> list[Health]:
    """The dashboard rows for ``user``'s integrations."""
    integrations = list(with_latest_reconciliation(
        scope(Integration.objects.select_related("tenant", "source", "target"), user, "tenant"))
        .order_by("tenant__name", "name"))
    if not integrations:
        return []
    by_id = {i.pk: i for i in integrations}
    ids = list(by_id)
    states, runs = streams_with_latest_runs(ids)
    for state in states:
        state.integration = by_id[state.integration_id]
    due = schedules_due(states)
    counts = queue_counts(ids)
    series = daily_series(ids)
    per_integration: dict[int, list[StreamState]] = defaultdict(list)
    for state in states:
        per_integration[state.integration_id].append(state)
    now = timezone.now()
    rows = []
    for integration in integrations:
        health = assess(integration, per_integration[integration.pk], runs, due, now)
        health.failed = counts[integration.pk]["failed"]
        health.held = counts[integration.pk]["held"]
        health.series = series[integration.pk]
        health.reconciliation = latest_reconciliation(integration)
        rows.append(health)
    return rows


def totals(rows: list[Health]) -> dict[str, int]:
    return {
        "integrations": len(rows),
        # an integration whose runs are fine still needs someone while it holds or fails records
        "attention": sum(1 for r in rows if r.state not in ("ok", "paused") or r.held or r.failed),
        "failed": sum(r.failed for r in rows),
        "held": sum(r.held for r in rows),
    }

