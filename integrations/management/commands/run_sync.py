"""Run an integration (or one stream) now, in the foreground."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from integrations.engine.runner import run_integration
from integrations.flows import get_flow
from integrations.management.commands._common import dump, get_integration
from integrations.models import RunStatus, SyncRun, Trigger


class Command(BaseCommand):
    help = "Run an integration's streams now and print per-stream counts. Exits non-zero on a systemic error."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--integration", required=True)
        parser.add_argument("--stream", action="append", help="Only this stream (repeatable)")
        parser.add_argument("--json", action="store_true", help="Emit the result as JSON")

    def handle(self, *args, tenant: str, integration: str, stream: list[str] | None, json: bool, **options):
        integ = get_integration(tenant, integration)
        names = get_flow(integ.kind).stream_names()
        for name in stream or []:
            if name not in names:
                raise CommandError(f"{integ.kind} has no stream {name!r}; streams: {', '.join(names)}")
        bar = tqdm(total=None, unit=" records", disable=json or not sys.stderr.isatty(), file=sys.stderr)
        seen: dict[int, int] = {}

        def progress(run: SyncRun) -> None:
            bar.set_description(run.stream)
            bar.update(run.read - seen.get(run.pk, 0))
            seen[run.pk] = run.read

        runs = run_integration(integ, trigger=Trigger.MANUAL, actor="cli", streams=stream, progress=progress)
        bar.close()
        result = [{"stream": r.stream, "status": r.status, "error": r.error, **r.counts()} for r in runs]
        if json:
            self.stdout.write(dump(result))
        else:
            header = f"{'stream':<18} {'status':<10} {'read':>6} {'created':>7} {'updated':>7} {'unchanged':>9} " \
                     f"{'held':>5} {'failed':>6} {'API calls':>9}"
            self.stdout.write(header)
            for r in result:
                self.stdout.write(
                    f"{r['stream']:<18} {r['status']:<10} {r['read']:>6} {r['created']:>7} {r['updated']:>7} "
                    f"{r['unchanged']:>9} {r['held']:>5} {r['failed']:>6} {r['api_calls']:>9}")
        failed = [r for r in runs if r.status == RunStatus.FAILED]
        if failed:
            raise CommandError(f"{failed[0].stream} stopped: {failed[0].error}")
