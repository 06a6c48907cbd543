"""``manage.py reconcile``: exit 0 balanced, 1 with differences, 2 on error; text, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.engine.reconcile_report import CSV_COLUMNS
from integrations.models import ReconciliationRun
from integrations.sandbox.base import Faults
from tests.reconcile.conftest import CLEAN_MONTH, MONTH, make_differences

ARGS = ("reconcile", "--tenant", "acme", "--integration", "x3-to-sn")


def exit_code(*args: str) -> int:
    try:
        call_command(*ARGS, *args)
    except CommandError as exc:
        return exc.returncode
    return 0


def test_a_balanced_month_exits_0_and_says_so(synced, capsys):
    assert exit_code("--period", CLEAN_MONTH) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"x3-to-sn {CLEAN_MONTH}: Balanced")
    assert ReconciliationRun.objects.get().triggered_by == "cli"


def test_differences_exit_1_and_are_listed(synced, x3_sim, sn_sim, capsys):
    scenario = make_differences(synced, x3_sim, sn_sim)
    with pytest.raises(CommandError) as raised:
        call_command(*ARGS, "--period", MONTH)
    assert raised.value.returncode == 1 and "5 differences" in str(raised.value)
    out = capsys.readouterr().out
    for reason, key in (("missing", scenario.missing), ("amount", scenario.amount), ("held", scenario.held),
                        ("failed", scenario.failed), ("extra", "F-EXTRA")):  # the number it has in ServiceNow
        assert any(line.startswith(reason) and key in line for line in out.splitlines()), (reason, out)


@pytest.mark.parametrize("args", [
    ("--period", "2026-13"),
    ("--period", "November"),
    ("--from", "2026-11-01"),
    ("--from", "2026-11-30", "--to", "2026-11-01"),
    ("--from", "2025-01-01", "--to", "2026-12-31"),
    ("--period", "2026-11", "--from", "2026-11-01", "--to", "2026-11-02"),
])
def test_a_bad_period_exits_2_and_stores_nothing(synced, args):
    assert exit_code(*args) == 2
    assert not ReconciliationRun.objects.exists()


def test_an_unknown_integration_exits_2(synced):
    with pytest.raises(CommandError) as raised:
        call_command("reconcile", "--tenant", "acme", "--integration", "nope", "--period", MONTH)
    assert raised.value.returncode == 2 and "x3-to-sn" in str(raised.value)


def test_servicenow_unreachable_exits_2(synced, sn_sim):
    sn_sim.set_faults(Faults(error_rate=1.0))
    assert exit_code("--period", MONTH) == 2


def test_json_has_the_verdict_totals_and_lines(synced, x3_sim, sn_sim, capsys):
    make_differences(synced, x3_sim, sn_sim)
    assert exit_code("--period", MONTH, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"id", "integration", "period", "status", "balanced", "verdict", "differences", "off_by",
                         "totals", "daily", "lines", "api_calls", "warnings"}
    assert data["period"] == {"label": MONTH, "start": f"{MONTH}-01", "end": f"{MONTH}-28"}
    assert (data["status"], data["balanced"], data["differences"]) == ("differences", False, 5)
    assert set(data["totals"][0]) == {"stream", "label", "currency", "source_count", "source_amount",
                                      "target_count", "target_amount", "difference", "count_difference"}
    line = next(line for line in data["lines"] if line["reason"] == "amount")
    assert set(line) == {"stream", "reason", "reason_label", "record_id", "source_key", "business_key", "supplier",
                         "currency", "source_date", "source_amount", "target_id", "target_currency", "target_date",
                         "target_amount", "difference", "waiting_for", "message"}
    assert line["difference"] == "10.00"
    held = next(line for line in data["lines"] if line["reason"] == "held")
    assert held["waiting_for"] == ["gl_account:99999"]


def test_csv_has_a_total_row_per_currency_then_a_row_per_difference(synced, x3_sim, sn_sim, capsys):
    make_differences(synced, x3_sim, sn_sim)
    assert exit_code("--from", f"{MONTH}-01", "--to", f"{MONTH}-28", "--csv") == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == CSV_COLUMNS
    totals = [r for r in rows if r["section"] == "total"]
    differences = [r for r in rows if r["section"] == "difference"]
    assert {r["currency"] for r in totals} == {"EUR", "GBP", "USD"}
    assert sorted(r["reason"] for r in differences) == ["amount", "extra", "failed", "held", "missing"]
    amount = next(r for r in differences if r["reason"] == "amount")
    assert amount["difference"] == "10.00" and amount["record_id"]
    # a date range that is exactly a month is shown as the month
    assert ReconciliationRun.objects.get().period_label == MONTH
