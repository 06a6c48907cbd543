"""Helpers shared by the engine and client tests: driving the demo integration, reading the sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from integrations.engine.mappings import approve, map_manually
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.flows.base import bare_key
from integrations.models import Integration, Mapping, MappingStatus, RecordStatus, SyncRecord
from integrations.sandbox.base import SimRequest
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator

REFERENCE_STREAMS = ["x3_gl_accounts", "sn_gl_accounts", "x3_cost_centers", "sn_cost_centers"]
# Seed profile table names (API_FACTS "Decisions").
INVOICE, INVOICE_LINE = "sn_apo_invoice", "sn_apo_invoice_line"
PO, PO_LINE, SUPPLIER = "proc_po", "proc_po_item", "proc_vendor"
SN_SUSPENSE_ACCOUNT = "69900"  # exists only in ServiceNow; 61200 is mapped to it by hand


def set_integration_settings(integration: Integration, **values: Any) -> None:
    integration.settings = {**(integration.settings or {}), **values}
    integration.save(update_fields=["settings"])


def approve_all_mappings(integration: Integration) -> list[int]:
    """Approve every suggestion and map the X3-only GL account 61200 by hand; return released ids."""
    released = approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
    ids = list(released.released_ids)
    unmapped = Mapping.objects.get(integration=integration, kind="gl_account", source_code="61200")
    ids += map_manually(unmapped, SN_SUSPENSE_ACCOUNT).released_ids
    return sorted(set(ids))


def sync_everything(integration: Integration) -> None:
    """First run, mappings approved, held invoices released: the demo fully in ServiceNow."""
    run_integration(integration)
    released = approve_all_mappings(integration)
    if released:
        replay_records(released, trigger="mapping")


def prepare_for_invoices(integration: Integration) -> None:
    """Reference data, suppliers and purchase orders synced, every mapping approved."""
    run_integration(integration, streams=[*REFERENCE_STREAMS, "suppliers", "purchase_orders"])
    approve_all_mappings(integration)


def skey(row: dict) -> str:
    """The source key a ServiceNow row was written for, without its connection's namespace."""
    return bare_key(row.get("u_source_key") or "")


def source_key_counts(sim: ServiceNowSimulator, table: str) -> Counter[str]:
    return Counter(skey(row) for row in sim.rows(table))


def writes(requests: Iterable[SimRequest]) -> list[SimRequest]:
    """Requests that can change ServiceNow data (the batch endpoint, or Table API writes)."""
    return [r for r in requests if r.method in ("POST", "PUT", "PATCH", "DELETE") and "/oauth_token.do" not in r.path]


def make_failed_records_due(integration: Integration) -> int:
    """Time passes: every failed-transient record's retry time has come."""
    return SyncRecord.objects.filter(integration=integration, status=RecordStatus.FAILED).update(
        next_retry_at=timezone.now()
    )


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def assert_invoices_match_x3(x3_sim: SageX3Simulator, sn_sim: ServiceNowSimulator,
                             header_table: str = INVOICE, line_table: str = INVOICE_LINE) -> None:
    """Every X3 invoice is in ServiceNow exactly once, with its lines and exact amounts."""
    invoices = x3_sim.records("PINVOICE")
    headers = sn_sim.rows(header_table)
    by_key = Counter(skey(h) for h in headers)
    assert sorted(by_key) == sorted(i["NUM"] for i in invoices)
    assert set(by_key.values()) == {1}, {k: n for k, n in by_key.items() if n > 1}
    header_of = {skey(h): h for h in headers}
    lines = sn_sim.rows(line_table)
    line_counts = Counter(skey(line) for line in lines)
    assert set(line_counts.values()) == {1}, {k: n for k, n in line_counts.items() if n > 1}
    lines_by_invoice: dict[str, dict[str, dict[str, str]]] = {}
    header_ids = {h["sys_id"] for h in headers}
    for line in lines:
        assert line["invoice"] in header_ids, f"orphan line {skey(line)}"
        lines_by_invoice.setdefault(line["invoice"], {})[skey(line)] = line
    for invoice in invoices:
        header = header_of[invoice["NUM"]]
        assert dec(header["subtotal"]) == invoice["AMTNOT"]
        assert dec(header["amount_invoiced"]) == invoice["AMTATI"]
        got = lines_by_invoice.get(header["sys_id"], {})
        expected = {f"{invoice['NUM']}/{line['PIDLIN']}": line for line in invoice["PINVOICED"]}
        assert sorted(got) == sorted(expected)
        for key, line in expected.items():
            assert dec(got[key]["line_amount_invoiced"]) == line["AMTNOTLIN"]
            assert dec(got[key]["line_quantity"]) == line["QTYUOM"]


def assert_purchase_orders_match_x3(x3_sim: SageX3Simulator, sn_sim: ServiceNowSimulator) -> None:
    orders = x3_sim.records("PORDER")
    headers = sn_sim.rows(PO)
    by_key = Counter(skey(h) for h in headers)
    assert sorted(by_key) == sorted(o["POHNUM"] for o in orders)
    assert set(by_key.values()) == {1}
    header_of = {skey(h): h for h in headers}
    lines = sn_sim.rows(PO_LINE)
    assert set(Counter(skey(line) for line in lines).values()) == {1}
    for order in orders:
        header = header_of[order["POHNUM"]]
        assert dec(header["total_amount"]) == order["TOTAMTNOT"]
        got = {skey(line): line for line in lines if line["purchase_order"] == header["sys_id"]}
        expected = {f"{order['POHNUM']}/{line['POPLIN']}": line for line in order["PORDERP"]}
        assert sorted(got) == sorted(expected)
        for key, line in expected.items():
            assert dec(got[key]["total_amount"]) == line["LINAMT"]


def assert_suppliers_match_x3(x3_sim: SageX3Simulator, sn_sim: ServiceNowSimulator) -> None:
    by_key = source_key_counts(sn_sim, SUPPLIER)
    assert sorted(by_key) == sorted(s["BPSNUM"] for s in x3_sim.records("BPSUPPLIER"))
    assert set(by_key.values()) == {1}


ROOT = Path(__file__).resolve().parents[1]


def manage_json(*args: str, needs: str, timeout: int = 600, env: dict[str, str] | None = None) -> dict:
    """Run ``manage.py ARGS --json`` in a process of its own, as a user would, and return the JSON it
    prints. Skipped when the machine lacks the PostgreSQL server binaries or redis-server, which
    such runs start themselves (``needs`` names the run in the skip message)."""
    from integrations.chaos.run import requirements

    missing = requirements()
    if missing:
        pytest.skip(f"{needs} needs " + " and ".join(missing) + " (apt-get install postgresql redis-server)")
    completed = subprocess.run([sys.executable, "manage.py", *args, "--json"], cwd=ROOT, capture_output=True,
                               text=True, timeout=timeout, check=False, env={**os.environ, **(env or {})})
    start = completed.stdout.find("{")
    assert start >= 0, f"no figures (exit {completed.returncode}):\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return json.loads(completed.stdout[start:])
