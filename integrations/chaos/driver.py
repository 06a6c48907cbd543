"""The chaos run itself, in a process whose Django talks to the throwaway database.

``python -m integrations.chaos.driver CONFIG.json`` (started by :mod:`integrations.chaos.run`,
which creates the database first and cleans up after). Its environment already points
``DATABASE_URL`` at the throwaway PostgreSQL database, ``Q_BROKER_URL`` at our own Redis and
``SECRET_KEY`` at a random key. It prints one JSON line: the figures.

1. **Setup**: migrate; an operator account; one tenant document per tenant (the project's
   own ``load_document``), every stream scheduled every minute (``cron:* * * * *``) and the
   django-q schedules installed (``sync_schedules``); our Redis, the web server
   (``manage.py runserver --noreload``) and ``--qclusters`` ``manage.py qcluster`` processes.
2. **Chaos** (``duration`` seconds): people change the outside systems (:mod:`.workload`);
   the operator asks for runs and approves suggested mappings **through the REST API**, so the
   web server and the broker carry real work; the qclusters also run their schedules. Meanwhile
   ``kills`` times a random qcluster's whole process group gets ``kill -9`` (at a random moment;
   if no sync is running just then, it waits up to 3 s for one) and a new one is started; once
   each: the web server is killed (and restarted), Redis is killed (and
   restarted empty: every queued task is lost) and every PostgreSQL connection to the
   database is cut. A supervisor restarts any child that died on its own (counted).
3. **Convergence**: the people stop; the operator keeps asking for runs and replays the Failed
   queue's transient failures (what the console's replay does) until every enabled stream has
   had a run that wrote nothing and failed nothing, nothing is pending or failed-transient and
   no lock is held, twice in a row; or until the deadline.
4. **Check** (:mod:`.verify`) and figures.

Time to recover, per disruption at time t: the streams whose lock was held at t (sampled just
before) must each finish a successful run that *started* after t; recovery is the longest of
those delays. When no stream was running at t, it is the delay until any stream's next
successful run that started after t ("progress resumed"). A killed run's lock is reclaimed only
once its heartbeat is ``SYNC_LOCK_STALE_SECONDS`` old, so that window bounds recovery from below.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import django
import requests

T = TypeVar("T")
PY = sys.executable


@dataclass
class Disruption:
    kind: str
    at: float  # epoch seconds
    locked: list[tuple[int, str]]
    detail: str = ""
    recovery: float | None = None


@dataclass
class Counters:
    api_ok: int = 0
    api_failed: int = 0
    unplanned_restarts: list[str] = field(default_factory=list)
    lock_age_max: float = 0.0
    pg_cut: int = 0
    graceful_stops: int = 0


def db_retry(fn: Callable[[], T], attempts: int = 8) -> T:
    """Run a query again on a fresh connection after the database cut ours (or was unreachable)."""
    from django.db import InterfaceError, OperationalError, connections

    for attempt in range(attempts):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            connections.close_all()
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


class Api:
    """The operator's REST API client (token auth), tolerant of a web server that is down."""

    def __init__(self, base: str, username: str, password: str, counters: Counters) -> None:
        self.base = base
        self.username, self.password = username, password
        self.counters = counters
        self.session = requests.Session()
        self.token = ""

    def _login(self) -> bool:
        try:
            response = self.session.post(f"{self.base}/api/auth/token/", timeout=10,
                                         json={"username": self.username, "password": self.password})
            if response.status_code in (200, 201) and "token" in response.json():
                self.token = response.json()["token"]
                return True
        except (requests.RequestException, ValueError):
            pass
        return False

    def post(self, path: str, payload: dict[str, Any]) -> bool:
        if not self.token and not self._login():
            self.counters.api_failed += 1
            return False
        try:
            response = self.session.post(f"{self.base}{path}", json=payload, timeout=15,
                                         headers={"Authorization": f"Token {self.token}"})
        except requests.RequestException:
            self.counters.api_failed += 1
            return False
        if response.status_code == 401:
            self.token = ""
        ok = response.status_code in (200, 201, 202)
        if ok:
            self.counters.api_ok += 1
        else:
            self.counters.api_failed += 1
        return ok


class Driver:
    def __init__(self, config: dict[str, Any]) -> None:
        from integrations.chaos.infra import Postgres, RedisServer
        from integrations.chaos.workload import TenantSpec

        self.cfg = config
        self.workdir = Path(config["workdir"])
        self.registry = self.workdir / "children.pids"
        self.rng = random.Random(config["seed"])
        self.tenants = [TenantSpec(**t) for t in config["tenants"]]
        self.redis = RedisServer(self.workdir, port=config["redis_port"], registry=self.registry,
                                 env=dict(os.environ))
        self.postgres = Postgres(config["db_name"])
        self.stale = int(os.environ.get("SYNC_LOCK_STALE_SECONDS", "600"))
        self.web_port = config["web_port"]
        self.counters = Counters()
        self.clusters: list[Any] = []
        self.web: Any = None
        self.restart_at: dict[str, float] = {}  # what -> monotonic time to start it again
        self.disruptions: list[Disruption] = []
        self.people: list[Any] = []
        self.integrations: dict[str, int] = {}
        self.cluster_number = 0
        self.log: list[str] = []

    def say(self, message: str) -> None:
        line = f"[chaos {time.strftime('%H:%M:%S')}] {message}"
        self.log.append(line)
        print(line, file=sys.stderr, flush=True)

    # --- children -------------------------------------------------------------------------------
    def _child(self, name: str, argv: list[str]) -> Any:
        from integrations.chaos.infra import Child

        return Child(name, argv, env=dict(os.environ), log=self.workdir / f"{name}.log", registry=self.registry)

    def start_cluster(self) -> None:
        self.cluster_number += 1
        child = self._child(f"qcluster-{self.cluster_number}", [PY, "manage.py", "qcluster"]).start()
        self.clusters.append(child)

    def start_web(self) -> None:
        self.web = self._child("web", [PY, "manage.py", "runserver", "--noreload", "--skip-checks",
                                       f"127.0.0.1:{self.web_port}"]).start()

    def web_ready(self) -> bool:
        try:
            requests.get(f"http://127.0.0.1:{self.web_port}/api/", timeout=2)
            return True
        except requests.RequestException:
            return False

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        from integrations.chaos.infra import ChaosError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.3)
        raise ChaosError(f"{what} did not come up within {timeout:.0f} s")

    # --- setup ----------------------------------------------------------------------------------
    def setup(self) -> None:
        import secrets

        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from integrations.demo import intacct_servicenow_document, x3_servicenow_document
        from integrations.engine.schedules import sync_schedules
        from integrations.flows import get_flow
        from integrations.models import Integration

        try:  # the tenant-document loader moved out of the engine; accept either home
            from integrations.tenants import load_document
        except ImportError:
            from integrations.engine.tenants import load_document

        self.say("migrating the throwaway database")
        call_command("migrate", verbosity=0, interactive=False)
        self.password = secrets.token_urlsafe(24)
        get_user_model().objects.create_superuser("chaos-operator", "chaos@example.com", self.password)
        settings = {"page_size": self.cfg["page_size"], "batch_size": self.cfg["batch_size"]}
        for spec in self.tenants:
            kind = "sage_x3__servicenow" if spec.pair == "x3" else "sage_intacct__servicenow"
            schedules = {name: "cron:* * * * *" for name in get_flow(kind).stream_names()}
            if spec.pair == "x3":
                doc = x3_servicenow_document(spec.source_url, spec.sn_url, slug=spec.slug, name=f"Chaos {spec.slug}",
                                             settings=settings, schedules=schedules)
            else:
                doc = intacct_servicenow_document(spec.source_url, spec.sn_url, slug=spec.slug,
                                                  name=f"Chaos {spec.slug}", settings=settings, schedules=schedules)
            load_document(doc)
            self.integrations[spec.slug] = Integration.objects.get(tenant__slug=spec.slug, name=spec.integration).pk
        sync_schedules()
        self.say(f"{len(self.tenants)} tenants loaded; starting Redis, the web server and "
                 f"{self.cfg['qclusters']} qclusters")
        self.redis.start()
        self.start_web()
        for _ in range(self.cfg["qclusters"]):
            self.start_cluster()
        self.wait_for("the web server", self.web_ready)
        self.api = Api(f"http://127.0.0.1:{self.web_port}", "chaos-operator", self.password, self.counters)

    # --- what the operator does -------------------------------------------------------------------
    def queue_length(self) -> int | None:
        import redis

        try:
            return int(redis.Redis(port=self.redis.port, socket_timeout=1).llen("django_q:ml-connector:q"))
        except redis.RedisError:
            return None

    def request_runs(self) -> None:
        waiting = self.queue_length()
        if waiting is None or waiting >= 2 * len(self.integrations):
            return  # the broker is down, or enough runs are already queued
        for integration_id in self.integrations.values():
            self.api.post(f"/api/integrations/{integration_id}/run/", {})

    def approve_suggestions(self) -> None:
        from integrations.chaos.workload import WITHHELD_ACCOUNT
        from integrations.models import Mapping, MappingStatus

        def suggested() -> list[int]:
            rows = Mapping.objects.filter(integration_id__in=self.integrations.values(),
                                          status=MappingStatus.SUGGESTED).exclude(target_code="")
            keep_back = {pk for slug, pk in self.integrations.items()
                         if next(t for t in self.tenants if t.slug == slug).pair == "x3"}
            return [m.pk for m in rows if not (m.integration_id in keep_back and m.kind == "gl_account"
                                               and m.source_code == WITHHELD_ACCOUNT)]

        ids = db_retry(suggested)
        if ids:
            self.api.post("/api/mappings/approve/", {"ids": ids})

    def replay_transient_failures(self) -> None:
        from integrations.models import ErrorClass, RecordStatus, SyncRecord

        ids = db_retry(lambda: list(SyncRecord.objects.filter(
            integration_id__in=self.integrations.values(), status=RecordStatus.FAILED,
            error_class=ErrorClass.TRANSIENT).values_list("pk", flat=True)[:500]))
        if ids:
            self.api.post("/api/records/replay/", {"ids": ids, "reason": "chaos operator clears the failed queue"})

    def ready(self, slug: str, what: str) -> bool:
        """For the AP clerk: is the vendor synced and are the mappings its invoice needs approved?"""
        from integrations.models import Mapping, MappingStatus, RecordStatus, SyncRecord

        integration_id = self.integrations[slug]
        vendor = what.split(":", 1)[1]

        def check() -> bool:
            synced = SyncRecord.objects.filter(integration_id=integration_id, stream="vendors", source_key=vendor,
                                               status=RecordStatus.SYNCED).exists()
            approved = Mapping.objects.filter(integration_id=integration_id, status=MappingStatus.APPROVED).filter(
                kind__in=("gl_account", "cost_center"), target_code__in=("60100", "CC100")).count()
            return synced and approved >= 2

        return db_retry(check)

    # --- disruptions ----------------------------------------------------------------------------
    def locked_now(self) -> list[tuple[int, str]]:
        from integrations.models import StreamState

        return db_retry(lambda: list(StreamState.objects.filter(integration_id__in=self.integrations.values())
                                     .exclude(lock_token="").values_list("integration_id", "stream")))

    def disrupt(self, kind: str) -> None:
        locked = self.locked_now()
        if kind == "qcluster":  # aim at work in progress: wait up to 3 s for some stream to be running
            until = time.monotonic() + 3.0
            while not locked and time.monotonic() < until:
                time.sleep(0.2)
                locked = self.locked_now()
        now = time.time()
        if kind == "qcluster":
            live = [c for c in self.clusters if c.alive()]
            victim = self.rng.choice(live)
            victim.kill9()
            self.clusters.remove(victim)
            self.restart_at[f"qcluster-after-{victim.name}"] = time.monotonic() + self.rng.uniform(0.0, 1.5)
            detail = victim.name
        elif kind == "web":
            self.web.kill9()
            self.restart_at["web"] = time.monotonic() + 3.0
            detail = "runserver"
        elif kind == "redis":
            self.redis.crash()
            self.restart_at["redis"] = time.monotonic() + 2.0
            detail = f"port {self.redis.port}"
        else:
            cut = self.postgres.terminate_connections()
            self.counters.pg_cut += cut
            detail = f"{cut} connections"
        self.disruptions.append(Disruption(kind, now, locked, detail))
        self.say(f"disruption: {kind} ({detail}); {len(locked)} stream(s) were running")

    def supervise(self) -> None:
        """Start again what we killed when its time comes, and anything that died on its own."""
        now = time.monotonic()
        for what, when in list(self.restart_at.items()):
            if now < when:
                continue
            del self.restart_at[what]
            if what.startswith("qcluster"):
                self.start_cluster()
            elif what == "web":
                self.start_web()
            elif what == "redis":
                self.redis.start()
        # Anything that died on its own is started again after a short pause, as a process
        # supervisor (systemd, Kubernetes) would; each one is counted and reported.
        for child in list(self.clusters):
            if not child.alive():
                self.counters.unplanned_restarts.append(f"{child.name} exited {child.process.returncode}")
                self.say(f"{child.name} died on its own (exit {child.process.returncode}); starting another")
                self.clusters.remove(child)
                self.restart_at[f"qcluster-after-{child.name}"] = now + 2.0
        if "web" not in self.restart_at and self.web is not None and not self.web.alive():
            self.counters.unplanned_restarts.append(f"web exited {self.web.process.returncode}")
            self.say(f"the web server died on its own (exit {self.web.process.returncode}); starting it again")
            self.restart_at["web"] = now + 2.0
        if "redis" not in self.restart_at and self.redis.child is not None and not self.redis.child.alive():
            self.counters.unplanned_restarts.append("redis exited")
            self.restart_at["redis"] = now + 2.0

    def watch_locks(self) -> None:
        from integrations.models import StreamState

        def oldest() -> float:
            beats = StreamState.objects.filter(integration_id__in=self.integrations.values()).exclude(
                lock_token="").values_list("lock_heartbeat_at", flat=True)
            now = datetime.now(UTC)
            return max(((now - beat).total_seconds() for beat in beats if beat), default=0.0)

        self.counters.lock_age_max = max(self.counters.lock_age_max, db_retry(oldest))

    def schedule(self) -> list[tuple[float, str]]:
        """When each disruption happens, seconds into the chaos phase."""
        duration, kills = self.cfg["duration"], self.cfg["kills"]
        events = [((i + self.rng.uniform(0.15, 0.85)) / kills * duration * 0.92, "qcluster") for i in range(kills)]
        for kind in ("web", "redis", "postgres"):
            while True:
                at = self.rng.uniform(0.15, 0.85) * duration
                if all(abs(at - other) >= 2.0 for other, _ in events):
                    events.append((at, kind))
                    break
        return sorted(events)

    # --- the phases ---------------------------------------------------------------------------------
    def chaos(self) -> None:
        from integrations.chaos.workload import person_for

        duration = self.cfg["duration"]
        self.people = [person_for(spec, random.Random(self.rng.random()), duration, self.ready)
                       for spec in self.tenants]
        events = self.schedule()
        self.say(f"chaos for {duration:.0f} s: {len(events)} disruptions, "
                 f"{sum(p.pending for p in self.people)} changes by people")
        t0 = time.monotonic()
        for person in self.people:
            person.start(t0)
        next_runs = next_approvals = 0.0
        while events or time.monotonic() - t0 < duration:
            now = time.monotonic()
            if events and now - t0 >= events[0][0]:
                self.disrupt(events.pop(0)[1])
            self.supervise()
            if now >= next_runs:
                self.request_runs()
                next_runs = now + self.cfg["run_every"]
            if now >= next_approvals:
                self.approve_suggestions()
                self.watch_locks()
                next_approvals = now + 3.0
            time.sleep(0.2)
        for person in self.people:
            person.finish_now()
        left = [f"{a.name}{a.args}" for p in self.people for a in p.actions]
        if left:
            self.say(f"chaos over; people still have {len(left)} change(s) to make: {', '.join(left[:10])}")
        deadline = time.monotonic() + 120
        while any(p.pending for p in self.people) and time.monotonic() < deadline:
            self.supervise()
            self.request_runs()
            self.approve_suggestions()
            time.sleep(1.0)
        for person in self.people:
            person.stop()
        self.say("people done: " + ", ".join(f"{p.spec.slug} {sum(p.stats.done.values())} changes "
                                             f"({p.stats.postponed} postponed, {len(p.stats.errors)} errors)"
                                             for p in self.people))

    def quiet(self, since: datetime) -> tuple[str, str]:
        """``"clean"``: nothing pending or failed-transient, no lock past its stale window, and every
        enabled stream's latest run that started after ``since`` succeeded without writing or failing
        anything; ``"waiting"``: so far so good, but some stream has had no run since; else ``"dirty"``.
        (Runs are requested all the time, so some lock is nearly always held: a held lock is fine,
        a stale one is not.)"""
        from integrations.models import ErrorClass, RecordStatus, RunStatus, StreamState, SyncRecord, SyncRun

        def state() -> tuple[str, str]:
            ids = list(self.integrations.values())
            records = SyncRecord.objects.filter(integration_id__in=ids)
            pending = records.filter(status=RecordStatus.PENDING).count()
            transient = records.filter(status=RecordStatus.FAILED, error_class=ErrorClass.TRANSIENT).count()
            stale = StreamState.objects.filter(integration_id__in=ids).exclude(lock_token="").filter(
                lock_heartbeat_at__lt=datetime.now(UTC) - timedelta(seconds=self.stale)).count()
            dirty, waiting = [], []
            for stream in StreamState.objects.filter(integration_id__in=ids, enabled=True):
                last = (SyncRun.objects.filter(integration_id=stream.integration_id, stream=stream.stream,
                                               started_at__gte=since)
                        .exclude(status__in=(RunStatus.RUNNING, RunStatus.SKIPPED)).order_by("-started_at").first())
                if last is None:
                    waiting.append(stream.stream)
                elif last.status != RunStatus.SUCCEEDED or last.created or last.updated or last.failed:
                    dirty.append(stream.stream)
            why = (f"pending={pending} failed_transient={transient} stale_locks={stale} "
                   f"streams_writing={len(dirty)} streams_not_run={len(waiting)}")
            if pending or transient or stale or dirty:
                return "dirty", why
            return ("waiting" if waiting else "clean"), why

        return db_retry(state)

    def converge(self) -> tuple[bool, float, str]:
        """Until two rounds in a row are clean: one since convergence began, then one more after it."""
        started = time.monotonic()
        deadline = started + self.cfg["converge_timeout"]
        since = datetime.now(UTC)
        confirming = False
        next_runs = next_replay = 0.0
        why = ""
        self.say("converging")
        while time.monotonic() < deadline:
            now = time.monotonic()
            self.supervise()
            if now >= next_runs:
                self.request_runs()
                self.approve_suggestions()
                next_runs = now + self.cfg["run_every"]
            if now >= next_replay:
                self.replay_transient_failures()
                next_replay = now + 5.0
            verdict, why = self.quiet(since)
            if verdict == "clean" and confirming:
                return True, time.monotonic() - started, why
            if verdict == "clean":
                confirming, since = True, datetime.now(UTC)  # once more, with runs started from now on
            elif verdict == "dirty":
                confirming, since = False, datetime.now(UTC)
            time.sleep(1.0)
        return False, time.monotonic() - started, why

    # --- figures ----------------------------------------------------------------------------------
    def recoveries(self) -> None:
        from integrations.models import RunStatus, SyncRun

        def first_success(after: datetime, integration_id: int | None = None, stream: str | None = None) -> Any:
            runs = SyncRun.objects.filter(integration_id__in=self.integrations.values(), started_at__gt=after,
                                          status=RunStatus.SUCCEEDED)
            if integration_id is not None:
                runs = runs.filter(integration_id=integration_id, stream=stream)
            return runs.order_by("finished_at").values_list("finished_at", flat=True).first()

        for event in self.disruptions:
            at = datetime.fromtimestamp(event.at, UTC)
            if event.locked:
                finished = [db_retry(lambda a=at, i=i, s=s: first_success(a, i, s)) for i, s in event.locked]
                if all(finished):
                    event.recovery = max((f - at).total_seconds() for f in finished)
            else:
                finished_at = db_retry(lambda a=at: first_success(a))
                if finished_at:
                    event.recovery = (finished_at - at).total_seconds()

    def figures(self, converged: bool, converge_seconds: float, why: str, wall: float) -> dict[str, Any]:
        from integrations.chaos.verify import check_tenant
        from integrations.models import RecordStatus, RunStatus, StreamState, SyncRecord, SyncRun

        self.recoveries()
        ids = list(self.integrations.values())
        results = [check_tenant(spec) for spec in self.tenants]
        stale_before = datetime.now(UTC) - timedelta(seconds=self.stale)
        locks = StreamState.objects.filter(integration_id__in=ids).exclude(lock_token="")
        runs = SyncRun.objects.filter(integration_id__in=ids)
        kills = [d for d in self.disruptions if d.kind in ("qcluster", "web")]
        recovered = [d for d in self.disruptions if d.recovery is not None]
        longest = max(recovered, key=lambda d: d.recovery or 0.0, default=None)
        total = {name: sum(getattr(r, name) for r in results)
                 for name in ("records", "equal", "duplicates", "lost", "mismatched", "held", "held_stranded",
                              "failed", "orphans")}
        out: dict[str, Any] = {
            "tenants": len(self.tenants),
            "pairs": ",".join(sorted({t.pair for t in self.tenants})),
            "records": total["records"],
            "records.equal": total["equal"],
            "duplicates": total["duplicates"],
            "lost": total["lost"],
            "mismatched": total["mismatched"],
            "non_terminal": SyncRecord.objects.filter(integration_id__in=ids, status=RecordStatus.PENDING).count(),
            "held": total["held"],
            "held_stranded": total["held_stranded"],
            "failed": total["failed"],
            "orphans": total["orphans"],
            "locks.held": locks.count(),
            "locks.stale": locks.filter(lock_heartbeat_at__lt=stale_before).count(),
            "locks.stale_window_seconds": self.stale,
            "locks.held_detail": "; ".join(f"{s.integration_id}/{s.stream} heartbeat {s.lock_heartbeat_at}"
                                           for s in locks),
            "locks.oldest_heartbeat_seen_seconds": round(self.counters.lock_age_max, 1),
            "kills.qcluster": sum(1 for d in kills if d.kind == "qcluster"),
            "kills.web": sum(1 for d in kills if d.kind == "web"),
            "kills.while_syncs_ran": sum(1 for d in kills if d.locked),
            "kills_survived": sum(1 for d in kills if d.recovery is not None) if converged else 0,
            "redis.restarts": sum(1 for d in self.disruptions if d.kind == "redis"),
            "postgres.connection_cuts": sum(1 for d in self.disruptions if d.kind == "postgres"),
            "postgres.connections_cut": self.counters.pg_cut,
            "recovery.longest_seconds": round(longest.recovery, 1) if longest and longest.recovery else None,
            "recovery.longest_after": f"{longest.kind} ({longest.detail})" if longest else "",
            "recovery.median_seconds": round(statistics.median(d.recovery for d in recovered), 1)
            if recovered else None,
            "recovery.unrecovered": len(self.disruptions) - len(recovered),
            "runs.total": runs.count(),
            "runs.succeeded": runs.filter(status=RunStatus.SUCCEEDED).count(),
            "runs.failed": runs.filter(status=RunStatus.FAILED).count(),
            "runs.skipped_busy": runs.filter(status=RunStatus.SKIPPED).count(),
            "runs.abandoned_by_killed_workers": runs.filter(error__startswith="The worker stopped before").count(),
            "runs.left_running": runs.filter(status=RunStatus.RUNNING).count(),
            "restarts.unplanned": len(self.counters.unplanned_restarts),
            "api.requests_ok": self.counters.api_ok,
            "api.requests_failed": self.counters.api_failed,
            "workload.changes": sum(sum(p.stats.done.values()) for p in self.people),
            "workload.errors": sum(len(p.stats.errors) for p in self.people),
            "converged": converged,
            "converge.seconds": round(converge_seconds, 1),
            "converge.last_state": why,
            "wall_seconds": round(wall, 1),
        }
        for result in results:
            for name in ("records", "equal", "duplicates", "lost", "mismatched", "held", "held_stranded", "failed"):
                out[f"tenant.{result.slug}.{name}"] = getattr(result, name)
        out["details"] = [line for result in results for line in result.details]
        out["details"] += [f"unplanned restart: {what}" for what in self.counters.unplanned_restarts]
        out["details"] += [f"workload error: {error}" for p in self.people for error in p.stats.errors]
        out["details"] += [f"disruption {d.kind} ({d.detail}) at +{d.at - self.t_start:.1f}s: "
                           f"{len(d.locked)} running, recovered in "
                           f"{f'{d.recovery:.1f} s' if d.recovery is not None else 'never'}"
                           for d in self.disruptions]
        return out

    def run(self) -> dict[str, Any]:
        self.t_start = time.time()
        started = time.monotonic()
        self.setup()
        self.chaos()
        converged, seconds, why = self.converge()
        self.say(f"{'converged' if converged else 'did NOT converge'} in {seconds:.0f} s ({why}); "
                 "letting the runs in progress finish, then stopping the workers and checking")
        self.wind_down()
        return self.figures(converged, seconds, why, time.monotonic() - started)

    def wind_down(self) -> None:
        """No more requests; the minute schedules are removed; the runs in progress finish (their locks
        released); then each qcluster is stopped the way an operator would (SIGTERM to its sentinel)."""
        from django_q.models import Schedule

        db_retry(lambda: Schedule.objects.filter(name__startswith="sync:").delete())
        started = time.monotonic()
        deadline = started + 90
        idle_since = None
        while time.monotonic() < deadline:
            self.supervise()
            if self.locked_now():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= 3.0 and not self.queue_length():
                break
            time.sleep(0.5)
        self.restart_at.clear()
        self.counters.graceful_stops = sum(child.stop_gracefully(timeout=60) for child in self.clusters)
        self.say(f"workers idle and stopped after {time.monotonic() - started:.0f} s "
                 f"({self.counters.graceful_stops}/{len(self.clusters)} stopped gracefully)")
        self.clusters = []

    def shutdown(self) -> None:
        for child in [*self.clusters, self.web]:
            if child is not None:
                child.kill9()
        self.redis.stop()
        for person in self.people:
            person.stop()


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    driver = Driver(config)
    try:
        figures = driver.run()
    finally:
        driver.shutdown()
    print(json.dumps(figures, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
