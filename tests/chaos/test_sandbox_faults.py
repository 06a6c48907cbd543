"""The sandbox switches the chaos run relies on: per-item lost acknowledgements, writable X3 classes."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from integrations.sandbox.base import DropResponse, Faults, SimRequest
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator
from tests.support import skey

SN = "https://chaos.service-now.com"


def _auth() -> dict[str, str]:
    token = base64.b64encode(b"integration.user:integration-pass").decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def _batch(sim: ServiceNowSimulator, count: int) -> SimRequest:
    items = [{"id": str(i), "method": "POST", "url": "/api/now/table/proc_vendor",
              "body": base64.b64encode(json.dumps({"name": f"V{i}", "u_source_key": f"K{i}"}).encode()).decode()}
             for i in range(count)]
    return SimRequest("POST", f"{SN}/api/now/v1/batch", _auth(), json.dumps({"rest_requests": items}).encode())


def _vendors(sim: ServiceNowSimulator) -> list[str]:
    return sorted(skey(row) for row in sim.rows("proc_vendor") if skey(row))


def test_lost_item_ack_after_batch_commits_every_item_then_drops():
    sim = ServiceNowSimulator(faults=Faults(item_drop_rate=1.0)).seed_demo()
    with pytest.raises(DropResponse, match="acknowledgement lost"):
        sim.handle(_batch(sim, 3))
    assert _vendors(sim) == ["K0", "K1", "K2"]  # the whole batch committed; only the answer is gone


def test_lost_item_ack_mid_batch_stops_after_that_item():
    sim = ServiceNowSimulator(faults=Faults(item_drop_rate=1.0, item_drop_mode="mid_batch")).seed_demo()
    with pytest.raises(DropResponse, match="cut short after item 0"):
        sim.handle(_batch(sim, 3))
    assert _vendors(sim) == ["K0"]


def test_item_drop_rate_is_per_item_and_seeded():
    outcomes = []
    for _ in range(2):
        sim = ServiceNowSimulator(faults=Faults(item_drop_rate=0.3, seed=11)).seed_demo()
        dropped = 0
        for _ in range(20):
            try:
                sim.handle(_batch(sim, 1))
            except DropResponse:
                dropped += 1
        outcomes.append(dropped)
    assert outcomes[0] == outcomes[1]  # the same seed, the same faults
    assert 0 < outcomes[0] < 20


def test_no_item_drop_by_default():
    sim = ServiceNowSimulator().seed_demo()
    response = sim.handle(_batch(sim, 5))
    assert response.status == 200
    assert len(json.loads(response.body)["serviced_requests"]) == 5


def _x3(method: str, path: str, body: dict | None = None) -> SimRequest:
    token = base64.b64encode(b"admin:pw").decode()
    return SimRequest(method, f"http://x3.local/api1/x3/erp/SEED/{path}", {"Authorization": f"Basic {token}"},
                      json.dumps(body or {}, default=str).encode())


def test_x3_invoices_are_read_only_when_the_representation_has_no_create_facet():
    sim = SageX3Simulator()
    sim.seed_demo()
    sim.add_user("admin", "pw")
    supplier = sim.records("BPSUPPLIER")[0]["BPSNUM"]
    invoice = {"NUM": "CPI1", "BPR": supplier, "BPRVCR": "CHAOS-1", "AMTNOT": "10.00", "AMTATI": "12.00",
               "PINVOICED": [{"PIDLIN": 1000, "AMTNOTLIN": "10.00", "ACC": "60100", "CCE": "CC100"}]}
    read_only = SageX3Simulator(writable=("BPSUPPLIER",))
    read_only.seed_demo()
    read_only.add_user("admin", "pw")
    assert read_only.handle(_x3("POST", "PINVOICE?representation=PINVOICE.$create", invoice)).status == 405
    assert sim.handle(_x3("POST", "PINVOICE?representation=PINVOICE.$create", invoice)).status == 201
    # $create keeps the lines of a class that has them
    details = sim.handle(_x3("GET", "PINVOICE('CPI1')?representation=PINVOICE.$details"))
    lines = json.loads(details.body, parse_float=Decimal)["PINVOICED"]
    assert [(line["PIDLIN"], line["AMTNOTLIN"], line["ACC"]) for line in lines] == [(1000, Decimal("10.00"), "60100")]
    assert sim.handle(_x3("POST", "PINVOICE?representation=PINVOICE.$create", invoice)).status == 409
