"""The Sage X3 simulator takes the documents the portal posts (ServiceTitan -> Sage X3): journal
entries (GACCENTRY) and supplier invoices (PINVOICE), checked and numbered as X3 would.

Offline through real ``requests`` calls routed in-process to the simulator. Run without Django:
``.venv/bin/pytest tests/sandbox/test_sage_x3_writes.py -q -p no:django``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from integrations.sandbox import servicetitan_seed as st
from integrations.sandbox.base import Faults
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage_x3 import ManualClock, SageX3Simulator
from integrations.sandbox.sage_x3_schema import dumps
from integrations.sandbox.sage_x3_seed import (
    FIELD_SUPPLIER_RENAMED,
    JOB_COST_OFFSET_ACCOUNT,
    field_service_bulk,
    field_service_data,
)

BASE = "http://x3.sandbox.test:8124"
API = f"{BASE}/api1/x3/erp/FIELD"
ADMIN = ("admin", "x3-demo-pass")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def sim(clock: ManualClock) -> SageX3Simulator:
    simulator = SageX3Simulator(clock=clock)
    simulator.seed_field_service()
    return simulator


@pytest.fixture
def http(sim: SageX3Simulator) -> Iterator[requests.Session]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, BASE, rsps)
        yield requests.Session()


def get_json(response: requests.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


def create(http: requests.Session, klass: str, payload: dict[str, Any]) -> requests.Response:
    # schema.dumps writes Decimals as exact number literals, as the portal's client does
    return http.post(f"{API}/{klass}?representation={klass}.$create", data=dumps(payload).encode(),
                     headers={"Content-Type": "application/json"}, auth=ADMIN)


def lookup(http: requests.Session, klass: str, where: str) -> list[dict[str, Any]]:
    response = http.get(f"{API}/{klass}", params={"representation": f"{klass}.$query", "where": where}, auth=ADMIN)
    assert response.status_code == 200, response.text
    return get_json(response)["$resources"]


def messages(response: requests.Response) -> list[str]:
    return [d["$message"] for d in get_json(response)["$diagnoses"]]


def job_entry(ref: str = "ST-JOB-1001", **changes: Any) -> dict[str, Any]:
    """A job cost entry: labor and materials debited on the job type's accounts, the offset credited."""
    entry = {
        "TYP": "ODT", "ACCDAT": "2026-05-29", "REF": ref, "DESVCR": "Job 1001 Panel Upgrade", "CUR": "USD",
        "GACCENTRYD": [
            {"ACC": "51010", "CCE": "ELN", "SNS": 1, "AMTCUR": Decimal("127.50"), "DES": "Labor"},
            {"ACC": "51020", "CCE": "ELN", "SNS": 1, "AMTCUR": Decimal("29.60"), "DES": "Materials"},
            {"ACC": JOB_COST_OFFSET_ACCOUNT, "CCE": "", "SNS": -1, "AMTCUR": Decimal("157.10"), "DES": "Offset"},
        ],
    }
    return entry | changes


def bill(vendor_document: str = "VINV-7001", **changes: Any) -> dict[str, Any]:
    """ServiceTitan bill 8001 against PO-7001 (two items) from Northwind Electrical Supply (US001)."""
    invoice = {
        "BPR": "US001", "BPRVCR": vendor_document, "BPRDAT": "2026-01-03", "ACCDAT": "2026-01-03", "CUR": "USD",
        "AMTNOT": Decimal("318.80"), "AMTATI": Decimal("331.20"),
        "PINVOICED": [
            {"PIDLIN": 1, "POHNUM": "PO-7001", "POPLIN": 1, "ITMREF": "BRK-20A", "QTYUOM": Decimal("2"),
             "NETPRI": Decimal("14.80"), "AMTNOTLIN": Decimal("29.60"), "ACC": "5100", "CCE": "ELN"},
            {"PIDLIN": 2, "POHNUM": "PO-7001", "POPLIN": 2, "ITMREF": "WIRE-12", "QTYUOM": Decimal("3"),
             "NETPRI": Decimal("96.40"), "AMTNOTLIN": Decimal("289.20"), "ACC": "5100", "CCE": "ELN"},
        ],
    }
    return invoice | changes


def with_line(document: dict[str, Any], lines: str, index: int, **changes: Any) -> dict[str, Any]:
    copied = [dict(line) for line in document[lines]]
    copied[index].update(changes)
    return document | {lines: copied}


# --- journal entries ----------------------------------------------------------------------------

def test_it_numbers_a_balanced_entry_and_finds_it_by_reference(sim, http):
    created = create(http, "GACCENTRY", job_entry())
    assert created.status_code == 201, created.text
    body = get_json(created)
    assert body["NUM"] == "ODT000001"
    assert body["$etag"] == body["UPDDATTIM"] == "2026-06-01T12:00:00Z"
    assert [(line["LIN"], line["ACC"], line["SNS"], line["AMTCUR"]) for line in body["GACCENTRYD"]] == [
        (1, "51010", 1, Decimal("127.50")), (2, "51020", 1, Decimal("29.60")),
        (3, "21500", -1, Decimal("157.10"))]
    assert b'"AMTCUR":127.50' in created.content

    found = lookup(http, "GACCENTRY", "REF eq 'ST-JOB-1001'")
    assert [(r["NUM"], r["TYP"], r["ACCDAT"]) for r in found] == [("ODT000001", "ODT", "2026-05-29")]
    assert len(found[0]["GACCENTRYD"]) == 3

    # the counter runs per journal type; a caller-supplied number is kept
    assert get_json(create(http, "GACCENTRY", job_entry("ST-JOB-1002")))["NUM"] == "ODT000002"
    assert get_json(create(http, "GACCENTRY", job_entry("ST-JOB-1003", TYP="OD")))["NUM"] == "OD000001"
    assert get_json(create(http, "GACCENTRY", job_entry("ST-JOB-1004", NUM="MANUAL1")))["NUM"] == "MANUAL1"
    assert create(http, "GACCENTRY", job_entry("ST-JOB-1005", NUM="MANUAL1")).status_code == 409
    refs = lookup(http, "GACCENTRY", "REF in ('ST-JOB-1002', 'ST-JOB-1003', 'ST-JOB-9999')")
    assert sorted(r["NUM"] for r in refs) == ["OD000001", "ODT000002"]


def test_it_refuses_an_unbalanced_entry(sim, http):
    entry = with_line(job_entry(), "GACCENTRYD", 2, AMTCUR=Decimal("157.00"))
    refused = create(http, "GACCENTRY", entry)
    assert refused.status_code == 400
    assert messages(refused) == ["The entry is not balanced: debits 157.10, credits 157.00"]
    assert sim.records("GACCENTRY", folder="FIELD") == []
    # a refusal uses no number
    assert get_json(create(http, "GACCENTRY", job_entry()))["NUM"] == "ODT000001"


@pytest.mark.parametrize(("changes", "message"), [
    ({"TYP": "VEN"}, "Journal type VEN does not exist in this folder"),
    ({"TYP": ""}, "The journal type is required"),
    ({"ACCDAT": None}, "The accounting date is required"),
    ({"line": (0, {"ACC": "59999"})}, "Line 1: account 59999 does not exist"),
    ({"line": (1, {"CCE": "NOPE"})}, "Line 2: cost center NOPE does not exist"),
    ({"line": (0, {"SNS": 0})}, "Line 1: the sense must be 1 (debit) or -1 (credit), not 0"),
    ({"line": (0, {"AMTCUR": Decimal("-127.50"), "SNS": -1})},
     "Line 1: the amount -127.50 is negative; post it on the other side"),
])
def test_it_refuses_an_entry_x3_would_not_post(http, changes, message):
    entry = job_entry()
    if "line" in changes:
        index, line_changes = changes.pop("line")
        entry = with_line(entry, "GACCENTRYD", index, **line_changes)
    refused = create(http, "GACCENTRY", entry | changes)
    assert refused.status_code == 400
    assert messages(refused) == [message]


def test_it_refuses_an_entry_of_one_line_and_names_every_problem(http):
    entry = job_entry(TYP="XX", GACCENTRYD=[{"ACC": "0000", "SNS": 1, "AMTCUR": Decimal("10.00")}])
    refused = create(http, "GACCENTRY", entry)
    assert refused.status_code == 400
    assert messages(refused) == [
        "Journal type XX does not exist in this folder",
        "An entry needs at least two lines, this one has 1",
        "Line 1: account 0000 does not exist",
        "The entry is not balanced: debits 10.00, credits 0.00",
    ]


def test_journal_types_are_configurable(clock):
    sim = SageX3Simulator(clock=clock, journal_types=("GEN",))
    sim.seed_field_service()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, BASE, rsps)
        http = requests.Session()
        assert messages(create(http, "GACCENTRY", job_entry())) == ["Journal type ODT does not exist in this folder"]
        assert get_json(create(http, "GACCENTRY", job_entry(TYP="GEN")))["NUM"] == "GEN000001"


# --- supplier invoices --------------------------------------------------------------------------

def test_it_numbers_a_supplier_invoice_and_finds_it_by_supplier_document(http):
    created = create(http, "PINVOICE", bill())
    assert created.status_code == 201, created.text
    body = get_json(created)
    assert body["NUM"] == "PI000001"
    assert [(line["POHNUM"], line["POPLIN"]) for line in body["PINVOICED"]] == [("PO-7001", 1), ("PO-7001", 2)]
    assert [r["NUM"] for r in lookup(http, "PINVOICE", "BPRVCR eq 'VINV-7001'")] == ["PI000001"]
    assert [r["NUM"] for r in lookup(http, "PINVOICE", "(BPR eq 'US001' and BPRVCR eq 'VINV-7001')")] == ["PI000001"]
    assert lookup(http, "PINVOICE", "(BPR eq 'US002' and BPRVCR eq 'VINV-7001')") == []
    assert get_json(create(http, "PINVOICE", bill("VINV-7006")))["NUM"] == "PI000002"


@pytest.mark.parametrize(("invoice", "message"), [
    (bill(BPR="US999"), "Supplier US999 does not exist"),
    (bill(BPR=""), "The supplier is required"),
    (bill(AMTATI=None), "The amount including tax is required"),
    (with_line(bill(), "PINVOICED", 0, POHNUM="PO-9999"), "Line 1: purchase order PO-9999 does not exist"),
    (with_line(bill(), "PINVOICED", 1, POPLIN=3), "Line 2: purchase order PO-7001 has no line 3"),
    (with_line(bill(), "PINVOICED", 0, ACC="6000"), "Line 1: account 6000 does not exist"),
    (with_line(bill(), "PINVOICED", 1, CCE="XYZ"), "Line 2: cost center XYZ does not exist"),
])
def test_it_refuses_a_supplier_invoice_with_unknown_references(sim, http, invoice, message):
    refused = create(http, "PINVOICE", invoice)
    assert refused.status_code == 400
    assert messages(refused) == [message]
    assert sim.records("PINVOICE", folder="FIELD") == []


def test_a_line_without_order_or_cost_center_is_accepted(http):
    invoice = with_line(bill(), "PINVOICED", 1, POHNUM="", POPLIN=0, CCE="")
    assert create(http, "PINVOICE", invoice).status_code == 201


def test_it_refuses_a_second_invoice_with_the_same_supplier_document(sim, http):
    first = get_json(create(http, "PINVOICE", bill()))["NUM"]
    create(http, "PINVOICE", bill("VINV-7002"))
    again = create(http, "PINVOICE", bill())
    assert again.status_code == 400
    assert messages(again) == [f"Supplier invoice VINV-7001 of supplier US001 already exists as {first}"]
    # another supplier may use the same document number
    assert create(http, "PINVOICE", bill(BPR="US002")).status_code == 201
    # invoices stored some other way are known too
    sim.upsert("PINVOICE", bill("VINV-ERP", NUM="PIERP1"), folder="FIELD")
    assert messages(create(http, "PINVOICE", bill("VINV-ERP"))) == [
        "Supplier invoice VINV-ERP of supplier US001 already exists as PIERP1"]


def test_the_duplicate_guard_can_be_switched_off(clock):
    sim = SageX3Simulator(clock=clock, unique_supplier_invoice=False)
    sim.seed_field_service()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, BASE, rsps)
        http = requests.Session()
        assert [create(http, "PINVOICE", bill()).status_code for _ in range(2)] == [201, 201]


# --- facets and faults --------------------------------------------------------------------------

def test_read_only_representations_answer_405(clock):
    sim = SageX3Simulator(clock=clock, writable=("BPSUPPLIER",))
    sim.seed_field_service()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, BASE, rsps)
        http = requests.Session()
        for klass, payload in (("GACCENTRY", job_entry()), ("PINVOICE", bill())):
            refused = create(http, klass, payload)
            assert refused.status_code == 405
            assert messages(refused) == [f"Representation {klass} is read-only: no $create facet"]
        assert sim.records("GACCENTRY", folder="FIELD") == sim.records("PINVOICE", folder="FIELD") == []


def test_commit_then_drop_leaves_the_documents_committed(sim, http):
    sim.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        create(http, "GACCENTRY", job_entry())
    with pytest.raises(requests.exceptions.ConnectionError):
        create(http, "PINVOICE", bill())
    sim.set_faults(Faults())
    assert [r["NUM"] for r in lookup(http, "GACCENTRY", "REF eq 'ST-JOB-1001'")] == ["ODT000001"]
    # a blind resend of the lost invoice is caught by the duplicate guard, naming the first one
    assert messages(create(http, "PINVOICE", bill())) == [
        "Supplier invoice VINV-7001 of supplier US001 already exists as PI000001"]


# --- the field-service folder -------------------------------------------------------------------

def test_field_service_data_is_coherent_with_the_servicetitan_demo():
    data = field_service_data()
    assert data == field_service_data()  # deterministic
    accounts = {r["ACC"]: r["DES"] for r in data["GACCOUNT"]}
    descriptions = set(accounts.values())
    for _type_id, name in st.JOB_TYPES:
        assert {f"{name} labor", f"{name} materials"} <= descriptions
    for number, name, _kind, _detail in st.GL_ACCOUNTS:
        assert accounts[number] == name
    assert accounts[JOB_COST_OFFSET_ACCOUNT] == "Accrued job costs"
    centers = {r["DES"]: r["CCE"] for r in data["CACCE"]}
    assert {name for _id, name in st.BUSINESS_UNITS} < set(centers)
    assert [centers[name] for _id, name in st.BUSINESS_UNITS] == ["ELN", "ELS", "HOS"]

    supplier_names = {r["BPSNAM"]: r["BPSNUM"] for r in data["BPSUPPLIER"]}
    unmatched = [name for _id, name in st.VENDORS if name not in supplier_names]
    assert unmatched == list(FIELD_SUPPLIER_RENAMED) and len(unmatched) == 1
    orders = {r["POHNUM"]: r for r in data["PORDER"]}
    vendor_names = dict(st.VENDORS)
    suppliers = {r["BPSNUM"]: r["BPSNAM"] for r in data["BPSUPPLIER"]}
    st_orders = [po for po, _at, _active in st.demo_data()[("inventory", "purchase-orders")]]
    assert len(orders) == len(st_orders)
    for po in st_orders:
        order = orders[po["number"]]
        assert [(line["POPLIN"], line["ITMREF"]) for line in order["PORDERP"]] == [
            (n, item["skuCode"]) for n, item in enumerate(po["items"], start=1)]
        name = vendor_names[po["vendorId"]]
        assert suppliers[order["BPSNUM"]] == FIELD_SUPPLIER_RENAMED.get(name, name)
        assert order["TOTAMTNOT"] == sum(line["LINAMT"] for line in order["PORDERP"])
    stamps = [r["UPDDATTIM"] for rows in data.values() for r in rows]
    assert max(stamps) < datetime(2026, 6, 1, tzinfo=UTC)


def test_the_field_folder_is_served_beside_the_demo_folder(sim, http):
    sim.seed_demo()
    assert {r["BPSNUM"] for r in lookup(http, "BPSUPPLIER", "BPSNAM eq 'Northwind Electrical Supply'")} == {"US001"}
    demo = http.get(f"{BASE}/api1/x3/erp/SEED/GACCOUNT", params={"representation": "GACCOUNT.$query",
                                                                  "where": "ACC eq '51010'"}, auth=ADMIN)
    assert get_json(demo)["$resources"] == []


def test_field_service_bulk_follows_the_servicetitan_bulk_naming(clock):
    st_bulk = st.bulk_data(7, lines=3, vendors=4, jobs=2)
    data = field_service_bulk(jobs=2, bills=7, lines=3, vendors=4)
    names = {r["BPSNUM"]: r["BPSNAM"] for r in data["BPSUPPLIER"]}
    vendors = {v["id"]: v["name"] for v, _at, _active in st_bulk[("inventory", "vendors")]}
    assert sorted(names.values()) == sorted(vendors.values())
    orders = {r["POHNUM"]: r for r in data["PORDER"]}
    st_orders = [po for po, _at, _active in st_bulk[("inventory", "purchase-orders")]]
    assert sorted(orders) == sorted(po["number"] for po in st_orders)
    for po in st_orders:
        order = orders[po["number"]]
        assert names[order["BPSNUM"]] == vendors[po["vendorId"]]
        assert [line["ITMREF"] for line in order["PORDERP"]] == [item["skuCode"] for item in po["items"]]
        assert [line["QTYUOM"] for line in order["PORDERP"]] == [item["quantity"] for item in po["items"]]
    assert data["GACCOUNT"] == field_service_data()["GACCOUNT"]

    sim = SageX3Simulator(clock=clock)
    counts = sim.seed_field_service_bulk(jobs=2, bills=7, lines=3, vendors=4)
    assert counts == {"GACCOUNT": 14, "CACCE": 4, "BPSUPPLIER": 4, "PORDER": 7}
    assert sim.get("PORDER", "PO-300007", folder="FIELD")["BPSNUM"] == "BV00002"


def test_a_look_up_by_key_answers_the_same_as_the_general_filter():
    from integrations.sandbox.sage_x3 import _key_lookup
    from integrations.sandbox.sage_x3_schema import CLASSES

    spec = CLASSES["PORDER"]
    assert _key_lookup("POHNUM in ('PO-1', 'O''Brien')", spec, {}) == ["PO-1", "O'Brien"]
    assert _key_lookup("(POHNUM eq 'PO-1')", spec, {}) == ["PO-1"]
    assert _key_lookup("POHNUM in ('PO-1') and BPSNUM eq 'S'", spec, {}) is None  # not a pure key look-up
    assert _key_lookup("BPSNUM eq 'S'", spec, {}) is None
    assert _key_lookup("ZPO eq 'PO-1'", spec, {"POHNUM": "ZPO"}) == ["PO-1"]  # a renamed key
