"""Reconcile an integration over a month (or any range) now, in the foreground.

Exit status: 0 balanced, 1 differences found, 2 the reconciliation could not be done (unknown
tenant or integration, a bad period, the target unreachable or its call budget spent).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations.engine.reconcile import reconcile, reconciles
from integrations.engine.reconcile_report import csv_text, line_data, run_data, totals_data
from integrations.management.commands._common import dump, get_integration
from integrations.models import Period, PeriodError, ReconciliationStatus

BALANCED, DIFFERENCES, ERROR = 0, 1, 2


class Command(BaseCommand):
    help = ("Reconcile an integration's money streams (invoices, bills) for a period: counts and totals per "
            "currency in the source (as recorded) and in the target (read back), and every difference. "
            "Exit 0 when balanced, 1 with differences, 2 on error.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--integration", required=True)
        parser.add_argument("--period", help="A month, YYYY-MM (default: last month)")
        parser.add_argument("--from", dest="start", help="First day, YYYY-MM-DD (with --to, instead of --period)")
        parser.add_argument("--to", dest="end", help="Last day, YYYY-MM-DD (included)")
        output = parser.add_mutually_exclusive_group()
        output.add_argument("--json", action="store_true", help="Print the run, its totals and lines as JSON")
        output.add_argument("--csv", action="store_true", help="Print the totals and lines as CSV")

    def handle(self, *args, tenant: str, integration: str, period: str | None, start: str | None, end: str | None,
               json: bool, csv: bool, **options):
        try:
            integ = get_integration(tenant, integration)
        except CommandError as exc:
            raise CommandError(str(exc), returncode=ERROR) from None
        if not reconciles(integ):
            raise CommandError(f"{integ.name} has no money stream to reconcile", returncode=ERROR)
        span = self._period(period, start, end)
        run = reconcile(integ, span, actor="cli")
        lines = list(run.lines.order_by("reason", "business_key", "pk"))
        if json:
            self.stdout.write(dump(run_data(run, lines)))
        elif csv:
            self.stdout.write(csv_text(run, lines), ending="")
        else:
            self._print(run, lines)
        if run.status == ReconciliationStatus.ERROR:
            raise CommandError(run.verdict, returncode=ERROR)
        if run.status == ReconciliationStatus.DIFFERENCES:
            raise CommandError(f"{integ.name} {run.period_label}: {run.verdict}", returncode=DIFFERENCES)

    @staticmethod
    def _period(month: str | None, start: str | None, end: str | None) -> Period:
        try:
            return Period.chosen(month, start, end, default=Period.month_before(timezone.localdate()),
                                 names=("--period", "--from", "--to"))
        except PeriodError as exc:
            raise CommandError(str(exc), returncode=ERROR) from None

    def _print(self, run, lines) -> None:
        self.stdout.write(f"{run.integration.name} {run.period_label}: {run.verdict}")
        self.stdout.write(f"{'stream':<12} {'currency':<8} {'source':>6} {'source total':>16} {'target':>6} "
                          f"{'target total':>16} {'difference':>14}")
        for row in totals_data(run):
            self.stdout.write(f"{row['stream']:<12} {row['currency']:<8} {row['source_count']:>6} "
                              f"{row['source_amount']:>16} {row['target_count']:>6} {row['target_amount']:>16} "
                              f"{row['difference']:>14}")
        if lines:
            self.stdout.write("")
            self.stdout.write(f"{'reason':<8} {'invoice':<14} {'supplier':<10} {'cur':<4} {'source':>12} "
                              f"{'target':>12}  why")
        for line in lines:
            data = line_data(line)
            self.stdout.write(f"{line.reason:<8} {(line.business_key or line.source_key)[:14]:<14} "
                              f"{line.supplier[:10]:<10} {line.currency or line.target_currency:<4} "
                              f"{data['source_amount'] or '-':>12} {data['target_amount'] or '-':>12}  {line.message}")
        for warning in run.warnings:
            self.stdout.write(self.style.WARNING(warning))
        self.stdout.write(f"{run.api_calls} API call(s); stored as reconciliation #{run.pk}.")
