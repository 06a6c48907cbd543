"""The syncing process of the benchmark: the real engine and clients, against a throwaway database.

Started by :mod:`integrations.benchmark.run` with ``DATABASE_URL`` pointing at a temporary
SQLite file, so the user's data is never touched; its peak memory is the sync's own. It
migrates that database, loads the benchmark tenant, then runs the full sync (reference data,
every suggested mapping approved as an approver would, then the record streams) and an
unchanged re-sync, counting database queries and HTTP calls. Prints one JSON line.

``python -m integrations.benchmark.worker CONFIG.json``; with ``BENCH_PROFILE=FILE`` in the
environment (it passes through ``manage.py benchmark``) the full sync is profiled with cProfile
into FILE, for ``python -m pstats FILE``; with ``BENCH_TRACE=FILE`` every HTTP call of the full
sync is listed in FILE ("start duration kind METHOD path", seconds, in order), to see which calls
exceed the minimum and, from the gaps between them, where no call was out; with
``BENCH_QUERIES=FILE`` its most frequent SQL statements, with their counts; with
``BENCH_MEMORY=FILE`` (slow: ``tracemalloc``) the biggest Python heap seen in each part of the full
sync, by the lines that allocated it, to see what grows with the records.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


class QueryCounter:
    """A ``connection.execute_wrapper`` that only counts (no SQL kept, so memory stays flat).

    An ``executemany`` counts as one query per parameter set: the database runs the statement
    that many times, even if the driver sends them together.
    """

    def __init__(self) -> None:
        self.count = 0
        # with ``BENCH_QUERIES=FILE``: statements by count (their first 400 characters)
        self.statements: Counter[str] | None = Counter() if os.environ.get("BENCH_QUERIES") else None

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if many:
            params = list(params)
            self.count += len(params)
        else:
            self.count += 1
        if self.statements is not None:
            self.statements[sql[:400]] += len(params) if many else 1
        return execute(sql, params, many, context)

    def dump(self) -> None:
        if self.statements is not None:
            with open(os.environ["BENCH_QUERIES"], "w", encoding="utf-8") as handle:
                handle.writelines(f"{n:8d}  {sql}\n" for sql, n in self.statements.most_common(60))
            self.statements = None


def _runs_summary(runs: list[Any]) -> dict[str, Any]:
    totals = {name: 0 for name in ("read", "created", "updated", "unchanged", "held", "failed", "api_calls")}
    for run in runs:
        for name in totals:
            totals[name] += getattr(run, name)
    totals["statuses"] = {run.stream: run.status for run in runs}
    totals["errors"] = {run.stream: run.error for run in runs if run.error}
    totals["seconds"] = {run.stream: round((run.finished_at - run.started_at).total_seconds(), 3) for run in runs}
    return totals


class HeapSampler:
    """With ``BENCH_MEMORY=FILE``: snapshots of the traced Python heap every few seconds, the
    biggest of each part kept and written to FILE when the part ends: its top allocations, each
    with the lines that made it, the allocating line first."""

    def __init__(self, path: str) -> None:
        import threading
        import tracemalloc

        self.path, self.tracemalloc = path, tracemalloc
        self.biggest: Any = None
        self.size = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        tracemalloc.start(8)
        with open(path, "w", encoding="utf-8"):
            pass
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(3):
            self.take()

    def take(self) -> None:
        with self.lock:
            size = self.tracemalloc.get_traced_memory()[0]
            if size > self.size:
                self.biggest, self.size = self.tracemalloc.take_snapshot(), size

    def part(self, name: str) -> None:
        self.take()
        with self.lock:
            biggest, size = self.biggest, self.size
            self.biggest, self.size = None, 0
        lines = [f"== {name}: biggest traced heap {size / 2**20:.1f} MiB"]
        if biggest is not None:
            for stat in biggest.statistics("traceback")[:25]:
                lines.append(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks")
                lines.extend(f"      {frame.filename}:{frame.lineno}" for frame in list(reversed(stat.traceback))[:6])
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self.stop.set()
        self.tracemalloc.stop()


def _phase_peak(peak: Any, reset: Any) -> float:
    """The peak RSS since the last reset, then reset it to the current RSS for the next phase."""
    found = peak()
    reset()
    return found


def sync(config: dict[str, Any]) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from integrations.benchmark.measure import peak_rss_mb, reset_peak_rss, tally_http
    from integrations.engine.mappings import approve_all
    from integrations.engine.runner import ensure_streams, run_integration
    from integrations.flows import get_flow
    from integrations.models import Integration, Mapping, MappingStatus, SyncRecord
    from integrations.tenants import load_document

    call_command("migrate", verbosity=0)
    load_document(config["document"], actor="benchmark")
    integration = Integration.objects.select_related("source", "target", "tenant").get(kind=config["kind"])
    flow = get_flow(integration.kind)
    references = [cls.name for cls in flow.streams if cls.is_reference]
    records = [s.stream for s in ensure_streams(integration) if s.enabled and s.stream not in references]

    profile = os.environ.get("BENCH_PROFILE")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    queries = QueryCounter()
    sampler = HeapSampler(os.environ["BENCH_MEMORY"]) if os.environ.get("BENCH_MEMORY") else None
    reset_peak_rss()
    with tally_http() as tally, connection.execute_wrapper(queries):
        if os.environ.get("BENCH_TRACE"):
            tally.trace = []
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        phases: dict[str, float] = {}  # each phase's peak RSS (VmHWM reset as it starts)
        runs = run_integration(integration, actor="benchmark", streams=references)
        phases["reference_data"] = _phase_peak(peak_rss_mb, reset_peak_rss)
        if sampler:
            sampler.part("reference_data")
        # An approver accepts every suggestion before the invoices move (all codes match here).
        approve_all(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED), actor="benchmark")
        phases["approval"] = _phase_peak(peak_rss_mb, reset_peak_rss)
        if sampler:
            sampler.part("approval")
        runs += run_integration(integration, actor="benchmark", streams=records)
        phases["records"] = _phase_peak(peak_rss_mb, reset_peak_rss)
        if sampler:
            sampler.part("records")
        if profiler:
            profiler.disable()
        if sampler:
            sampler.close()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        full = {"wall_seconds": wall, "cpu_seconds": cpu, "http": tally.snapshot(), "queries": queries.count,
                "runs": _runs_summary(runs), "peak_rss_mb_by_phase": phases}

        queries.dump()
        if tally.trace is not None:
            with open(os.environ["BENCH_TRACE"], "w", encoding="utf-8") as handle:
                handle.write("\n".join(tally.trace) + "\n")
            tally.trace = None
        tally.reset()
        queries.count = 0
        started = time.perf_counter()
        reruns = run_integration(integration, actor="benchmark", streams=references + records)
        resync = {"wall_seconds": time.perf_counter() - started, "http": tally.snapshot(),
                  "queries": queries.count, "runs": _runs_summary(reruns)}
        reconciled = _reconcile(integration, tally, queries) if config.get("reconcile") else None
    if profiler:
        profiler.dump_stats(profile)
    by_status = dict(SyncRecord.objects.filter(integration=integration).order_by().values_list("status")
                     .annotate(n=Count("pk")).values_list("status", "n"))
    return {"sync": full, "resync": resync, "records": by_status, "peak_rss_mb": max(peak_rss_mb(), *phases.values()),
            **({"reconcile": reconciled} if reconciled else {})}


def _reconcile(integration: Any, tally: Any, queries: QueryCounter) -> dict[str, Any]:
    """One month-end reconciliation over every day the seeded documents are dated (read back from
    the target through the sync's clients): its time, calls, queries and verdict."""
    from integrations.engine.reconcile import money_streams, reconcile
    from integrations.models import Period, SyncRecord

    days = []
    settings = integration.source.settings or {}
    for stream in money_streams(integration):
        for snapshot in SyncRecord.objects.filter(integration=integration, stream=stream.name).values_list(
                "source_snapshot", flat=True).iterator(chunk_size=2000):
            money = stream.money(snapshot, settings)
            if money is not None and money.day is not None:
                days.append(money.day)
    if not days:
        return {"documents": 0}
    tally.reset()
    queries.count = 0
    started = time.perf_counter()
    run = reconcile(integration, Period(min(days), max(days)), actor="benchmark")
    return {"wall_seconds": time.perf_counter() - started, "http": tally.snapshot(), "queries": queries.count,
            "documents": len(days), "period": run.period_label, "verdict": run.verdict,
            "differences": run.differences}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    _setup()
    if config.get("task") == "admin":
        from integrations.benchmark.admin_timing import admin_timing

        result = admin_timing(config)
    else:
        result = sync(config)
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
