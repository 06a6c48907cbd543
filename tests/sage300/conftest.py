"""The Sage 300 and ServiceNow simulators mounted in-process, and the Sage 300 demo tenant."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from integrations.demo import sage300_servicenow_document
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage300 import Sage300Simulator
from integrations.sandbox.servicenow import ServiceNowSimulator

S300_URL = "https://erp.acme.test"
SN_URL = "https://acme300.service-now.com"


@pytest.fixture
def s300_sim() -> Sage300Simulator:
    return Sage300Simulator().seed_demo()


@pytest.fixture
def sn_sim() -> ServiceNowSimulator:
    return ServiceNowSimulator(clock=ManualClock()).seed_demo()


@pytest.fixture
def sandbox(s300_sim: Sage300Simulator, sn_sim: ServiceNowSimulator) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(s300_sim, S300_URL, rsps)
        mount(sn_sim, SN_URL, rsps)
        yield rsps


@pytest.fixture
def tenant_doc() -> dict:
    return sage300_servicenow_document(S300_URL, SN_URL)


def load(doc: dict):
    from integrations.models import Integration
    from integrations.tenants import load_document

    load_document(doc)
    return Integration.objects.select_related("source", "target", "tenant").get(
        tenant__slug=doc["tenant"]["slug"], name="s300-to-sn")


@pytest.fixture
def integration(db, sandbox, tenant_doc):
    return load(tenant_doc)
