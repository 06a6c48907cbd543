"""One chaos run, end to end: throwaway services in, figures out, everything removed.

Order: check the binaries; create the throwaway PostgreSQL database ``ml_chaos_<pid>`` (the
local server is started if it is down, as ``make services`` does); start two sandbox servers
per tenant (its ERP and its own ServiceNow instance: one simulator is one company / one
instance, so tenants never share one), with faults on; run :mod:`integrations.chaos.driver` in
a child process pointed at that database, at a Redis of its own on a free port, with a random
``SECRET_KEY``; then kill whatever the driver left behind, stop the sandboxes and drop the
database, whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integrations.benchmark.processes import Sandbox
from integrations.chaos.infra import BASE_DIR, MARKER, ChaosError, Postgres, RedisServer, free_port, kill_registered
from integrations.chaos.workload import LINES, SUPPLIERS, TenantSpec

# Faults injected by every sandbox server of a run (see integrations.sandbox.base.Faults).
# ``item_drop_rate`` is per committed Batch API item, so a call of B items loses its answer with
# probability 1 - (1 - rate) ** B: the rate is set per run to 0.1 / batch size, about one call in
# ten (headers; a call of lines as well), whatever the size of the run.
SERVICENOW_FAULTS = {"error_rate": 0.03, "burst_429_rate": 0.01, "burst_429_length": 2, "retry_after": 1,
                     "drop_rate": 0.02, "latency": 0.005}
LOST_ACKS_PER_BATCH = 0.1
SOURCE_FAULTS = {"error_rate": 0.02, "burst_429_rate": 0.005, "burst_429_length": 2, "retry_after": 1,
                 "drop_rate": 0.03, "latency": 0.005}
DEFAULT_STALE_SECONDS = 30


def _fault_args(faults: dict[str, Any], seed: int) -> list[str]:
    args = []
    for name, value in faults.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return [*args, "--fault-seed", str(seed)]


def requirements() -> list[str]:
    """What this machine lacks to run the chaos test (empty when it can run)."""
    missing = []
    if not Postgres.binaries_present():
        missing.append("PostgreSQL server binaries (pg_ctlcluster or pg_ctl, pg_isready)")
    if not RedisServer.binary_present():
        missing.append("redis-server")
    return missing


def run_chaos(tenants: int = 2, records: int = 30, kills: int = 10, seed: int = 1, *,
              duration: float | None = None, qclusters: int = 2, stale_seconds: int = DEFAULT_STALE_SECONDS,
              converge_timeout: float | None = None, progress: Callable[[str], None] | None = None,
              keep: bool = False, keep_database: bool = False) -> dict[str, Any]:
    """Run the chaos proof; returns the figures (see :mod:`integrations.chaos.driver`).

    ``keep`` keeps the logs directory (a failed run keeps it anyway); ``keep_database`` keeps the
    throwaway database for a post-mortem instead of dropping it.
    """
    if tenants < 1 or records < 2 or kills < 0 or qclusters < 2:
        raise ChaosError("need --tenants >= 1, --records >= 2, --kills >= 0 and at least 2 qclusters")
    missing = requirements()
    if missing:
        raise ChaosError("cannot run: missing " + ", ".join(missing))
    say = progress or (lambda message: None)
    duration = duration or max(60.0, 6.0 * kills)
    converge_timeout = converge_timeout or max(150.0, 4.0 * stale_seconds + records * tenants * 0.2)
    page = min(10, max(5, records // 6))  # records and Batch API items per call: many checkpoints
    servicenow_faults = {**SERVICENOW_FAULTS, "item_drop_rate": round(LOST_ACKS_PER_BATCH / page, 4)}
    run_id = f"{os.getpid()}-{secrets.token_hex(4)}"
    workdir = Path(tempfile.mkdtemp(prefix="ml-chaos-"))
    registry = workdir / "children.pids"
    database = Postgres(f"ml_chaos_{os.getpid()}")
    sandboxes: list[Sandbox] = []
    started = time.monotonic()
    try:
        database.ensure_running()
        database.create()
        say(f"throwaway database {database.name}; starting {2 * tenants} sandbox servers")
        specs = []
        for index in range(tenants):
            pair = "x3" if index % 2 == 0 else "intacct"
            initial = max(1, records // 2)
            source_system = "sage_x3" if pair == "x3" else "sage_intacct"
            extra = ["--writable", "PORDER,PINVOICE"] if pair == "x3" else []
            source = Sandbox(source_system, "--invoices", str(initial), "--lines-per-invoice", str(LINES),
                             "--suppliers", str(SUPPLIERS), *extra, *_fault_args(SOURCE_FAULTS, seed * 1000 + index),
                             log=workdir / f"sandbox-{index}-{pair}.log")
            sandboxes.append(source)
            # both pairs meet both kinds of lost acknowledgement once there are four tenants
            mode = "after_batch" if index % 4 in (0, 3) else "mid_batch"
            target = Sandbox("servicenow", "--item-drop-mode", mode,
                             *_fault_args(servicenow_faults, seed * 1000 + 500 + index),
                             log=workdir / f"sandbox-{index}-servicenow.log")
            sandboxes.append(target)
            specs.append(TenantSpec(slug=f"chaos-{index + 1}", pair=pair, source_url=source.url, sn_url=target.url,
                                    records=records, initial=initial))
        config = {
            "workdir": str(workdir), "seed": seed, "tenants": [spec.to_json() for spec in specs], "kills": kills,
            "duration": duration, "converge_timeout": converge_timeout, "qclusters": qclusters,
            "redis_port": free_port(), "web_port": free_port(), "db_name": database.name,
            "page_size": page, "batch_size": page, "run_every": 2.0,
        }
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        env = _driver_env(database.url, config["redis_port"], stale_seconds, run_id)
        say(f"driver: {tenants} tenants x {records} records, {kills} kills, {qclusters} qclusters, "
            f"chaos {duration:.0f} s (logs in {workdir})")
        log = (workdir / "driver.log").open("w", encoding="utf-8")
        try:
            completed = subprocess.run([sys.executable, "-m", "integrations.chaos.driver", str(config_path)],
                                       cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=None if progress else log,
                                       text=True, check=False, timeout=duration + converge_timeout + 900)
        finally:
            log.close()
        lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        if completed.returncode != 0 or not lines:
            tail = (workdir / "driver.log").read_text(errors="replace")[-4000:]
            raise ChaosError(f"the chaos driver failed (exit {completed.returncode}); logs in {workdir}\n{tail}")
        figures = json.loads(lines[-1])
        figures["faults.servicenow"] = ",".join(f"{k}={v}" for k, v in servicenow_faults.items())
        figures["faults.servicenow_item_drop_modes"] = ",".join(
            f"{spec.slug}:{'after_batch' if i % 4 in (0, 3) else 'mid_batch'}" for i, spec in enumerate(specs))
        figures["page_and_batch_size"] = page
        figures["faults.sources"] = ",".join(f"{k}={v}" for k, v in SOURCE_FAULTS.items())
        figures["seed"] = seed
        figures["total_seconds"] = round(time.monotonic() - started, 1)
        if keep:
            figures["logs"] = str(workdir)
        if keep_database:
            figures["database"] = database.url
        return figures
    except BaseException:
        keep = True  # keep the logs of a failed run
        raise
    finally:
        kill_registered(registry, f"{MARKER}={run_id}")
        for sandbox in sandboxes:
            sandbox.stop()
        if keep_database:
            say(f"kept the database {database.name} (drop it with: dropdb -h 127.0.0.1 -U postgres {database.name})")
        else:
            try:
                database.drop()
            except Exception as exc:  # noqa: BLE001 - report, but never mask the run's own outcome
                say(f"could not drop {database.name}: {exc}")
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _driver_env(database_url: str, redis_port: int, stale_seconds: int, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PORTAL_DEV", "SECRET_KEY", "SECRET_KEY_FILE", "SECRET_KEY_FALLBACKS", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url,
        "Q_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SECRET_KEY": secrets.token_urlsafe(50),  # a random key, as in production; never the development one
        "DEBUG": "false",
        "PORTAL_HTTPS": "false",  # runserver speaks plain HTTP on loopback
        "SYNC_LOCK_STALE_SECONDS": str(stale_seconds),
        "HTTP_TIMEOUT_SECONDS": "10",
        "HTTP_MAX_RETRIES": "4",
        "HTTP_BACKOFF_BASE_SECONDS": "0.2",
        "HTTP_BACKOFF_MAX_SECONDS": "2",
        "Q_WORKERS": "2",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        MARKER: run_id,
    })
    return env
