"""The ServiceNow simulator speaks the wire format of API_FACTS section 1, through ``requests``."""

from __future__ import annotations

import base64
import json
import re

import pytest
import requests

from integrations.sandbox.base import Faults
from integrations.sandbox.servicenow import ServiceNowSimulator
from tests.sandbox.conftest import SN_URL, SN_USER

TABLE = f"{SN_URL}/api/now/table"
TOKEN_URL = f"{SN_URL}/oauth_token.do"
CLIENT = {"client_id": "ml-connector", "client_secret": "sn-demo-secret"}
DENIED = {"error_description": "access_denied", "error": "server_error"}


def get(path: str, **params: object) -> requests.Response:
    return requests.get(f"{TABLE}/{path}", params=params, auth=SN_USER)


def seed_rows(sim: ServiceNowSimulator, count: int, table: str = "proc_vendor") -> None:
    for i in range(count):
        sim.insert(table, {"name": f"Supplier {i:03d}", "supplier_number": f"S{i:03d}"})


# --- OAuth and Basic ----------------------------------------------------------------------
def test_client_credentials_grant_returns_bearer_token_without_refresh_token(sn):
    response = requests.post(TOKEN_URL, data={"grant_type": "client_credentials", **CLIENT})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert body["scope"] == "useraccount"
    assert "refresh_token" not in body
    listed = requests.get(f"{TABLE}/itfm_gl_accounts", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200


def test_client_credentials_accepts_http_basic_client_authentication(sn):
    response = requests.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("ml-connector", "sn-demo-secret")
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "wrong"},
        {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "sn-demo-secret"},
        {"grant_type": "authorization_code", **CLIENT},
        {"grant_type": "password", "username": "integration.user", "password": "nope", **CLIENT},
        {"grant_type": "refresh_token", "refresh_token": "forged", **CLIENT},
    ],
)
def test_token_endpoint_failures_use_servicenows_nonstandard_401_body(sn, form):
    response = requests.post(TOKEN_URL, data=form)
    assert response.status_code == 401
    assert response.json() == DENIED


def test_client_credentials_denied_when_grant_type_disabled(sn, sim):
    sim.auth.client_credentials_enabled = False
    response = requests.post(TOKEN_URL, data={"grant_type": "client_credentials", **CLIENT})
    assert (response.status_code, response.json()) == (401, DENIED)


def test_password_grant_returns_refresh_token_that_renews_the_access_token(sn, sim):
    first = requests.post(
        TOKEN_URL, data={"grant_type": "password", "username": SN_USER[0], "password": SN_USER[1], **CLIENT}
    ).json()
    assert first["refresh_token"]
    sim.expire_tokens()
    expired = requests.get(f"{TABLE}/cmn_cost_center", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "User Not Authenticated"
    renewed = requests.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], **CLIENT}
    ).json()
    assert renewed["access_token"] != first["access_token"]
    ok = requests.get(f"{TABLE}/cmn_cost_center", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert ok.status_code == 200


def test_token_lifetime_follows_fault_settings(sn, sim):
    sim.set_faults(Faults(token_lifetime=5))
    body = requests.post(TOKEN_URL, data={"grant_type": "client_credentials", **CLIENT}).json()
    assert body["expires_in"] == 5


def test_basic_auth_is_accepted(sn):
    assert get("cmn_cost_center").status_code == 200


@pytest.mark.parametrize("auth", [None, ("integration.user", "wrong"), ("ghost", "x")])
def test_missing_or_bad_credentials_get_the_401_envelope(sn, auth):
    response = requests.get(f"{TABLE}/cmn_cost_center", auth=auth)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
        "status": "failure",
    }


def test_user_without_the_tables_role_is_refused(sn, sim):
    sim.revoke_role("integration.user", "sn_apay.apo_user")
    response = get("sn_apo_invoice")
    assert response.status_code == 403
    assert response.json()["status"] == "failure"


# --- lists, paging, queries ---------------------------------------------------------------
def test_list_pages_carry_total_count_and_link_header(sn, sim):
    seed_rows(sim, 25)
    response = get("proc_vendor", sysparm_limit=10, sysparm_offset=10, sysparm_query="ORDERBYname")
    assert response.headers["X-Total-Count"] == "25"
    assert re.fullmatch(r'(<[^>]+>;rel="(first|prev|next|last)",?)+', response.headers["Link"])
    links = response.links
    assert set(links) == {"first", "prev", "next", "last"}
    assert "sysparm_offset=0&" in links["first"]["url"] and "sysparm_offset=20&" in links["next"]["url"]
    assert "sysparm_offset=20&" in links["last"]["url"]

    names, url = [], f"{TABLE}/proc_vendor?sysparm_limit=10&sysparm_query=ORDERBYname"
    while url:
        page = requests.get(url, auth=SN_USER)
        names += [row["name"] for row in page.json()["result"]]
        url = page.links.get("next", {}).get("url")
    assert names == [f"Supplier {i:03d}" for i in range(25)]


def test_link_header_is_absent_when_everything_fits_on_one_page(sn, sim):
    seed_rows(sim, 3)
    response = get("proc_vendor", sysparm_limit=10)
    assert response.headers["X-Total-Count"] == "3"
    assert "Link" not in response.headers


def test_first_page_has_no_prev_and_last_page_has_no_next(sn, sim):
    seed_rows(sim, 5)
    assert set(get("proc_vendor", sysparm_limit=2).links) == {"first", "next", "last"}
    assert set(get("proc_vendor", sysparm_limit=2, sysparm_offset=4).links) == {"first", "prev", "last"}


def test_greater_or_equal_with_orderby_returns_ties_at_the_watermark(sn, sim, clock):
    sim.insert("proc_vendor", {"name": "old"})
    clock.advance(60)
    watermark = clock().strftime("%Y-%m-%d %H:%M:%S")
    for name in ("b", "a"):  # written in the same second: they share sys_updated_on
        requests.post(f"{TABLE}/proc_vendor", json={"name": name}, auth=SN_USER)
    clock.advance(1)
    requests.post(f"{TABLE}/proc_vendor", json={"name": "c"}, auth=SN_USER)

    rows = get("proc_vendor", sysparm_query=f"sys_updated_on>={watermark}^ORDERBYsys_updated_on^ORDERBYname").json()[
        "result"
    ]
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["sys_updated_on"] == rows[1]["sys_updated_on"] == watermark
    generated = watermark.replace(" ", "','")
    same = get("proc_vendor", sysparm_query=f"sys_updated_on>=javascript:gs.dateGenerate('{generated}')").json()[
        "result"
    ]
    assert len(same) == 3


def test_condition_on_unknown_field_is_silently_ignored(sn, sim):
    seed_rows(sim, 4)
    response = get("proc_vendor", sysparm_query="u_no_such_column=S001")
    assert response.status_code == 200
    assert len(response.json()["result"]) == 4  # the trap: a lookup on a wrong column matches everything
    assert len(get("proc_vendor", sysparm_query="supplier_number=S001").json()["result"]) == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("account_number=60100", ["60100"]),
        ("account_number!=60100^account_number<60400", ["60200", "60300"]),
        ("account_number>61000", ["61100", "69900"]),
        ("account_number<=60200", ["60100", "60200"]),
        ("account_numberIN60100,60500,99999", ["60100", "60500"]),
        ("account_numberNOT IN60100,60200^account_number<60500", ["60300", "60400"]),
        ("nameLIKEmaterials", ["60100", "60300"]),
        ("nameSTARTSWITHTravel", ["61100"]),
        ("nameENDSWITHfees", ["61000"]),
        ("account_number=60100^ORaccount_number=60200", ["60100", "60200"]),
        ("account_number=60100^NQaccount_number=69900", ["60100", "69900"]),
        ("descriptionISEMPTY", []),
        ("descriptionISNOTEMPTY^account_number<60200", ["60100"]),
    ],
)
def test_query_operators(sn, query, expected):
    rows = get("itfm_gl_accounts", sysparm_query=f"{query}^ORDERBYaccount_number").json()["result"]
    assert [r["account_number"] for r in rows] == expected


def test_name_value_parameters_filter_like_a_query(sn):
    rows = get("cmn_cost_center", code="CC300").json()["result"]
    assert [r["name"] for r in rows] == ["Sales and marketing"]


def test_sysparm_fields_limits_columns_and_ignores_unknown_ones(sn):
    rows = get("cmn_cost_center", sysparm_fields="code,bogus", sysparm_limit=1).json()["result"]
    assert rows == [{"code": "CC100"}]


def test_v1_answers_an_empty_list_with_404_and_v2_with_200(sn):
    for path in ("api/now/table", "api/now/v2/table"):
        response = requests.get(f"{SN_URL}/{path}/proc_po", auth=SN_USER)
        assert (response.status_code, response.json()) == (200, {"result": []})
    v1 = requests.get(f"{SN_URL}/api/now/v1/table/proc_po", auth=SN_USER)
    assert v1.status_code == 404
    assert v1.json()["status"] == "failure"


def test_unknown_table_is_a_400_invalid_table(sn, sim):
    expected = {"error": {"message": "Invalid table sn_nope", "detail": None}, "status": "failure"}
    for response in (get("sn_nope"), requests.post(f"{TABLE}/sn_nope", json={"a": 1}, auth=SN_USER)):
        assert (response.status_code, response.json()) == (400, expected)
    sim.uninstall_table("proc_po")
    assert get("proc_po").status_code == 400
    assert get("sys_db_object", sysparm_query="name=proc_po").json()["result"] == []
    assert len(get("sys_db_object", sysparm_query="name=proc_po_item").json()["result"]) == 1


# --- writes -------------------------------------------------------------------------------
def test_insert_returns_201_location_and_every_value_as_a_string(sn, sim):
    payload = {
        "line_quantity": 3,
        "line_unit_price": 12.50,
        "u_flag": True,
        "line_description": None,
        "sys_mod_count": 99,
    }
    response = requests.post(f"{TABLE}/sn_apo_invoice_line", json=payload, auth=SN_USER)
    assert response.status_code == 201
    record = response.json()["result"]
    assert response.headers["Location"] == f"{TABLE}/sn_apo_invoice_line/{record['sys_id']}"
    assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
    assert all(isinstance(value, str) for value in record.values())
    assert (record["line_quantity"], record["line_unit_price"], record["u_flag"], record["line_description"]) == (
        "3",
        "12.5",
        "true",
        "",
    )
    assert record["sys_mod_count"] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["sys_created_on"])
    assert sim.rows("sn_apo_invoice_line")[0]["u_flag"] == "true"


def test_update_bumps_sys_updated_on_and_mod_count(sn, sim, clock):
    created = requests.post(f"{TABLE}/sn_apo_invoice", json={"supplier_invoice_number": "F-1"}, auth=SN_USER).json()[
        "result"
    ]
    assert created["number"].startswith("APINV") and created["approval"] == "not requested"
    clock.advance(5)
    url = f"{TABLE}/sn_apo_invoice/{created['sys_id']}"
    updated = requests.patch(url, json={"amount_invoiced": "10.00"}, auth=SN_USER).json()["result"]
    assert updated["sys_updated_on"] > created["sys_updated_on"]
    assert updated["sys_mod_count"] == "1"
    assert requests.put(url, json={"amount_invoiced": "11.00"}, auth=SN_USER).json()["result"]["sys_mod_count"] == "2"
    clock.advance(5)
    approved = sim.approve("sn_apo_invoice", created["sys_id"])
    assert approved["approval"] == "approved" and approved["sys_updated_on"] > updated["sys_updated_on"]


def test_missing_record_is_404_and_delete_is_204(sn):
    created = requests.post(f"{TABLE}/proc_vendor", json={"name": "Gone"}, auth=SN_USER).json()["result"]
    url = f"{TABLE}/proc_vendor/{created['sys_id']}"
    assert requests.delete(url, auth=SN_USER).status_code == 204
    assert requests.get(url, auth=SN_USER).status_code == 404
    assert requests.patch(url, json={"name": "x"}, auth=SN_USER).status_code == 404
    assert requests.delete(url, auth=SN_USER).status_code == 404


def test_reference_fields_are_link_objects_unless_links_are_excluded(sn, sim):
    header = sim.insert("sn_apo_invoice", {"supplier_invoice_number": "F-9"})
    line = requests.post(f"{TABLE}/sn_apo_invoice_line", json={"invoice": header["sys_id"]}, auth=SN_USER).json()[
        "result"
    ]
    assert line["invoice"] == {"link": f"{TABLE}/sn_apo_invoice/{header['sys_id']}", "value": header["sys_id"]}
    plain = get("sn_apo_invoice_line", sysparm_exclude_reference_link="true").json()["result"][0]
    assert plain["invoice"] == header["sys_id"]
    walked = get(
        "sn_apo_invoice_line", sysparm_query="invoice.supplier_invoice_number=F-9", sysparm_fields="invoice.number"
    )
    assert walked.json()["result"] == [{"invoice.number": header["number"]}]


# --- batch --------------------------------------------------------------------------------
def _item(item_id: str, method: str, url: str, body: dict | None = None) -> dict:
    item = {
        "id": item_id,
        "method": method,
        "url": url,
        "headers": [{"name": "Content-Type", "value": "application/json"}],
    }
    if body is not None:
        item["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return item


def test_batch_round_trip_with_base64_bodies(sn, sim):
    batch = {
        "batch_request_id": "b-1",
        "rest_requests": [
            _item("1", "POST", "/api/now/table/proc_vendor", {"name": "Acme"}),
            _item("2", "POST", "/api/now/table/proc_vendor", {"name": "Globex"}),
            _item("3", "GET", "/api/now/table/proc_vendor?sysparm_query=ORDERBYname"),
            _item("4", "GET", "/api/now/table/sn_nope"),
        ],
    }
    response = requests.post(f"{SN_URL}/api/now/v1/batch", json=batch, auth=SN_USER)
    assert response.status_code == 200
    body = response.json()
    assert body["batch_request_id"] == "b-1" and body["unserviced_requests"] == []
    served = {item["id"]: item for item in body["serviced_requests"]}
    assert [served[i]["status_code"] for i in "1234"] == [201, 201, 200, 400]
    assert served["1"]["status_text"] == "Created"
    inserted = json.loads(base64.b64decode(served["1"]["body"]))["result"]
    assert inserted["name"] == "Acme"
    listed = json.loads(base64.b64decode(served["3"]["body"]))["result"]
    assert [r["name"] for r in listed] == ["Acme", "Globex"]
    assert {"name": "X-Total-Count", "value": "2"} in served["3"]["headers"]
    assert [r["name"] for r in sim.rows("proc_vendor")] == ["Acme", "Globex"]


def test_batch_items_beyond_the_limit_are_unserviced(sn, sim):
    sim.batch_max_items = 2
    items = [_item(str(i), "POST", "/api/now/table/proc_vendor", {"name": f"V{i}"}) for i in range(3)]
    body = requests.post(
        f"{SN_URL}/api/now/v1/batch", json={"batch_request_id": "b", "rest_requests": items}, auth=SN_USER
    ).json()
    assert [item["id"] for item in body["serviced_requests"]] == ["0", "1"]
    assert body["unserviced_requests"] == ["2"]
    assert len(sim.rows("proc_vendor")) == 2


def test_batch_needs_authentication(sn):
    response = requests.post(f"{SN_URL}/api/now/v1/batch", json={"rest_requests": []})
    assert response.status_code == 401


# --- faults -------------------------------------------------------------------------------
def test_429_burst_carries_retry_after_and_the_rate_limit_body(sn, sim):
    sim.set_faults(Faults(burst_429_rate=1.0, burst_429_length=3, retry_after=7))
    first = get("cmn_cost_center")
    sim.faults.burst_429_rate = 0.0  # no new bursts; the one started runs its course
    statuses = [first.status_code] + [get("cmn_cost_center").status_code for _ in range(3)]
    assert statuses == [429, 429, 429, 200]
    assert first.headers["Retry-After"] == "7"
    assert first.json() == {
        "error": {
            "message": "Rate limit exceeded",
            "detail": "Rate limit of 100 requests per hour for Table API exceeded",
        },
        "status": "failure",
    }


def test_transient_fault_is_a_503_envelope(sn, sim):
    sim.set_faults(Faults(error_rate=1.0))
    response = get("cmn_cost_center")
    assert response.status_code == 503
    assert response.json()["status"] == "failure"


# --- users and roles ----------------------------------------------------------------------
def test_role_check_by_dot_walked_query_on_sys_user_has_role(sn, sim):
    query = "user.user_name=integration.user^role.name=procurement_user"
    rows = get(
        "sys_user_has_role", sysparm_query=query, sysparm_fields="role.name,user.user_name,inherited,state"
    ).json()["result"]
    assert rows == [
        {"role.name": "procurement_user", "user.user_name": "integration.user", "inherited": "false", "state": "active"}
    ]
    both = get(
        "sys_user_has_role",
        sysparm_query="user.user_name=integration.user^role.nameINsn_apay.apo_user,procurement_user",
    )
    assert len(both.json()["result"]) == 2
    sim.revoke_role("integration.user", "procurement_user")
    assert get("sys_user_has_role", sysparm_query=query).json()["result"] == []


def test_table_registry_lists_installed_tables(sn):
    rows = get(
        "sys_db_object", sysparm_query="name=sn_shop_invoice", sysparm_fields="name,label,super_class,sys_id"
    ).json()["result"]
    assert rows[0]["name"] == "sn_shop_invoice" and rows[0]["label"] == "Invoice" and rows[0]["super_class"] == ""


def test_seed_mirrors_x3_codes_except_the_last_gl_account():
    a, b = ServiceNowSimulator().seed_demo(), ServiceNowSimulator().seed_demo()
    for table in ("itfm_gl_accounts", "sn_fin_gl_account"):
        codes = {row["account_number"] for row in a.rows(table)}
        assert {f"6{n:02d}00" for n in range(1, 12)} <= codes
        assert "61200" not in codes
        assert a.rows(table) == b.rows(table)
    assert sorted(row["code"] for row in a.rows("cmn_cost_center")) == [f"CC{n}00" for n in range(1, 7)]
    assert a.roles_of("integration.user") == {
        "sn_apay.apo_user",
        "procurement_user",
        "sn_ap_apm.accounts_payable_specialist",
        "sn_fin.procurement_user",
    }
