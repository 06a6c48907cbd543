"""SYSPRO invoices are a money stream: the month-end reconciliation counts and totals them as read
from SYSPRO and as staged in ServiceNow, and names what differs (here, the invoice held for CC700)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from integrations.engine.reconcile import money_streams, reconcile
from integrations.engine.runner import run_integration
from integrations.models import Period, RecordStatus, SyncRecord

from .test_flow import approve_suggested

pytestmark = pytest.mark.django_db


def test_a_synced_month_has_exactly_the_held_invoice_as_its_difference(pair, integration):
    assert [s.name for s in money_streams(integration)] == ["invoices"]
    run_integration(integration)
    approve_suggested(integration)
    held = SyncRecord.objects.get(integration=integration, stream="invoices", status=RecordStatus.HELD)
    day = held.source_snapshot["InvoiceDate"][:7]

    run = reconcile(integration, Period.month(day))
    reasons = Counter(line.reason for line in run.lines.all())
    assert reasons == {"held": 1}, run.lines.values_list("reason", "business_key")
    line = run.lines.get()
    assert line.business_key == held.business_key
    assert line.source_amount == Decimal(str(held.source_snapshot["OrigInvValue"]))
    assert run.status == "differences" and run.verdict.startswith("1 difference")
