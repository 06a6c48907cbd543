"""Sandbox tests: plain pytest, no Django (run with ``-p no:django`` or inside the full suite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.servicenow import ServiceNowSimulator

SN_URL = "https://dev12345.service-now.com"
SN_USER = ("integration.user", "integration-pass")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> ServiceNowSimulator:
    return ServiceNowSimulator(clock=clock).seed_demo()


@pytest.fixture
def sn(sim: ServiceNowSimulator) -> Iterator[responses.RequestsMock]:
    """The demo instance mounted in-process at ``SN_URL``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, SN_URL, rsps)
        yield rsps
