"""The ServiceTitan simulator behaves as API_FACTS 6 and 9 describe, seen through real ``requests`` calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import pytest
import requests

from integrations.sandbox.base import Faults
from integrations.sandbox.server import DEFAULT_PORTS, SIMULATORS, build_simulator
from integrations.sandbox.servicetitan import (
    MISSING_APP_KEY,
    WEBHOOK_RETRY_DELAYS,
    ServiceTitanSimulator,
    encode_event,
    sign,
)
from integrations.sandbox.servicetitan_seed import APP_KEY, CLIENT_ID, CLIENT_SECRET, TENANT_ID, WEBHOOK_KEY
from tests.servicetitan.conftest import API_URL, TOKEN_URL

T = f"{API_URL}/{{module}}/v2/tenant/{TENANT_ID}/{{resource}}"


def url(module: str, resource: str) -> str:
    return T.format(module=module, resource=resource)


def get_token(secret: str = CLIENT_SECRET) -> requests.Response:
    return requests.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                          "client_secret": secret}, timeout=5)


@pytest.fixture
def headers(st) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token().json()['access_token']}", "ST-App-Key": APP_KEY}


def get(module: str, resource: str, headers: dict[str, str], **params) -> requests.Response:
    return requests.get(url(module, resource), headers=headers, params=params, timeout=5)


def assert_problem(response: requests.Response, status: int) -> dict:
    body = response.json()
    assert response.status_code == status
    assert set(body) == {"type", "title", "status", "traceId", "errors", "data"} and body["status"] == status
    return body


# --- auth -------------------------------------------------------------------------------------------
def test_the_token_is_a_900_second_bearer_without_refresh_token(st):
    answer = get_token()
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and "refresh_token" not in body


def test_a_wrong_client_gets_400_invalid_client(st):
    answer = get_token("not-the-secret")
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid_client"})


def test_the_token_lifetime_follows_the_faults(st, sim):
    sim.set_faults(Faults(token_lifetime=60))
    assert get_token().json()["expires_in"] == 60


def test_a_call_without_app_key_gets_the_documented_401(headers):
    answer = get("accounting", "invoices", {"Authorization": headers["Authorization"]})
    assert assert_problem(answer, 401)["title"] == MISSING_APP_KEY


def test_an_unknown_app_key_or_an_expired_token_gets_401(headers, clock):
    assert get("accounting", "invoices", {**headers, "ST-App-Key": "ak1.other"}).status_code == 401
    assert get("accounting", "invoices", headers).status_code == 200
    clock.advance(900)
    answer = get("accounting", "invoices", headers)
    assert assert_problem(answer, 401) and "invalid_token" in answer.headers["WWW-Authenticate"]


def test_a_token_opens_only_its_own_tenant(headers):
    answer = requests.get(f"{API_URL}/jpm/v2/tenant/999/jobs", headers=headers, timeout=5)
    assert assert_problem(answer, 403)


# --- lists --------------------------------------------------------------------------------------------
def test_lists_page_by_page_in_id_order_with_has_more_and_an_optional_total(headers, sim):
    first = get("accounting", "invoices", headers, page=1, pageSize=4).json()
    assert (first["page"], first["pageSize"], first["hasMore"], first["totalCount"]) == (1, 4, True, None)
    last = get("accounting", "invoices", headers, page=3, pageSize=4, includeTotal="true").json()
    assert (last["hasMore"], last["totalCount"], len(last["data"])) == (False, 10, 2)
    ids = [r["id"] for p in (1, 2, 3) for r in get("accounting", "invoices", headers, page=p, pageSize=4).json()["data"]]
    assert ids == sorted(ids) == [r["id"] for r in sim.rows("accounting", "invoices")]
    assert get("accounting", "invoices", headers).json()["pageSize"] == 50


def test_invoice_amounts_are_strings_and_items_carry_gl_accounts_and_costs(headers):
    invoice = get("accounting", "invoices", headers).json()["data"][0]
    assert all(isinstance(invoice[k], str) for k in ("subTotal", "salesTax", "total", "balance"))
    item = invoice["items"][0]
    assert set(item["generalLedgerAccount"]) == {"name", "number", "type", "detailType"}
    assert isinstance(item["cost"], str) and isinstance(item["totalCost"], str)
    assert invoice["job"]["id"] and invoice["businessUnit"]["name"]


def test_a_page_size_past_5000_or_a_bad_date_is_an_rfc_7807_field_error(headers):
    body = assert_problem(get("accounting", "invoices", headers, pageSize=5001), 400)
    assert "pageSize" in body["errors"]
    body = assert_problem(get("accounting", "invoices", headers, modifiedOnOrAfter="yesterday"), 400)
    assert "modifiedOnOrAfter" in body["errors"]


def test_modified_on_or_after_returns_what_changed_since(headers, sim, clock):
    clock.advance(600)  # within the token's 15 minutes
    sim.update("jpm", "jobs", 1003, summary="Rewired the panel")
    changed = get("jpm", "jobs", headers, modifiedOnOrAfter="2026-01-05T08:10:00Z").json()["data"]
    assert [j["id"] for j in changed] == [1003] and changed[0]["modifiedOn"] == "2026-01-05T08:10:00Z"
    assert get("jpm", "jobs", headers, modifiedOnOrAfter="2026-01-05T08:10:01+00:00").json()["data"] == []


def test_the_inventory_bills_list_is_a_bare_array_without_modified_on_or_voided_bills(headers):
    bills = get("accounting", "inventory-bills", headers).json()
    assert isinstance(bills, list) and [b["id"] for b in bills] == [8001, 8002, 8003, 8004]
    assert all("modifiedOn" not in b and isinstance(b["billAmount"], str) for b in bills)
    assert all(item["generalLedgerAccount"]["number"] for b in bills for item in b["items"])


def test_bill_amounts_can_be_served_as_numbers(st):
    sim = ServiceTitanSimulator(numeric_bill_amounts=True).seed_demo()
    bill = sim.rows("accounting", "inventory-bills")[0]
    assert not isinstance(bill["billAmount"], str)


def test_records_by_id_where_documented_and_404_in_rfc_7807_otherwise(headers):
    assert requests.get(url("jpm", "jobs/1001"), headers=headers, timeout=5).json()["jobStatus"] == "Completed"
    assert_problem(requests.get(url("jpm", "jobs/99"), headers=headers, timeout=5), 404)
    assert get("accounting", "invoices", headers, ids="5002").json()["data"][0]["id"] == 5002


# --- the export feed ------------------------------------------------------------------------------------
def test_the_export_feed_pages_with_long_tokens_and_ends_with_a_continue_from(headers, sim):
    sim.export_page_size = 2
    pages, token = [], ""
    while True:
        body = get("accounting", "export/inventory-bills", headers, **({"from": token} if token else {})).json()
        assert set(body) == {"data", "hasMore", "continueFrom"} and len(body["continueFrom"]) > 64
        pages.append([(b["id"], b["active"]) for b in body["data"]])
        token = body["continueFrom"]
        if not body["hasMore"]:
            break
    assert pages == [[(8001, True), (8002, True)], [(8003, True), (8004, True)], [(8005, False)]]
    again = get("accounting", "export/inventory-bills", headers, **{"from": token}).json()
    assert (again["data"], again["hasMore"], again["continueFrom"]) == ([], False, token)


def test_a_change_moves_the_record_to_the_end_of_the_feed(headers, sim, clock):
    token = get("accounting", "export/inventory-bills", headers).json()["continueFrom"]
    clock.advance(60)
    sim.void_bill(8002)
    body = get("accounting", "export/inventory-bills", headers, **{"from": token}).json()
    assert [(b["id"], b["active"]) for b in body["data"]] == [(8002, False)]


def test_the_export_starts_at_a_date_and_include_recent_changes_repeats_the_last_record(headers, sim):
    sim.export_page_size = 2
    from_date = get("accounting", "export/inventory-bills", headers, **{"from": "2026-01-03T11:00:00Z"}).json()
    assert [b["id"] for b in from_date["data"]] == [8003, 8004]
    token = from_date["continueFrom"]
    recent = get("accounting", "export/inventory-bills", headers, **{"from": token, "includeRecentChanges": "true"})
    assert [b["id"] for b in recent.json()["data"]] == [8004, 8005]


def test_an_unreadable_export_token_is_a_field_error(headers):
    body = assert_problem(get("accounting", "export/inventory-bills", headers, **{"from": "garbage!"}), 400)
    assert "from" in body["errors"]


# --- writes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "resource"), [
    ("PATCH", "invoices/5001"), ("POST", "invoices"), ("POST", "invoices/markasexported"),
    ("PATCH", "inventory-bills/custom-fields"), ("DELETE", "invoices/5001/items/50001"), ("POST", "inventory-bills"),
])
def test_writes_to_invoices_and_bills_are_refused_and_recorded(headers, sim, method, resource):
    answer = requests.request(method, url("accounting", resource), headers=headers, json={}, timeout=5)
    assert_problem(answer, 403)
    assert [(r.method, r.path.rsplit("/tenant/", 1)[1]) for r in sim.forbidden_writes] == [
        (method, f"{TENANT_ID}/{resource}")]


def test_even_an_unauthenticated_write_attempt_is_recorded(st, sim):
    assert requests.post(url("accounting", "invoices/markasexported"), json=[], timeout=5).status_code == 401
    assert len(sim.forbidden_writes) == 1


def test_vendors_are_created_and_updated_with_modification_responses(headers, sim, clock):
    created = requests.post(url("inventory", "vendors"), headers=headers, timeout=5,
                            json={"name": "Wingtip Conduit", "phone": "555-0199", "taxRate": 0.05})
    new_id = created.json()["id"]
    assert created.status_code == 200 and set(created.json()) == {"id"}
    vendor = sim.record("inventory", "vendors", new_id)
    assert (vendor["contactInfo"]["phone"], vendor["defaultTaxRate"], vendor["active"]) == ("555-0199", 0.05, True)
    clock.advance(10)
    patched = requests.patch(url("inventory", f"vendors/{new_id}"), headers=headers, json={"active": False},
                             timeout=5)
    assert patched.json() == {"id": new_id}
    assert sim.record("inventory", "vendors", new_id)["active"] is False
    assert sim.record("inventory", "vendors", new_id)["modifiedOn"] == "2026-01-05T08:00:10Z"
    assert len(sim.vendor_writes) == 2 and sim.forbidden_writes == []


def test_a_vendor_without_name_is_a_field_error(headers):
    body = assert_problem(requests.post(url("inventory", "vendors"), headers=headers, json={"memo": "x"}, timeout=5),
                          400)
    assert body["errors"] == {"Name": ["The Name field is required."]}


# --- rate limits -----------------------------------------------------------------------------------------
def test_the_61st_call_in_one_second_gets_429_with_retry_after(headers, timer, sim):
    answers = [get("jpm", "job-types", headers).status_code for _ in range(61)]
    assert answers[:60] == [200] * 60
    last = get("jpm", "job-types", headers)
    assert assert_problem(last, 429) and int(last.headers["Retry-After"]) >= 1 and answers[60] == 429
    timer.sleep(1.0)
    assert get("jpm", "job-types", headers).status_code == 200
    assert sim.rate_limited == 2


def test_a_429_burst_from_the_faults_is_rfc_7807_with_retry_after(headers, sim):
    sim.set_faults(Faults(burst_429_rate=1.0, retry_after=7))
    answer = get("jpm", "jobs", headers)
    assert assert_problem(answer, 429) and answer.headers["Retry-After"] == "7"


def test_a_revoked_scope_answers_403(headers, sim):
    sim.revoke_scope("accounting", "gl-accounts")
    assert assert_problem(get("accounting", "gl-accounts", headers), 403)


# --- webhooks --------------------------------------------------------------------------------------------
RECEIVER = "https://portal.test/webhooks/servicetitan/acme/st/"


class Receiver:
    """A webhook endpoint that answers the given statuses in turn and keeps what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.got: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, request):
        self.got.append((request.body, dict(request.headers)))
        return self.statuses[min(len(self.got), len(self.statuses)) - 1], {}, b""


def test_a_webhook_event_is_signed_over_its_raw_bytes(st, sim):
    receiver = Receiver([200])
    st.add_callback("POST", RECEIVER, callback=receiver)
    event = sim.webhook_event("job.completed", {"id": 1001})
    attempts = sim.deliver(RECEIVER, WEBHOOK_KEY)
    assert [(a.number, a.status) for a in attempts] == [(1, 200)]
    body, headers = receiver.got[0]
    assert json.loads(body) == event and set(event) == {"eventId", "eventType", "tenantId", "createdOn", "data"}
    expected = base64.b64encode(hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).digest()).decode()
    assert headers["X-ServiceTitan-Signature"] == expected


def test_the_header_and_the_encoding_are_configurable_and_unsigned_sends_no_header(st, sim):
    receiver = Receiver([200])
    st.add_callback("POST", RECEIVER, callback=receiver)
    sim.webhook_event("invoice.updated", {"id": 5001})
    sim.deliver(RECEIVER, WEBHOOK_KEY, encoding="hex", header="X-Custom-Sig")
    sim.deliver(RECEIVER, None)
    (body, signed), (_, unsigned) = receiver.got
    assert signed["X-Custom-Sig"] == hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).hexdigest()
    assert not any(k.lower().endswith("signature") or k == "X-Custom-Sig" for k in unsigned)


def test_a_failed_delivery_is_retried_at_10_30_60_and_300_seconds(st, sim):
    receiver = Receiver([500, 502, 503, 500, 500])
    st.add_callback("POST", RECEIVER, callback=receiver)
    sim.webhook_event("job.completed", {"id": 1002})
    waits: list[float] = []
    attempts = sim.deliver(RECEIVER, WEBHOOK_KEY, sleep=waits.append)
    assert WEBHOOK_RETRY_DELAYS == (10, 30, 60, 300) and waits == [10, 30, 60, 300]
    assert [a.status for a in attempts] == [500, 502, 503, 500, 500] and not any(a.ok for a in attempts)
    assert len({body for body, _ in receiver.got}) == 1, "every retry sends the very same bytes"


def test_retries_stop_at_the_first_2xx(st, sim):
    receiver = Receiver([503, 202])
    st.add_callback("POST", RECEIVER, callback=receiver)
    sim.webhook_event("job.completed", {"id": 1002})
    attempts = sim.deliver(RECEIVER, WEBHOOK_KEY, delays=(0, 0, 0, 0))
    assert [(a.number, a.status, a.ok) for a in attempts] == [(1, 503, False), (2, 202, True)]


def test_body_styles_are_the_same_json_in_other_bytes():
    event = {"eventId": "e1", "eventType": "job.completed", "tenantId": 1, "createdOn": "x", "data": {"id": 1}}
    bodies = {style: encode_event(event, style) for style in ("spaced", "compact", "pretty", "reordered")}
    assert len(set(bodies.values())) == 4 and all(json.loads(b) == event for b in bodies.values())
    assert sign(bodies["spaced"], WEBHOOK_KEY) != sign(bodies["compact"], WEBHOOK_KEY)


# --- seeds and the server ------------------------------------------------------------------------------------
def test_the_demo_tenant_holds_the_pair_s_data():
    sim = ServiceTitanSimulator().seed_demo()
    counts = {key: len(table.ids) for key, table in sim.tables.items()}
    assert counts[("accounting", "invoices")] == 10 and counts[("accounting", "inventory-bills")] == 5
    assert counts[("jpm", "jobs")] == 8 and counts[("inventory", "vendors")] == 4
    completed = [j for j in sim.rows("jpm", "jobs") if j["jobStatus"] == "Completed"]
    for job in completed:  # the job cost custom fields add up to its invoice's item costs
        invoice = next(i for i in sim.rows("accounting", "invoices") if (i["job"] or {}).get("id") == job["id"])
        costs = {f["name"]: f["value"] for f in job["customFields"]}
        labor = sum(float(i["totalCost"]) for i in invoice["items"] if i["type"] == "Service")
        assert float(costs["laborCost"]) == pytest.approx(labor)
    voided = [b for b in sim.rows("accounting", "inventory-bills") if not sim.tables[("accounting", "inventory-bills")].active[b["id"]]]
    assert [b["id"] for b in voided] == [8005]


def test_bulk_data_resolves_every_reference():
    sim = ServiceTitanSimulator().seed_bulk(1000, lines=5, vendors=50)
    bills, pos = sim.rows("accounting", "inventory-bills"), {p["id"]: p for p in sim.rows("inventory", "purchase-orders")}
    vendors = {v["id"] for v in sim.rows("inventory", "vendors")}
    jobs = {j["id"] for j in sim.rows("jpm", "jobs")}
    assert len(bills) == 1000 and len(jobs) == 1000
    assert all(pos[b["purchaseOrderId"]]["vendorId"] == b["vendor"]["id"] in vendors for b in bills)
    assert all(b["jobId"] in jobs and len(b["items"]) == 5 for b in bills)
    invoices = sim.rows("accounting", "invoices")
    item_ids = [i["id"] for inv in invoices for i in inv["items"]]
    assert len(item_ids) == len(set(item_ids))


def test_the_loopback_server_knows_the_servicetitan_simulator():
    assert SIMULATORS["servicetitan"][1] == "ServiceTitanSimulator" and DEFAULT_PORTS["servicetitan"] == 8131
    sim = build_simulator("servicetitan")
    assert sim.tables[("accounting", "invoices")].ids


def test_one_simulator_answers_on_both_hosts_of_the_integration_environment(st, sim):
    token = get_token().json()["access_token"]
    answer = requests.get(url("settings", "business-units"), timeout=5,
                          headers={"Authorization": f"Bearer {token}", "ST-App-Key": APP_KEY})
    assert [u["name"] for u in answer.json()["data"]] == ["Electrical North", "Electrical South", "Head Office Service"]
    assert {urlsplit(r.url).hostname for r in sim.requests} == {"auth-integration.servicetitan.io",
                                                               "api-integration.servicetitan.io"}
