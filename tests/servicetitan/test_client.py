"""The ServiceTitan client against the simulator: tokens, app key, paging, export, errors, pacing, writes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from integrations.sandbox.base import Faults
from integrations.sandbox.inprocess import mount
from integrations.sandbox.server import serve
from integrations.sandbox.servicetitan import ServiceTitanSimulator
from integrations.sandbox.servicetitan_seed import APP_KEY, CLIENT_SECRET, TENANT_ID, WEBHOOK_KEY
from integrations.systems import registry, servicetitan
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import AuthError, DataError, SystemicError, TransientError
from integrations.systems.schema import ConnectionFields
from integrations.systems.servicetitan import (
    ServiceTitanClient,
    amount,
    build_client,
    verify_signature,
    webhook_key_problem,
)
from tests.servicetitan.conftest import API_URL, AUTH_URL, TOKEN_URL, make_client, spec

FIXTURES = Path(__file__).parent / "fixtures"


def api_calls(sim) -> list:
    return sim.api_requests()


def token_calls(sim) -> list:
    return [r for r in sim.requests if r.path == "/connect/token"]


def query(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


@contextmanager
def answers_only(sim) -> Iterator[responses.RequestsMock]:
    """The simulator signs in (auth host); the API's answers are the ones a test registers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, AUTH_URL, rsps)
        yield rsps


def read_all(client: ServiceTitanClient, module: str, resource: str, **options) -> list[dict]:
    return [record for page in client.iter_list(module, resource, **options) for record in page]


# --- tokens and the app key ---------------------------------------------------------------------------
def test_a_token_is_renewed_before_it_expires_never_waiting_for_a_401(client, sim, clock):
    read_all(client, "jpm", "job-types")
    clock.advance(12 * 60 + 1)  # past four fifths of the 900-second lifetime
    read_all(client, "jpm", "job-types")
    assert len(token_calls(sim)) == 2 and sim.token_grants == 2
    assert len(api_calls(sim)) == 2, "no call was refused and sent again"
    bearers = [r.header("Authorization") for r in api_calls(sim)]
    assert bearers[0] != bearers[1]


def test_a_401_gets_one_new_token_and_the_same_call_again(client, sim):
    read_all(client, "jpm", "job-types")
    sim.expire_tokens()
    before = len(sim.requests)
    assert len(read_all(client, "jpm", "job-types")) == 3
    after = sim.requests[before:]
    assert [r.path.rsplit("/", 1)[-1] for r in after] == ["job-types", "token", "job-types"]
    assert after[0].url == after[2].url and after[0].header("Authorization") != after[2].header("Authorization")


def test_a_second_401_after_the_new_token_stops_with_an_auth_error(client, sim):
    sim.set_faults(Faults(token_lifetime=0))  # every token is dead on arrival
    with pytest.raises(AuthError, match="access token"):
        read_all(client, "jpm", "job-types")
    assert len(api_calls(sim)) == 2 and len(token_calls(sim)) == 2


def test_the_app_key_goes_on_every_api_call_and_the_secret_only_to_the_auth_host(client, sim):
    read_all(client, "accounting", "invoices")
    list(client.iter_export("accounting", "inventory-bills"))
    client.get("jpm", "jobs", 1001)
    assert len(api_calls(sim)) >= 3
    assert all(r.header("ST-App-Key") == APP_KEY for r in api_calls(sim))
    (grant,) = token_calls(sim)
    assert grant.form() == {"grant_type": "client_credentials", "client_id": "cid.st-demo-ml-connector",
                            "client_secret": CLIENT_SECRET}
    assert not any(CLIENT_SECRET in r.url or CLIENT_SECRET.encode() in r.body for r in api_calls(sim))


def test_the_environment_chooses_the_default_hosts():
    integration = build_client(spec({"environment": "integration", "token_url": ""}, url=""))
    production = build_client(spec({"token_url": ""}, url=""))
    assert (integration.http.base_url, integration.token_url) == (
        "https://api-integration.servicetitan.io", "https://auth-integration.servicetitan.io/connect/token")
    assert (production.http.base_url, production.token_url) == (
        "https://api.servicetitan.io", "https://auth.servicetitan.io/connect/token")
    inferred = build_client(spec({"token_url": ""}, url="https://api-integration.servicetitan.io"))
    assert inferred.token_url.startswith("https://auth-integration.")
    for made in (integration, production, inferred):
        made.close()


# --- lists ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("page_size", "calls"), [(1, 10), (3, 4), (50, 1)])
def test_a_list_is_read_page_by_page_until_has_more_is_false(st, sim, clock, timer, page_size, calls):
    client = make_client(clock, timer, settings={"page_size": page_size})
    pages = list(client.iter_list("accounting", "invoices"))
    ids = [r["id"] for page in pages for r in page]
    assert ids == [r["id"] for r in sim.rows("accounting", "invoices")] and len(ids) == 10
    sent = [query(r) for r in api_calls(sim)]
    assert len(sent) == calls and [q["page"] for q in sent] == [str(n) for n in range(1, calls + 1)]
    assert all(q["pageSize"] == str(page_size) and "includeTotal" not in q for q in sent)


def test_modified_since_becomes_modified_on_or_after_in_rfc_3339(client, sim, clock):
    clock.advance(300)
    sim.update("jpm", "jobs", 1002, summary="Changed")
    changed = read_all(client, "jpm", "jobs", modified_since=clock())
    assert [j["id"] for j in changed] == [1002]
    assert query(api_calls(sim)[-1])["modifiedOnOrAfter"] == "2026-01-05T08:05:00Z"


def test_a_server_repeating_the_same_page_is_stopped_not_followed_forever(client, sim):
    sim.repeat_pages = True
    client.max_pages = 5
    with pytest.raises(TransientError, match="same records") as caught:
        read_all(client, "accounting", "invoices")
    assert caught.value.code == "repeated_page" and len(api_calls(sim)) == 2


def test_the_bare_array_of_the_bills_list_is_paged_by_its_length(st, sim, clock, timer):
    client = make_client(clock, timer, settings={"page_size": 2})
    pages = list(client.iter_list("accounting", "inventory-bills"))
    assert [[b["id"] for b in page] for page in pages] == [[8001, 8002], [8003, 8004]]
    assert len(api_calls(sim)) == 3  # the third, empty page says there is no more


def test_one_record_by_path_or_through_its_list(client, sim):
    assert client.get("jpm", "jobs", 1004)["jobStatus"] == "Completed"
    assert client.get("jpm", "jobs", 999) is None
    assert client.get("accounting", "invoices", 5003)["id"] == 5003
    assert client.get("accounting", "inventory-bills", 8005)["id"] == 8005  # a voided bill too
    assert sim.forbidden_writes == []


# --- export ----------------------------------------------------------------------------------------------
def test_the_export_yields_each_page_with_its_token_and_the_final_one(client, sim):
    sim.export_page_size = 2
    pages = list(client.iter_export("accounting", "inventory-bills"))
    assert [[(b["id"], b["active"]) for b in records] for records, _ in pages] == [
        [(8001, True), (8002, True)], [(8003, True), (8004, True)], [(8005, False)]]
    tokens = [token for _, token in pages]
    assert all(len(t) > 64 for t in tokens) and len(set(tokens)) == 3
    sent = [query(r).get("from", "") for r in api_calls(sim)]
    assert sent == ["", tokens[0], tokens[1]], "each page asks from the previous page's continueFrom"


def test_the_stored_final_token_resumes_with_only_what_changed(client, sim, clock):
    final = [token for _, token in client.iter_export("accounting", "inventory-bills")][-1]
    assert list(client.iter_export("accounting", "inventory-bills", final)) == [([], final)]
    clock.advance(60)
    sim.void_bill(8003)
    (records, token), = client.iter_export("accounting", "inventory-bills", final)
    assert [(b["id"], b["active"]) for b in records] == [(8003, False)] and token != final


def test_an_export_that_keeps_the_same_token_with_more_is_stopped(sim, clock, timer):
    with answers_only(sim) as rsps:
        rsps.add(responses.GET, f"{API_URL}/accounting/v2/tenant/{TENANT_ID}/export/inventory-bills",
                 json={"data": [], "hasMore": True, "continueFrom": "x" * 80})
        with pytest.raises(TransientError, match="same continueFrom"):
            list(make_client(clock, timer).iter_export("accounting", "inventory-bills", "x" * 80))


# --- errors and limits -------------------------------------------------------------------------------------
def test_a_429_with_retry_after_is_waited_out_and_the_call_retried(st, sim, clock, timer):
    sim.rate_limit_per_second = 3
    client = make_client(clock, timer, rate=100, settings={"page_size": 1})  # a pacer that lets too much through
    assert len(read_all(client, "accounting", "invoices")) == 10
    assert sim.rate_limited >= 1
    assert any(delay >= 1.0 for delay in timer.sleeps), "the Retry-After (1 s) was honoured"


def test_rfc_7807_field_errors_are_named_in_the_message(client, sim):
    with pytest.raises(DataError) as caught:
        read_all(client, "jpm", "jobs", modified_since="last tuesday")
    error = caught.value
    assert error.status == 400 and error.code == "validation"
    assert "modifiedOnOrAfter: The value 'last tuesday' is not valid." in str(error)
    assert "traceId 00-" in error.detail
    with pytest.raises(DataError, match="Name: The Name field is required."):
        client.create_vendor({"memo": "no name"})


def test_a_missing_scope_is_a_systemic_error_saying_who_can_fix_it(client, sim):
    sim.revoke_scope("accounting", "gl-accounts")
    with pytest.raises(SystemicError, match="denied access"):
        read_all(client, "accounting", "gl-accounts")
    lines = {line["check"]: line for line in client.check()}
    assert not lines["resource:accounting/gl-accounts"]["ok"]
    assert "developer portal" in lines["resource:accounting/gl-accounts"]["message"]


def test_the_pacer_keeps_calls_under_the_limit_on_an_injected_clock(st, sim, clock, timer):
    sim.rate_limit_per_second = 5
    client = make_client(clock, timer, rate=5, settings={"page_size": 1})
    started = timer()
    for _ in range(3):
        read_all(client, "accounting", "invoices")
    assert len(api_calls(sim)) == 30 and sim.rate_limited == 0
    assert timer() - started >= 5.0, "30 calls at 5 a second take at least 5 (fake) seconds"


def test_the_pacer_never_lets_more_than_the_rate_into_any_second(timer):
    pacer = servicetitan.Pacer(60, clock=timer, sleep=timer.sleep)
    for n in range(150):
        pacer.wait()
        if n % 7 == 0:
            timer.now += 0.01
    stamps = list(pacer.sent)
    assert max(sum(1 for s in stamps if start <= s < start + 1.0) for start in stamps) <= 60
    assert pacer.waited > 0 and timer() - 1000.0 >= 1.0


# --- no writes but vendors ------------------------------------------------------------------------------------
def test_a_full_read_never_writes_to_servicetitan(client, sim):
    for module, resource, _ in servicetitan.NEEDED_RESOURCES:
        if resource.startswith("export/"):
            list(client.iter_export(module, resource.removeprefix("export/")))
        else:
            read_all(client, module, resource)
    list(client.iter_export("accounting", "invoices"))
    client.get("accounting", "invoices", 5001)
    client.check()
    assert sim.forbidden_writes == [] and sim.vendor_writes == []
    assert {r.method for r in api_calls(sim)} == {"GET"}


def test_the_client_has_no_way_to_write_invoices_or_bills():
    public = {name for name, _ in inspect.getmembers(ServiceTitanClient, inspect.isfunction) if not name.startswith("_")}
    assert public == {"check", "close", "create_vendor", "get", "iter_export", "iter_list", "resource_path",
                      "update_vendor"}
    source = inspect.getsource(ServiceTitanClient)
    assert source.count("self.http.request(") == 2  # _get and _vendor_write
    writer = inspect.getsource(ServiceTitanClient._vendor_write) + inspect.getsource(ServiceTitanClient.create_vendor)
    assert '"inventory", "vendors"' in writer and "invoices" not in writer and "bills" not in writer


def test_vendors_are_created_and_updated(client, sim):
    created = client.create_vendor({"name": "Wingtip Conduit", "email": "ap@wingtip.test"})
    client.update_vendor(created["id"], {"memo": "Preferred"})
    vendor = client.get("inventory", "vendors", created["id"])
    assert (vendor["name"], vendor["memo"], vendor["contactInfo"]["email"]) == (
        "Wingtip Conduit", "Preferred", "ap@wingtip.test")
    assert [r.method for r in sim.vendor_writes] == ["POST", "PATCH"] and sim.forbidden_writes == []


# --- webhook signatures ------------------------------------------------------------------------------------------
BODY = b'{"eventId": "e-1", "eventType": "job.completed", "tenantId": 1042817, "data": {"id": 1001}}'


def signature(body: bytes, key: str = WEBHOOK_KEY, encoding: str = "base64") -> str:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_a_signature_over_the_raw_body_verifies_in_either_encoding(encoding):
    good = signature(BODY, encoding=encoding)
    assert verify_signature(BODY, good, WEBHOOK_KEY, encoding)
    assert verify_signature(BODY, f"  {good}\n", WEBHOOK_KEY, encoding), "surrounding whitespace is tolerated"
    other = "hex" if encoding == "base64" else "base64"
    assert not verify_signature(BODY, good, WEBHOOK_KEY, other)


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_a_wrong_key_a_tampered_or_reserialised_body_or_a_bad_header_fails(encoding):
    good = signature(BODY, encoding=encoding)
    assert not verify_signature(BODY, good, "another-key-of-thirty-two-chars!!", encoding)
    assert not verify_signature(BODY.replace(b"1001", b"1002"), good, WEBHOOK_KEY, encoding)
    same_json = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert json.loads(same_json) == json.loads(BODY) and not verify_signature(same_json, good, WEBHOOK_KEY, encoding)
    for bad in ("", "   ", None, good[:-4], good + "00", "!" * len(good), "sha256=" + good):
        assert not verify_signature(BODY, bad, WEBHOOK_KEY, encoding), bad
    assert not verify_signature(BODY, good, "", encoding)
    with pytest.raises(ValueError):
        verify_signature(BODY, good, WEBHOOK_KEY, "base32")


def test_what_the_simulator_sends_verifies_with_the_connection_settings(client, st, sim):
    got: list = []
    st.add_callback("POST", "https://portal.test/hook", callback=lambda r: got.append(r) or (200, {}, b""))
    sim.webhook_event("job.completed", {"id": 1001})
    for encoding, header, style in (("base64", "X-ServiceTitan-Signature", "spaced"), ("hex", "X-Sig", "reordered")):
        sim.deliver("https://portal.test/hook", WEBHOOK_KEY, encoding=encoding, header=header, style=style)
        assert verify_signature(got[-1].body, got[-1].headers[header], WEBHOOK_KEY, encoding)
    assert client.webhook == servicetitan.WebhookSettings("X-ServiceTitan-Signature", "base64", WEBHOOK_KEY)


def test_webhook_keys_must_be_32_to_64_characters():
    assert webhook_key_problem("k" * 31) and webhook_key_problem("k" * 65) and webhook_key_problem("k" * 31 + " ")
    assert webhook_key_problem("k" * 32) == webhook_key_problem("k" * 64) == ""


# --- secrets ---------------------------------------------------------------------------------------------------
def test_secrets_never_reach_errors_events_or_logs(st, sim, clock, timer, caplog):
    sim.echo_credentials_in_errors = True
    leaked_key = "ak1.configured-but-unknown-app-key"
    events: list = []
    store = MemoryTokenStore()
    client = make_client(clock, timer, events=events, secrets={"app_key": leaked_key}, store=store)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as caught:
        read_all(client, "jpm", "jobs")
    token = store.token.access_token if store.token else ""
    texts = [str(caught.value), caught.value.detail, json.dumps(events, default=str), caplog.text]
    texts += [line["message"] for line in client.check()]
    bad_secret = make_client(clock, timer, secrets={"client_secret": "cs1.wrong-secret-value-99"})
    with pytest.raises(AuthError) as refused:
        read_all(bad_secret, "jpm", "jobs")
    texts += [str(refused.value), refused.value.detail]
    for secret in (leaked_key, CLIENT_SECRET, "cs1.wrong-secret-value-99", WEBHOOK_KEY, token):
        assert secret and not any(secret in text for text in texts), secret
    assert "app key" in str(caught.value) and "invalid_client" in str(refused.value)


# --- connection test, schema, fixtures ----------------------------------------------------------------------------
def test_check_reports_token_app_key_each_resource_and_the_webhook_key(client):
    lines = client.check()
    assert [line["check"] for line in lines] == ["token", "app_key"] + [
        f"resource:{m}/{r}" for m, r, _ in servicetitan.NEEDED_RESOURCES] + ["webhook_key"]
    assert all(line["ok"] for line in lines), lines


def test_check_says_plainly_when_the_app_key_or_the_client_is_refused(st, clock, timer):
    lines = make_client(clock, timer, secrets={"app_key": "ak1.someone-elses"}).check()
    assert [(line["check"], line["ok"]) for line in lines] == [("token", True), ("app_key", False),
                                                               ("webhook_key", True)]
    assert "developer portal" in lines[1]["message"]
    (line,) = make_client(clock, timer, secrets={"client_secret": "nope-nope"}).check()
    assert line["check"] == "token" and not line["ok"] and "client id and secret" in line["message"]


def test_the_schema_checks_what_a_person_enters():
    assert registry.schema_for("servicetitan") is servicetitan.SCHEMA
    fields = ConnectionFields(url=API_URL, company="", auth_method="oauth2_client_credentials",
                              settings={"client_id": "cid", "environment": "production"},
                              secrets={"client_secret": "s", "webhook_key": "too-short"})
    found = servicetitan._checks(fields)
    assert any("tenant_id: required" in m for m in found["settings"])
    assert any("integration API but environment is production" in m for m in found["url"])
    assert any(m.startswith("app_key: required") for m in found["secrets"])
    assert any(m.startswith("webhook_key: must be 32 to 64") for m in found["secrets"])
    ok = ConnectionFields(url=API_URL, company=TENANT_ID, auth_method="oauth2_client_credentials",
                          settings={"client_id": "cid", "token_url": TOKEN_URL},
                          secrets={"client_secret": "s", "app_key": APP_KEY, "webhook_key": WEBHOOK_KEY})
    assert servicetitan._checks(ok) == {}
    assert registry.connection_settings_errors("servicetitan", "oauth2_client_credentials", {"page_size": 5001})
    assert registry.connection_settings_errors("servicetitan", "oauth2_client_credentials",
                                               {"webhook_encoding": "base32"})


def test_recorded_shapes_parse_into_pages_and_exact_amounts(sim, clock, timer):
    base = f"{API_URL}/accounting/v2/tenant/{TENANT_ID}"
    with answers_only(sim) as rsps:
        for n in (1, 2):
            rsps.add(responses.GET, f"{base}/invoices", body=(FIXTURES / f"invoices_page_{n}.json").read_bytes(),
                     content_type="application/json", match=[matchers.query_param_matcher(
                         {"page": str(n), "pageSize": "2"})])
        rsps.add(responses.GET, f"{base}/export/inventory-bills",
                 body=(FIXTURES / "inventory_bills_export_page.json").read_bytes(), content_type="application/json",
                 match=[matchers.query_param_matcher({"from": "a-stored-token"})])
        client = make_client(clock, timer, settings={"page_size": 2})
        invoices = read_all(client, "accounting", "invoices")
        ((bills, token),) = list(client.iter_export("accounting", "inventory-bills", "a-stored-token"))
    assert [i["id"] for i in invoices] == [61021, 61022, 61030]
    costs = sum((amount(item["totalCost"]) for i in invoices for item in i["items"]), Decimal("0"))
    assert costs == Decimal("694.50") and invoices[0]["salesTaxCode"]["taxRate"] == Decimal("0.0825")
    assert [(b["id"], b["active"]) for b in bills] == [(440918, True), (440921, False)] and len(token) > 64
    assert amount(bills[0]["billAmount"]) == Decimal("672.83") and amount(1.5) == Decimal("1.5")
    assert amount("") is None and amount(None) is None and amount("n/a") is None


def test_a_recorded_problem_names_each_field(sim, clock, timer):
    with answers_only(sim) as rsps, pytest.raises(DataError) as caught:
        rsps.add(responses.GET, f"{API_URL}/jpm/v2/tenant/{TENANT_ID}/jobs", status=400,
                 body=(FIXTURES / "problem_400.json").read_bytes(), content_type="application/problem+json")
        read_all(make_client(clock, timer), "jpm", "jobs")
    assert str(caught.value).startswith("One or more validation errors occurred.: pageSize: The field pageSize")
    assert "modifiedOnOrAfter: The value 'yesterday' is not valid." in str(caught.value)


def test_the_client_works_against_the_simulator_over_loopback_http():
    sim = ServiceTitanSimulator().seed_demo()
    with serve(sim) as server:
        client = build_client(spec({"token_url": f"{server.url}/connect/token"}, url=server.url))
        try:
            assert all(line["ok"] for line in client.check())
            assert len(read_all(client, "accounting", "invoices")) == 10
        finally:
            client.close()
    assert sim.forbidden_writes == []
