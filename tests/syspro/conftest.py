"""The SYSPRO simulator mounted in-process, and clients built as production builds them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import responses

from integrations.sandbox.base import SimRequest, SimResponse
from integrations.sandbox.inprocess import mount
from integrations.sandbox.syspro import SysproSimulator
from integrations.sandbox.syspro_seed import COMPANY, OPERATOR
from integrations.systems import syspro
from integrations.systems.http import CallCounter, HttpPolicy
from integrations.systems.spec import ConnectionSpec

URL = "http://syspro.acme.test:20000"
REST = f"{URL}/SYSPROWCFService/Rest"
FIXTURES = Path(__file__).parent / "fixtures"


class Clock:
    """Seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def call(sim: SysproSimulator, operation: str, **params: str) -> SimResponse:
    """One GET straight into the simulator, parameters percent-encoded as a careful client does."""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return sim.handle(SimRequest("GET", f"{REST}/{operation}?{query}", {}))


def logon(sim: SysproSimulator, password: str = OPERATOR[1]) -> str:
    return call(sim, "Logon", Operator=OPERATOR[0], OperatorPassword=password, CompanyId=COMPANY[0],
                CompanyPassword=COMPANY[1]).body.decode("cp1252")


def make_client(url: str = URL, *, events: list | None = None, store: Any = None, operator: str = OPERATOR[0],
                password: str = OPERATOR[1], company_password: str = "", **settings: Any) -> syspro.SysproClient:
    secrets = {"operator_password": password}
    if company_password:
        secrets["company_password"] = company_password
    spec = ConnectionSpec(system="syspro", url=url, auth_method="enet", company=COMPANY[0],
                          settings={"operator": operator, **settings}, secrets=secrets)
    sink = (lambda action, detail: events.append((action, detail))) if events is not None else None
    return syspro.build_client(spec, store, counter=CallCounter(),
                               policy=HttpPolicy(backoff_base=0.001, backoff_max=0.002, sleep=lambda s: None),
                               **({"on_event": sink} if sink else {}))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> SysproSimulator:
    return SysproSimulator(clock=clock).seed_demo()


@pytest.fixture
def mounted(sim: SysproSimulator) -> Iterator[SysproSimulator]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, URL, rsps)
        yield sim


# --- the pair through the engine: SYSPRO and its ServiceNow mounted, the demo tenant loaded ---------
SN_URL = "https://acmesyspro.service-now.com"


@pytest.fixture
def sn_sim():
    from integrations.sandbox.clock import ManualClock
    from integrations.sandbox.servicenow import ServiceNowSimulator

    return ServiceNowSimulator(clock=ManualClock()).seed_demo()


@pytest.fixture
def pair(sim: SysproSimulator, sn_sim) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, URL, rsps)
        mount(sn_sim, SN_URL, rsps)
        yield rsps


@pytest.fixture
def tenant_doc() -> dict:
    from integrations.demo import syspro_servicenow_document

    return syspro_servicenow_document(URL, SN_URL, settings={"page_size": 4})


def load(doc: dict):
    from integrations.models import Integration
    from integrations.tenants import load_document

    load_document(doc)
    return Integration.objects.select_related("source", "target", "tenant").get(
        tenant__slug=doc["tenant"]["slug"], name="syspro-to-sn")


@pytest.fixture
def integration(db, pair, tenant_doc):
    return load(tenant_doc)
