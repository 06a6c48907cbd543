"""The GraphQL client on its own: JWT claims and renewal, errors arrays, introspection on both roots, writes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import jwt
import pytest
import responses

from integrations.sandbox.base import SimResponse
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import AuthError, DataError, SystemicError, TransientError
from integrations.systems.http import HttpPolicy
from integrations.systems.sage_x3_graphql import build_graphql_client
from integrations.systems.spec import ConnectionSpec

from .conftest import X3_URL, api1_calls

APP = {"client_id": "portal-app", "user": "INTEG", "audience": X3_URL, "token_validity": 600}


def _spec(method: str = "basic", **settings: object) -> ConnectionSpec:
    if method == "jwt_connected_app":
        auth, secrets = {**APP}, {"client_secret": "s3cret-of-the-app"}
    else:
        auth, secrets = {"username": "admin"}, {"password": "x3-demo-pass"}
    return ConnectionSpec("sage_x3", X3_URL, method, company="SEED",
                          settings={"transport": "graphql", **auth, **settings}, secrets=secrets)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC))


def _x3(clock: ManualClock, **options: object) -> SageX3Simulator:
    sim = SageX3Simulator(clock=clock, **options)
    sim.seed_demo()
    sim.graphql.add_connected_app("portal-app", "s3cret-of-the-app", "INTEG", X3_URL, 600)
    return sim


@pytest.fixture
def mounted():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _client(spec, clock, store=None):
    return build_graphql_client(spec, store or MemoryTokenStore(), policy=HttpPolicy(sleep=lambda s: None, max_retries=1),
                                clock=clock)


def _presented(sim: SageX3Simulator) -> list[dict]:
    return [jwt.decode(r.header("Authorization")[7:], options={"verify_signature": False})
            for r in sim.requests if r.path == "/xtrem/api"]


# --- JWT ---------------------------------------------------------------------------------------------
def test_it_signs_the_connected_app_claims_exactly(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    rows = next(iter(_client(_spec("jwt_connected_app"), clock).iter_pages("GACCOUNT")))
    assert rows
    claims = _presented(sim)[0]
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("portal-app", "INTEG", X3_URL)
    assert claims["iat"] == int(clock().timestamp()) and claims["exp"] - claims["iat"] == 600
    header = jwt.get_unverified_header(sim.requests[0].header("Authorization")[7:])
    assert header["alg"] == "HS256"


def test_it_signs_anew_before_exp_and_never_presents_an_expired_token(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    store = MemoryTokenStore()
    _client(_spec("jwt_connected_app"), clock, store).check()
    first = store.token.access_token
    clock.advance(490)  # inside the renewal margin (the last fifth of 600 s): a later command signs anew
    client = _client(_spec("jwt_connected_app"), clock, store)
    next(iter(client.iter_pages("CACCE")))
    assert store.token.access_token != first
    for claims in _presented(sim):
        assert claims["exp"] > claims["iat"]
    now = int(clock().timestamp())
    assert _presented(sim)[-1]["iat"] == now


def test_a_saved_token_longer_than_the_validity_is_never_presented(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    store = MemoryTokenStore()
    with pytest.raises(AuthError, match="Error 50"):  # X3's app allows 600 s, the connection said 3600
        _client(_spec("jwt_connected_app", token_validity="3600"), clock, store).installed()
    sim.requests.clear()
    _client(_spec("jwt_connected_app"), clock, store).installed(refresh=True)
    assert all(c["exp"] - c["iat"] <= 600 for c in _presented(sim))


@pytest.mark.parametrize(("setting", "value", "number", "named"), [
    ("audience", "https://x3.other.test", "45", "audience (aud 'https://x3.other.test')"),
    ("user", "SOMEONE", "42", "user (sub 'SOMEONE')"),
    ("client_id", "unknown-app", "41", "issuer (iss"),
])
def test_a_wrong_claim_is_reported_by_name(mounted, clock, setting, value, number, named):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    with pytest.raises(AuthError) as caught:
        _client(_spec("jwt_connected_app", **{setting: value}), clock).installed()
    assert f"Error {number}" in str(caught.value) and named in str(caught.value)


# --- errors arrays -----------------------------------------------------------------------------------
def test_an_errors_array_is_never_an_empty_page(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    client = _client(_spec(), clock)
    client.installed()
    original = sim.graphql.handle
    sim.graphql.handle = lambda request: SimResponse.json(200, {"data": {"x3Finance": None}, "errors": [
        {"message": "Service unavailable", "extensions": {"code": "SERVICE_UNAVAILABLE"}}]})
    with pytest.raises(TransientError):
        list(client.iter_pages("GACCOUNT"))
    sim.graphql.handle = original
    assert len(next(iter(client.iter_pages("GACCOUNT")))) == 12


def test_relay_pages_across_records_sharing_one_stamp_resume_after_the_key(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    client = _client(_spec(page_size=2), clock)
    rows = [r for page in client.iter_pages("BPSUPPLIER") for r in page]
    assert [r["BPSNUM"] for r in rows] == [s["BPSNUM"] for s in sorted(
        sim.records("BPSUPPLIER"), key=lambda s: (s["UPDDATTIM"], s["BPSNUM"]))]
    tie = rows[6]  # suppliers share a second five by five: resume inside the group
    after = [r["BPSNUM"] for page in client.iter_pages("BPSUPPLIER", since=tie["UPDDATTIM"], after_key=tie["BPSNUM"])
             for r in page]
    assert after == [r["BPSNUM"] for r in rows[7:]]
    assert api1_calls(sim) == []


def test_decimals_arrive_exact_and_lines_come_with_their_invoice(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    invoice = _client(_spec(), clock).read("PINVOICE", "PI00001")
    stored = sim.get("PINVOICE", "PI00001")
    assert invoice["AMTATI"] == stored["AMTATI"] and isinstance(invoice["AMTATI"], Decimal)
    assert [line["AMTNOTLIN"] for line in invoice["PINVOICED"]] == [line["AMTNOTLIN"] for line in stored["PINVOICED"]]


# --- introspection and writes -----------------------------------------------------------------------
@pytest.mark.parametrize("root", ["x3MasterData", "sage"])
def test_check_passes_on_both_schema_variants(mounted, clock, root):
    sim = _x3(clock, graphql_root=root)
    mount(sim, X3_URL, mounted)
    lines = _client(_spec(), clock).check()
    assert all(line["ok"] for line in lines), [line for line in lines if not line["ok"]]
    assert not any(line.get("warning") for line in lines)
    assert api1_calls(sim) == []


def test_an_install_without_mutations_writes_through_api1_on_the_same_sign_in(mounted, clock):
    sim = _x3(clock, graphql_root="sage", graphql_mutations=False)
    mount(sim, X3_URL, mounted)
    client = _client(_spec(), clock)  # Basic opens api1 too
    lines = client.check()
    assert all(line["ok"] for line in lines) and not any(line.get("warning") for line in lines)
    assert sum("its writes go through api1 REST" in line["message"] for line in lines) == 3
    entry = {"TYP": "ODT", "ACCDAT": "2026-03-01", "REF": "T-9", "CUR": "USD", "GACCENTRYD": [
        {"LIN": 1, "ACC": "60100", "SNS": 1, "AMTCUR": Decimal("10.00")},
        {"LIN": 2, "ACC": "60200", "SNS": -1, "AMTCUR": Decimal("10.00")}]}
    created = client.create("GACCENTRY", entry)
    assert sim.get("GACCENTRY", created["NUM"])["REF"] == "T-9"
    assert [(r.method, r.path) for r in sim.requests if r.path.startswith("/api1/")] == [
        ("POST", "/api1/x3/erp/SEED/GACCENTRY")]  # the write alone went to api1
    assert client.find("GACCENTRY", "reference", ["T-9"])[0]["NUM"] == created["NUM"]  # read back over GraphQL


def test_a_connected_app_on_an_install_without_mutations_says_it_needs_rest_for_writes(mounted, clock):
    sim = _x3(clock, graphql_root="sage", graphql_mutations=False)
    mount(sim, X3_URL, mounted)
    client = _client(_spec("jwt_connected_app"), clock)  # its JWT opens GraphQL only
    lines = client.check()
    assert all(line["ok"] for line in lines)
    warnings = [line["message"] for line in lines if line.get("warning")]
    assert len(warnings) == 3 and all("needs the REST transport (api1) for writes" in w for w in warnings)
    with pytest.raises(SystemicError, match="needs the REST transport"):
        client.create("GACCENTRY", {"TYP": "ODT"})
    assert api1_calls(sim) == []


def test_a_refused_journal_entry_carries_x3s_diagnoses(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    client = _client(_spec(), clock)
    entry = {"TYP": "ODT", "ACCDAT": "2026-03-01", "REF": "T-1", "CUR": "USD", "GACCENTRYD": [
        {"LIN": 1, "ACC": "60100", "SNS": 1, "AMTCUR": Decimal("10.00")},
        {"LIN": 2, "ACC": "60200", "SNS": -1, "AMTCUR": Decimal("10.01")}]}
    with pytest.raises(DataError, match="not balanced: debits 10.00, credits 10.01"):
        client.create("GACCENTRY", entry)
    entry["GACCENTRYD"][1]["AMTCUR"] = Decimal("10.00")
    created = client.create("GACCENTRY", entry)
    assert created["NUM"] == "ODT000001" and sim.get("GACCENTRY", "ODT000001")["REF"] == "T-1"
    assert client.find("GACCENTRY", "reference", ["T-1"])[0]["NUM"] == "ODT000001"
    assert api1_calls(sim) == []


def test_the_schema_is_introspected_once_per_connection(mounted, clock):
    sim = _x3(clock)
    mount(sim, X3_URL, mounted)
    for _ in range(3):
        client = _client(_spec(), clock)
        list(client.iter_pages("CACCE"))
    introspections = [r for r in sim.requests if b"__schema" in r.body]
    assert len(introspections) == 1
    _client(_spec(), clock).check()
    assert len([r for r in sim.requests if b"__schema" in r.body]) == 2  # the connection test refreshes it


def test_rest_and_connected_app_do_not_mix():
    from integrations.systems.sage_x3 import build_client

    spec = _spec("jwt_connected_app")
    spec.settings["transport"] = "rest"
    with pytest.raises(SystemicError, match="transport to graphql"):
        build_client(spec, MemoryTokenStore())


def test_the_schema_accepts_a_connected_app_connection():
    from integrations.systems.sage_x3 import SCHEMA
    from integrations.systems.schema import ConnectionFields

    fields = ConnectionFields(url=X3_URL, company="SEED", auth_method="jwt_connected_app",
                              settings={"transport": "graphql", **APP}, secrets={"client_secret": "x"})
    assert SCHEMA.problems(fields) == {}
    fields.settings = {**fields.settings, "transport": "soap"}
    assert "transport: must be one of rest, graphql" in SCHEMA.problems(fields)["settings"]




def test_a_connected_app_connection_is_loaded_from_a_tenant_document(db):
    from integrations.models import Connection
    from integrations.tenants import load_document

    load_document({"tenant": {"slug": "jwt", "name": "JWT"}, "connections": [{
        "name": "x3", "system": "sage_x3", "url": X3_URL, "folder": "SEED",
        "auth": {"method": "jwt_connected_app", "client_secret": "s3cret", **APP},
        "settings": {"transport": "graphql"}}]})
    connection = Connection.objects.get(name="x3")
    connection.full_clean()  # the console's form validates the same way
    assert connection.auth_method == "jwt_connected_app"
    assert connection.settings["token_validity"] == 600 and "s3cret" not in str(connection.settings)


def test_the_demo_tenants_switch_to_graphql_with_one_setting(db):
    from integrations.demo import servicetitan_x3_document, x3_servicenow_document
    from integrations.engine.context import build_client
    from integrations.models import Connection
    from integrations.systems.http import CallCounter
    from integrations.systems.sage_x3_graphql import SageX3GraphQLClient
    from integrations.tenants import load_document

    load_document(x3_servicenow_document(X3_URL, "https://sn.example", x3_transport="graphql"))
    load_document(servicetitan_x3_document("https://st.example", X3_URL, x3_transport="graphql"))
    for connection in Connection.objects.filter(system="sage_x3"):
        assert connection.settings["transport"] == "graphql"
        assert isinstance(build_client(connection, CallCounter()), SageX3GraphQLClient)
    load_document(x3_servicenow_document(X3_URL, "https://sn.example", slug="rest"))
    assert "transport" not in Connection.objects.get(tenant__slug="rest", system="sage_x3").settings
