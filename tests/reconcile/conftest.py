"""A demo integration fully in ServiceNow, and how to make each kind of difference for one month.

Everything goes through what production uses: the sync (``run_integration``, mapping approval,
replay) writes ServiceNow; a "difference" is what happens outside the portal (a row deleted or
edited in ServiceNow, one created with our source identity) or in the ERP (an invoice that now
needs a mapping, or cannot be sent), followed by a sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.engine.runner import run_integration
from integrations.models import Integration, Period, RecordStatus, SyncRecord
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator
from tests.support import INVOICE, skey, sync_everything

MONTH = "2026-02"  # 35 of the demo's 60 invoices
CLEAN_MONTH = "2026-01"
LATER = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # after every seeded change: the next sync reads it


@dataclass
class Scenario:
    """The five documents of ``MONTH`` made to differ, by what happened to each."""

    missing: str
    amount: str
    held: str
    failed: str
    extra: str


def row_of(sn_sim: ServiceNowSimulator, key: str) -> dict[str, str]:
    return next(row for row in sn_sim.rows(INVOICE) if skey(row) == key)


def invoices_of(x3_sim: SageX3Simulator, month: str) -> list[dict]:
    period = Period.month(month)
    return [i for i in x3_sim.records("PINVOICE") if i["BPRDAT"] in period]


@pytest.fixture
def synced(integration: Integration) -> Integration:
    sync_everything(integration)
    assert not SyncRecord.objects.filter(integration=integration, stream="invoices").exclude(
        status=RecordStatus.SYNCED).exists()
    return integration


def make_differences(integration: Integration, x3_sim: SageX3Simulator, sn_sim: ServiceNowSimulator) -> Scenario:
    """In ``MONTH``: a row deleted in ServiceNow, an amount edited there, an invoice changed in X3 onto an
    unmapped GL account (held), one changed with a line that has no GL account (failed), and a row
    created in ServiceNow under our identity for an invoice X3 never had (extra)."""
    first, second, third, fourth = (i["NUM"] for i in invoices_of(x3_sim, MONTH)[:4])
    with sn_sim.lock:
        sn_sim.store.delete(INVOICE, row_of(sn_sim, first)["sys_id"])
    row = row_of(sn_sim, second)
    sn_sim.update(INVOICE, row["sys_id"], {"amount_invoiced": str(Decimal(row["amount_invoiced"]) + 10)})
    for key, account in ((third, "99999"), (fourth, "")):
        invoice = x3_sim.get("PINVOICE", key)
        invoice["PINVOICED"][0]["ACC"] = account
        invoice["UPDDATTIM"] = LATER
        x3_sim.upsert("PINVOICE", invoice)
    run_integration(integration, streams=["invoices"])
    namespace = integration.source.source_namespace
    sn_sim.insert(INVOICE, {"u_source_key": f"{namespace}:PI99999", "invoice_date": f"{MONTH}-10",
                            "currency": "EUR", "amount_invoiced": "123.45", "supplier_invoice_number": "F-EXTRA"})
    return Scenario(missing=first, amount=second, held=third, failed=fourth, extra="PI99999")
