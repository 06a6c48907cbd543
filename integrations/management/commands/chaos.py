"""Prove the portal survives kills and outages; see integrations.chaos."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from integrations.chaos.infra import ChaosError
from integrations.chaos.run import DEFAULT_STALE_SECONDS, run_chaos

# What a passing run must show (the figure, and the value it must have).
MUST = {"duplicates": 0, "lost": 0, "mismatched": 0, "non_terminal": 0, "held_stranded": 0, "failed": 0,
        "locks.stale": 0, "converged": True}


class Command(BaseCommand):
    help = ("Chaos proof: sandbox systems over HTTP with faults, several tenants, 2+ qclusters on a throwaway "
            "PostgreSQL database and a private Redis; kill -9 workers at random moments (and the web server once), "
            "restart Redis once, cut the database connections once; then compare every target with its source. "
            "Prints one 'name=value' line per figure; exits non-zero when a check fails.")

    def add_arguments(self, parser):
        parser.add_argument("--tenants", type=int, default=2, help="tenants, alternating X3→ServiceNow and "
                                                                   "Intacct↔ServiceNow (default 2)")
        parser.add_argument("--records", type=int, default=30, help="invoices / bills per tenant (default 30)")
        parser.add_argument("--kills", type=int, default=10, help="kill -9 of a qcluster (default 10)")
        parser.add_argument("--seed", type=int, default=1, help="seeds the timeline, the data and the faults")
        parser.add_argument("--qclusters", type=int, default=2, help="qcluster processes (default 2)")
        parser.add_argument("--duration", type=float, default=None,
                            help="seconds of chaos (default max(60, 6 x kills))")
        parser.add_argument("--stale-seconds", type=int, default=DEFAULT_STALE_SECONDS,
                            help=f"SYNC_LOCK_STALE_SECONDS of the run (default {DEFAULT_STALE_SECONDS})")
        parser.add_argument("--keep", action="store_true", help="keep the logs directory (kept anyway on failure)")
        parser.add_argument("--keep-database", action="store_true",
                            help="keep the throwaway PostgreSQL database for a post-mortem (default: dropped)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print all figures as one JSON object")

    def handle(self, *args, tenants, records, kills, seed, qclusters, duration, stale_seconds, keep, keep_database,
               as_json, **options):
        progress = None if as_json else (lambda message: self.stderr.write(message))
        try:
            figures = run_chaos(tenants, records, kills, seed, duration=duration, qclusters=qclusters,
                                stale_seconds=stale_seconds, progress=progress, keep=keep,
                                keep_database=keep_database)
        except ChaosError as exc:
            raise CommandError(str(exc)) from exc
        failed = [f"{name}={figures.get(name)}" for name, wanted in MUST.items() if figures.get(name) != wanted]
        if kills and figures.get("kills_survived", 0) < kills:
            failed.append(f"kills_survived={figures.get('kills_survived')} < {kills}")
        figures["check"] = "pass" if not failed else "FAIL: " + ", ".join(failed)
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            details = figures.pop("details", [])
            for name, value in figures.items():
                self.stdout.write(f"{name}={value}")
            for line in details:
                self.stdout.write(f"detail={line}")
        if failed:
            raise CommandError("chaos check failed: " + ", ".join(failed))
