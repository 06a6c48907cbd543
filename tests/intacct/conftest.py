"""The Intacct sandbox and the demo ServiceNow instance, mounted in-process, and a tenant on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from integrations.demo import intacct_servicenow_document
from integrations.sandbox.inprocess import mount
from integrations.sandbox.intacct import IntacctSimulator
from integrations.sandbox.intacct_seed import COMPANY_ID
from integrations.sandbox.servicenow import ServiceNowSimulator
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.http import HttpPolicy
from integrations.systems.intacct import IntacctClient, build_client
from integrations.systems.spec import ConnectionSpec

INTACCT_URL = "https://intacct.test"
GATEWAY = f"{INTACCT_URL}/ia/xml/xmlgw.phtml"
SN_URL = "https://acme.service-now.com"


@pytest.fixture
def intacct_sim() -> IntacctSimulator:
    return IntacctSimulator().seed_demo()


@pytest.fixture
def intacct_sandbox(intacct_sim: IntacctSimulator, sn_sim: ServiceNowSimulator) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(intacct_sim, INTACCT_URL, rsps)
        mount(sn_sim, SN_URL, rsps)
        yield rsps


def intacct_spec(**settings) -> ConnectionSpec:
    base = {"sender_id": "mlconnector", "user_id": "xml_gateway"}
    base.update(settings)
    return ConnectionSpec(system="sage_intacct", url=GATEWAY, auth_method="session", company=COMPANY_ID,
                          settings=base,
                          secrets={"sender_password": "intacct-sender-pass", "user_password": "intacct-user-pass"})


@pytest.fixture
def make_client(intacct_sandbox) -> Iterator:
    """A bare client on a memory token store (no database), fast retries."""

    def make(store: MemoryTokenStore | None = None, **settings) -> IntacctClient:
        policy = HttpPolicy(backoff_base=0.001, backoff_max=0.01, sleep=lambda _: None)
        return build_client(intacct_spec(**settings), store or MemoryTokenStore(), policy=policy)

    yield make


@pytest.fixture
def intacct_doc() -> dict:
    return intacct_servicenow_document(INTACCT_URL, SN_URL)


@pytest.fixture
def intacct_integration(db, intacct_sandbox, intacct_doc):
    from integrations.models import Integration
    from integrations.tenants import load_document

    load_document(intacct_doc)
    return Integration.objects.select_related("source", "target", "tenant").get(name="intacct-sn")


def approve_suggestions_and_release(integration) -> None:
    """What an approver does on day one: accept every suggestion, which re-queues the held bills."""
    from integrations.engine.mappings import approve
    from integrations.engine.replay import replay_records
    from integrations.models import Mapping, MappingStatus

    decision = approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
    replay_records(decision.released_ids, trigger="mapping", force=False)


@pytest.fixture
def staged(intacct_integration):
    """Reference data, vendors and bills synced, every suggested mapping approved."""
    from integrations.engine.runner import run_integration

    run_integration(intacct_integration)
    approve_suggestions_and_release(intacct_integration)
    return intacct_integration
