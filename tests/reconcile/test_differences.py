"""The five kinds of difference, each found once and only once; a clean month balances; nothing is written."""

from __future__ import annotations

from decimal import Decimal

from integrations.engine.reconcile import reconcile
from integrations.models import (
    AuditEvent,
    Period,
    ReconciliationLine,
    ReconciliationStatus,
    RecordStatus,
)
from integrations.sandbox.base import Faults
from tests.reconcile.conftest import CLEAN_MONTH, MONTH, invoices_of, make_differences, row_of
from tests.support import INVOICE, set_integration_settings, writes


def reasons(run) -> dict[str, str]:
    return {line.reason: line.source_key for line in run.lines.all()}


def test_a_month_with_five_differences_lists_exactly_those_five(synced, x3_sim, sn_sim):
    scenario = make_differences(synced, x3_sim, sn_sim)
    run = reconcile(synced, Period.month(MONTH), actor="test")
    lines = {line.reason: line for line in run.lines.select_related("record")}
    assert run.status == ReconciliationStatus.DIFFERENCES
    assert run.differences == 5 == ReconciliationLine.objects.filter(run=run).count()
    assert reasons(run) == {"missing": scenario.missing, "amount": scenario.amount, "held": scenario.held,
                            "failed": scenario.failed, "extra": scenario.extra}
    amount = lines["amount"]
    assert (amount.source_amount, amount.target_amount - amount.source_amount) == (
        x3_sim.get("PINVOICE", scenario.amount)["AMTATI"], Decimal("10"))
    assert lines["held"].missing_keys == ["gl_account:99999"] and lines["held"].record.status == RecordStatus.HELD
    assert lines["failed"].record.status == RecordStatus.FAILED and "no GL account" in lines["failed"].message
    assert lines["missing"].record.business_key == scenario.missing and lines["missing"].target_id == ""
    assert lines["extra"].record is None and lines["extra"].target_amount == Decimal("123.45")
    assert lines["extra"].business_key == "F-EXTRA"
    # the supplier and the document date come from the source, for people
    invoice = x3_sim.get("PINVOICE", scenario.missing)
    assert (lines["missing"].supplier, lines["missing"].source_date) == (invoice["BPR"], invoice["BPRDAT"])


def test_the_totals_put_source_and_target_side_by_side_per_currency(synced, x3_sim, sn_sim):
    scenario = make_differences(synced, x3_sim, sn_sim)
    run = reconcile(synced, Period.month(MONTH))
    invoices = invoices_of(x3_sim, MONTH)
    by_currency = {row["currency"]: row for row in run.totals}
    assert set(by_currency) == {i["CUR"] for i in invoices}
    for currency, row in by_currency.items():
        mine = [i for i in invoices if i["CUR"] == currency]
        assert row["source_count"] == len(mine)
        assert Decimal(row["source_amount"]) == sum(i["AMTATI"] for i in mine)
    # target minus source: the extra row (EUR), the edit (+10), the deleted row
    expected: dict[str, Decimal] = {"EUR": Decimal("123.45")}
    edited, deleted = x3_sim.get("PINVOICE", scenario.amount), x3_sim.get("PINVOICE", scenario.missing)
    expected[edited["CUR"]] = expected.get(edited["CUR"], Decimal(0)) + 10
    expected[deleted["CUR"]] = expected.get(deleted["CUR"], Decimal(0)) - deleted["AMTATI"]
    assert run.off_by() == {currency: gap for currency, gap in sorted(expected.items()) if gap}
    assert run.verdict.startswith("5 differences, totals off by ")
    # the chart's days add up to the totals
    for currency, row in by_currency.items():
        days = run.daily["invoices"][currency]
        assert sum(Decimal(s) for s, _ in days.values()) == Decimal(row["source_amount"])
        assert all(day.startswith(MONTH) for day in days)


def test_a_clean_month_is_balanced(synced, x3_sim, sn_sim):
    run = reconcile(synced, Period.month(CLEAN_MONTH), actor="test")
    assert (run.status, run.verdict, run.differences) == (ReconciliationStatus.BALANCED, "Balanced", 0)
    assert not run.lines.exists() and run.off_by() == {}
    assert sum(row["source_count"] for row in run.totals) == len(invoices_of(x3_sim, CLEAN_MONTH))
    assert all(row["source_amount"] == row["target_amount"] for row in run.totals)
    event = AuditEvent.objects.get(action="reconciliation.finished")
    assert (event.actor_name, event.integration_id, event.detail["verdict"]) == ("test", synced.pk, "Balanced")
    assert event.detail["status"] == "balanced" and event.detail["differences"] == {}


def test_a_stored_run_is_never_recomputed(synced, x3_sim, sn_sim):
    before = reconcile(synced, Period.month(MONTH))
    assert before.status == ReconciliationStatus.BALANCED
    make_differences(synced, x3_sim, sn_sim)
    after = reconcile(synced, Period.month(MONTH))
    before.refresh_from_db()
    assert (before.status, before.lines.count(), after.status, after.differences) == (
        ReconciliationStatus.BALANCED, 0, ReconciliationStatus.DIFFERENCES, 5)
    event = AuditEvent.objects.filter(action="reconciliation.finished").order_by("-pk").first()
    assert event.detail["differences"] == {"missing": 1, "extra": 1, "amount": 1, "held": 1, "failed": 1}


def test_reading_back_only_reads(synced, x3_sim, sn_sim):
    make_differences(synced, x3_sim, sn_sim)
    x3_calls, seen = len(x3_sim.requests), len(sn_sim.requests)
    run = reconcile(synced, Period.month(MONTH))
    asked = sn_sim.requests[seen:]
    assert run.status == ReconciliationStatus.DIFFERENCES and asked
    assert writes(asked) == []
    assert {r.method for r in asked if "/oauth_token.do" not in r.path} == {"GET"}
    assert len(x3_sim.requests) == x3_calls  # the source side is what the portal recorded: X3 is not asked
    assert run.api_calls == len(asked)


def test_a_row_dated_in_another_month_and_a_second_row_for_one_invoice_are_differences(synced, x3_sim, sn_sim):
    moved, doubled = (i["NUM"] for i in invoices_of(x3_sim, MONTH)[:2])
    sn_sim.update(INVOICE, row_of(sn_sim, moved)["sys_id"], {"invoice_date": "2026-04-02"})
    copy = {k: v for k, v in row_of(sn_sim, doubled).items() if not k.startswith("sys_")}
    sn_sim.insert(INVOICE, copy)
    run = reconcile(synced, Period.month(MONTH))
    assert sorted(reasons(run).items()) == [("date", moved), ("extra", doubled)]
    extra = run.lines.get(reason="extra")
    assert extra.message == "Entered twice: a second row for the same invoice"
    # and April sees the moved row as dated there, its invoice being of February
    april = reconcile(synced, Period.month("2026-04"))
    assert [(line.reason, line.source_key) for line in april.lines.all()] == [("date", moved)]


def test_renamed_columns_are_read_back_under_their_names(integration, x3_sim, sn_sim):
    from tests.support import sync_everything

    set_integration_settings(integration, field_names={"invoice": {"amount_invoiced": "u_gross"}})
    sync_everything(integration)
    assert all("u_gross" in row for row in sn_sim.rows(INVOICE))
    assert reconcile(integration, Period.month(CLEAN_MONTH)).status == ReconciliationStatus.BALANCED


def test_a_spent_call_budget_stops_the_run_with_an_error_and_no_verdict_of_balance(synced, sn_sim):
    set_integration_settings(synced, call_budget=3, page_size=5)  # a month of 35 invoices needs 8 pages
    run = reconcile(synced, Period.month(MONTH))
    assert run.status == ReconciliationStatus.ERROR and "budget" in run.error.lower()
    assert run.verdict.startswith("Could not finish") and not run.lines.exists()
    assert AuditEvent.objects.get(action="reconciliation.finished").detail["status"] == "error"


def test_servicenow_down_is_an_error_not_a_list_of_missing_invoices(synced, sn_sim):
    sn_sim.set_faults(Faults(error_rate=1.0))
    run = reconcile(synced, Period.month(MONTH))
    assert run.status == ReconciliationStatus.ERROR and run.differences == 0 and not run.lines.exists()
