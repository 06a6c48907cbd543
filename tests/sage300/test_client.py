"""The Sage 300 client against the simulator: credentials, content type, paging, errors, GET only."""

from __future__ import annotations

import base64
import inspect
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from integrations.sandbox.base import Faults
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage300 import Sage300Simulator
from integrations.systems import sage300
from integrations.systems.errors import AuthError, TransientError
from integrations.systems.http import CallCounter, HttpPolicy
from integrations.systems.spec import ConnectionSpec

URL = "https://erp.acme.test"


def client(url: str = URL, username: str = "webapi", password: str = "webapi-pass", **settings):
    spec = ConnectionSpec(system="sage_300", url=url, auth_method="basic", company="samltd",
                          settings={"username": username, **settings}, secrets={"password": password})
    return sage300.build_client(spec, counter=CallCounter(), policy=HttpPolicy(backoff_base=0.001, backoff_max=0.01))


@pytest.fixture
def sim():
    sim = Sage300Simulator(page_size=3, credential_mode="strict_upper").seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, URL, rsps)
        yield sim


def test_it_sends_credentials_upper_cased_whatever_the_user_typed(sim):
    rows = list(client(username="WebApi", password="webapi-PASS").iter_pages("GLAccounts"))
    assert sum(len(page) for page in rows) == 7
    decoded = {base64.b64decode(r.header("Authorization")[6:]).decode() for r in sim.requests}
    assert decoded == {"WEBAPI:WEBAPI-PASS"}


def test_it_sends_the_json_content_type_on_every_call_get_included(sim):
    list(client().iter_pages("APVendors"))
    assert len(sim.requests) > 1
    assert all(r.header("Content-Type") == "application/json" for r in sim.requests)
    sim_without = Sage300Simulator().seed_demo()  # and the simulator refuses a call without it
    from integrations.sandbox.base import SimRequest
    auth = "Basic " + base64.b64encode(b"WEBAPI:WEBAPI-PASS").decode()
    answer = sim_without.handle(SimRequest("GET", f"{URL}/Sage300WebApi/v1.0/-/SAMLTD/GL/GLAccounts",
                                           {"Authorization": auth}))
    assert answer.status == 500


def test_paging_builds_each_url_itself_keeps_the_filter_and_never_follows_a_foreign_host(sim):
    sim.host_name = "localhost"  # what a real server's nextLink names
    flt = "DateLastMaintained ge datetime'2026-01-05T00:00:00'"
    pages = list(client().iter_pages("APVendors", filter=flt, orderby="DateLastMaintained,VendorNumber"))
    assert [len(p) for p in pages] == [3, 3, 3, 3]  # the server caps $top=100 at its page size of 3
    keys = [row["VendorNumber"] for page in pages for row in page]
    assert len(keys) == len(set(keys)) == 12
    for request in sim.requests:
        parts = urlsplit(request.url)
        assert parts.netloc == "erp.acme.test"
        query = parse_qs(parts.query)
        assert query["$filter"] == [flt] and query["$orderby"] == ["DateLastMaintained,VendorNumber"]
    assert [parse_qs(urlsplit(r.url).query)["$skip"][0] for r in sim.requests] == ["0", "3", "6", "9"]


def test_a_url_given_as_the_web_api_root_works_too(sim):
    for url in (URL, f"{URL}/Sage300WebApi", f"{URL}/Sage300WebApi/v1.0/-/"):
        assert sage300.api_root(url) == f"{URL}/Sage300WebApi/v1.0/-"
    assert sum(len(p) for p in client(url=f"{URL}/Sage300WebApi").iter_pages("GLAccounts")) == 7


def test_a_bare_string_date_literal_is_a_type_error_the_client_never_sends(sim):
    assert sage300.odata_datetime("2026-01-05") == "datetime'2026-01-05T00:00:00'"
    with pytest.raises(Exception, match="incompatible types"):
        list(client().iter_pages("APVendors", filter="DateLastMaintained ge '2026-01-05'"))


def test_a_401_says_credentials_are_sent_upper_cased_and_names_the_admin_rule(sim):
    with pytest.raises(AuthError) as caught:
        list(client(password="wrong").iter_pages("GLAccounts"))
    assert "upper-case" in str(caught.value) and "ADMIN" in str(caught.value)
    assert "webapi-pass" not in str(caught.value).lower()
    sim.add_user("ADMIN", "ADMIN")
    with pytest.raises(AuthError):
        list(client(username="admin", password="admin").iter_pages("GLAccounts"))
    sim.allow_admin = True
    assert list(client(username="admin", password="admin").iter_pages("GLAccounts"))


def test_iis_html_503_and_too_many_requests_are_transient_and_retried(sim):
    sim.set_faults(Faults(error_rate=0.5, seed=3))
    assert sum(len(p) for p in client().iter_pages("APVendors")) == 12
    assert any(r for r in sim.requests)
    sim.set_faults(Faults(error_rate=1.0))
    with pytest.raises(TransientError, match="app pool"):
        list(client().iter_pages("APVendors"))
    sim.set_faults(Faults(burst_429_rate=1.0, burst_429_length=1, retry_after=0))
    with pytest.raises(TransientError, match="Too many"):
        list(client().iter_pages("APVendors"))


def test_the_client_can_only_send_get():
    source = inspect.getsource(sage300.Sage300Client)
    assert source.count("self.http.request(") == 1
    assert 'self.http.request("GET"' in source


def test_the_timeout_is_per_connection_with_a_default_of_120_seconds():
    assert client().http.policy.timeout == 120
    assert client(timeout=300).http.policy.timeout == 300
