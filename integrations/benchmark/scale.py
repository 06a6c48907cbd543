"""``benchmark --scale``: the production shape (PostgreSQL + Redis + ``qcluster`` workers) under load.

M tenants, each with its own Sage X3 and its own ServiceNow sandbox (one simulator is one company
or one instance), every answer delayed by a per-call latency (a WAN to a cloud instance). For
each worker count (1, 2, 4 by default): a throwaway PostgreSQL database, a Redis of its own,
fresh ServiceNow sandboxes, the tenants loaded and their reference data synced and mapped, one
``qcluster`` with that many workers started and idle (none of this timed: production workers
start once), then one sync task per tenant queued at once (timed, until every task has
finished). Figures per worker count: wall time, records
per second, speed-up over one worker, target rows doubled (must be 0, counted in each
ServiceNow sandbox by source key) and runs skipped for a held lock.

The work is latency-bound on purpose: small pages and batches, so calls, not the CPU, are the
cost; the speed-up then shows how much the workers overlap their waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from integrations.benchmark.processes import Sandbox
from integrations.chaos.infra import BASE_DIR, ChaosError, Postgres, RedisServer
from integrations.sandbox.snseed import INTEGRATION_PASSWORD, INTEGRATION_USER

SN_DEMO_USER = (INTEGRATION_USER, INTEGRATION_PASSWORD)  # the sandbox instance's own user

DRIVER = "integrations.benchmark.scale_driver"
PAGE = 50  # records per page and items per Batch API call: many calls per record, as over a WAN
SN_TABLES = ("proc_vendor", "proc_po", "sn_apo_invoice")  # where doubled rows would show


def run_scale(tenants: int = 8, records: int = 200, lines: int = 2, workers: tuple[int, ...] = (1, 2, 4),
              latency_ms: int = 50, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the scale-out benchmark; returns the figures (see the module docstring)."""
    if tenants < 1 or records < 1 or not workers or min(workers) < 1:
        raise ChaosError("need --tenants >= 1, --records >= 1 and worker counts >= 1")
    if not Postgres.binaries_present() or not RedisServer.binary_present():
        raise ChaosError("benchmark --scale needs PostgreSQL server binaries and redis-server (make services)")
    say = progress or (lambda message: None)
    figures: dict[str, Any] = {"scale.tenants": tenants, "scale.invoices_per_tenant": records,
                               "scale.lines_per_invoice": lines, "scale.latency_ms": latency_ms,
                               "scale.page_and_batch": PAGE, "machine.cores": os.cpu_count() or 0}
    workdir = Path(tempfile.mkdtemp(prefix="ml-scale-"))
    delay = ("--latency", str(latency_ms / 1000)) if latency_ms else ()
    sources: list[Sandbox] = []
    try:
        say(f"Seeding {tenants} Sage X3 sandboxes with {records} invoices x {lines} lines...")
        for index in range(tenants):
            sources.append(Sandbox("sage_x3", "--invoices", str(records), "--lines-per-invoice", str(lines), *delay,
                                   log=workdir / f"x3-{index}.log"))
        base = None
        for count in workers:
            say(f"{count} worker(s): fresh database, Redis and ServiceNow sandboxes, then the syncs...")
            result = _one_round(count, sources, delay, workdir / f"w{count}")
            base = base or result["seconds"]
            prefix = f"scale.workers_{count}"
            figures[f"{prefix}.wall_seconds"] = result["seconds"]
            figures[f"{prefix}.records_per_second"] = result["records_per_second"]
            figures[f"{prefix}.speedup"] = round(base / result["seconds"], 2) if result["seconds"] else 0
            figures[f"{prefix}.records_synced"] = result["synced"]
            figures[f"{prefix}.records_not_synced"] = result["not_synced"]
            figures[f"{prefix}.doubled_target_rows"] = result["doubled"]
            figures[f"{prefix}.lock_skips"] = result["skipped"]
            figures[f"{prefix}.runs_failed"] = result["failed"]
            # every core of the machine busy means the workers waited on the CPU, not on their calls
            figures[f"{prefix}.machine_cpu_busy_pct"] = result.get("cpu_busy_pct")
            figures[f"{prefix}.one_sync_seconds_mean"] = result.get("sync_seconds_mean")
    finally:
        for sandbox in sources:
            sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def _one_round(count: int, sources: list[Sandbox], delay: tuple[str, ...], workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    database = Postgres(f"ml_scale_{os.getpid()}_{count}")
    redis = RedisServer(workdir)
    targets: list[Sandbox] = []
    try:
        database.ensure_running()
        database.create()
        redis.start()
        for index in range(len(sources)):
            targets.append(Sandbox("servicenow", *delay, log=workdir / f"sn-{index}.log"))
        config = {"tenants": [{"x3": s.url, "sn": t.url} for s, t in zip(sources, targets, strict=True)],
                  "page": PAGE, "workers": count}
        (workdir / "config.json").write_text(json.dumps(config), encoding="utf-8")
        env = _env(database.url, redis.url, count)
        completed = subprocess.run([sys.executable, "-m", DRIVER, str(workdir / "config.json")], cwd=BASE_DIR,
                                   env=env, capture_output=True, text=True, check=False, timeout=3600)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        if completed.returncode != 0 or not lines:
            raise ChaosError(f"the scale driver failed (exit {completed.returncode}): {completed.stderr[-3000:]}")
        result = json.loads(lines[-1])
        result["doubled"] = sum(_doubled(target.url) for target in targets)
        return result
    finally:
        for sandbox in targets:
            sandbox.stop()
        redis.stop()
        with contextlib.suppress(Exception):  # a leftover database must not hide the round's outcome
            database.drop()


def _doubled(sn_url: str) -> int:
    """Rows beyond the first per source key in a ServiceNow sandbox's staging tables."""
    doubled = 0
    for table in SN_TABLES:
        rows = requests.get(f"{sn_url}/api/now/table/{table}", auth=SN_DEMO_USER, timeout=120, params={
            "sysparm_fields": "u_source_key", "sysparm_limit": 100_000}).json()["result"]
        counts = Counter(row.get("u_source_key") for row in rows if row.get("u_source_key"))
        doubled += sum(n - 1 for n in counts.values() if n > 1)
    return doubled


def _env(database_url: str, redis_url: str, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PORTAL_DEV", "SECRET_KEY", "SECRET_KEY_FILE", "SECRET_KEY_FALLBACKS", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url,
        "Q_BROKER_URL": redis_url,
        "Q_WORKERS": str(workers),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "PORTAL_HTTPS": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "SCALE_STARTED": str(time.time()),
    })
    return env
