"""List mappings with their suggestions; approve the suggested ones from a script; export and
import them as CSV (imported rows are suggestions to approve, never approvals)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from integrations.engine import mapping_csv
from integrations.engine.mappings import approve_all
from integrations.engine.replay import replay_records
from integrations.management.commands._common import dump, get_integration
from integrations.models import Mapping, MappingKind, MappingStatus, Trigger


class Command(BaseCommand):
    help = ("List mappings; --approve-suggested approves every suggestion shown (audited) and releases held records; "
            "--export FILE writes them as CSV; --import FILE reads a CSV as suggestions to review.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--integration", required=True)
        parser.add_argument("--kind", choices=MappingKind.values)
        parser.add_argument("--status", choices=MappingStatus.values)
        parser.add_argument("--approve-suggested", action="store_true")
        parser.add_argument("--min-confidence", type=int, default=0, metavar="N",
                            help="with --approve-suggested: only suggestions at least N%% sure (0-100)")
        parser.add_argument("--export", metavar="FILE", help="write the mappings shown as CSV to FILE ('-': stdout)")
        parser.add_argument("--import", dest="import_file", metavar="FILE",
                            help="read suggestions from a CSV FILE, checked per line; nothing is approved")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, tenant, integration, kind, status, approve_suggested, min_confidence, json,
               export=None, import_file=None, **options):
        integ = get_integration(tenant, integration)
        qs = Mapping.objects.filter(integration=integ).select_related("integration__tenant")
        if kind:
            qs = qs.filter(kind=kind)
        if status:
            qs = qs.filter(status=status)
        if import_file:
            self._import(integ, import_file, json)
            return
        if export:
            text = mapping_csv.export_csv(qs)
            if export == "-":
                self.stdout.write(text, ending="")
            else:
                Path(export).write_text(text, encoding="utf-8")
                self.stderr.write(f"Wrote {text.count(chr(10)) - 1} mapping(s) to {export}.")
            return
        result: dict = {}
        if approve_suggested:
            if status and status != MappingStatus.SUGGESTED:
                raise CommandError("--approve-suggested only approves mappings with status 'suggested'")
            if not 0 <= min_confidence <= 100:
                raise CommandError("--min-confidence is a percentage, 0 to 100")
            chosen = qs.filter(status=MappingStatus.SUGGESTED, confidence__gte=min_confidence) if min_confidence \
                else qs.filter(status=MappingStatus.SUGGESTED)
            decision = approve_all(chosen, actor="cli")
            replayed = replay_records(decision.released_ids, actor="cli", reason="mapping approved",
                                      trigger=Trigger.MAPPING) if decision.released_ids else None
            result["approved"] = decision.approved
            result["released"] = len(decision.released_ids)
            if replayed:
                result["released_synced"] = replayed.synced
                result["released_still_held"] = replayed.held
        rows = [
            {"kind": m.kind, "source_code": m.source_code, "source_label": m.source_label,
             "target_code": m.target_code, "target_label": m.target_label, "status": m.status,
             "reason": m.reason, "confidence": m.confidence, "candidates": m.candidates}
            for m in qs.order_by("kind", "source_code")
        ]
        if json:
            self.stdout.write(dump({**result, "mappings": rows}))
            return
        for m in rows:
            self.stdout.write(f"{m['kind']:<12} {m['source_code']:<12} {m['source_label'][:28]:<28} → "
                              f"{m['target_code'] or '?':<12} {m['target_label'][:28]:<28} {m['status']:<9} {m['reason']}")
        if approve_suggested:
            self.stdout.write(self.style.SUCCESS(
                f"Approved {result['approved']} mapping(s); released {result['released']} held record(s)."))

    def _import(self, integ, path: str, json: bool) -> None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        result = mapping_csv.import_csv(text, [integ], actor="cli", default=integ)
        if json:
            self.stdout.write(dump(result.as_json()))
        else:
            for error in result.errors:
                self.stderr.write(str(error))
            self.stdout.write(result.summary())
        if result.errors:
            raise CommandError(f"{len(result.errors)} line(s) of {path} need fixing; nothing was imported.")
