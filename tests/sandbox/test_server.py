"""Both adapters serve the same simulator; a dropped response is a connection error after commit."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import responses

from integrations.sandbox.base import DropResponse, Faults, SimRequest, SimResponse, Simulator
from integrations.sandbox.inprocess import mount
from integrations.sandbox.server import serve
from integrations.sandbox.servicenow import ServiceNowSimulator
from tests.sandbox.conftest import SN_URL, SN_USER

ROOT = Path(__file__).resolve().parents[2]


class Echo(Simulator):
    """Reflects what the adapter handed to the simulator."""

    name = "echo"

    def dispatch(self, request: SimRequest) -> SimResponse:
        if request.path == "/drop":
            raise DropResponse("dropped")
        payload = {
            "method": request.method,
            "url": request.url,
            "body": request.body.decode(),
            "x": request.header("x-test"),
        }
        return SimResponse.json(207, payload, {"X-Echo": "1"})


@pytest.fixture
def server():
    sim = ServiceNowSimulator().seed_demo()
    with serve(sim) as running:
        yield running


def test_server_serves_the_simulator_over_loopback_http(server):
    assert server.url == f"http://127.0.0.1:{server.port}"
    response = requests.get(
        f"{server.url}/api/now/table/cmn_cost_center", params={"sysparm_limit": 2}, auth=SN_USER, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "6"
    assert response.links["next"]["url"].startswith(f"{server.url}/api/now/table/cmn_cost_center?")


def test_server_passes_method_url_headers_and_body():
    with serve(Echo()) as running:
        response = requests.put(
            f"{running.url}/a/b?q=1&r=x%20y", data="héllo".encode(), headers={"X-Test": "yes"}, timeout=5
        )
    assert response.status_code == 207 and response.headers["X-Echo"] == "1"
    assert response.json() == {"method": "PUT", "url": f"{running.url}/a/b?q=1&r=x%20y", "body": "héllo", "x": "yes"}


def test_inprocess_adapter_passes_method_url_headers_and_str_or_bytes_bodies():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(Echo(), "https://echo.test/base", rsps)
        as_str = requests.post("https://echo.test/base/x?q=1", data="a=1", headers={"X-Test": "s"}).json()
        as_bytes = requests.patch("https://echo.test/base/x", data=b"\x00raw".decode("latin-1").encode()).json()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get("https://echo.test/basement")  # not under the mounted base URL
    assert as_str == {"method": "POST", "url": "https://echo.test/base/x?q=1", "body": "a=1", "x": "s"}
    assert as_bytes["body"] == "\x00raw"


def _post_vendor(url: str) -> requests.Response:
    return requests.post(f"{url}/api/now/table/proc_vendor", json={"name": "Committed Ltd"}, auth=SN_USER, timeout=5)


def test_commit_then_drop_over_real_http_raises_connection_error_but_the_row_exists(server):
    server.sim.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        _post_vendor(server.url)
    assert [row["name"] for row in server.sim.rows("proc_vendor")] == ["Committed Ltd"]
    server.sim.set_faults(Faults())
    assert _post_vendor(server.url).status_code == 201  # the server survived the drop


def test_commit_then_drop_in_process_raises_connection_error_but_the_row_exists():
    sim = ServiceNowSimulator(faults=Faults(drop_rate=1.0)).seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, SN_URL, rsps)
        with pytest.raises(requests.exceptions.ConnectionError):
            _post_vendor(SN_URL)
        # reads are not writes: they are never dropped
        assert requests.get(f"{SN_URL}/api/now/table/proc_vendor", auth=SN_USER).status_code == 200
    assert [row["name"] for row in sim.rows("proc_vendor")] == ["Committed Ltd"]


def test_batch_is_committed_whole_before_its_response_is_dropped(server):
    server.sim.set_faults(Faults(drop_rate=1.0))
    body = base64.b64encode(json.dumps({"name": "In batch"}).encode()).decode()
    items = [{"id": str(i), "method": "POST", "url": "/api/now/table/proc_vendor", "body": body} for i in range(3)]
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(
            f"{server.url}/api/now/v1/batch",
            json={"batch_request_id": "1", "rest_requests": items},
            auth=SN_USER,
            timeout=5,
        )
    assert len(server.sim.rows("proc_vendor")) == 3


def test_stopped_server_refuses_connections():
    running = serve(Echo())
    url = running.url
    running.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=2)


def test_cli_serves_the_seeded_servicenow_demo_until_killed():
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.sandbox.server", "servicenow", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        token = requests.post(
            f"{url}/oauth_token.do",
            data={"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "sn-demo-secret"},
            timeout=5,
        ).json()["access_token"]
        response = requests.get(
            f"{url}/api/now/table/itfm_gl_accounts", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert response.status_code == 200 and len(response.json()["result"]) == 12
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
