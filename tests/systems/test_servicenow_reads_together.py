"""Table API reads sent together as GET items of one Batch API call (API_FACTS 1.3): the column
guard's ``sys_dictionary`` query rides with the look-up made before the first write into a table,
so a cycle that adopts rows entered by hand spends one round trip less, and the guard still
judges every table as it did with a call of its own."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.servicenow import ServiceNowSimulator
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import SystemicError
from integrations.systems.servicenow import ServiceNowClient, UpsertRow, build_client
from integrations.systems.servicenow_checks import TableRead
from integrations.systems.spec import ConnectionSpec

SN_URL = "https://reads.service-now.com"
SN_USER = "integration.user"
SUPPLIER = "proc_vendor"
BATCH = "/api/now/v1/batch"
DICTIONARY = "/api/now/table/sys_dictionary"


@pytest.fixture
def sn_sim() -> ServiceNowSimulator:
    return ServiceNowSimulator(clock=ManualClock(), strict_columns=True).seed_demo()


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture
def client(sn_sim: ServiceNowSimulator, events: list) -> Iterator[ServiceNowClient]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sn_sim, SN_URL, rsps)
        yield make_client(events)


def make_client(events: list, **settings: Any) -> ServiceNowClient:
    spec = ConnectionSpec("servicenow", SN_URL, "basic", settings={"username": SN_USER, **settings},
                          secrets={"password": "integration-pass"})
    return build_client(spec, MemoryTokenStore(), on_event=lambda action, detail: events.append((action, detail)))


def seed_suppliers(sn_sim: ServiceNowSimulator, *names: str) -> None:
    for name in names:
        sn_sim.insert(SUPPLIER, {"name": name})


def calls(sn_sim: ServiceNowSimulator, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sn_sim.requests[since:]]


def batch_items(request: Any) -> list[tuple[str, str]]:
    return [(item["method"], item["url"].split("?")[0]) for item in request.json()["rest_requests"]]


def by_name(client: ServiceNowClient, *names: str) -> list[list[dict[str, Any]]]:
    query = "^OR".join(f"name={name}" for name in names)
    return list(client.iter_pages_before_write(SUPPLIER, query, fields=["name", "sys_id", "u_source_key"]))


def test_the_column_check_goes_in_the_same_call_as_the_look_up_before_the_first_write(client, sn_sim):
    seed_suppliers(sn_sim, "Acme Tools", "Globex")

    pages = by_name(client, "Acme Tools", "Initech")
    client.source_column.require(SUPPLIER)

    assert [row["name"] for page in pages for row in page] == ["Acme Tools"]
    assert calls(sn_sim) == [("POST", BATCH)], "one round trip: no sys_dictionary call of its own"
    assert batch_items(sn_sim.requests[0]) == [("GET", f"/api/now/table/{SUPPLIER}"), ("GET", DICTIONARY)]
    assert client.source_column.verdicts[SUPPLIER] == "ok"
    # the one query judged every table of the profile: the next look-ups are plain reads
    by_name(client, "Globex")
    client.source_column.require("sn_apo_invoice")
    assert calls(sn_sim)[1:] == [("GET", f"/api/now/table/{SUPPLIER}")]


def test_a_missing_source_id_column_found_by_the_shared_call_still_stops_the_write(client, sn_sim):
    sn_sim.drop_column(SUPPLIER, "u_source_key")

    with pytest.raises(SystemicError) as at_the_look_up:
        by_name(client, "Acme Tools")
    with pytest.raises(SystemicError) as at_the_write:
        client.upsert(SUPPLIER, [UpsertRow("SUP1", {"name": "Acme Tools"})])

    assert at_the_look_up.value.code == at_the_write.value.code == "missing_column"
    assert "Create the column u_source_key" in str(at_the_look_up.value)
    assert sn_sim.rows(SUPPLIER) == []


def test_without_read_access_to_the_dictionary_the_look_up_answers_and_the_write_goes_ahead_noted(
        client, sn_sim, events):
    sn_sim.install_table("sys_dictionary", roles=["admin"])  # the integration user gets 403 for that item
    seed_suppliers(sn_sim, "Acme Tools")

    pages = by_name(client, "Acme Tools")
    written = client.upsert(SUPPLIER, [UpsertRow("SUP1", {"name": "Globex"})])

    assert [row["name"] for page in pages for row in page] == ["Acme Tools"]
    assert written["SUP1"].action == "created"
    assert [action for action, _ in events] == ["connection.columns_unverified"]
    assert SUPPLIER in events[0][1]["tables"]


def look_up_alone(sn_sim: ServiceNowSimulator, events: list, names: list[str],
                  **settings: Any) -> tuple[ServiceNowClient, list[list[dict[str, Any]]]]:
    """A new client's look-up by name, against the simulator as the test left it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sn_sim, SN_URL, rsps)
        client = make_client(events, **settings)
        return client, by_name(client, *names)


def test_every_page_of_the_look_up_is_read_after_the_shared_first_one(sn_sim, events):
    names = [f"Vendor {n}" for n in range(5)]
    seed_suppliers(sn_sim, *names)

    _, pages = look_up_alone(sn_sim, events, names, page_size=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(row["name"] for page in pages for row in page) == names
    assert [method for method, _ in calls(sn_sim)] == ["POST", "GET", "GET"]


@pytest.mark.parametrize(("instance", "asked_alone"), [
    # the instance serves one item per call and lists the other as unserviced
    ({"batch_max_items": 1}, [DICTIONARY]),
    # every batch item answered 503 without being run
    ({"item_error_rate": 1.0}, [f"/api/now/table/{SUPPLIER}", DICTIONARY]),
], ids=["unserviced", "temporary-failure"])
def test_an_item_not_answered_is_asked_again_on_its_own(sn_sim, events, instance, asked_alone):
    if "batch_max_items" in instance:
        sn_sim.batch_max_items = instance["batch_max_items"]
    else:
        sn_sim.faults.item_error_rate = instance["item_error_rate"]
    seed_suppliers(sn_sim, "Acme Tools")

    client, pages = look_up_alone(sn_sim, events, ["Acme Tools"])

    assert [row["name"] for page in pages for row in page] == ["Acme Tools"]
    assert calls(sn_sim) == [("POST", BATCH), *(("GET", path) for path in asked_alone)]
    assert client.source_column.verdicts[SUPPLIER] == "ok"


@responses.activate
def test_each_items_link_header_is_read_and_an_item_that_is_not_rows_is_asked_on_its_own():
    def item(item_id: str, body: Any, headers: list[dict[str, str]]) -> dict[str, Any]:
        return {"id": item_id, "status_code": 200, "status_text": "OK", "headers": headers,
                "body": base64.b64encode(json.dumps(body).encode()).decode("ascii")}

    responses.add(responses.POST, f"{SN_URL}{BATCH}", json={
        "batch_request_id": "0",
        "serviced_requests": [
            item("1", {"result": "not rows"}, []),
            item("0", {"result": [{"sys_id": "a"}]},
                 [{"name": "Link", "value": f'<{SN_URL}/api/now/table/x?sysparm_offset=1>;rel="next"'}]),
        ],
        "unserviced_requests": []})
    responses.add(responses.GET, f"{SN_URL}/api/now/table/y", json={"result": [{"sys_id": "b"}]})
    client = make_client([])

    first, second = client.read_together([TableRead("x", "a=1"), TableRead("y", "b=2")])
    request = json.loads(responses.calls[0].request.body)

    assert first.rows == [{"sys_id": "a"}] and first.more is True
    assert second.rows == [{"sys_id": "b"}] and second.more is False
    assert responses.calls[1].request.params["sysparm_query"] == "b=2"
    assert [item["exclude_response_headers"] for item in request["rest_requests"]] == [False, False]
    assert request["rest_requests"][0]["url"] == "/api/now/table/x?sysparm_limit=1000&sysparm_offset=0&" \
                                                 "sysparm_exclude_reference_link=true&sysparm_query=a%3D1"


@responses.activate
def test_an_item_refused_for_the_user_is_its_error_and_not_asked_again():
    responses.add(responses.POST, f"{SN_URL}{BATCH}", json={
        "batch_request_id": "0", "unserviced_requests": [],
        "serviced_requests": [{"id": "0", "status_code": 403, "status_text": "Forbidden", "headers": [],
                               "body": base64.b64encode(json.dumps({"error": {
                                   "message": "User Not Authorized", "detail": "ACL"}, "status": "failure"}
                               ).encode()).decode("ascii")}]})
    client = make_client([])

    [refused] = client.read_together([TableRead("sys_dictionary", "name=x")])

    assert isinstance(refused, SystemicError) and refused.status == 403
    assert len(responses.calls) == 1


def test_the_look_up_of_rows_whose_write_is_uncertain_carries_the_check_too(client, sn_sim):
    seed_suppliers(sn_sim, "Acme Tools")

    written = client.upsert(SUPPLIER, [UpsertRow("SUP1", {"name": "Globex"}, uncertain=True)])

    assert written["SUP1"].action == "created"
    assert calls(sn_sim) == [("POST", BATCH), ("POST", BATCH)]
    assert batch_items(sn_sim.requests[0]) == [("GET", f"/api/now/table/{SUPPLIER}"), ("GET", DICTIONARY)]
    assert batch_items(sn_sim.requests[1]) == [("POST", f"/api/now/table/{SUPPLIER}")]


def test_a_missing_column_is_named_before_the_uncertain_rows_look_up_is_believed(client, sn_sim):
    # the instance ignores the condition on the missing column and answers every row: the guard's
    # verdict, not the look-up's "matched more rows", is what the run reports
    sn_sim.drop_column(SUPPLIER, "u_source_key")
    seed_suppliers(sn_sim, "Acme Tools", "Globex", "Initech")

    with pytest.raises(SystemicError) as refused:
        client.upsert(SUPPLIER, [UpsertRow("SUP1", {"name": "Hooli"}, uncertain=True)])

    assert refused.value.code == "missing_column"
    assert sorted(row["name"] for row in sn_sim.rows(SUPPLIER)) == ["Acme Tools", "Globex", "Initech"]


def test_a_write_with_nothing_to_look_up_checks_the_column_in_a_call_of_its_own(client, sn_sim):
    written = client.upsert(SUPPLIER, [UpsertRow("SUP1", {"name": "Globex"})])

    assert written["SUP1"].action == "created"
    assert calls(sn_sim) == [("GET", DICTIONARY), ("POST", BATCH)]
