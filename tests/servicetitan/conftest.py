"""The ServiceTitan simulator mounted in-process at the integration environment's auth and API hosts.

One simulator object serves both hosts, as ServiceTitan's auth server and API share the tenant's
clients. Time is fake twice over: a ManualClock for token lifetimes and ``modifiedOn`` stamps, and
a FakeTimer (seconds) shared by the client's pacer, the HTTP policy's sleeps and the simulator's
rate limiter, so a second "passes" only when something waits, and no test really sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import responses

from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.servicetitan import ServiceTitanSimulator
from integrations.sandbox.servicetitan_seed import APP_KEY, CLIENT_ID, CLIENT_SECRET, TENANT_ID, WEBHOOK_KEY
from integrations.systems import servicetitan
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.http import CallCounter, HttpPolicy
from integrations.systems.spec import ConnectionSpec

API_URL = "https://api-integration.servicetitan.io"
AUTH_URL = "https://auth-integration.servicetitan.io"
TOKEN_URL = f"{AUTH_URL}/connect/token"


class FakeTimer:
    """Monotonic seconds that move only when someone waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC))


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


@pytest.fixture
def sim(clock: ManualClock, timer: FakeTimer) -> ServiceTitanSimulator:
    return ServiceTitanSimulator(clock=clock, timer=timer).seed_demo()


@pytest.fixture
def st(sim: ServiceTitanSimulator) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, API_URL, rsps)
        mount(sim, AUTH_URL, rsps)
        yield rsps


def spec(settings: dict | None = None, secrets: dict | None = None, url: str = API_URL) -> ConnectionSpec:
    return ConnectionSpec(
        system="servicetitan", url=url, auth_method="oauth2_client_credentials", company="",
        settings={"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "token_url": TOKEN_URL, **(settings or {})},
        secrets={"client_secret": CLIENT_SECRET, "app_key": APP_KEY, "webhook_key": WEBHOOK_KEY, **(secrets or {})},
    )


def make_client(clock: ManualClock, timer: FakeTimer, *, rate: int = 60, events: list | None = None,
                settings: dict | None = None, secrets: dict | None = None, url: str = API_URL,
                store: MemoryTokenStore | None = None) -> servicetitan.ServiceTitanClient:
    """The client as build_client assembles it, on fake time (its waits advance the timer)."""

    def on_event(action: str, detail: dict) -> None:
        if events is not None:
            events.append((action, detail))

    return servicetitan.build_client(
        spec(settings, secrets, url), store or MemoryTokenStore(), counter=CallCounter(),
        policy=HttpPolicy(backoff_base=0.01, backoff_max=0.05, jitter=0, sleep=timer.sleep),
        on_event=on_event, clock=clock, pacer=servicetitan.Pacer(rate, clock=timer, sleep=timer.sleep))


@pytest.fixture
def client(st, clock: ManualClock, timer: FakeTimer) -> Iterator[servicetitan.ServiceTitanClient]:
    made = make_client(clock, timer)
    yield made
    made.close()
