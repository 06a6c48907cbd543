"""429 answers are waited out as long as ``Retry-After`` says (seconds or an HTTP date), then retried."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import responses

from integrations.engine.runner import run_stream
from integrations.models import AuditEvent, RunStatus
from integrations.sandbox.base import Faults
from integrations.systems.errors import TransientError
from integrations.systems.http import HttpClient, HttpPolicy, parse_retry_after

API = "https://api.example.test"


def client(events: list | None = None, **policy) -> HttpClient:
    sink = (lambda action, detail: events.append((action, detail))) if events is not None else None
    kwargs = {"on_event": sink} if sink else {}
    return HttpClient(API, policy=HttpPolicy(backoff_base=0.01, backoff_max=0.05, **policy), **kwargs)


def test_it_waits_at_least_the_retry_after_seconds_before_retrying_and_then_succeeds():
    events: list = []
    http = client(events)
    with responses.RequestsMock() as rsps:
        rsps.add("GET", f"{API}/items", status=429, headers={"Retry-After": "1"}, json={"error": "slow down"})
        rsps.add("GET", f"{API}/items", status=200, json={"items": [1, 2]})
        started = time.monotonic()
        response = http.request("GET", "/items")
        elapsed = time.monotonic() - started
        assert len(rsps.calls) == 2

    assert response.json() == {"items": [1, 2]}
    assert elapsed >= 1.0
    assert http.counter.calls == 2 and http.counter.sleeps == [pytest.approx(1.0)]
    assert [(a, d["status"], d["retry_after"]) for a, d in events] == [("http.backoff", 429, 1.0)]


def test_it_honours_a_retry_after_given_as_an_http_date():
    events: list = []
    http = client(events)
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    with responses.RequestsMock() as rsps:
        rsps.add("POST", f"{API}/batch", status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
        rsps.add("POST", f"{API}/batch", status=201, json={"ok": True})
        started = time.monotonic()
        response = http.request("POST", "/batch", json={"a": 1})  # a 429 was not processed: safe to resend
        elapsed = time.monotonic() - started
        assert len(rsps.calls) == 2

    assert response.status_code == 201
    waited_for = events[0][1]["retry_after"]
    assert 1.0 < waited_for <= 2.0, "the date was two whole seconds ahead when it was sent"
    assert elapsed >= waited_for


def test_a_retry_after_longer_than_the_policy_allows_fails_the_call_as_transient_without_waiting():
    http = client(max_retry_after=5)
    with responses.RequestsMock() as rsps:
        rsps.add("GET", f"{API}/items", status=429, headers={"Retry-After": "3600"})
        started = time.monotonic()
        with pytest.raises(TransientError) as raised:
            http.request("GET", "/items")
        assert len(rsps.calls) == 1

    assert time.monotonic() - started < 1.0
    assert raised.value.retry_after == 3600.0 and raised.value.status == 429


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),
    ("0", 0.0),
    ("Fri, 31 Dec 1999 23:59:59 GMT", 59.0),
    ("Fri, 31 Dec 1999 23:58:00 GMT", 0.0),  # a date already past: retry at once
    ("soon", None),
    ("", None),
    (None, None),
])
def test_parse_retry_after_reads_delay_seconds_and_http_dates(header, seconds):
    now = datetime(1999, 12, 31, 23, 59, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


@pytest.mark.django_db
def test_a_rate_limited_run_waits_as_servicenow_asks_and_the_backoff_is_audited(integration, sn_sim):
    # seed 14: the first call of the run starts a one-response 429 burst, the rest pass
    sn_sim.set_faults(Faults(burst_429_rate=0.5, burst_429_length=1, retry_after=1, seed=14))

    started = time.monotonic()
    run = run_stream(integration, "sn_cost_centers")
    elapsed = time.monotonic() - started

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.read == 6
    backoffs = list(AuditEvent.objects.filter(action="http.backoff", connection_id=integration.target_id))
    assert len(backoffs) >= 1
    assert all(b.detail["status"] == 429 and b.detail["retry_after"] == 1.0 for b in backoffs)
    assert all(b.detail["delay_seconds"] >= 1.0 for b in backoffs)
    assert elapsed >= len(backoffs) * 1.0
