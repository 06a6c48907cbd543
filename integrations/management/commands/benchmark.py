"""Benchmark a pair end to end over real HTTP against the sandbox; see integrations.benchmark."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.benchmark.pairs import PAIRS
from integrations.benchmark.processes import BenchmarkError
from integrations.benchmark.run import run_benchmark, summary_table
from integrations.management.stopping import stopped_as_by_ctrl_c
from integrations.systems.concurrency import MAX_CONCURRENCY


class Command(BaseCommand):
    help = ("Seed the sandbox systems with N invoices, sync them through the portal and through a bare client, "
            "re-sync unchanged, and print wall time, records/s, HTTP calls vs the minimum, queries per record, "
            "peak RSS and the overhead ratio (one 'name=value' line per figure). Uses throwaway databases.")

    def add_arguments(self, parser):
        parser.add_argument("--pair", default="x3-servicenow", choices=[*sorted(PAIRS), "all"],
                            help="one pair, or all: each in turn, then one table")
        parser.add_argument("--records", type=int, default=10_000, help="invoices to seed (default 10000)")
        parser.add_argument("--lines-per-invoice", type=int, default=5, help="lines per invoice (default 5)")
        parser.add_argument("--admin", action="store_true",
                            help="also build --admin-rows records and audit events and time the admin changelists")
        parser.add_argument("--admin-rows", type=int, default=1_000_000, help=f"rows for --admin (default {1_000_000})")
        parser.add_argument("--latency-ms", type=int, default=0,
                            help="delay added to every sandbox answer, e.g. 50 for a WAN to a cloud instance")
        parser.add_argument("--x3-transport", choices=("rest", "graphql"), default="rest",
                            help="how the portal speaks to Sage X3 (the bare client keeps api1 REST)")
        parser.add_argument("--write-concurrency", type=int, default=None,
                            help="writes of a page in flight at once where a flow sends one call per document "
                                 "(Sage X3); the bare client is given the same (default: SYNC_WRITE_CONCURRENCY)")
        parser.add_argument("--repeat", type=int, default=1,
                            help="rounds of both contenders, each against a fresh target; each contender's fastest "
                                 "round is reported (best of N), every round's wall time listed (default 1)")
        parser.add_argument("--reconcile", action="store_true",
                            help="after the sync, reconcile every day the documents are dated and print its cost")
        parser.add_argument("--scale", action="store_true",
                            help="the scale-out run instead: --tenants X3 → ServiceNow tenants of --records invoices on "
                                 "PostgreSQL + Redis through 1, 2 and 4 workers (--workers), --latency-ms 50 by default")
        parser.add_argument("--tenants", type=int, default=8, help="--scale: tenants, each with its own sandboxes")
        parser.add_argument("--workers", default="1,2,4", help="--scale: worker counts to compare")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print all figures as one JSON object")

    def handle(self, *args, **options):
        # stopped by SIGTERM or SIGHUP as by Ctrl-C: each sandbox server and worker it started is stopped
        with stopped_as_by_ctrl_c():
            self._handle(**options)

    def _handle(self, *, pair, records, lines_per_invoice, admin, admin_rows, latency_ms, as_json, scale, tenants,
                workers, reconcile, x3_transport, write_concurrency, repeat, **options):
        if records < 0 or lines_per_invoice < 1 or not 0 <= latency_ms <= 10_000:
            raise CommandError("--records must be >= 0, --lines-per-invoice >= 1 and --latency-ms 0 to 10000")
        if not 1 <= repeat <= 10:
            raise CommandError("--repeat must be 1 to 10")
        if write_concurrency is None:
            write_concurrency = settings.SYNC_WRITE_CONCURRENCY
        if not 1 <= write_concurrency <= MAX_CONCURRENCY:
            raise CommandError(f"--write-concurrency must be 1 to {MAX_CONCURRENCY}")
        progress = None if as_json else (lambda message: self.stderr.write(message))
        if scale:
            self._scale(tenants, records, lines_per_invoice, workers, latency_ms or 50, as_json, progress)
            return
        names = sorted(PAIRS) if pair == "all" else [pair]
        results = {}
        for name in names:
            if progress and len(names) > 1:
                progress(f"=== {name} ===")
            try:
                results[name] = run_benchmark(name, records, lines_per_invoice,
                                              admin_rows if admin and name == names[-1] else 0,
                                              progress=progress, latency_ms=latency_ms, reconcile=reconcile,
                                              x3_transport=x3_transport, write_concurrency=write_concurrency,
                                              repeat=repeat)
            except BenchmarkError as exc:
                raise CommandError(f"{name}: {exc}") from exc
        if as_json:
            self.stdout.write(json.dumps(results if pair == "all" else results[pair], indent=2))
            return
        for name, figures in results.items():
            for key, value in figures.items():
                self.stdout.write(f"{key}={value}" if pair != "all" else f"{name}.{key}={value}")
        if pair == "all":
            self.stdout.write("\n" + summary_table(results))

    def _scale(self, tenants: int, records: int, lines: int, workers: str, latency_ms: int, as_json: bool,
               progress) -> None:
        from integrations.benchmark.scale import run_scale
        from integrations.chaos.infra import ChaosError

        try:
            counts = tuple(int(part) for part in workers.split(",") if part.strip())
            figures = run_scale(tenants, records, lines, counts, latency_ms, progress=progress)
        except ValueError:
            raise CommandError("--workers is a comma list of worker counts, e.g. 1,2,4") from None
        except ChaosError as exc:
            raise CommandError(str(exc)) from exc
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            for key, value in figures.items():
                self.stdout.write(f"{key}={value}")
