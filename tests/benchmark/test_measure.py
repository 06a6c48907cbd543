"""How the benchmark counts calls by kind: what a call does, not only its HTTP method."""

from __future__ import annotations

import json

import requests
import responses

from integrations.benchmark.measure import HttpTally, tally_http

BATCH = "https://sn.test/api/now/v1/batch"


def batch(*methods: str, compact: bool = False) -> bytes:
    body = {"batch_request_id": "0", "rest_requests": [
        {"id": str(n), "method": method, "url": "/api/now/table/x"} for n, method in enumerate(methods)]}
    return json.dumps(body, separators=(",", ":") if compact else None).encode()


def test_a_batch_of_get_items_reads_and_one_with_any_write_item_writes():
    tally = HttpTally()

    tally.add("POST", BATCH, batch("GET", "GET"))
    tally.add("POST", BATCH, batch("GET", "POST"))
    tally.add("POST", BATCH, batch("PATCH", compact=True))
    tally.add("POST", "https://sn.test/oauth_token.do", b"grant_type=password")
    tally.add("GET", "https://sn.test/api/now/table/x")

    assert tally.snapshot() == {"read": 2, "write": 2, "auth": 1, "total": 5}


@responses.activate
def test_a_trace_lists_each_call_with_its_start_and_duration_and_no_query_string():
    responses.add(responses.GET, "https://sn.test/api/now/table/x", json={"result": []})
    responses.add(responses.POST, BATCH, json={"serviced_requests": []})
    with tally_http() as tally:
        tally.trace = []
        requests.get("https://sn.test/api/now/table/x?sysparm_query=secret", timeout=5)
        requests.post(BATCH, data=batch("POST"), timeout=5)

    first, second = (line.split() for line in tally.trace)
    assert first[2:] == ["read", "GET", "/api/now/table/x"]
    assert second[2:] == ["write", "POST", "/api/now/v1/batch"]
    assert 0 <= float(first[0]) <= float(second[0])  # offsets from the tally's start, in call order
    assert float(first[0]) + float(first[1]) <= float(second[0]) + 0.001  # the first answered before the second left
    assert tally.snapshot() == {"read": 1, "write": 1, "auth": 0, "total": 2}
