"""The child process of one ``benchmark --scale`` round (see :mod:`integrations.benchmark.scale`).

Pointed by its environment at a throwaway PostgreSQL database and a Redis of its own: migrate,
load one tenant per pair of sandboxes, sync their reference data and approve the suggestions
(not timed), start one ``qcluster`` with ``Q_WORKERS`` workers and wait until it reports itself
idle with all of them (not timed: a production worker starts once, not per sync), then queue one
sync of the record streams per tenant at once and wait until every queued sync has finished
(timed from the queuing to the last task's stop time); print one JSON line of figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

REFERENCE = ["x3_gl_accounts", "sn_gl_accounts", "x3_cost_centers", "sn_cost_centers"]
RECORDS = ["suppliers", "purchase_orders", "invoices"]


def main(argv: list[str]) -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Max, Min
    from django.utils import timezone
    from django_q.models import Task
    from django_q.tasks import async_task

    from integrations.benchmark.measure import busy_pct, machine_cpu_ticks
    from integrations.benchmark.pairs import _x3_servicenow_document
    from integrations.engine.mappings import approve_all
    from integrations.engine.runner import run_integration
    from integrations.models import Integration, Mapping, MappingStatus, RecordStatus, RunStatus, SyncRecord, SyncRun
    from integrations.tenants import load_document

    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    call_command("migrate", verbosity=0)
    integrations = []
    for index, urls in enumerate(config["tenants"]):
        document = _x3_servicenow_document(urls["x3"], urls["sn"])
        document["tenant"] = {"slug": f"scale-{index + 1}", "name": f"Scale tenant {index + 1}"}
        page = config["page"]
        document["integrations"][0]["settings"] = {"page_size": page, "batch_size": page}
        document["connections"][0]["settings"] = {"page_size": page}
        document["connections"][1]["settings"] = {**document["connections"][1].get("settings", {}),
                                                  "batch_size": page, "page_size": page}
        load_document(document)
        integration = Integration.objects.select_related("source", "target", "tenant").get(
            tenant__slug=f"scale-{index + 1}")
        run_integration(integration, streams=REFERENCE)
        approve_all(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED))
        integrations.append(integration)

    first_run = SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR,
                               env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        _wait_until_idle(cluster, int(config["workers"]))
        started, queued, ticks = time.monotonic(), timezone.now(), machine_cpu_ticks()
        for integration in integrations:
            async_task("integrations.tasks.run_integration_task", integration.pk, None, RECORDS,
                       task_name=f"scale {integration.tenant.slug}")
        deadline = started + 3000
        tasks = Task.objects.filter(name__startswith="scale ")
        while time.monotonic() < deadline:  # django-q stores a task once it has finished (or failed)
            if tasks.count() >= len(integrations):
                break
            time.sleep(0.2)
        cpu_busy = busy_pct(ticks, machine_cpu_ticks())
        # until the last task stopped (its worker's clock, this machine's), not until this loop saw
        # it: the loop's 0.2 s naps would otherwise be counted, the same at every worker count
        last = tasks.aggregate(last=Max("stopped"))["last"]
        seconds = (last - queued).total_seconds() if last else time.monotonic() - started
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
    records = SyncRecord.objects.filter(stream__in=RECORDS)
    synced = records.filter(status=RecordStatus.SYNCED).count()
    runs = SyncRun.objects.filter(pk__gt=first_run, stream__in=RECORDS)
    # one tenant's sync, from its first run's start to its last run's end: with W workers and T
    # tenants the wall time cannot be under T x this / W, so the two show where a speed-up stops
    spans = [(last - first).total_seconds() for first, last in runs.exclude(finished_at=None).order_by()
             .values("integration_id").annotate(first=Min("started_at"), last=Max("finished_at"))
             .values_list("first", "last")]
    print(json.dumps({
        "sync_seconds_mean": round(sum(spans) / len(spans), 2) if spans else None,
        "seconds": round(seconds, 2), "synced": synced, "not_synced": records.count() - synced,
        "records_per_second": round(synced / seconds, 1) if seconds else 0,
        "skipped": runs.filter(status=RunStatus.SKIPPED).count(),
        "failed": runs.filter(status=RunStatus.FAILED).count(), "cpu_busy_pct": cpu_busy,
    }), flush=True)
    return 0


def _wait_until_idle(cluster: subprocess.Popen, workers: int, timeout: float = 120) -> None:
    """Wait until the cluster has published an idle status with all its workers (its guard does, twice a second)."""
    from django_q.conf import Conf
    from django_q.status import Stat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.poll() is not None:
            raise SystemExit(f"qcluster exited with {cluster.returncode} before it was ready")
        if any(stat.status == Conf.IDLE and len(stat.workers) >= workers for stat in Stat.get_all()):
            return
        time.sleep(0.1)
    raise SystemExit(f"qcluster was not idle with {workers} workers after {timeout:.0f} s")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
