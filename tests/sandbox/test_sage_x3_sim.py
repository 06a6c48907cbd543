"""The Sage X3 simulator behaves like the API_FACTS describe, seen through real ``requests`` calls.

Offline: ``responses`` routes every call to the simulator in-process. Run without Django:
``.venv/bin/pytest tests/sandbox/test_sage_x3_sim.py -q -p no:django``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from integrations.sandbox.base import DropResponse, Faults, SimRequest
from integrations.sandbox.sage_x3 import ManualClock, SageX3Simulator
from integrations.sandbox.sage_x3_query import QueryError, parse_where
from integrations.sandbox.sage_x3_schema import CLASSES, dumps

BASE = "http://x3.sandbox.test:8124"
API = f"{BASE}/api1/x3/erp/SEED"
ADMIN = ("admin", "x3-demo-pass")


def mount_local(sim: SageX3Simulator, base_url: str, rsps: responses.RequestsMock) -> None:
    """A tiny stand-in for inprocess.mount: PreparedRequest -> SimRequest -> sim.handle()."""

    def callback(prepared: requests.PreparedRequest):
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        try:
            answer = sim.handle(SimRequest(prepared.method, prepared.url, dict(prepared.headers), body))
        except DropResponse as exc:
            raise requests.exceptions.ConnectionError(str(exc))
        return answer.status, answer.headers, answer.body

    pattern = re.compile(re.escape(base_url) + r"(/.*)?$")
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        rsps.add_callback(method, pattern, callback=callback)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def sim(clock: ManualClock) -> SageX3Simulator:
    simulator = SageX3Simulator(clock=clock)
    simulator.seed_demo()
    return simulator


@pytest.fixture
def http(sim: SageX3Simulator):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount_local(sim, BASE, rsps)
        yield requests.Session()


def get_json(response: requests.Response):
    return json.loads(response.content, parse_float=Decimal)


def query(http: requests.Session, klass: str, auth=ADMIN, **params):
    params.setdefault("representation", f"{klass}.$query")
    return http.get(f"{API}/{klass}", params=params, auth=auth)


def follow_all(http: requests.Session, response: requests.Response, auth=ADMIN) -> tuple[list[dict], list[str]]:
    """Read every page by following ``$links.$next.$url`` until it is absent."""
    records, urls = [], []
    while True:
        assert response.status_code == 200, response.text
        body = get_json(response)
        records.extend(body["$resources"])
        nxt = body.get("$links", {}).get("$next")
        if not nxt:
            return records, urls
        urls.append(nxt["$url"])
        response = http.get(nxt["$url"], auth=auth)


def token(http: requests.Session, **form) -> requests.Response:
    return http.post(f"{BASE}/token", data=form)


# --- auth ------------------------------------------------------------------------------------

def test_basic_auth_ok_and_ko(http):
    ok = query(http, "BPSUPPLIER", count=1)
    assert ok.status_code == 200
    assert ok.headers["Content-Type"].startswith("application/json")

    wrong = query(http, "BPSUPPLIER", auth=("admin", "nope"))
    assert wrong.status_code == 401
    assert "Basic" in wrong.headers["WWW-Authenticate"]
    assert get_json(wrong)["$diagnoses"][0]["$severity"] == "error"

    missing = query(http, "BPSUPPLIER", auth=None)
    assert missing.status_code == 401


def test_basic_refused_when_only_oauth2(sim, http):
    sim.auth_modes = {"oauth2"}
    assert query(http, "BPSUPPLIER").status_code == 401


def test_refresh_grant_rotates_and_old_token_is_refused(sim, http):
    first = sim.issue_refresh_token("ml-connector")
    response = token(http, grant_type="refresh_token", refresh_token=first,
                     client_id="ml-connector", client_secret="x3-demo-secret")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_token_expires_in"] == 30 * 86400
    second = body["refresh_token"]
    assert second != first
    assert sim.valid_refresh_tokens("ml-connector") == [second]
    assert sim.grant_counts == {"refresh_token": 1}
    assert response.headers["Cache-Control"] == "no-store"

    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.get(f"{API}/GACCOUNT?representation=GACCOUNT.$query", headers=headers).status_code == 200

    reused = token(http, grant_type="refresh_token", refresh_token=first,
                   client_id="ml-connector", client_secret="x3-demo-secret")
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    # Client authentication through HTTP Basic, JSON body as in Sage's own example.
    third = http.post(f"{BASE}/v1/token", json={"grant_type": "refresh_token", "refresh_token": second},
                      auth=("ml-connector", "x3-demo-secret"))
    assert third.status_code == 200, third.text
    assert sim.grant_counts == {"refresh_token": 2}


def test_bad_client_secret_and_revoked_pairing(sim, http):
    refresh = sim.issue_refresh_token("ml-connector")
    bad = http.post(f"{BASE}/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                    auth=("ml-connector", "wrong"))
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    assert sim.revoke_refresh_tokens("ml-connector") == 1
    gone = token(http, grant_type="refresh_token", refresh_token=refresh,
                 client_id="ml-connector", client_secret="x3-demo-secret")
    assert gone.status_code == 400
    assert gone.json()["error"] == "invalid_grant"


def test_refresh_token_expires_after_30_days(sim, http, clock):
    refresh = sim.issue_refresh_token("ml-connector")
    clock.advance(30 * 86400 + 1)
    late = token(http, grant_type="refresh_token", refresh_token=refresh,
                 client_id="ml-connector", client_secret="x3-demo-secret")
    assert late.status_code == 400
    assert "expired" in late.json()["error_description"]


def test_access_token_expires_after_its_lifetime(sim, http, clock):
    body = token(http, grant_type="refresh_token", refresh_token=sim.issue_refresh_token("ml-connector"),
                 client_id="ml-connector", client_secret="x3-demo-secret").json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    url = f"{API}/CACCE?representation=CACCE.$query"
    clock.advance(299)
    assert http.get(url, headers=headers).status_code == 200
    clock.advance(1)
    expired = http.get(url, headers=headers)
    assert expired.status_code == 401
    assert "expired" in get_json(expired)["$diagnoses"][0]["$message"].lower()
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]

    # A short lifetime from the fault profile is what the token endpoint announces.
    sim.set_faults(Faults(token_lifetime=5))
    short = token(http, grant_type="refresh_token", refresh_token=body["refresh_token"],
                  client_id="ml-connector", client_secret="x3-demo-secret").json()
    assert short["expires_in"] == 5
    clock.advance(5)
    assert http.get(url, headers={"Authorization": f"Bearer {short['access_token']}"}).status_code == 401
    assert http.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_authorization_code_and_client_credentials_grants(sim, http):
    code = sim.issue_authorization_code("ml-connector", "https://portal.test/callback")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://portal.test/callback",
            "client_id": "ml-connector", "client_secret": "x3-demo-secret"}
    first = token(http, **form)
    assert first.status_code == 200, first.text
    assert "refresh_token" in first.json()
    assert token(http, **form).json()["error"] == "invalid_grant"  # codes are single-use

    creds = {"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "x3-demo-secret"}
    refused = token(http, **creds)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unsupported_grant_type"
    sim.allow_client_credentials = True
    granted = token(http, **creds)
    assert granted.status_code == 200
    assert "refresh_token" not in granted.json()  # RFC 6749 4.4.3
    assert sim.grant_counts == {"authorization_code": 1, "client_credentials": 1}


def test_pairing_redirect_carries_code_and_state(http):
    response = http.get(f"{BASE}/v1/token/authorise", allow_redirects=False, params={
        "client_id": "ml-connector", "scope": "api.dataIngestion", "customer": "https://x3.customer.test",
        "redirect_uri": "https://portal.test/cb", "state": "xyz"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "portal.test"
    params = parse_qs(location.query)
    assert params["state"] == ["xyz"]
    exchanged = token(http, grant_type="authorization_code", code=params["authorizationCode"][0],
                      redirect_uri="https://portal.test/cb", client_id="ml-connector", client_secret="x3-demo-secret")
    assert exchanged.status_code == 200


# --- query, paging ----------------------------------------------------------------------------

def test_paging_with_count_returns_every_record_once(http):
    records, urls = follow_all(http, query(http, "BPSUPPLIER", count=7))
    assert [r["BPSNUM"] for r in records] == [f"SUP{i:03d}" for i in range(1, 26)]
    assert len(urls) == 3  # 7 + 7 + 7 + 4: no $next on the last page
    for url in urls:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == BASE
        assert parse_qs(parts.query)["count"] == ["7"]
        assert parse_qs(parts.query)["representation"] == ["BPSUPPLIER.$query"]
    first = get_json(query(http, "BPSUPPLIER", count=7))
    assert first["$itemsPerPage"] == 7
    assert len(first["$resources"]) == 7


def test_default_page_size_and_page_max(sim, http):
    assert len(get_json(query(http, "PINVOICE"))["$resources"]) == 20
    sim.page_max = 5
    capped = get_json(query(http, "PINVOICE", count=100))
    assert capped["$itemsPerPage"] == 5
    assert len(capped["$resources"]) == 5


def test_exact_page_boundary_has_no_next(http):
    body = get_json(query(http, "GACCOUNT", count=12))
    assert len(body["$resources"]) == 12
    assert "$next" not in body["$links"]


def test_key_paging_by_the_client(http):
    body = get_json(query(http, "BPSUPPLIER", key="gt.SUP020", count=3))
    assert [r["BPSNUM"] for r in body["$resources"]] == ["SUP021", "SUP022", "SUP023"]
    assert "key=gt.SUP023" in body["$links"]["$next"]["$url"]


def test_many_records_share_one_updddatim_across_page_boundaries(sim, http, clock):
    stamp = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)
    sim.seed_bulk(95, lines_per_invoice=2, suppliers=5, same_timestamp_groups=1, start=stamp - timedelta(seconds=1))
    bulk = [r for r in sim.records("PINVOICE") if r["NUM"].startswith("BPI")]
    assert {r["UPDDATTIM"] for r in bulk} == {stamp}

    first = query(http, "PINVOICE", count=10, where="UPDDATTIM ge @2026-05-01T08:00:00Z@",
                  orderBy="UPDDATTIM asc, NUM asc")
    # Change a record the reader has not reached yet: it moves to the end, it is not lost.
    clock.advance(60)
    sim.touch("PINVOICE", "BPI0000050")
    records, urls = follow_all(http, first)
    numbers = [r["NUM"] for r in records]
    assert sorted(numbers) == sorted(r["NUM"] for r in bulk)
    assert len(numbers) == len(set(numbers)) == 95
    assert numbers[-1] == "BPI0000050"
    assert len(urls) == 9
    assert all("UPDDATTIM" in parse_qs(urlsplit(u).query)["where"][0] for u in urls)


def test_where_with_and_or_parentheses(http):
    body = get_json(query(http, "BPSUPPLIER", count=100,
                          where="(CRY eq 'GB' or CRY eq 'US') and PTE ne 'CASH'"))
    got = {(r["BPSNUM"], r["CRY"], r["PTE"]) for r in body["$resources"]}
    assert got and all(cry in ("GB", "US") and pte != "CASH" for _, cry, pte in got)
    assert ("SUP007", "GB", "CASH") not in got

    big = get_json(query(http, "PINVOICE", count=100, where="AMTNOT gt 10000 and CUR eq 'EUR'"))
    assert big["$resources"]
    assert all(r["AMTNOT"] > Decimal("10000") and r["CUR"] == "EUR" for r in big["$resources"])

    dated = get_json(query(http, "PORDER", count=100, where="ORDDAT ge @2026-02-01@ and ORDDAT lt @2026-02-05@"))
    assert {r["ORDDAT"] for r in dated["$resources"]} == {"2026-02-02", "2026-02-04"}

    bad = query(http, "BPSUPPLIER", where="NOSUCHFIELD eq 'x'")
    assert bad.status_code == 500  # X3 answers an unknown property in `where` with a 500 (API_FACTS 9)
    assert "NOSUCHFIELD" in get_json(bad)["$diagnoses"][0]["$message"]


def test_where_parser_units():
    fields = dict(CLASSES["PINVOICE"].fields)
    record = {"NUM": "PI1", "CUR": "EUR", "AMTNOT": Decimal("10.50"),
              "UPDDATTIM": datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC), "BPR": "O'Neil"}
    assert parse_where("AMTNOT eq 10.5", fields)(record)
    assert parse_where("UPDDATTIM gt @2026-01-01@ and UPDDATTIM le @2026-01-01T10:00:00Z@", fields)(record)
    assert not parse_where("UPDDATTIM gt @2026-01-01T10:00:00Z@", fields)(record)
    assert parse_where("BPR eq 'O''Neil' or CUR eq 'USD'", fields)(record)
    assert parse_where("not (CUR eq 'USD') and CUR in ('EUR', 'GBP')", fields)(record)
    assert parse_where("AMTNOT between 10 and 11 and left(NUM, 2) eq 'PI' and NUM like 'PI%'", fields)(record)
    assert parse_where("CUR eq 'USD' or CUR eq 'GBP' or AMTNOT >= 10", fields)(record)
    assert not parse_where("CUR eq 'EUR' and (AMTNOT lt 5 or BPR eq 'x')", fields)(record)
    for broken in ("CUR eq", "CUR xx 'a'", "(CUR eq 'a'", "AMTNOT gt 'abc'", "UPDDATTIM gt @nope@"):
        with pytest.raises(QueryError):
            parse_where(broken, fields)


def test_order_by_forms(http):
    new_form = get_json(query(http, "BPSUPPLIER", count=3, orderBy="CUR desc, BPSNUM asc"))
    old_form = get_json(query(http, "BPSUPPLIER", count=3, orderBy="CUR Desc;BPSNUM"))
    assert [r["BPSNUM"] for r in new_form["$resources"]] == [r["BPSNUM"] for r in old_form["$resources"]]
    assert [r["CUR"] for r in new_form["$resources"]] == ["USD", "USD", "USD"]
    everything, _ = follow_all(http, query(http, "BPSUPPLIER", count=4, orderBy="CUR desc, BPSNUM asc"))
    expected = sorted(sorted(everything, key=lambda r: r["BPSNUM"]), key=lambda r: r["CUR"], reverse=True)
    assert [r["BPSNUM"] for r in everything] == [r["BPSNUM"] for r in expected]
    assert len({r["BPSNUM"] for r in everything}) == 25
    assert query(http, "BPSUPPLIER", orderBy="NOPE asc").status_code == 400


def test_request_errors(http):
    assert http.get(f"{API}/BPSUPPLIER", auth=ADMIN).status_code == 400  # representation is mandatory
    assert http.get(f"{BASE}/api1/x3/erp/NOFOLDER/BPSUPPLIER?representation=BPSUPPLIER.$query",
                    auth=ADMIN).status_code == 404
    assert http.get(f"{API}/NOCLASS?representation=NOCLASS.$query", auth=ADMIN).status_code == 404
    assert query(http, "BPSUPPLIER", count="abc").status_code == 400
    missing = http.get(f"{API}/BPSUPPLIER('NOPE')?representation=BPSUPPLIER.$details", auth=ADMIN)
    assert missing.status_code == 404
    assert get_json(missing)["$diagnoses"][0]["$message"]


def test_custom_representation_names(sim, http):
    anything = query(http, "BPSUPPLIER", representation="ZBPSLIST.$query", count=1)
    assert anything.status_code == 200
    sim.add_representation("ZPIH", "PINVOICE", rename={"AMTNOT": "ZAMTNOT"})
    renamed = get_json(query(http, "PINVOICE", representation="ZPIH.$query", count=1, where="ZAMTNOT gt 0"))
    assert "ZAMTNOT" in renamed["$resources"][0] and "AMTNOT" not in renamed["$resources"][0]
    assert query(http, "BPSUPPLIER", representation="ZPIH.$query").status_code == 400  # wrong class
    sim.strict_representations = True
    assert query(http, "BPSUPPLIER", representation="ZBPSLIST.$query").status_code == 400


# --- lines and $details -----------------------------------------------------------------------

def test_details_carry_lines_when_query_does_not(sim, http):
    assert "PINVOICED" in get_json(query(http, "PINVOICE", count=1))["$resources"][0]
    sim.lines_in_query = False
    listed = get_json(query(http, "PINVOICE", count=2))["$resources"]
    assert all("PINVOICED" not in r for r in listed)
    detail = http.get(f"{API}/PINVOICE('{listed[0]['NUM']}')?representation=PINVOICE.$details", auth=ADMIN)
    assert detail.status_code == 200
    record = get_json(detail)
    assert record["$uuid"]
    assert record["$etag"] == record["UPDDATTIM"]
    stored = sim.get("PINVOICE", listed[0]["NUM"])
    assert len(record["PINVOICED"]) == len(stored["PINVOICED"]) >= 1
    assert set(record["PINVOICED"][0]) == set(CLASSES["PINVOICE"].line_fields)
    assert sum(line["AMTNOTLIN"] for line in record["PINVOICED"]) == record["AMTNOT"]


# --- writes -----------------------------------------------------------------------------------

def test_supplier_put_bumps_upddattim(sim, http, clock):
    before = sim.get("BPSUPPLIER", "SUP003")
    clock.advance(3600)
    response = http.put(f"{API}/BPSUPPLIER('SUP003')?representation=BPSUPPLIER.$edit",
                        json={"TEL": "+1 562 555 9999"}, auth=ADMIN)
    assert response.status_code == 200, response.text
    body = get_json(response)
    assert body["TEL"] == "+1 562 555 9999"
    assert body["BPSNAM"] == before["BPSNAM"]
    assert body["UPDDATTIM"] == "2026-06-01T13:00:00Z" == body["$etag"]
    assert sim.get("BPSUPPLIER", "SUP003")["UPDDATTIM"] > before["UPDDATTIM"]
    changed = get_json(query(http, "BPSUPPLIER", where="UPDDATTIM ge @2026-06-01T13:00:00Z@"))["$resources"]
    assert [r["BPSNUM"] for r in changed] == ["SUP003"]

    assert http.put(f"{API}/BPSUPPLIER('SUP003')?representation=BPSUPPLIER.$edit",
                    json={"NOPE": 1}, auth=ADMIN).status_code == 400
    assert http.put(f"{API}/BPSUPPLIER('SUP003')?representation=BPSUPPLIER.$edit",
                    json={"BPSNUM": "OTHER"}, auth=ADMIN).status_code == 400


def test_supplier_create_and_read_only_classes(sim, http):
    payload = {"BPSNUM": "SUP900", "BPSNAM": "New Supplier Ltd", "CUR": "GBP", "CRY": "GB"}
    created = http.post(f"{API}/BPSUPPLIER?representation=BPSUPPLIER.$create", json=payload, auth=ADMIN)
    assert created.status_code == 201, created.text
    assert get_json(created)["BPSNAM"] == "New Supplier Ltd"
    assert sim.get("BPSUPPLIER", "SUP900")["CUR"] == "GBP"
    again = http.post(f"{API}/BPSUPPLIER?representation=BPSUPPLIER.$create", json=payload, auth=ADMIN)
    assert again.status_code == 409

    refused = http.put(f"{API}/PORDER('PO00001')?representation=PORDER.$edit", json={"CUR": "USD"}, auth=ADMIN)
    assert refused.status_code == 405
    assert get_json(refused)["$diagnoses"][0]["$severity"] == "error"
    assert http.post(f"{API}/PORDER?representation=PORDER.$create", json={"POHNUM": "X"}, auth=ADMIN).status_code == 405


def test_commit_then_drop_on_put(sim, http, clock):
    sim.set_faults(Faults(drop_rate=1.0))
    clock.advance(10)
    with pytest.raises(requests.exceptions.ConnectionError):
        http.put(f"{API}/BPSUPPLIER('SUP001')?representation=BPSUPPLIER.$edit", json={"CNTNAM": "New Contact"},
                 auth=ADMIN)
    stored = sim.get("BPSUPPLIER", "SUP001")
    assert stored["CNTNAM"] == "New Contact"
    assert stored["UPDDATTIM"] == clock()
    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(f"{API}/BPSUPPLIER?representation=BPSUPPLIER.$create", json={"BPSNUM": "SUP901"}, auth=ADMIN)
    assert sim.get("BPSUPPLIER", "SUP901") is not None
    # Reads are never dropped.
    assert query(http, "BPSUPPLIER", count=1).status_code == 200


# --- amounts ------------------------------------------------------------------------------------

def test_amounts_are_exact_decimals(sim, http):
    sim.upsert("PINVOICE", {
        "NUM": "PIX0001", "BPR": "SUP001", "BPRVCR": "F-1", "BPRDAT": "2026-05-01", "ACCDAT": "2026-05-01",
        "CUR": "EUR", "AMTNOT": Decimal("1234.50"), "AMTATI": Decimal("1481.40"),
        "PINVOICED": [
            {"PIDLIN": 1000, "POHNUM": "PO00001", "POPLIN": 1000, "ITMREF": "X", "QTYUOM": Decimal("3"),
             "NETPRI": Decimal("0.10"), "AMTNOTLIN": Decimal("0.30"), "ACC": "60100", "CCE": "CC100"},
            {"PIDLIN": 2000, "POHNUM": "PO00001", "POPLIN": 1000, "ITMREF": "X", "QTYUOM": Decimal("1"),
             "NETPRI": Decimal("1234.20"), "AMTNOTLIN": Decimal("1234.20"), "ACC": "60100", "CCE": "CC100"},
        ],
    })
    response = http.get(f"{API}/PINVOICE('PIX0001')?representation=PINVOICE.$details", auth=ADMIN)
    assert b'"AMTNOT":1234.50' in response.content
    record = get_json(response)
    assert record["AMTNOT"] == Decimal("1234.50")
    assert record["AMTATI"] == Decimal("1481.40")
    assert [line["AMTNOTLIN"] for line in record["PINVOICED"]] == [Decimal("0.30"), Decimal("1234.20")]
    assert sum(line["AMTNOTLIN"] for line in record["PINVOICED"]) == record["AMTNOT"]
    assert isinstance(record["AMTNOT"], Decimal)
    assert dumps({"a": Decimal("0.1") + Decimal("0.2")}) == '{"a":0.3}'


# --- faults -------------------------------------------------------------------------------------

def test_429_burst_with_retry_after(sim, http):
    sim.set_faults(Faults(burst_429_rate=1.0, burst_429_length=3, retry_after=2))
    for _ in range(3):
        limited = query(http, "BPSUPPLIER")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"
        assert get_json(limited)["$diagnoses"][0]["$message"]
    sim.set_faults(Faults())
    assert query(http, "BPSUPPLIER").status_code == 200


def test_transient_errors_are_503(sim, http):
    sim.set_faults(Faults(error_rate=1.0))
    response = query(http, "BPSUPPLIER")
    assert response.status_code == 503
    assert get_json(response)["$diagnoses"]


# --- seed data ----------------------------------------------------------------------------------

def test_seed_demo_is_coherent(sim):
    suppliers = {r["BPSNUM"]: r for r in sim.records("BPSUPPLIER")}
    orders = {r["POHNUM"]: r for r in sim.records("PORDER")}
    invoices = sim.records("PINVOICE")
    accounts = {r["ACC"] for r in sim.records("GACCOUNT")}
    centers = {r["CCE"] for r in sim.records("CACCE")}
    assert len(suppliers) == 25 and len(orders) == 40 and len(invoices) == 60
    assert accounts == {f"6{n:04d}" for n in range(100, 1201, 100)}
    assert centers == {f"CC{n}00" for n in range(1, 7)}
    assert all(1 <= len(o["PORDERP"]) <= 4 for o in orders.values())
    held = 0
    for invoice in invoices:
        assert 1 <= len(invoice["PINVOICED"]) <= 5
        assert invoice["BPR"] in suppliers
        assert invoice["AMTNOT"] == sum(line["AMTNOTLIN"] for line in invoice["PINVOICED"])
        assert invoice["AMTATI"] == (invoice["AMTNOT"] * Decimal("1.2")).quantize(Decimal("0.01"))
        for line in invoice["PINVOICED"]:
            order = orders[line["POHNUM"]]
            assert order["BPSNUM"] == invoice["BPR"]
            assert line["POPLIN"] in {p["POPLIN"] for p in order["PORDERP"]}
            assert line["ACC"] in accounts and line["CCE"] in centers
            assert isinstance(line["AMTNOTLIN"], Decimal)
        held += any(line["ACC"] == "61200" for line in invoice["PINVOICED"])
    assert held == 6
    assert sim.users == {"admin": "x3-demo-pass"}
    # Deterministic: a second simulator seeds the same data.
    other = SageX3Simulator()
    other.seed_demo()
    assert other.records("PINVOICE") == invoices


def test_seed_bulk_counts(sim):
    counts = sim.seed_bulk(200, lines_per_invoice=4, suppliers=10, same_timestamp_groups=4)
    assert counts == {"BPSUPPLIER": 10, "PORDER": 200, "PINVOICE": 200}
    bulk = [r for r in sim.records("PINVOICE") if r["NUM"].startswith("BPI")]
    assert len({r["UPDDATTIM"] for r in bulk}) == 4
    assert all(len(r["PINVOICED"]) == 4 for r in bulk)
