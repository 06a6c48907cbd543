"""X3 → ServiceNow over GraphQL: not one api1 call, and ServiceNow ends up as it does over REST."""

from __future__ import annotations

from typing import Any

import responses

from integrations.demo import x3_servicenow_document
from integrations.models import Integration
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator
from integrations.tenants import load_document
from tests.support import (
    assert_invoices_match_x3,
    assert_purchase_orders_match_x3,
    assert_suppliers_match_x3,
    skey,
    sync_everything,
)

from .conftest import SN_URL, X3_URL, api1_calls, over_graphql

TABLES = ("proc_vendor", "proc_po", "proc_po_item", "sn_apo_invoice", "sn_apo_invoice_line", "itfm_gl_accounts",
          "cmn_cost_center")


def _sync(transport: str, root: str = "x3MasterData", slug: str = "acme") -> tuple[SageX3Simulator, ServiceNowSimulator]:
    x3 = SageX3Simulator(graphql_root=root)
    x3.seed_demo()
    sn = ServiceNowSimulator(clock=ManualClock()).seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(x3, X3_URL, rsps)
        mount(sn, SN_URL, rsps)
        document = x3_servicenow_document(X3_URL, SN_URL, x3_refresh_token=x3.issue_refresh_token("ml-connector"),
                                          slug=slug)
        load_document(over_graphql(document) if transport == "graphql" else document)
        integration = Integration.objects.select_related("source", "target", "tenant").get(
            name="x3-to-sn", tenant__slug=slug)
        sync_everything(integration)
    return x3, sn


def _contents(sn: ServiceNowSimulator) -> dict[str, list[dict[str, Any]]]:
    """What ServiceNow holds, with its own ids replaced by the source keys they stand for; its own
    autonumber (an invoice's ``number``) is left out: it follows the order rows arrive in, which a
    database may return differently from one run to the next (the replays after approval)."""
    labels = {}
    for table in TABLES:
        for row in sn.rows(table):
            labels[row["sys_id"]] = f"{table}:{skey(row) or row.get('name')}"
    found = {}
    for table in TABLES:
        rows = []
        for row in sn.rows(table):
            rows.append({k: labels.get(v, v) for k, v in row.items()
                         if not k.startswith("sys_") and k not in ("u_source_key", "number")} | {"key": skey(row)})
        found[table] = sorted(rows, key=lambda r: (r["key"], str(sorted(r.items()))))
    return found


def test_the_flow_over_graphql_makes_no_api1_call_and_stages_everything(db):
    x3, sn = _sync("graphql")
    assert api1_calls(x3) == []
    assert any(r.path == "/xtrem/api" for r in x3.requests)
    assert_suppliers_match_x3(x3, sn)
    assert_purchase_orders_match_x3(x3, sn)
    assert_invoices_match_x3(x3, sn)


def test_servicenow_holds_the_same_from_rest_and_from_graphql(db):
    _, over_rest = _sync("rest", slug="acme-rest")
    x3, over_graphql_ = _sync("graphql", slug="acme-gql")
    assert api1_calls(x3) == []
    assert _contents(over_graphql_) == _contents(over_rest)


def test_the_older_sage_root_gives_the_same_servicenow_state(db):
    _, master = _sync("graphql", slug="acme-master")
    x3, sage = _sync("graphql", root="sage", slug="acme-sage")
    assert api1_calls(x3) == []
    assert _contents(sage) == _contents(master)
