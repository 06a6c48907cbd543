"""Shared fixtures: the sandbox systems mounted in-process, and a demo tenant against them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from integrations.demo import x3_servicenow_document
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator

X3_URL = "http://x3.acme.test:8124"
SN_URL = "https://acme.service-now.com"


@pytest.fixture(autouse=True)
def _fast_backoff(settings):
    # Real sleeps, but short: Retry-After tests set their own values.
    settings.HTTP_BACKOFF_BASE_SECONDS = 0.01
    settings.HTTP_BACKOFF_MAX_SECONDS = 0.05


@pytest.fixture
def sn_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def x3_sim() -> SageX3Simulator:
    sim = SageX3Simulator()
    sim.seed_demo()
    return sim


@pytest.fixture
def sn_sim(sn_clock: ManualClock) -> ServiceNowSimulator:
    return ServiceNowSimulator(clock=sn_clock).seed_demo()


@pytest.fixture
def sandbox(x3_sim: SageX3Simulator, sn_sim: ServiceNowSimulator) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(x3_sim, X3_URL, rsps)
        mount(sn_sim, SN_URL, rsps)
        yield rsps


@pytest.fixture
def tenant_doc(x3_sim: SageX3Simulator) -> dict:
    return x3_servicenow_document(X3_URL, SN_URL, x3_refresh_token=x3_sim.issue_refresh_token("ml-connector"))


@pytest.fixture
def integration(db, sandbox, tenant_doc):
    from integrations.models import Integration
    from integrations.tenants import load_document

    load_document(tenant_doc)
    return Integration.objects.select_related("source", "target", "tenant").get(name="x3-to-sn")
